"""The example DAG example_dags/wait_for_modify.py, run with dag.test() against the simulator's
demo scenario (a MODIFY task going PENDING -> RUNNING -> SUCCESS on the demo instance)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from iotda_test_values import (
    TEST_AK,
    TEST_PROJECT,
    TEST_SK,
    advance_clock_after,
    dag_bag,
)

from airflow_provider_iotda.simulator import IoTDASimulator

from .conftest import start_demo_simulator

pytestmark = pytest.mark.dag

DEMO_INSTANCE = "3f9a2c1e-7b4d-4e8a-9c2f-5d6e7a8b9c01"


@pytest.fixture
def demo_simulator(monkeypatch: pytest.MonkeyPatch) -> Iterator[IoTDASimulator]:
    """The demo scenario with a frozen clock; ``iotda_default`` names the demo instance."""
    monkeypatch.setenv("IOTDA_EXAMPLE_POKE_INTERVAL", "1")
    with start_demo_simulator(
        monkeypatch, ak=TEST_AK, sk=TEST_SK, project_id=TEST_PROJECT, instance_id=DEMO_INSTANCE
    ) as sim:
        yield sim


def test_example_dag_shape(airflow_db: Any) -> None:
    bag = dag_bag("wait_for_modify.py")
    assert bag.import_errors == {}
    dag = bag.get_dag("wait_for_modify")
    assert dag is not None
    assert type(dag.timetable).__name__ == "NullTimetable"  # schedule=None
    sensor = dag.get_task("wait_for_modify")
    assert sensor.deferrable is True
    assert sensor.instance_task_type == "MODIFY"
    assert sensor.iotda_conn_id == "iotda_default"
    assert dag.get_task("request_resize").downstream_task_ids == {"wait_for_modify"}
    assert sensor.downstream_task_ids == {"report_new_flavor"}


def test_example_dag_waits_for_the_demo_modify_task(
    demo_simulator: IoTDASimulator,
    sensor_run_dag: Callable[..., tuple[Any, dict[str, Any]]],
) -> None:
    sim = demo_simulator
    modify = next(
        t for t in sim.tasks(DEMO_INSTANCE) if t["type"] == "MODIFY" and t["status"] == "PENDING"
    )
    # The sensor pokes once (PENDING), the trigger polls (PENDING), then time moves to RUNNING
    # (5 s) and, after one more poll, to SUCCESS (20 s).
    with advance_clock_after(sim, (2, 5.0), (3, 15.0)):
        run, xcoms = sensor_run_dag("wait_for_modify.py", "wait_for_modify")
    assert run.state == "success"
    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    assert states == {
        "request_resize": "success",
        "wait_for_modify": "success",
        "report_new_flavor": "success",
    }
    finished = xcoms["wait_for_modify"]
    assert finished["task_id"] == modify["task_id"]  # the new MODIFY, not the old FAILED one
    assert finished["status"] == "SUCCESS"
    assert finished["target_config"]["flavor"]["type"] == "iotda.standard.s3"
    assert sim.counters.requests >= 4
