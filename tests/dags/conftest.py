"""Fixtures of the DAG-level tests (dag.test() in the temporary AIRFLOW_HOME of tests/conftest)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import pytest


@pytest.fixture
def sensor_run_dag(airflow_db: Any) -> Callable[..., tuple[Any, dict[str, Any]]]:
    """``run(file_name, dag_id, **conf)``: run a DAG of the DAGs folder with ``dag.test()``;
    return the finished DagRun and its ``return_value`` XComs by task ID."""

    def run(file_name: str, dag_id: str, **conf: Any) -> tuple[Any, dict[str, Any]]:
        from airflow import settings
        from airflow.dag_processing.dagbag import DagBag
        from airflow.models.xcom import XComModel

        bag = DagBag(dag_folder=f"{settings.DAGS_FOLDER}/{file_name}")
        dag = bag.get_dag(dag_id)
        assert dag is not None, f"{dag_id} not in the DAGs folder: {bag.import_errors}"
        run = dag.test(run_conf=conf or None)
        session = settings.Session()
        rows = session.scalars(
            XComModel.get_many(run_id=run.run_id, dag_ids=dag_id, key="return_value")
        ).all()
        xcoms = {row.task_id: XComModel.deserialize_value(row) for row in rows}
        return run, xcoms

    return run


@pytest.fixture
def sensor_advance_after() -> Callable[..., AbstractContextManager[None]]:
    """``with sensor_advance_after(sim, (requests, seconds), ...):`` moves the simulator's clock
    by ``seconds`` once it has answered ``requests`` API requests, step by step, so a task moves
    on only after the sensor has seen each state (no race with the wall clock)."""

    @contextmanager
    def mover(sim: Any, *steps: tuple[int, float]) -> Iterator[None]:
        stop = threading.Event()

        def run() -> None:
            for count, seconds in steps:
                while sim.counters.requests < count:
                    if stop.wait(0.01):
                        return
                sim.advance(seconds)

        thread = threading.Thread(target=run, name="sensor-clock-mover", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join(5)

    return mover
