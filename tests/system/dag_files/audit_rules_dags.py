"""Test-only DAGs, one per audit rule of ``IoTDAInstanceTaskListOperator``; run with
``dag.test()`` against the simulator by tests/system/test_audit_rules_dags.py.  Files go under
``$IOTDA_RULES_BASE``; instances are those the test adds to the simulator."""

from __future__ import annotations

import os

import pendulum
from airflow.sdk import DAG

from airflow_provider_iotda.compat import CronDataIntervalTimetable  # airflow.sdk's from 3.2
from airflow_provider_iotda.operators.iotda import IoTDAInstanceTaskListOperator

#: 25 tasks, one every 30 minutes: the 20 listed all fall inside the audited day.
FLAGGED = "f1a99ed0-0000-4000-8000-000000000001"
#: 25 tasks, one every 3 hours: the 20 listed reach back before the audited day.
COMPLETE = "c0391e7e-0000-4000-8000-000000000002"


def base() -> str:
    return os.environ["IOTDA_RULES_BASE"]


#: The DAGs by ID (Airflow registers DAGs made in a ``with`` block; the tests look them up).
DAGS: dict[str, DAG] = {}


def rule_dag(dag_id: str) -> DAG:
    DAGS[dag_id] = DAG(
        dag_id=dag_id,
        schedule=CronDataIntervalTimetable("@daily", timezone="UTC"),
        start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
        catchup=False,
        tags=["iotda", "test"],
        user_defined_macros={"base": base},
    )
    return DAGS[dag_id]


WINDOW = {"created_after": "{{ data_interval_start }}", "created_before": "{{ data_interval_end }}"}

with rule_dag("audit_rule_incomplete_fail"):
    IoTDAInstanceTaskListOperator(
        task_id="dump",
        instance_ids=[COMPLETE, FLAGGED],
        destination="file://{{ base() }}/incomplete.jsonl",
        on_incomplete="fail",
        **WINDOW,
    )

for mode in ("fail", "skip"):
    with rule_dag(f"audit_rule_if_exists_{mode}"):
        IoTDAInstanceTaskListOperator(
            task_id="dump",
            instance_ids=COMPLETE,
            destination="file://{{ base() }}/existing.csv",
            if_exists=mode,
            **WINDOW,
        )

for mode in ("fail", "overwrite"):
    with rule_dag(f"audit_rule_mapped_{mode}"):
        IoTDAInstanceTaskListOperator.partial(
            task_id="dump",
            instance_ids=COMPLETE,
            destination="file://{{ base() }}/mapped.json",  # the same for both accounts
            if_exists=mode,
            **WINDOW,
        ).expand(iotda_conn_id=["iotda_default", "iotda_second"])

with rule_dag("audit_rule_s3"):
    IoTDAInstanceTaskListOperator(
        task_id="dump",
        instance_ids=COMPLETE,
        destination="s3://aws_default@iotda-audit/{{ ds }}/tasks.csv",
        **WINDOW,
    )
