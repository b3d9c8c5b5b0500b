"""The time-window patterns the docs show, each run by hand and as the scheduler runs it:

- ``daily_task_dump.py``: a plain ``"@daily"`` (zero-length data intervals) with a window
  measured back from ``dag_run.run_after``;
- ``audit_instance_tasks.py``: ``CronDataIntervalTimetable``, whose runs (scheduled, or by hand
  with a logical date) cover the previous day, templated with ``data_interval_start/end``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pendulum
import pytest
from iotda_test_values import return_values

from airflow_provider_iotda import records
from airflow_provider_iotda.simulator import IoTDASimulator

from .conftest import (
    DOCS_SK,
    listed_in_window,
    load_dag,
    run_scheduled,
    start_demo_simulator,
    task_states,
)

pytestmark = [pytest.mark.dag, pytest.mark.integration]

SIM_NOW = dt.datetime(2024, 5, 3, 6, 0, tzinfo=dt.UTC)


@pytest.fixture
def sim_at_6(monkeypatch: pytest.MonkeyPatch) -> Iterator[IoTDASimulator]:
    """The demo scenario with its clock frozen at 2024-05-03 06:00 UTC."""
    sim = start_demo_simulator(monkeypatch, start_time=SIM_NOW)
    try:
        yield sim
    finally:
        sim.stop()


def check_daily_dump(dag_run: Any, sim: IoTDASimulator, base: Path, run_after: Any) -> None:
    """The run wrote, under the date before ``run_after``, every task of every instance
    created in the 24 hours before ``run_after``."""
    assert task_states(dag_run) == {"dump_tasks": "success"}
    written = base / "2024-05-02" / "tasks.jsonl"
    every = sim.state.instance_ids()
    want = listed_in_window(sim, every, run_after - dt.timedelta(days=1), run_after)
    assert len(want) >= 3
    got = [r["task_id"] for r in records.parse(written.read_bytes(), "jsonl")]
    assert sorted(got) == sorted(want)
    assert return_values(dag_run)["dump_tasks"]["records"] == len(want)
    assert DOCS_SK not in written.read_text()


def test_daily_dump_scheduled_run_covers_the_previous_day(
    airflow_db: Path,
    sim_at_6: IoTDASimulator,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.setenv("IOTDA_DUMP_BASE", str(tmp_path))
    dag = load_dag("daily_task_dump.py", "daily_task_dump")
    dag_run, info = run_scheduled(dag, pendulum.datetime(2024, 5, 2, 12, tz="UTC"), monkeypatch)
    midnight = pendulum.datetime(2024, 5, 3, tz="UTC")
    # "@daily": the run at midnight has a zero-length data interval
    assert (info.run_after, info.logical_date) == (midnight, midnight)
    assert info.data_interval.start == info.data_interval.end
    check_daily_dump(dag_run, sim_at_6, tmp_path, midnight)


def test_daily_dump_run_by_hand_covers_the_day_before_it(
    airflow_db: Path,
    sim_at_6: IoTDASimulator,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.setenv("IOTDA_DUMP_BASE", str(tmp_path))
    dag = load_dag("daily_task_dump.py", "daily_task_dump")
    run_after = pendulum.instance(SIM_NOW)
    dag_run = dag.test(logical_date=None, run_after=run_after)  # as `airflow dags trigger`
    assert dag_run.logical_date is None
    check_daily_dump(dag_run, sim_at_6, tmp_path, run_after)


@pytest.mark.parametrize(
    "how",
    ["scheduled", "by hand with a logical date"],
)
def test_audit_dag_covers_the_previous_day(
    how: str,
    airflow_db: Path,
    sim_at_6: IoTDASimulator,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    pytest.importorskip("pyarrow", reason="the audit example writes Parquet (the parquet extra)")
    from airflow_provider_iotda.operators import iotda as operator_module

    monkeypatch.setattr(operator_module, "utc_now", lambda: SIM_NOW)
    monkeypatch.setenv("IOTDA_AUDIT_BASE", str(tmp_path))
    dag = load_dag("audit_instance_tasks.py", "audit_instance_tasks")
    day = (pendulum.datetime(2024, 5, 2, tz="UTC"), pendulum.datetime(2024, 5, 3, tz="UTC"))
    if how == "scheduled":
        dag_run, info = run_scheduled(dag, day[0], monkeypatch)
        assert (info.logical_date, info.run_after) == day  # the interval's start; runs after it
    else:
        dag_run = dag.test(logical_date=pendulum.instance(SIM_NOW))  # `airflow dags test`
    assert (dag_run.data_interval_start, dag_run.data_interval_end) == day
    assert task_states(dag_run) == {
        "dump_tasks": "success",
        "report": "success",
        "html_report": "success",
    }
    written = tmp_path / "2024-05-02" / "tasks.parquet"
    every = sim_at_6.state.instance_ids()
    want = listed_in_window(sim_at_6, every, *day)
    got = [r["task_id"] for r in records.parse(written.read_bytes(), "parquet")]
    assert len(want) >= 3
    assert sorted(got) == sorted(want)
    assert "IoTDA instance tasks on 2024-05-02" in (written.parent / "report.html").read_text()
