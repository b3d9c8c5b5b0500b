"""IoTDAInstanceTaskSensor in a real Airflow: dag.test() against the simulator on loopback, in
poke, reschedule and deferrable mode (DAGs in tests/system/dag_files/sensor_wait_dags.py)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from iotda_test_values import (
    TEST_AK,
    TEST_PROJECT,
    TEST_SK,
    advance_clock_after,
    endpoint_connection_json,
    failure_type,
)

from airflow_provider_iotda.simulator import IoTDASimulator

pytestmark = pytest.mark.dag

INSTANCE = "5e7d1c2b-0a9f-4e8d-b7c6-a5b4c3d2e1f0"
DAG_FILE = "sensor_wait_dags.py"
STEP = 5.0  # simulated seconds between the states of a task

RunDag = Callable[..., tuple[Any, dict[str, Any]]]


@pytest.fixture(scope="module")
def sensor_simulator_server() -> Iterator[IoTDASimulator]:
    """One simulator for this module, with a frozen clock that the tests move."""
    with IoTDASimulator(ak=TEST_AK, sk=TEST_SK, project_id=TEST_PROJECT, time_factor=0) as sim:
        yield sim


@pytest.fixture
def sim(
    sensor_simulator_server: IoTDASimulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> IoTDASimulator:
    sensor_simulator_server.reset()
    monkeypatch.setenv(
        "AIRFLOW_CONN_IOTDA_SENSOR_SIM", endpoint_connection_json(sensor_simulator_server.url)
    )
    monkeypatch.setenv("IOTDA_SENSOR_TEST_OUTBOX", str(tmp_path / "failures.jsonl"))
    return sensor_simulator_server


def failures(tmp_path: Path) -> list[dict[str, str]]:
    outbox = tmp_path / "failures.jsonl"
    if not outbox.exists():
        return []
    return [json.loads(line) for line in outbox.read_text().splitlines()]


@pytest.mark.parametrize("mode", ["poke", "reschedule", "deferrable"])
def test_task_that_succeeds(
    sim: IoTDASimulator,
    sensor_run_dag: RunDag,
    tmp_path: Path,
    mode: str,
) -> None:
    task_id = sim.add_task(
        INSTANCE, "MODIFY", [("PENDING", 0), ("RUNNING", STEP), ("SUCCESS", 2 * STEP)]
    )
    # PENDING for 2 pokes, RUNNING for one, then SUCCESS.
    with advance_clock_after(sim, (2, STEP), (3, STEP)):
        run, xcoms = sensor_run_dag(
            DAG_FILE, f"sensor_wait_{mode}", instance_id=INSTANCE, task_id=task_id
        )
    assert run.state == "success"
    assert xcoms["wait"]["task_id"] == task_id
    assert xcoms["wait"]["status"] == "SUCCESS"
    assert xcoms["wait"]["type"] == "MODIFY"
    counters = sim.counters
    assert counters.requests >= 3
    if mode == "poke":
        assert counters.connections == 1  # one HTTP session for every poke
    assert failures(tmp_path) == []


@pytest.mark.parametrize("mode", ["poke", "reschedule", "deferrable"])
def test_task_that_fails(
    sim: IoTDASimulator,
    sensor_run_dag: RunDag,
    tmp_path: Path,
    mode: str,
) -> None:
    task_id = sim.add_task(
        INSTANCE,
        "MODIFY",
        [("PENDING", 0), ("FAILED", STEP, "Insufficient resources for iotda.standard.s3")],
    )
    with advance_clock_after(sim, (2, STEP)):
        run, xcoms = sensor_run_dag(
            DAG_FILE, f"sensor_wait_{mode}", instance_id=INSTANCE, task_id=task_id
        )
    assert run.state == "failed"
    assert "wait" not in xcoms
    (failure,) = failures(tmp_path)
    assert failure["dag_id"] == f"sensor_wait_{mode}"
    assert failure["type"] == failure_type("AirflowFailException")
    if failure["type"] == "NoneType":
        return  # Airflow 3.1/3.2: the callback is not told the error
    for part in (task_id, "MODIFY", INSTANCE, "FAILED", "Insufficient resources"):
        assert part in failure["message"]
    assert TEST_SK not in failure["message"]


def test_deferrable_timeout(sim: IoTDASimulator, sensor_run_dag: RunDag, tmp_path: Path) -> None:
    """The trigger ends the wait at the sensor's timeout (dag.test enforces no defer timeout)."""
    task_id = sim.add_task(INSTANCE, "MODIFY", [("PENDING", 0), ("SUCCESS", 3600)])
    run, _ = sensor_run_dag(
        DAG_FILE, "sensor_wait_deferrable_timeout", instance_id=INSTANCE, task_id=task_id
    )
    assert run.state == "failed"
    (failure,) = failures(tmp_path)
    assert failure["type"] == failure_type("AirflowSensorTimeout")
    if failure["type"] == "NoneType":
        return  # Airflow 3.1/3.2: the callback is not told the error
    assert "timed out" in failure["message"]


def test_deferrable_timeout_with_soft_fail_skips(
    sim: IoTDASimulator, sensor_run_dag: RunDag, tmp_path: Path
) -> None:
    task_id = sim.add_task(INSTANCE, "MODIFY", [("PENDING", 0), ("SUCCESS", 3600)])
    run, _ = sensor_run_dag(
        DAG_FILE, "sensor_wait_deferrable_soft_timeout", instance_id=INSTANCE, task_id=task_id
    )
    assert run.state == "success"
    (ti,) = run.get_task_instances()
    assert ti.state == "skipped"
    assert failures(tmp_path) == []
