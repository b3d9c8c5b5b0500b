"""Test-only DAGs of tests/system/test_instance_operator_dags.py: the resize and task-retry
operators in poke and deferrable mode, and a resize task with an Airflow retry.

The instance, flavor and task come from the run's conf; the connection ``iotda_ops_sim`` points
at the test's simulator.  A failing task appends its exception to the file named by
``IOTDA_OPS_TEST_OUTBOX`` so the test can read the message.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from typing import Any

import pendulum
from airflow.sdk import DAG

from airflow_provider_iotda.operators.instance import (
    IoTDAResizeInstanceOperator,
    IoTDARetryInstanceTaskOperator,
)

POKE_INTERVAL = float(os.environ.get("IOTDA_OPS_TEST_POKE_INTERVAL", "0.2"))
PARAMS = {"instance_id": "", "flavor_type": "iotda.standard.s2", "flavor_size": 2, "task_id": ""}


def record_failure(context: Any) -> None:
    outbox = os.environ.get("IOTDA_OPS_TEST_OUTBOX")
    if outbox:
        exception = context.get("exception")
        line = {
            "dag_id": context["dag"].dag_id,
            "try_number": context["ti"].try_number,
            "type": type(exception).__name__,
            "message": str(exception),
        }
        with open(outbox, "a", encoding="utf-8") as out:
            out.write(json.dumps(line) + "\n")


def _dag(dag_id: str) -> DAG:
    return DAG(
        dag_id=dag_id,
        schedule=None,
        start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
        catchup=False,
        params=dict(PARAMS),
        tags=["iotda-test"],
    )


COMMON: dict[str, Any] = {
    "iotda_conn_id": "iotda_ops_sim",
    "instance_id": "{{ params.instance_id }}",
    "poke_interval": POKE_INTERVAL,
    "timeout": 60,
    "on_failure_callback": record_failure,
}

for mode, deferrable in (("poke", False), ("deferrable", True)):
    with _dag(f"iotda_resize_{mode}"):
        IoTDAResizeInstanceOperator(
            task_id="resize",
            flavor_type="{{ params.flavor_type }}",
            flavor_size="{{ params.flavor_size }}",
            deferrable=deferrable,
            **COMMON,
        )
    with _dag(f"iotda_retry_task_{mode}"):
        IoTDARetryInstanceTaskOperator(
            task_id="retry_task",
            instance_task_id="{{ params.task_id }}",
            deferrable=deferrable,
            **COMMON,
        )

with _dag("iotda_resize_retried"):
    IoTDAResizeInstanceOperator(
        task_id="resize",
        flavor_type="{{ params.flavor_type }}",
        flavor_size="{{ params.flavor_size }}",
        deferrable=False,
        retries=1,
        retry_delay=dt.timedelta(seconds=0),
        on_retry_callback=record_failure,
        **COMMON,
    )
