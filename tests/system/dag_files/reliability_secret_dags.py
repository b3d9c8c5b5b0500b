"""Test-only DAG of tests/integration/reliability/test_secrets.py: a task that logs the
connection's secret
key through the task logger, to show that Airflow masks it (``***``) in task logs."""

from __future__ import annotations

import logging

import pendulum
from airflow.sdk import DAG, BaseHook, task

log = logging.getLogger(__name__)

with DAG(
    dag_id="reliability_secret_logging",
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    tags=["iotda-test", "reliability"],
) as dag:

    @task
    def log_the_secret_key() -> str:
        """Logs the SK on purpose (a careless DAG author); returns a harmless marker."""
        from airflow_provider_iotda.hooks.iotda import IoTDAHook

        hook = IoTDAHook("iotda_reliability_secrets")
        token = hook.config.credentials.security_token  # registers the SK and token for masking
        conn = BaseHook.get_connection("iotda_reliability_secrets")
        log.info("careless stdlib line: the SK is %s", conn.password)
        hook.log.info("careless hook line: the SK is %s", conn.password)
        log.info("careless stdlib line: the token is %s", token)
        hook.log.info("careless hook line: the token is %s", token)
        return "logged"

    log_the_secret_key()
