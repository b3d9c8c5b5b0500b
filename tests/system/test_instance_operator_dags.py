"""IoTDAResizeInstanceOperator and IoTDARetryInstanceTaskOperator in real DAG runs
(``dag.test()``) against the simulator: resize and wait (poke and deferrable), adopt, no-op,
clash, a FAILED resize, retry of a failed task, and an Airflow retry that must not post twice."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from iotda_test_values import endpoint_connection_json, failure_type

from airflow_provider_iotda.simulator import IoTDASimulator

pytestmark = pytest.mark.dag

AK = "OPSDAGTESTAK00000001"
SK = "OPS-DAG-SECRET-do-not-leak-3d9e"
PROJECT = "0123456789abcdef0123456789abcdef"
INSTANCE = "7e7e7e7e-0000-4000-8000-000000000001"
S2_1 = {"type": "iotda.standard.s2", "size": 1}
RunDag = Callable[..., tuple[Any, dict[str, Any]]]


@pytest.fixture
def sim(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[IoTDASimulator]:
    """One instance (s2 x 1, ACTIVE).  Simulated time stands still until the DAG's task makes
    its first API request (parsing and starting a DAG run take seconds), then runs 10 times as
    fast as the wall clock: a resize (1 s PENDING, 4 s RUNNING here) takes half a second."""
    scenario = {
        "instances": [
            {
                "instance_id": INSTANCE,
                "flavor": S2_1,
                "operate_window": {"start_time": "00:00", "end_time": "23:59"},
                "resize": {"pending_seconds": 1, "running_seconds": 4},
                "retry": {"pending_seconds": 1, "running_seconds": 4},
            }
        ]
    }
    with IoTDASimulator(
        ak=AK, sk=SK, project_id=PROJECT, scenario=scenario, time_factor=0, seed=3
    ) as simulator:
        monkeypatch.setenv(
            "AIRFLOW_CONN_IOTDA_OPS_SIM",
            endpoint_connection_json(
                simulator.url, login=AK, password=SK, instance_id=INSTANCE, max_retries=0
            ),
        )
        monkeypatch.setenv("IOTDA_OPS_TEST_OUTBOX", str(tmp_path / "outbox.jsonl"))
        stop = threading.Event()

        def clock() -> None:
            while simulator.counters.requests == 0:
                if stop.wait(0.01):
                    return
            while not stop.wait(0.05):
                simulator.advance(0.5)

        mover = threading.Thread(target=clock, name="ops-sim-clock", daemon=True)
        mover.start()
        try:
            yield simulator
        finally:
            stop.set()
            mover.join(5)


def _failures(tmp_path: Path) -> list[dict[str, Any]]:
    path = tmp_path / "outbox.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def _posts(sim: IoTDASimulator) -> int:
    return sim.counters.methods.get("POST", 0)


def _modifies(sim: IoTDASimulator) -> list[dict[str, Any]]:
    return [t for t in sim.tasks(INSTANCE) if t["type"] == "MODIFY"]


def _state(run: Any, task_id: str) -> str:
    return {ti.task_id: ti.state for ti in run.get_task_instances()}[task_id]


@pytest.mark.parametrize("mode", ["poke", "deferrable"])
def test_resize_and_wait(sim: IoTDASimulator, sensor_run_dag: RunDag, mode: str) -> None:
    run, xcoms = sensor_run_dag("instance_operator_dags.py", f"iotda_resize_{mode}")
    assert run.state == "success"
    result = xcoms["resize"]
    assert result["instance_id"] == INSTANCE
    assert result["order_id"].startswith("CS")
    assert result["task"]["status"] == "SUCCESS"
    assert result["task"]["target_config"]["flavor"] == {"type": "iotda.standard.s2", "size": 2}
    assert result["task"]["task_id"] == _modifies(sim)[0]["task_id"]
    assert sim.instance(INSTANCE)["flavor"] == {"type": "iotda.standard.s2", "size": 2}  # type: ignore[index]
    assert _posts(sim) == 1


def test_resize_is_a_no_op_when_the_flavor_is_there(
    sim: IoTDASimulator, sensor_run_dag: RunDag
) -> None:
    run, xcoms = sensor_run_dag("instance_operator_dags.py", "iotda_resize_poke", flavor_size=1)
    assert run.state == "success"
    assert xcoms["resize"] == {"instance_id": INSTANCE, "order_id": None, "task": None}
    assert _posts(sim) == 0


def test_resize_adopts_a_running_modify_to_the_same_flavor(
    sim: IoTDASimulator, sensor_run_dag: RunDag
) -> None:
    task_id = sim.add_task(
        INSTANCE,
        "MODIFY",
        [("PENDING", 0), ("RUNNING", 2), ("SUCCESS", 8)],
        target_config={"flavor": {"type": "iotda.standard.s2", "size": 2}},
    )
    run, xcoms = sensor_run_dag("instance_operator_dags.py", "iotda_resize_deferrable")
    assert run.state == "success"
    assert xcoms["resize"]["task"]["task_id"] == task_id
    assert xcoms["resize"]["order_id"] is None
    assert _posts(sim) == 0


def test_resize_fails_at_once_on_a_modify_to_another_flavor(
    sim: IoTDASimulator, sensor_run_dag: RunDag, tmp_path: Path
) -> None:
    other = sim.add_task(
        INSTANCE,
        "MODIFY",
        [("PENDING", 0), ("RUNNING", 600), ("SUCCESS", 1200)],
        target_config={"flavor": {"type": "iotda.standard.s3", "size": 1}},
    )
    run, _ = sensor_run_dag("instance_operator_dags.py", "iotda_resize_poke")
    assert run.state == "failed"
    [failure] = _failures(tmp_path)
    assert _posts(sim) == 0
    assert failure["type"] == failure_type("AirflowFailException")
    if failure["type"] == "NoneType":
        return  # Airflow 3.1/3.2: the callback is not told the error
    assert other in failure["message"]
    assert "iotda.standard.s3 x 1" in failure["message"]


@pytest.mark.parametrize("mode", ["poke", "deferrable"])
def test_a_failed_resize_fails_with_its_status_detail(
    sim: IoTDASimulator, sensor_run_dag: RunDag, tmp_path: Path, mode: str
) -> None:
    sim.plan_resize(
        INSTANCE, "FAILED", pending_seconds=1, running_seconds=2, status_detail="no quota in az1"
    )
    run, _ = sensor_run_dag("instance_operator_dags.py", f"iotda_resize_{mode}")
    assert run.state == "failed"
    [failure] = _failures(tmp_path)
    assert sim.instance(INSTANCE)["status"] == "MODIFY_FAILED"  # type: ignore[index]
    assert failure["type"] == failure_type("AirflowFailException")
    if failure["type"] == "NoneType":
        return  # Airflow 3.1/3.2: the callback is not told the error
    assert "no quota in az1" in failure["message"]
    assert _modifies(sim)[0]["task_id"] in failure["message"]


@pytest.mark.parametrize("mode", ["poke", "deferrable"])
def test_retry_of_a_failed_task(sim: IoTDASimulator, sensor_run_dag: RunDag, mode: str) -> None:
    task_id = sim.add_task(INSTANCE, "UPDATE_ALLOW_LISTS", [("PENDING", 0), ("FAILED", 1, "boom")])
    sim.advance(1)
    run, xcoms = sensor_run_dag(
        "instance_operator_dags.py", f"iotda_retry_task_{mode}", task_id=task_id
    )
    assert run.state == "success"
    assert xcoms["retry_task"]["instance_task_id"] == task_id
    assert xcoms["retry_task"]["task"]["status"] == "SUCCESS"
    assert _posts(sim) == 1


def test_retry_of_a_task_that_is_not_failed_is_an_error(
    sim: IoTDASimulator, sensor_run_dag: RunDag, tmp_path: Path
) -> None:
    task_id = sim.add_task(INSTANCE, "UPDATE_ALLOW_LISTS", [("SUCCESS", 0)])
    run, _ = sensor_run_dag("instance_operator_dags.py", "iotda_retry_task_poke", task_id=task_id)
    assert run.state == "failed"
    assert _posts(sim) == 0
    [failure] = _failures(tmp_path)
    assert failure["type"] == failure_type("AirflowFailException")
    if failure["type"] == "NoneType":
        return  # Airflow 3.1/3.2: the callback is not told the error
    assert "is SUCCESS, not FAILED" in failure["message"]


def test_an_airflow_retry_of_the_resize_never_posts_twice(
    sim: IoTDASimulator, sensor_run_dag: RunDag, tmp_path: Path
) -> None:
    # The first try's resize reaches IoTDA, but its answer comes back cut in half: the hook
    # does not send it again and the try fails; the Airflow retry finds the MODIFY task.
    sim.set_faults(next_faults=["none", "none", "truncated"])
    run, xcoms = sensor_run_dag("instance_operator_dags.py", "iotda_resize_retried")
    assert run.state == "success"
    assert _posts(sim) == 1
    [failure] = _failures(tmp_path)
    assert failure["try_number"] == 1
    if failure_type("AirflowException") != "NoneType":  # 3.1/3.2 give callbacks no exception
        assert "not sent again" in failure["message"]
    assert len(_modifies(sim)) == 1
    assert xcoms["resize"]["task"]["task_id"] == _modifies(sim)[0]["task_id"]
    assert xcoms["resize"]["task"]["status"] == "SUCCESS"
