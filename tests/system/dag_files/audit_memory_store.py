"""Test-only DAG: the task-list operator writes CSV to ``memory://`` (an fsspec filesystem the
test attaches as an Airflow object store), and a downstream task reads it back."""

from __future__ import annotations

from typing import Any

import pendulum
from airflow.sdk import DAG, ObjectStoragePath, task

from airflow_provider_iotda import records
from airflow_provider_iotda.compat import CronDataIntervalTimetable  # airflow.sdk's from 3.2
from airflow_provider_iotda.operators.iotda import IoTDAInstanceTaskListOperator

INSTANCE_IDS = [
    "c5e4b3a2-9d8c-4f7e-a6b5-1c2d3e4f5a60",
    "3f9a2c1e-7b4d-4e8a-9c2f-5d6e7a8b9c01",
]

with DAG(
    dag_id="audit_memory_store",
    schedule=CronDataIntervalTimetable("@daily", timezone="UTC"),
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    tags=["iotda", "test"],
) as dag:
    dump_csv = IoTDAInstanceTaskListOperator(
        task_id="dump_csv",
        instance_ids=INSTANCE_IDS,
        created_after="{{ data_interval_start }}",
        created_before="{{ data_interval_end }}",
        destination="memory://iotda-audit-test/{{ data_interval_start | ds }}/tasks.csv",
        max_concurrency=2,
    )

    @task
    def check_csv(summary: dict[str, Any]) -> int:
        with ObjectStoragePath(summary["destination"]).open("rb") as handle:
            rows = records.parse(handle.read(), "csv")
        if len(rows) != summary["records"] or summary["format"] != "csv":
            raise ValueError(f"read {len(rows)} rows back, the summary says {summary}")
        return len(rows)

    check_csv(dump_csv.output)
