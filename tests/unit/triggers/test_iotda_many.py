"""Hundreds of triggers in one event loop against the simulator on loopback: all finish with the
right event, sharing one client and a bounded number of TCP connections."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from iotda_async_fakes import add_resize_tasks, shared_state

from airflow_provider_iotda.hooks import iotda_async
from airflow_provider_iotda.simulator import IoTDASimulator
from airflow_provider_iotda.triggers.iotda import IoTDAInstanceTaskTrigger

pytestmark = pytest.mark.integration

INSTANCES = 15
TASKS_PER_INSTANCE = 20  # the API lists at most 20 tasks per instance
STEP = 10.0  # simulated seconds between the states of every task


def _triggers(expected: dict[str, tuple[str, str]]) -> list[IoTDAInstanceTaskTrigger]:
    """One trigger on ``iotda_sim`` for each ``task_id -> (instance, final status)``."""
    return [
        IoTDAInstanceTaskTrigger(
            iotda_conn_id="iotda_sim",
            instance_id=instance,
            instance_task_id=task_id,
            poll_interval=0.05,
            deadline=time.time() + 90,  # a safety net; a run takes a few seconds
        )
        for task_id, (instance, _) in expected.items()
    ]


def test_hundreds_of_triggers_in_one_loop(simulator: IoTDASimulator) -> None:
    instances = [f"{i:08x}-aaaa-4bbb-8ccc-0123456789ab" for i in range(INSTANCES)]
    expected = add_resize_tasks(simulator, instances, step=STEP, per_instance=TASKS_PER_INSTANCE)
    count = len(expected)
    assert count == 300

    triggers = _triggers(expected)

    async def first_event(trigger: IoTDAInstanceTaskTrigger) -> list[Any]:
        return [event.payload async for event in trigger.run()]

    async def move_time() -> None:
        # Each step waits until every trigger could have polled since the last step.
        for _ in range(2):
            seen = simulator.counters.requests
            while simulator.counters.requests < seen + count:
                await asyncio.sleep(0.01)
            simulator.advance(STEP)

    async def scenario() -> tuple[list[list[Any]], dict[str, int]]:
        mover = asyncio.ensure_future(move_time())
        results = await asyncio.gather(*(first_event(t) for t in triggers))
        await mover
        return results, shared_state()

    results, shared = asyncio.run(scenario())

    assert all(len(events) == 1 for events in results)  # exactly one event each
    for trigger, (event,) in zip(triggers, results, strict=True):
        _instance, final = expected[trigger.instance_task_id or ""]
        assert event["status"] == final.lower(), event
        assert event["task"]["task_id"] == trigger.instance_task_id
        if final == "FAILED":
            assert "resize result" in event["message"]
    counters = simulator.counters
    assert counters.requests >= 3 * count  # PENDING, RUNNING and the final state were polled
    assert counters.statuses == {"200": counters.requests}
    # One shared client: never more connections than requests allowed in flight.
    assert counters.connections_peak <= iotda_async.MAX_IN_FLIGHT
    assert counters.connections <= iotda_async.MAX_CONNECTIONS
    assert shared["users"] == 0  # the last trigger closed the shared client


def test_triggers_ride_out_injected_faults(simulator: IoTDASimulator) -> None:
    """Throttling, 5xx, dropped connections and broken bodies on 30% of the requests."""
    simulator.set_faults(
        rates={"429": 0.1, "503": 0.1, "drop": 0.05, "truncated": 0.05}, retry_after=0
    )
    expected: dict[str, tuple[str, str]] = {}  # task_id -> (instance, final status)
    for i in range(5):
        instance = f"{i:08x}-bbbb-4bbb-8ccc-0123456789ab"
        for j in range(TASKS_PER_INSTANCE):
            final = "FAILED" if j % 4 == 0 else "SUCCESS"
            task_id = simulator.add_task(instance, "MODIFY", [("PENDING", 0), (final, STEP)])
            expected[task_id] = (instance, final)
    triggers = _triggers(expected)

    async def scenario() -> list[list[Any]]:
        async def events(trigger: IoTDAInstanceTaskTrigger) -> list[Any]:
            return [event.payload async for event in trigger.run()]

        async def move_time() -> None:
            while simulator.counters.requests < 2 * len(triggers):
                await asyncio.sleep(0.01)
            simulator.advance(STEP)

        mover = asyncio.ensure_future(move_time())
        results = await asyncio.gather(*(events(t) for t in triggers))
        await mover
        return results

    results = asyncio.run(scenario())
    for trigger, (event,) in zip(triggers, results, strict=True):
        assert event["status"] == expected[trigger.instance_task_id or ""][1].lower(), event
    faults = simulator.counters.faults
    assert faults.get("429", 0) > 0
    assert faults.get("503", 0) > 0
    assert faults.get("drop", 0) > 0
