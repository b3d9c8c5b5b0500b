"""The example DAG example_dags/resize_and_wait.py, run with dag.test() against the simulator's
demo scenario: the resize of instance lab-west (s2 x 1 -> s2 x 2), waited for in deferrable
mode, and the new flavor read back."""

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

LAB_WEST = "c5e4b3a2-9d8c-4f7e-a6b5-1c2d3e4f5a60"


@pytest.fixture
def demo_simulator(monkeypatch: pytest.MonkeyPatch) -> Iterator[IoTDASimulator]:
    """The demo scenario with a frozen clock; ``iotda_default`` names instance lab-west."""
    monkeypatch.setenv("IOTDA_EXAMPLE_POKE_INTERVAL", "0.5")
    with start_demo_simulator(
        monkeypatch, ak=TEST_AK, sk=TEST_SK, project_id=TEST_PROJECT, instance_id=LAB_WEST
    ) as sim:
        yield sim


def test_example_dag_shape(airflow_db: Any) -> None:
    bag = dag_bag("resize_and_wait.py")
    assert bag.import_errors == {}
    dag = bag.get_dag("resize_and_wait")
    assert dag is not None
    resize = dag.get_task("resize")
    assert resize.deferrable is True
    assert resize.downstream_task_ids == {"report_new_flavor"}


def test_example_dag_resizes_waits_and_reads_back(
    demo_simulator: IoTDASimulator, sensor_run_dag: Callable[..., tuple[Any, dict[str, Any]]]
) -> None:
    sim = demo_simulator
    # Requests: list tasks, show instance, resize, list tasks (the new task's ID); then the
    # trigger's polls: time moves to RUNNING (2 s) after the first, to SUCCESS (12 s) after
    # the next.
    with advance_clock_after(sim, (5, 2.0), (6, 10.0)):
        run, xcoms = sensor_run_dag("resize_and_wait.py", "resize_and_wait")
    assert run.state == "success"
    result = xcoms["resize"]
    assert result["instance_id"] == LAB_WEST
    assert result["order_id"].startswith("CS")
    assert result["task"]["status"] == "SUCCESS"
    assert result["task"]["target_config"]["flavor"] == {"type": "iotda.standard.s2", "size": 2}
    assert xcoms["report_new_flavor"] == {
        "instance_id": LAB_WEST,
        "status": "ACTIVE",
        "flavor": "iotda.standard.s2 x 2",
    }
    assert sim.counters.methods["POST"] == 1
