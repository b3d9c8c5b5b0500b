"""Every day, audit the previous day's tasks of every IoTDA instance to a Parquet file, then
report on them.

What it shows
-------------
1. ``dump_tasks`` (``IoTDAInstanceTaskListOperator``) finds every instance of the connection's
   project (``instance_ids="all"``, ListInstances), lists every task of each (several
   instances at once), keeps those created in the run's data interval -- the previous day,
   ``created_after <= create_time < created_before`` -- and writes them as Parquet to
   ``{base}/{day}/tasks.parquet`` through ``ObjectStoragePath``.  The file is written whole (a
   temporary name, then a rename) or not at all: if any instance fails after its retries, the
   task fails and nothing is written.  ``if_exists="fail"``: a day already audited is never
   overwritten.  Its XCom is a small summary, never the data; the summary's
   ``incomplete_instances`` names the instances whose tasks of the day IoTDA may already have
   dropped (it keeps at most 20 per instance): running daily keeps that list empty unless an
   instance runs more than 20 tasks a day.
2. ``report`` reads the file back through ``ObjectStoragePath``, logs a table of counts by
   instance, type and status, and returns those counts.

Settings (read when the task runs, not when the DAG is parsed)
---------------------------------------------------------------
- Variable ``iotda_audit_instance_ids``: a JSON list of instance IDs to audit instead of
  ``"all"``.
- Variable ``iotda_audit_base``, else environment variable ``IOTDA_AUDIT_BASE``: the base
  directory.  Default: ``iotda-audit`` in the system's temporary directory.  For an object
  store, change ``destination=`` of ``dump_tasks`` below to a URL, e.g.
  ``"s3://aws_default@bucket/iotda/{{ data_interval_start | ds }}/tasks.parquet"`` (Huawei OBS
  is S3-compatible; needs ``apache-airflow-providers-amazon[s3fs]``).
- Connection ``iotda_default`` (type ``huaweicloud_iotda``).
- Parquet needs pyarrow: ``pip install 'airflow-provider-iotda[parquet]'``.

The schedule is a ``CronDataIntervalTimetable``: each daily run covers the whole previous day
(Airflow 3's plain ``"@daily"`` gives runs a zero-length interval).

Try it against the local simulator, whose demo scenario has tasks spread over the last three
days, so "yesterday" always holds some::

    IOTDA_SIMULATOR_SK=sim-secret-key python -m airflow_provider_iotda.simulator \\
        --ak sim-access-key --project-id 0123456789abcdef0123456789abcdef \\
        --scenario demo --port 8787 &
    export AIRFLOW_CONN_IOTDA_DEFAULT='{"conn_type": "huaweicloud_iotda",
        "login": "sim-access-key", "password": "sim-secret-key",
        "extra": {"endpoint": "http://127.0.0.1:8787",
                  "project_id": "0123456789abcdef0123456789abcdef"}}'
    export IOTDA_AUDIT_BASE=/tmp/iotda-audit
    airflow dags test audit_instance_tasks
    ls /tmp/iotda-audit/*/tasks.parquet
"""

# [START audit_instance_tasks]
from __future__ import annotations

import logging
import os
import tempfile
from typing import Any

import pendulum
from airflow.sdk import DAG, ObjectStoragePath, Variable, task

from airflow_provider_iotda import records
from airflow_provider_iotda.compat import CronDataIntervalTimetable  # airflow.sdk's from 3.2
from airflow_provider_iotda.operators.iotda import IoTDAInstanceTaskListOperator
from airflow_provider_iotda.operators.report import IoTDAInstanceTaskReportOperator

log = logging.getLogger(__name__)

DEFAULT_BASE = os.path.join(tempfile.gettempdir(), "iotda-audit")


def audit_base() -> str:
    """The base directory: Variable ``iotda_audit_base``, else ``$IOTDA_AUDIT_BASE``, else a
    temporary directory.  Called while templates render, i.e. when the task runs."""
    base = Variable.get("iotda_audit_base", default=None) or os.environ.get("IOTDA_AUDIT_BASE")
    return os.path.abspath(base or DEFAULT_BASE)


def audit_instance_ids() -> str | list[str]:
    """The instances to audit: Variable ``iotda_audit_instance_ids`` (a JSON list), else
    ``"all"`` (every instance of the connection's project)."""
    ids = Variable.get("iotda_audit_instance_ids", default=None, deserialize_json=True)
    return list(ids) if ids else "all"


# [START audit_schedule]
with DAG(
    dag_id="audit_instance_tasks",
    description="Audit the previous day's tasks of every IoTDA instance to Parquet and report",
    schedule=CronDataIntervalTimetable("@daily", timezone="UTC"),
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["iotda", "example", "audit"],
    user_defined_macros={"audit_base": audit_base, "audit_instance_ids": audit_instance_ids},
    # Templates give native values (a list of IDs stays a list).
    render_template_as_native_obj=True,
) as dag:
    # [END audit_schedule]
    # [START audit_dump]
    dump_tasks = IoTDAInstanceTaskListOperator(
        task_id="dump_tasks",
        iotda_conn_id="iotda_default",
        instance_ids="{{ audit_instance_ids() }}",
        created_after="{{ data_interval_start }}",
        created_before="{{ data_interval_end }}",
        destination="file://{{ audit_base() }}/{{ data_interval_start | ds }}/tasks.parquet",
        if_exists="fail",  # an audited day is written once
        max_concurrency=8,
        on_instance_error="fail",  # all or nothing: a gap in an audit trail must not go unseen
        on_incomplete="warn",  # "fail" refuses to record a day IoTDA no longer fully lists
    )
    # [END audit_dump]

    @task
    def report(summary: dict[str, Any]) -> dict[str, Any]:
        """Read the file back and log counts by instance, type and status."""
        path = ObjectStoragePath(summary["destination"])
        with path.open("rb") as handle:
            data = handle.read()
        rows = records.parse(data, summary["format"])
        if len(rows) != summary["records"]:
            raise ValueError(
                f"{path} holds {len(rows)} record(s) but dump_tasks wrote {summary['records']}"
            )
        if rows:
            log.info("IoTDA tasks in %s:\n%s", path, records.summary_table(rows))
        else:
            log.info("No IoTDA task in the interval: %s is empty", path)
        return {
            "destination": summary["destination"],
            "records": len(rows),
            "by_instance": records.count_by(rows, "instance_id"),
            "by_type": records.count_by(rows, "type"),
            "by_status": records.count_by(rows, "status"),
            "incomplete_instances": summary["incomplete_instances"],
        }

    report(dump_tasks.output)

    # The page people look at: one self-contained HTML file beside the Parquet file, from the
    # list operator's summary (its destination, format and incomplete instances).
    # [START audit_html_report]
    IoTDAInstanceTaskReportOperator(
        task_id="html_report",
        source=dump_tasks.output,
        destination="file://{{ audit_base() }}/{{ data_interval_start | ds }}/report.html",
        title="IoTDA instance tasks on {{ data_interval_start | ds }}",
    )
    # [END audit_html_report]
# [END audit_instance_tasks]
