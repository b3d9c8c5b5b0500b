"""Fixtures of the system tests: DAG runs with ``dag.test()`` in the temporary AIRFLOW_HOME
of tests/conftest.py, the documentation's example DAGs against the simulator's demo scenario, as
a run triggered by hand and as a scheduled run (the logical date and data interval the scheduler
gives it), and the test-only DAGs of tests/system/dag_files."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from typing import Any

import pendulum
import pytest
from iotda_test_values import dag_bag, endpoint_connection_json, return_values

from airflow_provider_iotda.simulator import DEMO_SCENARIO_PATH, IoTDASimulator

# Keys of their own, long enough for Airflow's secret masker (it skips shorter ones, warning).
DOCS_AK = "DOCSTESTACCESSKEY001"
DOCS_SK = "DOCS-TEST-SECRET-do-not-leak-41c7"
DOCS_PROJECT = "0123456789abcdef0123456789abcdef"
#: The demo scenario's instance with a MODIFY task created when the simulator starts.
FACTORY_EAST = "3f9a2c1e-7b4d-4e8a-9c2f-5d6e7a8b9c01"


def start_demo_simulator(
    monkeypatch: pytest.MonkeyPatch,
    start_time: dt.datetime | None = None,
    *,
    ak: str = DOCS_AK,
    sk: str = DOCS_SK,
    project_id: str = DOCS_PROJECT,
    seed: int | None = None,
    **connection_extra: Any,
) -> IoTDASimulator:
    """The demo scenario, clock frozen at ``start_time`` (default: now); ``iotda_default``
    points at it, as the docs' connection does (``connection_extra``: more connection extras).
    The caller stops it (``sim.stop()`` or ``with``)."""
    sim = IoTDASimulator(
        ak=ak,
        sk=sk,
        project_id=project_id,
        scenario=DEMO_SCENARIO_PATH,
        time_factor=0,
        start_time=start_time,
        seed=seed,
    ).start()
    monkeypatch.setenv(
        "AIRFLOW_CONN_IOTDA_DEFAULT",
        endpoint_connection_json(
            sim.url, login=ak, password=sk, project_id=project_id, **connection_extra
        ),
    )
    return sim


@pytest.fixture
def demo_sim(monkeypatch: pytest.MonkeyPatch) -> Iterator[IoTDASimulator]:
    sim = start_demo_simulator(monkeypatch)
    try:
        yield sim
    finally:
        sim.stop()


def load_dag(file_name: str, dag_id: str) -> Any:
    bag = dag_bag(file_name)
    assert bag.import_errors == {}, bag.import_errors
    dag = bag.get_dag(dag_id)
    assert dag is not None, f"{dag_id} not in {file_name}"
    return dag


def core_timetable(dag: Any) -> Any:
    """The scheduler's timetable of a DAG (3.2+ keep the SDK's definition on the DAG)."""
    timetable = dag.timetable
    if not hasattr(timetable, "next_dagrun_info"):
        from airflow.serialization.encoders import coerce_to_core_timetable

        timetable = coerce_to_core_timetable(timetable)
    return timetable


def run_scheduled(
    dag: Any, earliest: pendulum.DateTime, monkeypatch: pytest.MonkeyPatch
) -> tuple[Any, Any]:
    """Run the DAG's first scheduled run at or after ``earliest`` with ``dag.test()``: the
    logical date, data interval and run_after the scheduler computes with the DAG's timetable.

    ``dag.test()`` makes a manual run, whose interval Airflow infers with
    ``infer_manual_data_interval``; for this one run it gives the scheduled interval instead,
    and the run is checked to carry it.  Returns ``(dag_run, run_info)``."""
    from airflow.timetables.base import TimeRestriction

    timetable = core_timetable(dag)
    info = timetable.next_dagrun_info(
        last_automated_data_interval=None,
        restriction=TimeRestriction(earliest=earliest, latest=None, catchup=True),
    )
    assert info is not None
    monkeypatch.setattr(
        type(timetable),
        "infer_manual_data_interval",
        lambda self, *, run_after: info.data_interval,
    )
    dag_run = dag.test(logical_date=info.logical_date, run_after=info.run_after)
    assert (dag_run.data_interval_start, dag_run.data_interval_end) == tuple(info.data_interval)
    assert dag_run.run_after == info.run_after
    return dag_run, info


def listed_in_window(
    sim: IoTDASimulator, instance_ids: list[str], start: dt.datetime, end: dt.datetime
) -> list[str]:
    """IDs of the tasks the simulator lists for ``instance_ids`` created in ``start <= t < end``."""
    ids: list[str] = []
    for instance_id in instance_ids:
        listing = sim.state.list_tasks(instance_id)
        assert listing is not None, instance_id
        ids += [
            t["task_id"]
            for t in listing["tasks"]
            if start <= pendulum.parse(t["create_time"]) < end
        ]
    return ids


def task_states(dag_run: Any) -> dict[str, str]:
    return {ti.task_id: str(ti.state) for ti in dag_run.get_task_instances()}


@pytest.fixture
def sensor_run_dag(airflow_db: Any) -> Callable[..., tuple[Any, dict[str, Any]]]:
    """``run(file_name, dag_id, **conf)``: run a DAG of the DAGs folder with ``dag.test()``;
    return the finished DagRun and its ``return_value`` XComs by task ID."""

    def run(file_name: str, dag_id: str, **conf: Any) -> tuple[Any, dict[str, Any]]:
        bag = dag_bag(file_name)
        dag = bag.get_dag(dag_id)
        assert dag is not None, f"{dag_id} not in the DAGs folder: {bag.import_errors}"
        run = dag.test(run_conf=conf or None)
        return run, return_values(run)

    return run


@pytest.fixture
def audit_simulator(monkeypatch: pytest.MonkeyPatch) -> Any:
    """The simulator of the audit DAG tests (``audit_support.start_simulator``), stopped after."""
    from .audit_support import start_simulator

    sim = start_simulator(monkeypatch)
    try:
        yield sim
    finally:
        sim.stop()
