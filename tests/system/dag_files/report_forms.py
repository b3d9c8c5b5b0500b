"""Test-only DAG: the report operator fed as users feed it -- the list operator's summary as an
XComArg, a templated path from that summary, and the records themselves from XCom (templated
natively and as an XComArg)."""

from __future__ import annotations

import os

import pendulum
from airflow.sdk import DAG

from airflow_provider_iotda.compat import CronDataIntervalTimetable  # airflow.sdk's from 3.2
from airflow_provider_iotda.operators.iotda import IoTDAInstanceTaskListOperator
from airflow_provider_iotda.operators.report import IoTDAInstanceTaskReportOperator

INSTANCE_IDS = [
    "3f9a2c1e-7b4d-4e8a-9c2f-5d6e7a8b9c01",
    "a8d1e6b2-4c3f-4a9e-8b7d-2f1c0e9d8a76",
    "c5e4b3a2-9d8c-4f7e-a6b5-1c2d3e4f5a60",
]
#: The list operator's summary["incomplete_instances"] ([] where the summary has none).
INCOMPLETE = "{{ ti.xcom_pull(task_ids='dump_file').get('incomplete_instances', []) }}"


def report_base() -> str:
    """Where the files go: ``$IOTDA_REPORT_TEST_BASE`` (read when templates render)."""
    return os.environ["IOTDA_REPORT_TEST_BASE"]


with DAG(
    dag_id="report_forms",
    schedule=CronDataIntervalTimetable("@daily", timezone="UTC"),
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    tags=["iotda", "test"],
    user_defined_macros={"report_base": report_base},
    render_template_as_native_obj=True,
) as dag:
    window = {
        "instance_ids": INSTANCE_IDS,
        "created_after": "{{ data_interval_start }}",
        "created_before": "{{ data_interval_end }}",
    }
    dump_file = IoTDAInstanceTaskListOperator(
        task_id="dump_file",
        destination="file://{{ report_base() }}/{{ data_interval_start | ds }}/tasks.csv",
        **window,
    )
    dump_xcom = IoTDAInstanceTaskListOperator(task_id="dump_xcom", **window)

    page = "file://{{ report_base() }}/{{ data_interval_start | ds }}/%s.html"
    from_summary = IoTDAInstanceTaskReportOperator(
        task_id="from_summary",
        source=dump_file.output,
        destination=page % "from_summary",
        title="IoTDA tasks on {{ data_interval_start | ds }}",
    )
    from_template = IoTDAInstanceTaskReportOperator(
        task_id="from_template",
        source="{{ ti.xcom_pull(task_ids='dump_file')['destination'] }}",
        destination=page % "from_template",
        incomplete_instances=INCOMPLETE,
    )
    from_records = IoTDAInstanceTaskReportOperator(
        task_id="from_records",
        records="{{ ti.xcom_pull(task_ids='dump_xcom') }}",
        destination=page % "from_records",
    )
    from_xcom_arg = IoTDAInstanceTaskReportOperator(
        task_id="from_xcom_arg",
        records=dump_xcom.output,
        destination=page % "from_xcom_arg",
    )
    dump_file >> from_template
    dump_xcom >> from_records
