"""What the audit DAG tests share: the simulator set-up, the expected records, DAG loading."""

from __future__ import annotations

import datetime as dt
import importlib.util
import os
from pathlib import Path
from types import ModuleType
from typing import Any

import pendulum
import pytest
from iotda_test_values import endpoint_connection_json

from airflow_provider_iotda.simulator import DEMO_SCENARIO_PATH, IoTDASimulator

# Credentials of their own: the written file must not hold AUDIT_SK.
AUDIT_AK = "AUDITTESTACCESSKEY01"
AUDIT_SK = "AUDIT-TEST-SECRET-do-not-leak-5e1d"
AUDIT_PROJECT = "0123456789abcdef0123456789abcdef"

# The simulator's clock is frozen at SIM_NOW; the run of LOGICAL_DATE covers the day before.
SIM_NOW = dt.datetime(2024, 5, 3, 6, 0, tzinfo=dt.UTC)
LOGICAL_DATE = pendulum.datetime(2024, 5, 3, 6, 0, tz="UTC")
WINDOW = (pendulum.datetime(2024, 5, 2, tz="UTC"), pendulum.datetime(2024, 5, 3, tz="UTC"))

#: Instances added to the demo scenario, 25 MODIFY tasks each (IoTDA lists the newest 20):
#: one every 30 minutes from 7 hours before SIM_NOW (the 20 listed all fall on 2024-05-02,
#: so older tasks of that day may be gone: flagged) and one every 3 hours (the 20 listed
#: reach back to 2024-04-30: complete).
FLAGGED = "f1a99ed0-0000-4000-8000-000000000001"
COMPLETE = "c0391e7e-0000-4000-8000-000000000002"
FULL_INSTANCES = {FLAGGED: 0.5, COMPLETE: 3.0}


def audit_connection(endpoint: str) -> str:
    """``iotda_default`` for the simulator: no default instance (the DAGs name theirs)."""
    return endpoint_connection_json(
        endpoint, login=AUDIT_AK, password=AUDIT_SK, project_id=AUDIT_PROJECT, max_retries=1
    )


def start_simulator(monkeypatch: pytest.MonkeyPatch) -> IoTDASimulator:
    """The demo scenario plus FULL_INSTANCES, clock frozen at SIM_NOW; ``iotda_default`` and
    ``iotda_second`` point at it; the operator's wall clock reads SIM_NOW."""
    from airflow_provider_iotda.operators import iotda as operator_module

    sim = IoTDASimulator(
        ak=AUDIT_AK,
        sk=AUDIT_SK,
        project_id=AUDIT_PROJECT,
        scenario=DEMO_SCENARIO_PATH,
        time_factor=0,
        start_time=SIM_NOW,
        seed=11,
    ).start()
    for instance_id, step_hours in FULL_INSTANCES.items():
        for i in range(25):
            sim.add_task(instance_id, "MODIFY", created=-3600 * (7 + i * step_hours))
    monkeypatch.setenv("AIRFLOW_CONN_IOTDA_DEFAULT", audit_connection(sim.url))
    monkeypatch.setenv("AIRFLOW_CONN_IOTDA_SECOND", audit_connection(sim.url))
    monkeypatch.setattr(operator_module, "utc_now", lambda: SIM_NOW)
    return sim


def listed_records(sim: IoTDASimulator, instance_ids: list[str]) -> list[dict[str, Any]]:
    """What the file must hold: the tasks the simulator lists (the newest 20 of each instance)
    created in WINDOW, newest first."""
    start, end = WINDOW
    out: list[dict[str, Any]] = []
    for instance_id in instance_ids:
        listing = sim.state.list_tasks(instance_id)
        assert listing is not None, instance_id
        for task in listing["tasks"]:
            if start <= pendulum.parse(task["create_time"]) < end:
                out.append({"instance_id": instance_id, "project_id": AUDIT_PROJECT, **task})
    return out


def load_dag_module(name: str) -> ModuleType:
    """Import a DAG file from the test DAGs folder (set up by tests/conftest.py)."""
    path = Path(os.environ["AIRFLOW__CORE__DAGS_FOLDER"]) / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"iotda_test_dag_{name}", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_states(dag_run: Any) -> dict[str, str]:
    return {ti.task_id: str(ti.state) for ti in dag_run.get_task_instances()}
