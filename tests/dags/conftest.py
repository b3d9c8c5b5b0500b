"""Fixtures of the DAG-level tests (dag.test() in the temporary AIRFLOW_HOME of tests/conftest)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from iotda_test_values import dag_bag, return_values


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
