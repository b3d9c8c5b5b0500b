"""Hundreds of triggers through Airflow 3.3's own SharedStreamManager, against the simulator on
loopback: every trigger gets its own right event, and the simulator sees one list request per
instance per poll instead of one per trigger."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from iotda_async_fakes import add_resize_tasks, run_shared, shared_state

from airflow_provider_iotda import compat
from airflow_provider_iotda.simulator import IoTDASimulator
from airflow_provider_iotda.triggers.iotda import IoTDAInstanceTaskTrigger

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        not compat.HAS_SHARED_STREAMS, reason="SharedStreamManager is new in Airflow 3.3"
    ),
]

INSTANCES = 15
TASKS_PER_INSTANCE = 20  # the API lists at most 20 tasks per instance
STEP = 10.0  # simulated seconds between the states of every task
POLL = 0.2  # long enough that a slow, shared machine adds few polls


def instance_paths(simulator: IoTDASimulator) -> dict[str, int]:
    """Requests per instance (the list path holds the instance ID)."""
    return {
        path.split("/")[-2]: count
        for path, count in simulator.counters.paths.items()
        if path.endswith("/tasks")
    }


def test_hundreds_of_triggers_share_one_poll_per_instance(simulator: IoTDASimulator) -> None:
    from airflow.triggers.shared_stream import SharedStreamManager

    instances = [f"{i:08x}-cccc-4bbb-8ccc-0123456789ab" for i in range(INSTANCES)]
    expected = add_resize_tasks(simulator, instances, step=STEP, per_instance=TASKS_PER_INSTANCE)
    count = len(expected)
    assert count == 300
    triggers = [
        IoTDAInstanceTaskTrigger(
            iotda_conn_id="iotda_sim",
            instance_id=instance,
            instance_task_id=task_id,
            poll_interval=POLL,
            deadline=time.time() + 90,  # a safety net; a run takes a few seconds
        )
        for task_id, (instance, _) in expected.items()
    ]

    async def move_time() -> None:
        # Each step waits until every instance has been polled since the last step.
        for _ in range(2):
            seen = instance_paths(simulator)
            while True:
                now = instance_paths(simulator)
                if len(now) == INSTANCES and all(now[k] > seen.get(k, 0) for k in now):
                    break
                await asyncio.sleep(0.01)
            simulator.advance(STEP)

    async def scenario() -> tuple[list[list[Any]], Any, dict[str, int]]:
        streams = SharedStreamManager()
        mover = asyncio.ensure_future(move_time())
        results = await asyncio.gather(
            *(run_shared(streams, n, trigger) for n, trigger in enumerate(triggers))
        )
        await mover
        await asyncio.sleep(0)
        return results, streams, shared_state()

    results, streams, shared = asyncio.run(scenario())

    assert all(len(events) == 1 for events in results)  # exactly one event each
    for trigger, (event,) in zip(triggers, results, strict=True):
        _, final = expected[trigger.instance_task_id or ""]
        assert event["status"] == final.lower(), event
        assert event["task"]["task_id"] == trigger.instance_task_id
        if final == "FAILED":
            assert "resize result" in event["message"]
    counters = simulator.counters
    per_instance = instance_paths(simulator)
    assert sorted(per_instance) == sorted(instances)
    # Polling alone, each trigger needs at least 3 requests (PENDING, RUNNING, final): 900.
    # Shared, each instance is polled at least 3 times whatever its number of triggers.
    assert all(polls >= 3 for polls in per_instance.values())
    assert counters.requests == sum(per_instance.values())
    assert counters.requests < count  # fewer requests in all than triggers
    assert counters.statuses == {"200": counters.requests}
    assert streams._groups == {}  # every shared poll stopped with its last trigger
    assert shared["users"] == 0  # ... and released the loop's client
