"""The shared path of IoTDAInstanceTaskTrigger: its key, its filter over a stream of polls, and
whole waits through Airflow 3.3's own SharedStreamManager (scripted IoTDA, fake clock), compared
with the standalone ``run()``."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from airflow.triggers.base import BaseTrigger
from iotda_async_fakes import FakeClock, ScriptedIoTDA, collect, run_shared, shared_state
from iotda_test_values import MODIFY_ID, OLD_MODIFY_ID, TEST_INSTANCE, TEST_SK, history, page
from iotda_test_values import pending_task as task_json
from structlog.testing import capture_logs

from airflow_provider_iotda import compat
from airflow_provider_iotda.models import InstanceTask
from airflow_provider_iotda.triggers.iotda import CLASSPATH, IoTDAInstanceTaskTrigger
from airflow_provider_iotda.triggers.shared_poll import KEY_PREFIX, InstancePoll, stream_key

START = 1_700_000_000.0
OTHER_INSTANCE = "6b6f5c3e-1f1a-4e55-9d5a-0123456789ac"

needs_shared_streams = pytest.mark.skipif(
    not compat.HAS_SHARED_STREAMS, reason="SharedStreamManager is new in Airflow 3.3"
)


def make_trigger(**kwargs: Any) -> IoTDAInstanceTaskTrigger:
    kwargs.setdefault("iotda_conn_id", "iotda_default")
    kwargs.setdefault("instance_id", TEST_INSTANCE)
    if "instance_task_id" not in kwargs:
        kwargs.setdefault("instance_task_type", "MODIFY")
    kwargs.setdefault("poll_interval", 30)
    kwargs.setdefault("started_at", START)
    return IoTDAInstanceTaskTrigger(**kwargs)


def tasks_of(answer: dict[str, Any]) -> tuple[InstanceTask, ...]:
    return tuple(InstanceTask.from_dict(t) for t in answer["tasks"])


def polled(answer: dict[str, Any], at: float = START) -> InstancePoll:
    return InstancePoll(instance_id=TEST_INSTANCE, tasks=tasks_of(answer), polled_at=at)


def failed_poll(message: str, *, final: bool, reason: str = "iotda") -> InstancePoll:
    return InstancePoll(
        instance_id=TEST_INSTANCE,
        tasks=None,
        error=message,
        final=final,
        reason=reason,  # type: ignore[arg-type]
    )


def filtered(
    trigger: IoTDAInstanceTaskTrigger,
    polls: list[InstancePoll],
    clock: FakeClock | None = None,
    *,
    step: float = 30.0,
    then: str = "block",
) -> list[dict[str, Any]]:
    """Feed ``polls`` to the trigger's filter (the clock moves ``step`` between two), then
    block (``then="block"``), end (``"end"``) or fail (``"raise"``)."""

    async def stream() -> AsyncIterator[Any]:
        for n, poll in enumerate(polls):
            if clock is not None:
                clock.now += step if n else 0.0
                if isinstance(poll, InstancePoll):
                    poll = dataclasses.replace(poll, polled_at=clock.now)
            yield poll
        if then == "raise":
            raise RuntimeError("the poll broke")
        if then == "block":
            await asyncio.Event().wait()

    events = collect(lambda: trigger.filter_shared_stream(stream()))
    assert len(events) == 1  # exactly one event
    payload = events[0].payload
    json.dumps(payload)
    assert isinstance(payload, dict)
    return payload


# -- what the trigger is ---------------------------------------------------------------------


def test_an_event_trigger_that_keeps_the_triggerer_queue() -> None:
    trigger = make_trigger()
    assert isinstance(trigger, compat.BaseEventTrigger)
    assert trigger.supports_triggerer_queue is True  # BaseEventTrigger sets False


def test_serialised_kwargs_are_unchanged() -> None:
    """Triggers deferred before the upgrade resume: the kwargs have the same names."""
    classpath, kwargs = make_trigger(deadline=START + 60).serialize()
    assert classpath == CLASSPATH
    assert sorted(kwargs) == sorted(
        [
            "iotda_conn_id",
            "instance_id",
            "instance_task_id",
            "instance_task_type",
            "created_after",
            "success_statuses",
            "failure_statuses",
            "poll_interval",
            "started_at",
            "deadline",
            "not_found_timeout",
        ]
    )
    assert IoTDAInstanceTaskTrigger(**kwargs).serialize() == (classpath, kwargs)


def test_shared_stream_key() -> None:
    key = make_trigger(poll_interval=10).shared_stream_key()
    assert key == stream_key("iotda_default", TEST_INSTANCE, 10)
    assert key[0] == KEY_PREFIX  # type: ignore[index]
    # Triggers that wait for other tasks of the instance share the poll ...
    assert (
        make_trigger(poll_interval=10.0, instance_task_id=OLD_MODIFY_ID).shared_stream_key() == key
    )
    # ... triggers on another instance, connection or cadence do not.
    assert make_trigger(poll_interval=10, instance_id=OTHER_INSTANCE).shared_stream_key() != key
    assert make_trigger(poll_interval=10, iotda_conn_id="iotda_b").shared_stream_key() != key
    assert make_trigger(poll_interval=20).shared_stream_key() != key


@pytest.mark.parametrize(
    "kwargs",
    [
        {"instance_id": None},  # the connection names the instance: known only in run()
        {"instance_id": ""},
        {"instance_id": "NOT/AN/ID"},  # run() sends the "invalid" event
        {"iotda_conn_id": "bad conn id!"},
    ],
)
def test_no_key_means_the_standalone_run(kwargs: dict[str, Any]) -> None:
    assert make_trigger(**kwargs).shared_stream_key() is None


@pytest.mark.skipif(
    not hasattr(BaseTrigger, "supports_triggerer_queue"),
    reason="triggerer queues are new in Airflow 3.2",
)
def test_deferring_registers_the_task_queue(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.sdk.exceptions import TaskDeferred
    from airflow.sdk.execution_time import task_runner

    monkeypatch.setenv("AIRFLOW__TRIGGERER__QUEUES_ENABLED", "True")
    ti = SimpleNamespace(dag_id="d", task_id="t", run_id="r", task=SimpleNamespace(queue="iot"))
    defer = TaskDeferred(trigger=make_trigger(), method_name="execute_complete")
    msg, _ = task_runner._defer_task(defer, ti, SimpleNamespace(info=lambda *a, **k: None))
    assert msg.queue == "iot"
    assert msg.classpath == CLASSPATH


# -- the filter over a stream of polls -------------------------------------------------------


def test_filter_success_after_pending_and_running(fake_clock: FakeClock) -> None:
    fake_clock.now = START
    polls = [polled(history(s)) for s in ("PENDING", "RUNNING", "SUCCESS")]
    with capture_logs() as logs:
        event = filtered(make_trigger(), polls, fake_clock)
    assert event["status"] == "success"
    assert event["task"]["task_id"] == MODIFY_ID
    assert event["message"].endswith("is SUCCESS; waited 1 min 00 s")
    lines = [e["event"] for e in logs if e["log_level"] == "info"]
    assert any("is RUNNING; waited 30 s" in line for line in lines)


def test_filter_logs_a_look_only_when_the_task_changed(fake_clock: FakeClock) -> None:
    """1,000 triggers on shared polls would write 1,000 unchanged lines per interval; the
    standalone run() logs every look, as before."""
    statuses = [("PENDING", None), ("PENDING", None), ("RUNNING", 40), ("RUNNING", 40)]
    polls = [polled(history(s, progress=p)) for s, p in statuses] + [polled(history("SUCCESS"))]
    with capture_logs() as logs:
        event = filtered(make_trigger(), polls, fake_clock)
    assert event["status"] == "success"
    lines = [e["event"] for e in logs if e["log_level"] == "info"]
    assert len(lines) == 3
    assert "is PENDING; waited 0 s" in lines[0]
    assert "is RUNNING, progress 40%; waited 1 min 00 s" in lines[1]
    assert "is SUCCESS" in lines[2]


def test_filter_picks_its_own_task(fake_clock: FakeClock) -> None:
    polls = [polled(history("SUCCESS"))]
    event = filtered(make_trigger(instance_task_id=OLD_MODIFY_ID), polls, fake_clock)
    assert event["status"] == "failed"
    assert event["task"]["task_id"] == OLD_MODIFY_ID
    assert "old failure" in event["message"]


def test_filter_rides_out_transient_failures(fake_clock: FakeClock) -> None:
    polls = [failed_poll("IoTDA is busy (IOTDA.000010)", final=False), polled(history("SUCCESS"))]
    with capture_logs() as logs:
        event = filtered(make_trigger(), polls, fake_clock)
    assert event["status"] == "success"
    warnings = [e["event"] for e in logs if e["log_level"] == "warning"]
    assert warnings == ["IoTDA did not answer this poll (IoTDA is busy (IOTDA.000010)); polling on"]


@pytest.mark.parametrize("reason", ["iotda", "invalid", "exception"])
def test_filter_ends_with_a_final_failure(fake_clock: FakeClock, reason: str) -> None:
    polls = [failed_poll("no such instance", final=True, reason=reason)]
    event = filtered(make_trigger(), polls, fake_clock)
    assert event == {"status": "error", "reason": reason, "message": "no such instance"}


def test_filter_not_found_after_its_tolerance(fake_clock: FakeClock) -> None:
    fake_clock.now = START
    polls = [polled(page(task_json(type="CREATE")))] * 5
    event = filtered(make_trigger(not_found_timeout=50), polls, fake_clock)
    assert event["status"] == "error"
    assert event["reason"] == "not_found"
    assert "waited 1 min 00 s" in event["message"]  # the third poll, at 60 s


def test_filter_timeout_when_a_poll_comes_after_the_deadline(fake_clock: FakeClock) -> None:
    fake_clock.now = START
    polls = [polled(history("RUNNING"))] * 5
    event = filtered(make_trigger(deadline=START + 45), polls, fake_clock)
    assert event["status"] == "timeout"
    assert event["task"]["status"] == "RUNNING"
    assert "more than the timeout of 45 s" in event["message"]


def test_filter_timeout_at_the_deadline_without_a_poll(fake_clock: FakeClock) -> None:
    """The shared poll has not come round again: the trigger does not wait for it."""
    fake_clock.now = START + 59.99  # 10 ms before the deadline, on the loop's real clock
    event = filtered(make_trigger(deadline=START + 60), [], fake_clock)
    assert event["status"] == "timeout"
    assert event["task"] is None


def test_filter_past_deadline_ends_at_once(fake_clock: FakeClock) -> None:
    fake_clock.now = START + 120
    event = filtered(make_trigger(deadline=START + 60), [polled(history("SUCCESS"))], fake_clock)
    assert event["status"] == "timeout"


def test_filter_invalid_query_is_an_invalid_event(fake_clock: FakeClock) -> None:
    event = filtered(make_trigger(instance_task_type="not a type"), [], fake_clock, then="end")
    assert event["status"] == "error"
    assert event["reason"] == "invalid"
    assert "instance_task_type" in event["message"]


@pytest.mark.parametrize(("then", "text"), [("raise", "the poll broke"), ("end", "ended")])
def test_filter_a_broken_stream_is_an_exception_event(
    fake_clock: FakeClock, then: str, text: str
) -> None:
    event = filtered(make_trigger(), [polled(history("PENDING"))], fake_clock, then=then)
    assert event["status"] == "error"
    assert event["reason"] == "exception"
    assert text in event["message"]


def test_filter_rejects_what_is_not_a_poll(fake_clock: FakeClock) -> None:
    event = filtered(make_trigger(), [{"names": []}], fake_clock)  # type: ignore[list-item]
    assert event["reason"] == "exception"
    assert "InstancePoll" in event["message"]


# -- whole waits through Airflow's SharedStreamManager -----------------------------------------


def manager() -> Any:
    from airflow.triggers.shared_stream import SharedStreamManager

    return SharedStreamManager()


def through_manager(triggers: list[IoTDAInstanceTaskTrigger]) -> tuple[list[Any], Any]:
    """Run every trigger as the 3.3 triggerer does; returns the events and the manager."""

    async def scenario() -> tuple[list[Any], Any]:
        streams = manager()
        results = await asyncio.gather(
            *(run_shared(streams, n, trigger) for n, trigger in enumerate(triggers))
        )
        await asyncio.sleep(0)
        assert shared_state()["users"] == 0  # the poll released the client
        return list(results), streams

    return asyncio.run(scenario())


SCRIPTS: dict[str, list[Any]] = {
    "success": [history("PENDING"), history("RUNNING", progress=40), history("SUCCESS")],
    "failed": [history("FAILED", status_detail="Insufficient resources")],
    "transient then success": [httpx.Response(503, json={"error_code": "IOTDA.000010"})] * 4
    + [history("SUCCESS")],
    "401": [httpx.Response(401, json={"error_code": "APIGW.0301", "error_msg": "no"})],
    "not listed": [page(task_json(type="CREATE"))],
    "unexpected": [RuntimeError("boom")],
}


@needs_shared_streams
@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_shared_and_standalone_send_the_same_event(
    iotda_api: ScriptedIoTDA, fake_clock: FakeClock, name: str
) -> None:
    # No deadline: the trigger's timer runs on the loop's clock, not the fake one (timeouts:
    # test_filter_timeout_*).
    def trigger() -> IoTDAInstanceTaskTrigger:
        return make_trigger(poll_interval=30, not_found_timeout=50)

    iotda_api.script = SCRIPTS[name]
    fake_clock.now = START
    standalone = collect(trigger().run)
    standalone_requests = len(iotda_api.requests)
    iotda_api.requests.clear()
    fake_clock.now = START
    (shared,), streams = through_manager([trigger()])
    assert [e.payload for e in standalone] == shared
    assert len(iotda_api.requests) == standalone_requests
    assert streams._groups == {}  # the poll stopped with its last trigger
    assert TEST_SK not in json.dumps(shared)


@needs_shared_streams
def test_triggers_on_one_instance_share_one_request_per_poll(
    iotda_api: ScriptedIoTDA, fake_clock: FakeClock
) -> None:
    fake_clock.now = START
    iotda_api.script = [history("PENDING"), history("RUNNING"), history("SUCCESS")]
    by_type = [make_trigger() for _ in range(40)]
    by_id = [make_trigger(instance_task_id=OLD_MODIFY_ID) for _ in range(10)]
    results, streams = through_manager(by_type + by_id)
    assert all(events == [results[0][0]] for events in results[:40])
    assert results[0][0]["status"] == "success"
    assert all(events[0]["status"] == "failed" for events in results[40:])
    # The FAILED task ends its 10 triggers at the first poll; the MODIFY needs three.
    assert len(iotda_api.requests) == 3  # not 40 x 3 + 10
    assert streams._groups == {}


@needs_shared_streams
def test_each_key_has_its_own_poll(iotda_api: ScriptedIoTDA, fake_clock: FakeClock) -> None:
    iotda_api.script = [history("SUCCESS")]
    triggers = [
        make_trigger(),
        make_trigger(),
        make_trigger(instance_id=OTHER_INSTANCE),
        make_trigger(poll_interval=60),
    ]
    results, _ = through_manager(triggers)
    assert len(iotda_api.requests) == 3
    assert {str(r.url).split("/")[-2] for r in iotda_api.requests} == {
        TEST_INSTANCE,
        OTHER_INSTANCE,
    }
    assert [events[0]["status"] for events in results[:2] + results[3:]] == ["success"] * 3


@needs_shared_streams
def test_a_final_error_reaches_every_trigger_once(
    iotda_api: ScriptedIoTDA, fake_clock: FakeClock
) -> None:
    iotda_api.script = [httpx.Response(403, json={"error_code": "IOTDA.000003", "error_msg": "no"})]
    results, streams = through_manager([make_trigger() for _ in range(25)])
    assert all(len(events) == 1 for events in results)
    assert {events[0]["reason"] for events in results} == {"iotda"}
    assert all("IOTDA.000003" in events[0]["message"] for events in results)
    assert len(iotda_api.requests) == 1
    assert streams._groups == {}


@needs_shared_streams
def test_a_trigger_without_instance_polls_alone_next_to_shared_ones(
    iotda_api: ScriptedIoTDA, fake_clock: FakeClock
) -> None:
    """The triggerer runs ``run()`` for a trigger without a key; both kinds finish."""
    iotda_api.script = [history("SUCCESS")]
    alone = make_trigger(instance_id=None)  # the connection's default instance
    assert alone.shared_stream_key() is None

    async def scenario() -> tuple[list[Any], list[Any]]:
        streams = manager()
        shared = asyncio.ensure_future(run_shared(streams, 1, make_trigger()))
        standalone = [e.payload async for e in alone.run()]
        return await shared, standalone

    shared, standalone = asyncio.run(scenario())
    assert shared == standalone
    assert len(iotda_api.requests) == 2


@pytest.mark.skipif(compat.HAS_SHARED_STREAMS, reason="Airflow 3.3 shares polls")
def test_without_shared_streams_the_triggerer_runs_run() -> None:
    """Airflow 3.1/3.2: no SharedStreamManager; the triggerer iterates ``run()``, whose
    behaviour the other trigger tests pin down."""
    import inspect

    from airflow.jobs import triggerer_job_runner

    assert not hasattr(triggerer_job_runner, "SharedStreamManager")
    assert "trigger.run()" in inspect.getsource(triggerer_job_runner.TriggerRunner.run_trigger)
    assert not hasattr(compat.BaseEventTrigger, "shared_stream_key")
