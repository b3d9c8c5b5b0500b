"""Every day, dump the tasks of the 24 hours before the run to JSON Lines, on a plain "@daily".

Airflow 3's ``schedule="@daily"`` (a ``CronTriggerTimetable``) gives each run a zero-length data
interval (``data_interval_start`` equals ``data_interval_end``), and a run triggered by hand
may have no data interval at all.  This DAG measures its window back from
``dag_run.run_after`` instead, which every run has: a scheduled run at midnight covers the
previous day, a run triggered by hand the 24 hours before it was triggered.  The file is named
after the date the window starts on.

Compare ``audit_instance_tasks.py``, whose ``CronDataIntervalTimetable`` gives every run a real
data interval (the previous day) to template instead.
"""

# [START daily_task_dump]
from __future__ import annotations

import os

import pendulum
from airflow.sdk import DAG

from airflow_provider_iotda.operators.iotda import IoTDAInstanceTaskListOperator

BASE = os.environ.get("IOTDA_DUMP_BASE", "/tmp/iotda-dumps")
# The date the window starts on (for a scheduled run: the previous day).
WINDOW_DAY = "{{ (dag_run.run_after - macros.timedelta(days=1)) | ds }}"

with DAG(
    dag_id="daily_task_dump",
    schedule="@daily",  # run_after is midnight UTC; the data interval has zero length
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    tags=["iotda", "example"],
):
    IoTDAInstanceTaskListOperator(
        task_id="dump_tasks",
        iotda_conn_id="iotda_default",
        instance_ids="all",  # every instance of the connection's project
        created_after="{{ (dag_run.run_after - macros.timedelta(days=1)) | ts }}",
        created_before="{{ dag_run.run_after | ts }}",
        destination=f"file://{BASE}/{WINDOW_DAY}/tasks.jsonl",
        if_exists="overwrite",
    )
# [END daily_task_dump]
