"""The ``audit_instance_tasks`` example DAG end to end: ``dag.test()`` in a real Airflow against
the simulator on loopback; and the operator writing through a non-``file`` ObjectStoragePath."""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import os
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pendulum
import pytest
from airflow.sdk.io.store import _STORE_CACHE, ObjectStore
from fsspec.implementations.memory import MemoryFileSystem
from iotda_test_values import endpoint_connection_json, return_values

from airflow_provider_iotda import records
from airflow_provider_iotda.simulator import DEMO_SCENARIO_PATH, IoTDASimulator

pytestmark = [pytest.mark.dag, pytest.mark.integration]

# Credentials of their own: the written file must not hold AUDIT_SK.
AUDIT_AK = "AUDITTESTACCESSKEY01"
AUDIT_SK = "AUDIT-TEST-SECRET-do-not-leak-5e1d"
AUDIT_PROJECT = "0123456789abcdef0123456789abcdef"

# The simulator's clock is frozen at SIM_NOW; the run of LOGICAL_DATE covers the day before.
SIM_NOW = dt.datetime(2024, 5, 3, 6, 0, tzinfo=dt.UTC)
LOGICAL_DATE = pendulum.datetime(2024, 5, 3, 6, 0, tz="UTC")
WINDOW = (pendulum.datetime(2024, 5, 2, tz="UTC"), pendulum.datetime(2024, 5, 3, tz="UTC"))


def audit_connection(endpoint: str) -> str:
    """``iotda_default`` for the simulator: no default instance (the DAGs name theirs)."""
    return endpoint_connection_json(
        endpoint, login=AUDIT_AK, password=AUDIT_SK, project_id=AUDIT_PROJECT, max_retries=1
    )


def load_dag_module(name: str) -> ModuleType:
    """Import a DAG file from the test DAGs folder (set up by tests/conftest.py)."""
    path = Path(os.environ["AIRFLOW__CORE__DAGS_FOLDER"]) / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"iotda_test_dag_{name}", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def audit_simulator(monkeypatch: pytest.MonkeyPatch) -> Iterator[IoTDASimulator]:
    """The demo scenario, clock frozen at SIM_NOW; ``iotda_default`` points at it."""
    with IoTDASimulator(
        ak=AUDIT_AK,
        sk=AUDIT_SK,
        project_id=AUDIT_PROJECT,
        scenario=DEMO_SCENARIO_PATH,
        time_factor=0,
        start_time=SIM_NOW,
        seed=11,
    ) as sim:
        # No default instance on the connection: the DAG names its instances.
        monkeypatch.setenv("AIRFLOW_CONN_IOTDA_DEFAULT", audit_connection(sim.url))
        yield sim


def simulator_records(sim: IoTDASimulator, instance_ids: list[str]) -> list[dict[str, Any]]:
    """What the file must hold: the simulator's tasks created in WINDOW, as the API lists them
    (newest first; ``progress`` is only in the single-task answer)."""
    start, end = WINDOW
    out: list[dict[str, Any]] = []
    for instance_id in instance_ids:
        for task in sim.tasks(instance_id):
            created = pendulum.parse(task["create_time"])
            if start <= created < end:
                listed = {k: v for k, v in task.items() if k != "progress"}
                out.append({"instance_id": instance_id, "project_id": AUDIT_PROJECT, **listed})
    return out


def run_states(dag_run: Any) -> dict[str, str]:
    return {ti.task_id: str(ti.state) for ti in dag_run.get_task_instances()}


def test_demo_instance_ids_are_the_demo_scenarios() -> None:
    module = load_dag_module("audit_instance_tasks")
    scenario = json.loads(DEMO_SCENARIO_PATH.read_text())
    assert [i["instance_id"] for i in scenario["instances"]] == module.DEMO_INSTANCE_IDS


def test_dag_shape() -> None:
    dag = load_dag_module("audit_instance_tasks").dag
    assert dag.dag_id == "audit_instance_tasks"
    assert not dag.catchup
    assert set(dag.task_ids) == {"dump_tasks", "report"}
    assert dag.get_task("report").upstream_task_ids == {"dump_tasks"}
    from airflow.serialization.encoders import coerce_to_core_timetable  # as dag.test() does

    timetable = coerce_to_core_timetable(dag.timetable)
    interval = timetable.infer_manual_data_interval(run_after=LOGICAL_DATE)
    assert (interval.start, interval.end) == WINDOW


def test_audit_dag_writes_the_previous_days_tasks(
    airflow_db: Path,
    audit_simulator: IoTDASimulator,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    module = load_dag_module("audit_instance_tasks")
    monkeypatch.setenv("IOTDA_AUDIT_BASE", str(tmp_path))

    dag_run = module.dag.test(logical_date=LOGICAL_DATE)

    assert run_states(dag_run) == {"dump_tasks": "success", "report": "success"}
    assert str(dag_run.state) == "success"
    written = tmp_path / "2024-05-02" / "tasks.jsonl"
    assert sorted(p.name for p in written.parent.iterdir()) == ["tasks.jsonl"]
    got = records.parse(written.read_bytes(), "jsonl")
    want = simulator_records(audit_simulator, module.DEMO_INSTANCE_IDS)
    # The demo scenario has tasks on each of the three instances during 2024-05-02.
    assert {r["instance_id"] for r in want} == set(module.DEMO_INSTANCE_IDS)
    assert len(got) == len(want)
    for line, (record, expected) in enumerate(zip(got, want, strict=True), 1):
        assert record == expected, f"line {line}"
    # Outside the window: the MODIFY created at SIM_NOW and everything before 2024-05-02.
    assert all(WINDOW[0] <= pendulum.parse(r["create_time"]) < WINDOW[1] for r in got)
    # One list call per instance (the demo has fewer than 500 tasks each), all signed correctly.
    counters = audit_simulator.counters
    assert counters.requests == 3, counters
    assert counters.statuses == {"200": 3}, counters
    assert AUDIT_SK not in written.read_text()

    xcoms = return_values(dag_run)
    summary = xcoms["dump_tasks"]
    assert summary["destination"] == f"file://{written}"
    assert summary["records"] == len(want)
    assert summary["instances"] == module.DEMO_INSTANCE_IDS
    assert summary["skipped_instances"] == []
    assert summary["by_type"] == records.count_by(want, "type")
    assert "task_id" not in json.dumps(summary)  # a summary, not the data
    assert xcoms["report"] == {
        "destination": summary["destination"],
        "records": len(want),
        "by_instance": records.count_by(want, "instance_id"),
        "by_type": records.count_by(want, "type"),
        "by_status": records.count_by(want, "status"),
    }


def test_audit_dag_fails_whole_when_an_instance_fails(
    airflow_db: Path,
    audit_simulator: IoTDASimulator,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    module = load_dag_module("audit_instance_tasks")
    monkeypatch.setenv("IOTDA_AUDIT_BASE", str(tmp_path))
    unknown = "0000dead-0000-4000-8000-000000000000"
    monkeypatch.setenv(
        "AIRFLOW_VAR_IOTDA_AUDIT_INSTANCE_IDS", json.dumps([module.DEMO_INSTANCE_IDS[0], unknown])
    )

    dag_run = module.dag.test(logical_date=LOGICAL_DATE)

    assert run_states(dag_run)["dump_tasks"] == "failed"
    assert str(dag_run.state) == "failed"
    assert list(tmp_path.iterdir()) == []  # no file, no directory, no temporary file


def test_operator_writes_through_a_non_file_scheme_in_a_dag(
    airflow_db: Path,
    audit_simulator: IoTDASimulator,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fs = MemoryFileSystem()
    monkeypatch.setitem(_STORE_CACHE, "memory", ObjectStore("memory", None, fs=fs))
    module = load_dag_module("audit_memory_store")

    dag_run = module.dag.test(logical_date=LOGICAL_DATE)

    assert run_states(dag_run) == {"dump_csv": "success", "check_csv": "success"}
    key = "/iotda-audit-test/2024-05-02/tasks.csv"
    try:
        rows = records.parse(fs.cat_file(key), "csv")
        want = simulator_records(audit_simulator, module.INSTANCE_IDS)
        assert want
        header, want_rows = records.to_csv_rows(want)
        assert rows == [dict(zip(header, row, strict=True)) for row in want_rows]
    finally:
        if fs.exists("/iotda-audit-test"):
            fs.rm("/iotda-audit-test", recursive=True)
