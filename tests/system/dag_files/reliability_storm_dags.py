"""Test-only DAGs of tests/integration/reliability (and benchmarks/reliability_storm.py): the
instance-task
sensor in poke, reschedule and deferrable mode against a simulator in a fault storm.

The task to wait for comes from the run's conf (params ``instance_id`` and ``task_id``); the
connection ``iotda_reliability_storm`` points at the storm's simulator (short client timeout,
more retries).  A failing sensor appends its exception to the file named by
``IOTDA_RELIABILITY_OUTBOX`` so that the caller can read the message.
"""

from __future__ import annotations

import json
import os
import traceback
from typing import Any

import pendulum
from airflow.sdk import DAG

from airflow_provider_iotda.sensors.iotda import IoTDAInstanceTaskSensor

CONN_ID = "iotda_reliability_storm"
POKE_INTERVAL = 0.2
MODES: dict[str, dict[str, Any]] = {
    "poke": {"mode": "poke", "deferrable": False},
    "reschedule": {"mode": "reschedule", "deferrable": False},
    "deferrable": {"deferrable": True},
}


def record_failure(context: Any) -> None:
    """Append the sensor's exception (type, str, repr, traceback) to the caller's outbox."""
    outbox = os.environ.get("IOTDA_RELIABILITY_OUTBOX")
    if outbox:
        exception = context.get("exception")
        line = {
            "dag_id": context["dag"].dag_id,
            "type": type(exception).__name__,
            "message": str(exception),
            "repr": repr(exception),
            "traceback": "".join(traceback.format_exception(exception))
            if isinstance(exception, BaseException)
            else "",
        }
        with open(outbox, "a", encoding="utf-8") as out:
            out.write(json.dumps(line) + "\n")


for name, settings in MODES.items():
    with DAG(
        dag_id=f"reliability_storm_{name}",
        schedule=None,
        start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
        catchup=False,
        params={"instance_id": "", "task_id": ""},
        tags=["iotda-test", "reliability"],
    ) as dag:
        IoTDAInstanceTaskSensor(
            task_id="wait",
            iotda_conn_id=CONN_ID,
            instance_id="{{ params.instance_id }}",
            instance_task_id="{{ params.task_id }}",
            poke_interval=POKE_INTERVAL,
            timeout=300,
            not_found_timeout=None,
            on_failure_callback=record_failure,
            **settings,
        )
    globals()[dag.dag_id] = dag
