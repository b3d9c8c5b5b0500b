"""IoTDAInstanceTaskEventTrigger: history vs news, transitions, restarts, statuses, paging."""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import AsyncIterator, Iterable
from typing import Any

import pytest
from iotda_async_fakes import FakeClock, ScriptedIoTDA
from iotda_test_values import TEST_INSTANCE, page, task_json

from airflow_provider_iotda import clock as clock_module
from airflow_provider_iotda import compat, task_events
from airflow_provider_iotda.models import InstanceTask
from airflow_provider_iotda.triggers import iotda as trigger_module
from airflow_provider_iotda.triggers import shared_poll
from airflow_provider_iotda.triggers.iotda import (
    PERSIST_GRACE,
    IoTDAInstanceTaskEventTrigger,
)
from airflow_provider_iotda.triggers.shared_poll import InstancePoll

A = "0a1b2c3d-0000-4000-8000-00000000000a"
B = "0a1b2c3d-0000-4000-8000-00000000000b"
C = "0a1b2c3d-0000-4000-8000-00000000000c"


class FakeStateStore:
    """The asset state store's async accessor API (JSON values), in a dict."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}
        self.writes: list[str] = []

    async def aget(self, key: str, default: Any = None) -> Any:
        return copy.deepcopy(self.values.get(key, default))

    async def aset(self, key: str, value: Any) -> None:
        json.dumps(value)  # the store keeps JSON
        self.values[key] = copy.deepcopy(value)
        self.writes.append(key)


class SeveralAssetsStore(FakeStateStore):
    """What the single-asset shortcut does when one trigger watches several assets."""

    async def aget(self, key: str, default: Any = None) -> Any:
        raise ValueError("Task has 2 concrete inlets and outlets")


def task(task_id: str, status: str, type: str = "MODIFY", **fields: Any) -> InstanceTask:
    return InstanceTask.from_dict(task_json(task_id, status, type=type, **fields))


def poll(*tasks: InstanceTask) -> InstancePoll:
    return InstancePoll(TEST_INSTANCE, tuple(tasks), None, False, 0.0)


def failed_poll(message: str = "IoTDA answered 503", final: bool = False) -> InstancePoll:
    return InstancePoll(TEST_INSTANCE, None, message, final, 0.0)


async def stream(polls: Iterable[InstancePoll]) -> AsyncIterator[InstancePoll]:
    for item in polls:
        yield item


def watcher(store: Any = None, **kwargs: Any) -> IoTDAInstanceTaskEventTrigger:
    trigger = IoTDAInstanceTaskEventTrigger(instance_id=TEST_INSTANCE, **kwargs)
    trigger.asset_state_store = store
    return trigger


def fired(trigger: IoTDAInstanceTaskEventTrigger, polls: Iterable[InstancePoll]) -> list[Any]:
    """The payloads the trigger yields for ``polls`` (through the shared-stream filter)."""

    async def collect() -> list[Any]:
        return [e.payload async for e in trigger.filter_shared_stream(stream(polls))]

    return asyncio.run(collect())


def fired_ids(trigger: IoTDAInstanceTaskEventTrigger, polls: Iterable[InstancePoll]) -> list[str]:
    return [(p["task"]["task_id"], p["task"]["status"]) for p in fired(trigger, polls)]


@pytest.fixture(autouse=True)
def clock(fake_clock: FakeClock) -> FakeClock:
    return fake_clock


# -- history and transitions ---------------------------------------------------------------------


def test_tasks_finished_at_the_first_look_are_history() -> None:
    polls = [poll(task(A, "SUCCESS"), task(B, "FAILED"))] * 3
    assert fired(watcher(FakeStateStore()), polls) == []


def test_a_task_reaching_a_watched_status_fires_once_with_the_task_and_instance() -> None:
    polls = [
        poll(task(A, "SUCCESS"), task(B, "RUNNING")),
        poll(task(A, "SUCCESS"), task(B, "RUNNING")),
        poll(task(A, "SUCCESS"), task(B, "SUCCESS", status_detail="done")),
        poll(task(A, "SUCCESS"), task(B, "SUCCESS", status_detail="done")),
        poll(task(A, "SUCCESS"), task(B, "SUCCESS", status_detail="done")),
    ]
    payloads = fired(watcher(FakeStateStore()), polls)
    assert payloads == [
        {
            "instance_id": TEST_INSTANCE,
            "task": task(B, "SUCCESS", status_detail="done").to_dict(),
            "previous_status": "RUNNING",
        }
    ]


def test_a_task_created_and_finished_between_two_looks_is_news() -> None:
    polls = [poll(task(A, "SUCCESS")), poll(task(B, "FAILED"), task(A, "SUCCESS"))]
    payloads = fired(watcher(FakeStateStore()), polls)
    assert [(p["task"]["task_id"], p["previous_status"]) for p in payloads] == [(B, None)]


def test_pending_and_running_do_not_fire_but_a_retried_task_fires_again() -> None:
    polls = [
        poll(task(A, "PENDING")),
        poll(task(A, "RUNNING")),
        poll(task(A, "FAILED")),
        poll(task(A, "RUNNING")),
        poll(task(A, "SUCCESS")),
    ]
    assert fired_ids(watcher(FakeStateStore()), polls) == [(A, "FAILED"), (A, "SUCCESS")]


def test_several_tasks_finishing_at_once_fire_oldest_end_first() -> None:
    first = poll(task(A, "RUNNING"), task(B, "RUNNING"))
    done = poll(
        task(A, "SUCCESS", end_time="2024-05-01T12:00:00.000Z"),
        task(B, "FAILED", end_time="2024-05-01T11:00:00.000Z"),
    )
    assert fired_ids(watcher(FakeStateStore()), [first, done]) == [(B, "FAILED"), (A, "SUCCESS")]


def test_task_types_and_statuses_filter() -> None:
    first = poll(task(A, "RUNNING"), task(B, "RUNNING", type="FREEZE"), task(C, "RUNNING"))
    done = poll(task(A, "SUCCESS"), task(B, "SUCCESS", type="FREEZE"), task(C, "FAILED"))
    trigger = watcher(FakeStateStore(), task_types=["MODIFY"], statuses="FAILED")
    assert fired_ids(trigger, [first, done]) == [(C, "FAILED")]


def test_unknown_statuses_are_remembered_and_fire_only_when_watched() -> None:
    first = poll(task(A, "RUNNING"), task(B, "RUNNING"))
    later = poll(task(A, "CANCELED"), task(B, "ROLLED_BACK"))
    assert fired_ids(watcher(FakeStateStore()), [first, later]) == []
    chosen = watcher(FakeStateStore(), statuses=["CANCELED", "SUCCESS"])
    assert fired_ids(chosen, [first, later, later]) == [(A, "CANCELED")]


def test_failed_polls_are_skipped_and_logged(capsys: pytest.CaptureFixture[str]) -> None:
    polls = [
        failed_poll("IoTDA answered 403", final=True),  # no first look yet
        poll(task(A, "RUNNING")),
        failed_poll("IoTDA answered 503"),
        poll(task(A, "SUCCESS")),
    ]
    assert fired_ids(watcher(FakeStateStore()), polls) == [(A, "SUCCESS")]
    out = capsys.readouterr().out
    assert "IoTDA answered 403" in out
    assert "IoTDA answered 503" in out


# -- memory: the asset state store (3.3) and the fallback --------------------------------------


def test_memory_is_stored_under_a_key_naming_the_watch_and_remembered_after_the_grace(
    clock: FakeClock,
) -> None:
    store = FakeStateStore()
    trigger = watcher(store, task_types=["MODIFY", "CREATE"])
    fired(trigger, [poll(task(A, "RUNNING")), poll(task(A, "RUNNING"))])
    key = f"iotda_instance_tasks/iotda_default/{TEST_INSTANCE}/CREATE,MODIFY/FAILED,SUCCESS"
    assert store.values == {key: {"version": 1, "statuses": {A: "RUNNING"}}}
    assert store.writes == [key]  # unchanged memory is not written again
    assert clock.sleeps == []  # no news, no grace

    fired(watcher(store, task_types=["CREATE", "MODIFY"]), [poll(task(A, "SUCCESS"))])
    assert store.values[key]["statuses"] == {A: "SUCCESS"}
    assert clock.sleeps == [PERSIST_GRACE]


def test_restart_fires_what_finished_while_down_and_nothing_reported_before() -> None:
    store = FakeStateStore()
    before = [
        poll(task(A, "RUNNING"), task(B, "RUNNING")),
        poll(task(A, "SUCCESS"), task(B, "RUNNING")),
    ]
    assert fired_ids(watcher(store), before) == [(A, "SUCCESS")]
    # The triggerer is down while B finishes and C is created and finishes.
    after = [poll(task(A, "SUCCESS"), task(B, "FAILED"), task(C, "SUCCESS"))] * 2
    assert fired_ids(watcher(store), after) == [(B, "FAILED"), (C, "SUCCESS")]
    assert fired_ids(watcher(store), after) == []  # and again: nothing twice


def test_a_restart_before_the_memory_is_written_reports_again_never_loses() -> None:
    store = FakeStateStore()
    fired(watcher(store), [poll(task(A, "RUNNING"))])

    async def killed_right_after_the_event() -> Any:
        polls = stream([poll(task(A, "SUCCESS")), poll(task(A, "SUCCESS"))])
        events = watcher(store).filter_shared_stream(polls)
        event = await anext(events)
        await events.aclose()  # cancelled before the grace ended: memory not written
        return event.payload["task"]["task_id"]

    assert asyncio.run(killed_right_after_the_event()) == A
    assert fired_ids(watcher(store), [poll(task(A, "SUCCESS"))]) == [(A, "SUCCESS")]


def test_unreadable_memory_means_a_first_look(capsys: pytest.CaptureFixture[str]) -> None:
    store = FakeStateStore()
    trigger = watcher(store)
    key = task_events.memory_key("iotda_default", TEST_INSTANCE, trigger.watch_spec)
    store.values[key] = {"version": 99, "seen": [A]}
    assert fired(trigger, [poll(task(A, "SUCCESS"))]) == []
    assert "unreadable state" in capsys.readouterr().out
    assert store.values[key] == {"version": 1, "statuses": {A: "SUCCESS"}}


def test_without_a_store_memory_lives_in_the_process_only(clock: FakeClock) -> None:
    # Airflow 3.1/3.2 (no asset state store): no duplicates while running; a restart is a
    # new first look, so what finished while the triggerer was down is not reported.
    polls = [poll(task(A, "RUNNING")), poll(task(A, "SUCCESS")), poll(task(A, "SUCCESS"))]
    assert fired_ids(watcher(None), polls) == [(A, "SUCCESS")]
    assert clock.sleeps == []  # nothing to make durable, no grace
    assert fired_ids(watcher(None), [poll(task(A, "SUCCESS"), task(B, "SUCCESS"))]) == []


def test_a_trigger_of_several_assets_falls_back_to_process_memory(
    capsys: pytest.CaptureFixture[str],
) -> None:
    store = SeveralAssetsStore()
    polls = [poll(task(A, "RUNNING")), poll(task(A, "SUCCESS"))]
    assert fired_ids(watcher(store), polls) == [(A, "SUCCESS")]
    assert "in memory only" in capsys.readouterr().out
    assert store.writes == []


# -- arguments, serialisation, shared polls ------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"instance_id": "{{ params.instance }}"}, "no templates"),
        ({"instance_id": "NOT-AN-ID"}, "instance_id must be 1 to 36"),
        ({"instance_id": ""}, "instance_id"),
        ({"instance_id": None}, "instance_id"),
        ({"instance_id": TEST_INSTANCE, "statuses": []}, "statuses must name at least one"),
        ({"instance_id": TEST_INSTANCE, "statuses": ["success"]}, "statuses must be upper-case"),
        ({"instance_id": TEST_INSTANCE, "task_types": "modify"}, "task_types must be upper-case"),
        ({"instance_id": TEST_INSTANCE, "poll_interval": 0}, "poll_interval must be a number"),
        ({"instance_id": TEST_INSTANCE, "poll_interval": "soon"}, "poll_interval"),
        ({"instance_id": TEST_INSTANCE, "iotda_conn_id": "a b"}, "iotda_conn_id"),
    ],
)
def test_bad_arguments_are_a_value_error(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        IoTDAInstanceTaskEventTrigger(**kwargs)


def test_serialize_round_trips_and_equal_watchers_hash_equal() -> None:
    one = IoTDAInstanceTaskEventTrigger(
        instance_id=TEST_INSTANCE, statuses=["SUCCESS", "FAILED"], task_types="MODIFY FREEZE"
    )
    two = IoTDAInstanceTaskEventTrigger(
        instance_id=TEST_INSTANCE, statuses="FAILED,SUCCESS", task_types=["FREEZE", "MODIFY"]
    )
    classpath, kwargs = one.serialize()
    assert json.loads(json.dumps(kwargs)) == kwargs
    assert kwargs == {
        "instance_id": TEST_INSTANCE,
        "iotda_conn_id": "iotda_default",
        "task_types": ["FREEZE", "MODIFY"],
        "statuses": ["FAILED", "SUCCESS"],
        "poll_interval": 60.0,
    }
    assert IoTDAInstanceTaskEventTrigger(**kwargs).serialize() == (classpath, kwargs)
    assert compat.BaseEventTrigger.hash(*one.serialize()) == compat.BaseEventTrigger.hash(
        *two.serialize()
    )
    assert isinstance(one, compat.BaseEventTrigger)


@pytest.mark.skipif(not compat.HAS_SHARED_STREAMS, reason="shared streams are Airflow 3.3+")
def test_shares_the_instance_poll_on_airflow_with_shared_streams(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    trigger = IoTDAInstanceTaskEventTrigger(instance_id=TEST_INSTANCE, poll_interval=30)
    assert trigger.shared_stream_key() == shared_poll.stream_key(
        "iotda_default", TEST_INSTANCE, 30.0
    )
    calls: list[tuple[Any, ...]] = []

    async def fake_poll(*args: Any) -> AsyncIterator[InstancePoll]:
        calls.append(args)
        yield poll(task(A, "RUNNING"))

    monkeypatch.setattr(shared_poll, "poll_instance", fake_poll)

    async def first() -> InstancePoll:
        return await anext(type(trigger).open_shared_stream(trigger.serialize()[1]))

    assert asyncio.run(first()).tasks == (task(A, "RUNNING"),)
    assert calls == [("iotda_default", TEST_INSTANCE, 30.0)]


@pytest.mark.skipif(compat.HAS_SHARED_STREAMS, reason="Airflow 3.3+ shares the poll")
def test_runs_its_own_poll_without_shared_streams() -> None:
    trigger = IoTDAInstanceTaskEventTrigger(instance_id=TEST_INSTANCE)
    assert trigger.shared_stream_key() is None


def test_run_polls_every_page_and_fires_for_a_task_on_a_later_page(
    iotda_api: ScriptedIoTDA, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def no_wait(seconds: float) -> None:
        return None

    monkeypatch.setattr(clock_module, "sleep", no_wait)
    full = page(
        *[task_json(f"{i:08x}-0000-4000-8000-{i:012x}", "SUCCESS") for i in range(500, 0, -1)]
    )
    full["page"]["marker"] = "00000001-0000-4000-8000-000000000001"
    last = "00000000-0000-4000-8000-000000000000"
    iotda_api.script = [
        full,
        page(task_json(last, "RUNNING")),
        full,
        page(task_json(last, "SUCCESS")),
    ]
    trigger = watcher(FakeStateStore())

    async def first_event() -> Any:
        events = trigger.run()
        event = await anext(events)
        await events.aclose()
        return event.payload

    payload = asyncio.run(first_event())
    assert (payload["task"]["task_id"], payload["task"]["status"]) == (last, "SUCCESS")
    assert len(iotda_api.requests) == 4
    assert "marker=00000001-0000-4000-8000-000000000001" in str(iotda_api.requests[3].url)
    assert trigger_module.EVENT_CLASSPATH.endswith(type(trigger).__name__)


@pytest.mark.skipif(not compat.HAS_SHARED_STREAMS, reason="shared streams are Airflow 3.3+")
def test_watchers_of_one_instance_share_one_poll_through_airflows_manager(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from airflow.triggers.shared_stream import SharedStreamManager

    opened: list[tuple[Any, ...]] = []

    async def fake_poll(*args: Any) -> AsyncIterator[InstancePoll]:
        opened.append(args)
        yield poll(task(A, "RUNNING"), task(B, "RUNNING"))
        yield poll(task(A, "SUCCESS"), task(B, "FAILED"))
        await asyncio.Event().wait()  # a shared poll never ends

    monkeypatch.setattr(shared_poll, "poll_instance", fake_poll)
    on_success = watcher(FakeStateStore(), statuses="SUCCESS", poll_interval=5)
    on_failure = watcher(FakeStateStore(), statuses="FAILED", poll_interval=5)
    assert on_success.shared_stream_key() == on_failure.shared_stream_key()

    async def scenario() -> list[list[str]]:
        manager = SharedStreamManager()
        key = on_success.shared_stream_key()
        streams = [
            trigger.filter_shared_stream(manager.subscribe(trigger_id=i, trigger=trigger, key=key))
            for i, trigger in enumerate([on_success, on_failure])
        ]
        try:
            events = [await asyncio.wait_for(anext(s), timeout=10) for s in streams]
        finally:
            for i in range(len(streams)):
                await manager.unsubscribe(i, key)
            await manager.stop_all()
        return [[e.payload["task"]["task_id"], e.payload["task"]["status"]] for e in events]

    assert asyncio.run(scenario()) == [[A, "SUCCESS"], [B, "FAILED"]]
    assert opened == [("iotda_default", TEST_INSTANCE, 5.0)]  # one poll for both
