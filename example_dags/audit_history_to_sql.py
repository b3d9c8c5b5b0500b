"""Every hour, keep the audit history of every IoTDA instance's tasks in a SQL database.

What it shows
-------------
1. ``history_to_sql`` (``IoTDAInstanceTasksToSqlOperator``) finds every instance of the
   connection's project (``instance_ids="all"``), lists every task of each (the list operator's
   fetch, several instances at once) and upserts them into three tables:
   ``iotda_instance_tasks`` (one row per task with its latest values and when this pipeline
   first saw it, last saw it and saw its status change), ``iotda_instance_tasks_status_history``
   (when each status was first seen) and ``iotda_instance_tasks_gaps`` (where tasks may have
   been lost: IoTDA lists only the newest 20 tasks of an instance, so more than 20 new tasks
   between two runs is recorded there, and warned about).  Tasks IoTDA no longer lists stay in
   the table.  A re-run changes nothing but ``last_seen_at``.  Its XCom is a summary.
2. ``latest_statuses`` reads the table back through the same connection's hook and logs how
   many tasks each instance has per status.

Settings
--------
- Connection ``iotda_audit_db``: any connection whose hook is a common-sql ``DbApiHook`` with
  ``INSERT ... ON CONFLICT`` (PostgreSQL, SQLite).  SQLite for a quick start::

      export AIRFLOW_CONN_IOTDA_AUDIT_DB='{"conn_type": "sqlite", "host": "/tmp/iotda-audit.db"}'

  PostgreSQL for a real audit trail::

      export AIRFLOW_CONN_IOTDA_AUDIT_DB='postgres://audit:PASSWORD@db.example.com:5432/audit'

- Connection ``iotda_default`` (type ``huaweicloud_iotda``).
- Needs the ``sql`` extra: ``pip install 'airflow-provider-iotda[sql]'``.
"""

from __future__ import annotations

import logging
from typing import Any

import pendulum
from airflow.sdk import DAG, task

from airflow_provider_iotda.transfers.iotda_to_sql import IoTDAInstanceTasksToSqlOperator

log = logging.getLogger(__name__)

SQL_CONN_ID = "iotda_audit_db"
TABLE = "iotda_instance_tasks"

with DAG(
    dag_id="audit_history_to_sql",
    description="Hourly audit history of every IoTDA instance's tasks in a SQL database",
    schedule="@hourly",
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["iotda", "example", "audit", "sql"],
) as dag:
    # [START howto_transfer_iotda_to_sql]
    history_to_sql = IoTDAInstanceTasksToSqlOperator(
        task_id="history_to_sql",
        sql_conn_id=SQL_CONN_ID,
        table=TABLE,  # also writes iotda_instance_tasks_status_history and _gaps
        iotda_conn_id="iotda_default",
        instance_ids="all",  # every instance of the connection's project
        create_tables=True,  # created with their keys if missing
        on_gap="warn",  # "fail" fails the run after writing what it saw
        on_instance_error="skip",  # the other instances are still recorded
    )
    # [END howto_transfer_iotda_to_sql]

    @task
    def latest_statuses(summary: dict[str, Any]) -> dict[str, dict[str, int]]:
        """Count the stored tasks of each instance by status (read back through the hook)."""
        from airflow.sdk import BaseHook

        hook = BaseHook.get_connection(SQL_CONN_ID).get_hook()
        rows = hook.get_records(
            f"SELECT instance_id, status, COUNT(*) FROM {summary['table']} "  # noqa: S608
            "GROUP BY instance_id, status ORDER BY instance_id, status"
        )
        counts: dict[str, dict[str, int]] = {}
        for instance_id, status, count in rows:
            counts.setdefault(instance_id, {})[status] = int(count)
        log.info(
            "%s: %d new, %d updated, %d status change(s), gaps %s; stored by status: %s",
            summary["table"],
            summary["inserted"],
            summary["updated"],
            summary["status_changes"],
            summary["gaps"] or "none",
            counts,
        )
        return counts

    latest_statuses(history_to_sql.output)
