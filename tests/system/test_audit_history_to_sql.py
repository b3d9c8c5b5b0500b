"""The ``audit_history_to_sql`` example DAG (example_dags/audit_history_to_sql.py) end to end:
``dag.test()`` in a real Airflow, against the simulator on loopback, into a SQLite file; twice,
with more than 20 new tasks between the runs (a gap recorded and warned about, the run still
succeeds)."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from pathlib import Path

import pendulum
import pytest
from iotda_test_values import return_values

from .audit_support import load_dag_module, run_states
from .conftest import start_demo_simulator

pytestmark = [pytest.mark.dag, pytest.mark.integration]

AK = "SQLDAGACCESSKEY00001"
SK = "SQL-DAG-SECRET-do-not-leak-0f3c"
PROJECT = "0123456789abcdef0123456789abcdef"
SIM_NOW = dt.datetime(2024, 5, 3, 6, 0, tzinfo=dt.UTC)


def test_dag_shape() -> None:
    dag = load_dag_module("audit_history_to_sql").dag
    assert set(dag.task_ids) == {"history_to_sql", "latest_statuses"}
    assert dag.get_task("latest_statuses").upstream_task_ids == {"history_to_sql"}
    assert not dag.catchup


def test_history_dag_records_every_instance_then_a_gap(
    airflow_db: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    module = load_dag_module("audit_history_to_sql")
    database = tmp_path / "history.db"
    monkeypatch.setenv(
        "AIRFLOW_CONN_IOTDA_AUDIT_DB", json.dumps({"conn_type": "sqlite", "host": str(database)})
    )
    with start_demo_simulator(
        monkeypatch, SIM_NOW, ak=AK, sk=SK, project_id=PROJECT, seed=3
    ) as sim:
        every = sim.state.instance_ids()
        listed = {
            t["task_id"]: (i, t["status"]) for i in every for t in sim.state.list_tasks(i)["tasks"]
        }

        first = module.dag.test(logical_date=pendulum.datetime(2024, 5, 3, 6, tz="UTC"))

        assert run_states(first) == {"history_to_sql": "success", "latest_statuses": "success"}
        xcoms = return_values(first)
        summary = xcoms["history_to_sql"]
        assert sorted(summary["instances"]) == sorted(every)
        assert summary["inserted"] == summary["tasks_seen"] == len(listed)
        assert summary["gaps"] == []
        with sqlite3.connect(database) as db:
            stored = {r[0]: (r[1], r[2]) for r in db.execute(
                "SELECT task_id, instance_id, status FROM iotda_instance_tasks"
            )}  # fmt: skip
        assert stored == listed
        expected_counts: dict[str, dict[str, int]] = {}
        for instance_id, status in listed.values():
            by_status = expected_counts.setdefault(instance_id, {})
            by_status[status] = by_status.get(status, 0) + 1
        assert xcoms["latest_statuses"] == expected_counts

        # 25 new tasks on one instance before the next run: IoTDA lists the newest 20 only.
        busy = every[0]
        newest = max(t["create_time"] for t in sim.state.list_tasks(busy)["tasks"])
        sim.advance(3600)
        for i in range(25):
            sim.add_task(busy, "MODIFY", created=-60.0 * (25 - i))
        oldest_listed = min(t["create_time"] for t in sim.state.list_tasks(busy)["tasks"])

        second = module.dag.test(logical_date=pendulum.datetime(2024, 5, 3, 7, tz="UTC"))

    assert run_states(second) == {"history_to_sql": "success", "latest_statuses": "success"}
    summary = return_values(second)["history_to_sql"]
    assert summary["gaps"] == [{"instance_id": busy, "after": newest, "before": oldest_listed}]
    assert summary["inserted"] == 20
    with sqlite3.connect(database) as db:
        assert db.execute("SELECT COUNT(*) FROM iotda_instance_tasks_gaps").fetchone() == (1,)
        rows = db.execute("SELECT * FROM iotda_instance_tasks").fetchall()
    assert len(rows) == len(listed) + 20
    assert SK not in repr(rows)
