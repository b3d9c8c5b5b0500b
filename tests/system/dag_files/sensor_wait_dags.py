"""Test-only DAGs of tests/system/test_sensor_dags.py: IoTDAInstanceTaskSensor in each mode.

The task to wait for comes from the run's conf (params ``instance_id`` and ``task_id``); the
connection ``iotda_sensor_sim`` points at the test's simulator.  A failing sensor writes its
exception to the file named by ``IOTDA_SENSOR_TEST_OUTBOX`` so the test can read the message.
"""

from __future__ import annotations

import json
import os
from typing import Any

import pendulum
from airflow.sdk import DAG

from airflow_provider_iotda.sensors.iotda import IoTDAInstanceTaskSensor


def record_failure(context: Any) -> None:
    """Append the sensor's exception to the test's outbox file."""
    outbox = os.environ.get("IOTDA_SENSOR_TEST_OUTBOX")
    if outbox:
        exception = context.get("exception")
        line = {
            "dag_id": context["dag"].dag_id,
            "type": type(exception).__name__,
            "message": str(exception),
        }
        with open(outbox, "a", encoding="utf-8") as out:
            out.write(json.dumps(line) + "\n")


VARIANTS: dict[str, dict[str, Any]] = {
    "poke": {"mode": "poke", "deferrable": False, "timeout": 120},
    "reschedule": {"mode": "reschedule", "deferrable": False, "timeout": 120},
    "deferrable": {"deferrable": True, "timeout": 120},
    "deferrable_timeout": {"deferrable": True, "timeout": 3},
    "deferrable_soft_timeout": {"deferrable": True, "timeout": 3, "soft_fail": True},
}

for name, settings in VARIANTS.items():
    with DAG(
        dag_id=f"sensor_wait_{name}",
        schedule=None,
        start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
        catchup=False,
        params={"instance_id": "", "task_id": ""},
        tags=["iotda-test"],
    ) as dag:
        IoTDAInstanceTaskSensor(
            task_id="wait",
            iotda_conn_id="iotda_sensor_sim",
            instance_id="{{ params.instance_id }}",
            instance_task_id="{{ params.task_id }}",
            poke_interval=1,
            on_failure_callback=record_failure,
            **settings,
        )
    globals()[dag.dag_id] = dag
