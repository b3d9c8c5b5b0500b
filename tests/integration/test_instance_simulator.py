"""The instance calls of both hooks against the simulator: show/list instances, show/retry a
task, resize; real HTTP and signatures, POSTs counted."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest

from airflow_provider_iotda.errors import (
    IoTDANotFoundError,
)
from airflow_provider_iotda.hooks.iotda import IoTDAHook
from airflow_provider_iotda.hooks.iotda_async import IoTDAAsyncHook
from airflow_provider_iotda.models import Instance
from airflow_provider_iotda.simulator import IoTDASimulator
from airflow_provider_iotda.simulator.pytest_plugin import iotda_simulator_server  # noqa: F401

pytestmark = pytest.mark.integration

AK = "SIMINSTANCEAK0000001"
SK = "SIM-INSTANCE-SECRET-do-not-leak-71ab"
PROJECT = "0123456789abcdef0123456789abcdef"
INSTANCE = "5a5a5a5a-0000-4000-8000-000000000001"
OTHER = "5a5a5a5a-0000-4000-8000-000000000002"
CONN_ID = "iotda_sim_instances"
S2 = {"type": "iotda.standard.s2", "size": 2}
WINDOW = {"start_time": "02:00", "end_time": "04:00"}


@pytest.fixture(scope="session")
def iotda_simulator_config() -> dict[str, Any]:
    """Frozen clock at 2026-01-05 12:00 UTC (tests move it), fixed seed, one instance."""
    import datetime as dt

    return {
        "ak": AK,
        "sk": SK,
        "project_id": PROJECT,
        "time_factor": 0,
        "seed": 5,
        "start_time": dt.datetime(2026, 1, 5, 12, 0, tzinfo=dt.UTC),
        "scenario": {
            "instances": [
                {
                    "instance_id": INSTANCE,
                    "name": "factory-east",
                    "flavor": S2,
                    "operate_window": WINDOW,
                    "charge_mode": "prePaid",
                    "resize": {"outcome": "SUCCESS", "pending_seconds": 5, "running_seconds": 20},
                },
                {"instance_id": OTHER, "instance_type": "enterprise"},
            ]
        },
    }


@pytest.fixture
def sim(iotda_simulator_server: IoTDASimulator) -> IoTDASimulator:  # noqa: F811
    iotda_simulator_server.reset()
    return iotda_simulator_server


@pytest.fixture
def connection(monkeypatch: pytest.MonkeyPatch, sim: IoTDASimulator) -> str:
    value = {
        "conn_type": "huaweicloud_iotda",
        "login": AK,
        "password": SK,
        "extra": {
            "endpoint": sim.url,
            "project_id": PROJECT,
            "instance_id": INSTANCE,
            "timeout": 5,
        },
    }
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", json.dumps(value))
    return CONN_ID


@pytest.fixture
def hook(connection: str) -> Iterator[IoTDAHook]:
    with IoTDAHook(connection) as created:
        yield created


def _posts(sim: IoTDASimulator) -> int:
    return sim.counters.methods.get("POST", 0)


# -- reads -----------------------------------------------------------------------------------------


def test_show_instance_reads_every_field(hook: IoTDAHook) -> None:
    instance = hook.show_instance()
    assert isinstance(instance, Instance)
    assert instance.instance_id == INSTANCE
    assert instance.status == "ACTIVE"
    assert instance.name == "factory-east"
    assert instance.charge_mode == "prePaid"
    assert instance.instance_type == "standard"
    assert instance.flavor is not None
    assert instance.flavor.same_as("iotda.standard.s2", 2)
    assert instance.operate_window is not None
    assert (instance.operate_window.start_time, instance.operate_window.end_time) == (
        "02:00",
        "04:00",
    )
    assert instance.create_time is not None
    assert instance.create_time.year == 2025
    assert instance.to_dict()["flavor"] == S2


def test_show_unknown_instance_is_not_found(hook: IoTDAHook) -> None:
    with pytest.raises(IoTDANotFoundError):
        hook.show_instance("0000aaaa-0000-4000-8000-000000000009")


def test_list_and_iter_instances_follow_the_marker(hook: IoTDAHook, sim: IoTDASimulator) -> None:
    extra = [f"5a5a5a5a-0000-4000-8000-0000000001{n:02d}" for n in range(5)]
    for instance_id in extra:
        sim.add_instance(instance_id)
    page = hook.list_instances(limit=3)
    assert page.count == 7
    assert [i.instance_id for i in page.instances] == sorted(extra, reverse=True)[:3]
    assert page.marker == page.instances[-1].instance_id
    walked = list(hook.iter_instances(page_size=2))
    assert [i.instance_id for i in walked] == sorted([INSTANCE, OTHER, *extra], reverse=True)
    assert sim.counters.paths[f"/v5/iot/{PROJECT}/iotda-instances"] == 1 + 4
    assert {i.instance_type for i in walked} == {"standard", "enterprise"}


def test_show_instance_task_has_progress(hook: IoTDAHook, sim: IoTDASimulator) -> None:
    task_id = sim.add_task(
        INSTANCE, "UPDATE_ALLOW_LISTS", [("PENDING", 0), ("RUNNING", 10), ("SUCCESS", 30)]
    )
    sim.advance(20)
    task = hook.show_instance_task(task_id)
    assert (task.task_id, task.status, task.progress) == (task_id, "RUNNING", 50)
    with pytest.raises(IoTDANotFoundError):
        hook.show_instance_task("0a0a0a0a")


def test_async_hook_shows_a_task(connection: str, sim: IoTDASimulator) -> None:
    task_id = sim.add_task(
        INSTANCE, "MODIFY", [("PENDING", 0), ("RUNNING", 10), ("FAILED", 30, "no quota")]
    )
    sim.advance(40)

    async def show() -> Any:
        async with IoTDAAsyncHook(connection) as hook:
            return await hook.show_instance_task(task_id)

    task = asyncio.run(show())
    assert (task.status, task.status_detail, task.progress) == ("FAILED", "no quota", 100)
