"""What a waiting IoTDAInstanceTaskTrigger keeps alive between two polls.

A triggerer holds every deferred sensor's trigger while it sleeps; 1,000 of them keep their
objects alive between polls, and a full garbage collection walks every one (issue 23: the
longest stall of 1,000 triggers starting at once was such a collection).  These tests count
the objects the collector tracks, not time.
"""

from __future__ import annotations

import asyncio
import gc
import json
from typing import Any

import pytest
from iotda_async_fakes import ScriptedIoTDA
from iotda_test_values import history
from structlog.testing import capture_logs

from airflow_provider_iotda.triggers.iotda import IoTDAInstanceTaskTrigger
from airflow_provider_iotda.waiting import Wait

TRIGGERS = 200
#: Objects the collector tracks per waiting trigger, harness included (its asyncio Task, the
#: coroutine that iterates ``run()``, the Task's context and weak reference).  Measured on
#: this code: 29.0 on Airflow 3.3.2, 31.9 on 3.1.8; before issue 23's slimming (a logger bound
#: per trigger, the last task seen kept parsed, statuses as lists, ``aclosing`` and two more
#: coroutines per trigger): 39.0 on 3.3.2.
BUDGET = 35


def _trigger(n: int) -> IoTDAInstanceTaskTrigger:
    return IoTDAInstanceTaskTrigger(
        iotda_conn_id="iotda_default",
        instance_task_type="MODIFY",
        instance_id=f"{n:08x}-aaaa-4bbb-8ccc-0123456789ab",
        poll_interval=3600,  # one poll, then asleep for the rest of the test
    )


async def _asleep_after_one_poll(api: ScriptedIoTDA, count: int) -> tuple[int, list[Any]]:
    """Start ``count`` triggers, wait until each has polled once and gone back to sleep; the
    tracked objects they added, and the tasks (to cancel)."""

    async def follow(trigger: IoTDAInstanceTaskTrigger) -> None:
        async for _event in trigger.run():
            raise AssertionError("no event expected: the task is RUNNING")

    # Warm up with one trigger (first-use caches: the loop's client, the connection, loggers).
    warm = asyncio.create_task(follow(_trigger(count)))
    while len(api.requests) < 1:
        await asyncio.sleep(0.01)
    api.requests.clear()  # the fake's record of requests is not the triggers'
    gc.collect()
    before = len(gc.get_objects())
    tasks = [asyncio.create_task(follow(_trigger(n))) for n in range(count)]
    while len(api.requests) < count:
        await asyncio.sleep(0.01)
    for _ in range(20):  # every trigger back in its sleep after judging its poll
        await asyncio.sleep(0)
    api.requests.clear()
    gc.collect()
    added = len(gc.get_objects()) - before
    return added, [warm, *tasks]


def test_a_sleeping_trigger_keeps_few_objects_alive(
    iotda_api: ScriptedIoTDA, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow_provider_iotda import clock

    monkeypatch.setattr(clock, "first_poll_delay", lambda interval: 0.0)
    iotda_api.script = [history("RUNNING", progress=10)]

    async def main() -> int:
        added, tasks = await _asleep_after_one_poll(iotda_api, TRIGGERS)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        return added

    with capture_logs():
        added = asyncio.run(main())
    per_trigger = added / TRIGGERS
    assert per_trigger <= BUDGET, f"{per_trigger:.1f} tracked objects per waiting trigger"
    assert per_trigger > 5  # the count saw the triggers at all


def test_triggers_log_through_their_class_logger() -> None:
    """One logger per class (same name as Airflow gives it), not one bound per trigger."""
    first, second = _trigger(1), _trigger(2)
    assert first.log is second.log is IoTDAInstanceTaskTrigger.logger()
    with capture_logs() as logs:
        first.log.info("hello from %s", "one")
    assert [e["event"] for e in logs] == ["hello from one"]


def test_the_last_task_seen_is_kept_as_plain_values() -> None:
    """A waiting trigger keeps the task it last saw as its ``to_dict()`` (the timeout event's
    ``task``), not the parsed task with its datetimes."""
    from airflow_provider_iotda.models import InstanceTaskPage
    from airflow_provider_iotda.waiting import InstancePoll, TaskQuery

    listing = InstanceTaskPage.from_dict(history("RUNNING", progress=10))
    instance = "0000000a-aaaa-4bbb-8ccc-0123456789ab"
    query = TaskQuery.build(instance, instance_task_type="MODIFY")
    wait = Wait(query, started_at=0.0, deadline=100.0)
    wait.judge(InstancePoll(instance_id=instance, tasks=tuple(listing.tasks), polled_at=1.0), 1.0)
    assert isinstance(wait.last_seen, dict)
    assert wait.last_seen == listing.tasks[0].to_dict()
    assert json.loads(json.dumps(wait.last_seen)) == wait.last_seen  # plain JSON values only
    outcome = wait.timed_out(100.0)
    assert outcome.status == "timeout"
    assert outcome.to_event()["task"] == listing.tasks[0].to_dict()
