"""The quick start's first DAG (example_dags/quickstart.py), triggered by hand as a new user
would: ``airflow dags test`` (a logical date of now) and ``airflow dags trigger`` (no logical
date at all).  It must succeed the first time, against the demo scenario as documented."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from iotda_test_values import advance_clock_after, return_values

from airflow_provider_iotda.simulator import IoTDASimulator

from .conftest import DOCS_SK, FACTORY_EAST, listed_in_window, load_dag, task_states

pytestmark = [pytest.mark.dag, pytest.mark.integration]


@pytest.fixture
def output_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setenv("IOTDA_QUICKSTART_DIR", str(tmp_path))
    return tmp_path


def check_run(dag_run: Any, sim: IoTDASimulator, output_dir: Path) -> None:
    assert task_states(dag_run) == {"wait_for_modify": "success", "dump_tasks": "success"}
    assert str(dag_run.state) == "success"
    xcoms = return_values(dag_run)
    newest_modify = max(
        (t for t in sim.tasks(FACTORY_EAST) if t["type"] == "MODIFY"),
        key=lambda t: t["create_time"],
    )
    finished = xcoms["wait_for_modify"]
    # the MODIFY the simulator started with, not the FAILED one two days older
    assert finished["task_id"] == newest_modify["task_id"]
    assert finished["status"] == "SUCCESS"
    (written,) = output_dir.glob("tasks-*.json")
    assert xcoms["dump_tasks"]["destination"] == f"file://{written}"
    run_after = dag_run.run_after
    want = listed_in_window(sim, [FACTORY_EAST], run_after - dt.timedelta(days=7), run_after)
    got = json.loads(written.read_text())
    assert [r["task_id"] for r in got] == want
    assert len(want) == 6  # the demo instance's tasks of the last week (not its CREATE)
    assert DOCS_SK not in written.read_text()


def test_quickstart_waits_then_dumps_under_dags_test(
    airflow_db: Path, demo_sim: IoTDASimulator, output_dir: Path
) -> None:
    dag = load_dag("quickstart.py", "iotda_quickstart")
    # The sensor pokes (PENDING) and defers; the trigger polls (PENDING); the task then moves
    # to RUNNING (5 s) and, one poll later, to SUCCESS (20 s).
    with advance_clock_after(demo_sim, (2, 5.0), (3, 15.0)):
        dag_run = dag.test()
    assert dag_run.logical_date is not None
    check_run(dag_run, demo_sim, output_dir)


def test_quickstart_runs_without_a_logical_date(
    airflow_db: Path, demo_sim: IoTDASimulator, output_dir: Path
) -> None:
    """``airflow dags trigger`` (and the UI with an empty logical date): no data interval."""
    dag = load_dag("quickstart.py", "iotda_quickstart")
    demo_sim.advance(20)  # the MODIFY has finished by the time the run starts
    dag_run = dag.test(logical_date=None)
    assert dag_run.logical_date is None
    assert dag_run.data_interval_start is None
    check_run(dag_run, demo_sim, output_dir)
