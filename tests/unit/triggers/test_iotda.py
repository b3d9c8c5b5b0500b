"""Unit tests of IoTDAInstanceTaskTrigger under asyncio (scripted IoTDA, fake clock)."""

from __future__ import annotations

import asyncio
import importlib
import json
from typing import Any

import httpx
import pytest
from iotda_async_fakes import FakeClock, ScriptedIoTDA, collect, shared_state
from iotda_test_values import (
    MODIFY_ID,
    OLD_MODIFY_ID,
    TASKS_URL,
    TEST_INSTANCE,
    TEST_SK,
    history,
    page,
)
from iotda_test_values import pending_task as task_json
from structlog.testing import capture_logs

from airflow_provider_iotda import clock
from airflow_provider_iotda.hooks import iotda_async
from airflow_provider_iotda.triggers.iotda import CLASSPATH, IoTDAInstanceTaskTrigger

START = 1_700_000_000.0


def make_trigger(**kwargs: Any) -> IoTDAInstanceTaskTrigger:
    kwargs.setdefault("iotda_conn_id", "iotda_default")
    if "instance_task_id" not in kwargs:
        kwargs.setdefault("instance_task_type", "MODIFY")
    kwargs.setdefault("poll_interval", 30)
    kwargs.setdefault("started_at", START)
    return IoTDAInstanceTaskTrigger(**kwargs)


def run_trigger(trigger: IoTDAInstanceTaskTrigger) -> dict[str, Any]:
    """Run to the end; exactly one event must come out."""
    events = collect(trigger.run)
    assert len(events) == 1
    payload = events[0].payload
    assert isinstance(payload, dict)
    json.dumps(payload)  # JSON-able
    return payload


# -- construction and serialisation ----------------------------------------------------------


def test_serialize_round_trip_is_json_and_importable() -> None:
    trigger = make_trigger(
        instance_id=TEST_INSTANCE,
        created_after="2024-05-01T00:00:00+00:00",
        success_statuses=["SUCCESS", "DONE"],
        deadline=START + 3600,
        not_found_timeout=600,
    )
    classpath, kwargs = trigger.serialize()
    assert classpath == CLASSPATH
    assert json.loads(json.dumps(kwargs)) == kwargs
    assert kwargs["success_statuses"] == ["DONE", "SUCCESS"]
    module, _, name = classpath.rpartition(".")
    rebuilt = getattr(importlib.import_module(module), name)(**kwargs)
    assert rebuilt.serialize() == (classpath, kwargs)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"poll_interval": 0}, "poll_interval"),
        ({"not_found_timeout": -1}, "not_found_timeout"),
        ({"success_statuses": ["SUCCESS"], "failure_statuses": ["SUCCESS"]}, "must not share"),
        ({"failure_statuses": []}, "failure_statuses"),
    ],
)
def test_bad_arguments(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        make_trigger(**kwargs)


# -- outcomes --------------------------------------------------------------------------------


def test_success_after_pending_and_running(iotda_api: ScriptedIoTDA, fake_clock: FakeClock) -> None:
    fake_clock.now = START
    iotda_api.script = [history("PENDING"), history("RUNNING", progress=40), history("SUCCESS")]
    with capture_logs() as logs:
        event = run_trigger(make_trigger(poll_interval=30))
    assert event["status"] == "success"
    assert event["task"]["task_id"] == MODIFY_ID
    assert event["task"]["status"] == "SUCCESS"
    assert len(iotda_api.requests) == 3  # one request per poll
    assert fake_clock.sleeps == [30, 30]
    assert iotda_api.bad_signatures == 0
    assert all(str(r.url) == TASKS_URL for r in iotda_api.requests)
    lines = [e["event"] for e in logs if e["log_level"] == "info"]
    assert any("is RUNNING, progress 40%; waited 30 s" in line for line in lines)
    assert TEST_SK not in repr(logs)


def test_first_poll_is_spread_over_one_interval(
    iotda_api: ScriptedIoTDA, fake_clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first poll waits a random share of the interval (the sensor has just poked), then
    polls follow every interval from there."""
    offsets: list[float] = []

    def delay(interval: float) -> float:
        offsets.append(interval)
        return 12.5

    monkeypatch.setattr(clock, "first_poll_delay", delay)
    fake_clock.now = START
    iotda_api.script = [history("RUNNING"), history("SUCCESS")]
    event = run_trigger(make_trigger(poll_interval=30))
    assert event["status"] == "success"
    assert offsets == [30]
    assert fake_clock.sleeps == [12.5, 30]
    assert len(iotda_api.requests) == 2


def test_polls_keep_their_cadence_when_answers_are_slow(
    iotda_api: ScriptedIoTDA, fake_clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each poll starts poll_interval after the previous one started: a 4 s answer shortens the
    pause to 26 s, so a finished task is seen within one interval, not interval + answer time."""
    real_list = iotda_async.IoTDAAsyncHook.list_instance_tasks

    async def slow_list(self: Any, *args: Any, **kwargs: Any) -> Any:
        fake_clock.now += 4.0  # the answer takes 4 s
        return await real_list(self, *args, **kwargs)

    monkeypatch.setattr(iotda_async.IoTDAAsyncHook, "list_instance_tasks", slow_list)
    fake_clock.now = START
    iotda_api.script = [history("PENDING"), history("RUNNING"), history("SUCCESS")]
    event = run_trigger(make_trigger(poll_interval=30))
    assert event["status"] == "success"
    assert fake_clock.sleeps == [26, 26]


def test_failed_event_names_the_task(iotda_api: ScriptedIoTDA, fake_clock: FakeClock) -> None:
    iotda_api.script = [history("FAILED", status_detail="Insufficient resources")]
    event = run_trigger(make_trigger())
    assert event["status"] == "failed"
    assert event["task"]["task_id"] == MODIFY_ID
    for part in (MODIFY_ID, "MODIFY", TEST_INSTANCE, "Insufficient resources"):
        assert part in event["message"]


def test_by_task_id(iotda_api: ScriptedIoTDA, fake_clock: FakeClock) -> None:
    iotda_api.script = [history("SUCCESS")]
    event = run_trigger(make_trigger(instance_task_id=OLD_MODIFY_ID))
    assert event["status"] == "failed"
    assert event["task"]["task_id"] == OLD_MODIFY_ID


def test_timeout_at_the_deadline(iotda_api: ScriptedIoTDA, fake_clock: FakeClock) -> None:
    fake_clock.now = START
    iotda_api.script = [history("PENDING")]
    event = run_trigger(make_trigger(poll_interval=3, deadline=START + 10))
    assert event["status"] == "timeout"
    assert "timed out" in event["message"]
    assert event["task"]["task_id"] == MODIFY_ID
    # Polls at 0, 3, 6, 9 and at the deadline (the last sleep is cut to end there).
    assert fake_clock.sleeps == [3, 3, 3, 1]
    assert len(iotda_api.requests) == 5


def test_not_found_is_tolerated_then_an_error(
    iotda_api: ScriptedIoTDA, fake_clock: FakeClock
) -> None:
    fake_clock.now = START
    iotda_api.script = [page(task_json(type="CREATE"))]
    event = run_trigger(make_trigger(poll_interval=2, not_found_timeout=5))
    assert event["status"] == "error"
    assert event["reason"] == "not_found"
    assert "not_found_timeout" in event["message"]
    assert len(iotda_api.requests) == 4  # at 0, 2, 4 (tolerated) and 6 s


@pytest.mark.parametrize(
    "failure",
    [
        httpx.Response(503, json={"error_code": "IOTDA.000010", "error_msg": "busy"}),
        httpx.Response(429, json={"error_code": "APIG.0308"}, headers={"Retry-After": "1"}),
        httpx.Response(500, text="oops"),
        httpx.Response(200, text="<html>not json</html>"),
        httpx.ConnectError("refused"),
        httpx.ReadTimeout("slow"),
        httpx.RemoteProtocolError("dropped"),
        httpx.ReadError("reset"),
    ],
)
def test_transient_errors_are_ridden_out(
    iotda_api: ScriptedIoTDA,
    fake_clock: FakeClock,
    retry_sleeps: list[float],
    failure: httpx.Response | Exception,
) -> None:
    # The hook's own 4 attempts fail; the trigger logs, polls again, and then succeeds.
    iotda_api.script = [failure] * 4 + [history("SUCCESS")]
    with capture_logs() as logs:
        event = run_trigger(make_trigger(poll_interval=10))
    assert event["status"] == "success"
    assert len(iotda_api.requests) == 5
    assert len(retry_sleeps) == 3  # the hook's backoff
    assert fake_clock.sleeps == [10]  # then the next poll
    assert any("polling on" in e["event"] for e in logs if e["log_level"] == "warning")


@pytest.mark.parametrize(
    ("status", "code"), [(400, "IOTDA.000006"), (401, "APIGW.0301"), (403, "IOTDA.000003")]
)
def test_client_errors_end_with_one_error_event(
    iotda_api: ScriptedIoTDA, fake_clock: FakeClock, status: int, code: str
) -> None:
    iotda_api.script = [httpx.Response(status, json={"error_code": code, "error_msg": "no"})]
    event = run_trigger(make_trigger())
    assert event == {"status": "error", "reason": "iotda", "message": event["message"]}
    assert code in event["message"]
    assert len(iotda_api.requests) == 1
    assert TEST_SK not in event["message"]


def test_oversized_answer_is_an_error(
    iotda_api: ScriptedIoTDA, fake_clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow_provider_iotda import api

    monkeypatch.setattr(api, "MAX_BODY_BYTES", 1000)

    async def chunks() -> Any:
        for _ in range(10):
            yield b"x" * 200

    iotda_api.script = [httpx.Response(200, content=chunks())]  # streamed, no Content-Length
    event = run_trigger(make_trigger())
    assert event["status"] == "error"
    assert "1000-byte limit" in event["message"]
    iotda_api.requests.clear()
    iotda_api.script = [httpx.Response(200, content=b"y" * 2000)]  # Content-Length says too much
    assert "2000 bytes exceeds" in run_trigger(make_trigger())["message"]


def test_unexpected_exception_becomes_an_error_event(
    iotda_api: ScriptedIoTDA, fake_clock: FakeClock
) -> None:
    iotda_api.script = [RuntimeError("boom")]
    event = run_trigger(make_trigger())
    assert event["status"] == "error"
    assert event["reason"] == "exception"
    assert "RuntimeError: boom" in event["message"]


def test_missing_connection_becomes_an_error_event(
    monkeypatch: pytest.MonkeyPatch, fake_clock: FakeClock
) -> None:
    monkeypatch.delenv("AIRFLOW_CONN_IOTDA_MISSING", raising=False)
    event = run_trigger(make_trigger(iotda_conn_id="iotda_missing"))
    assert event["status"] == "error"
    assert "iotda_missing" in event["message"]


def test_bad_rendered_input_is_an_invalid_error(
    iotda_api: ScriptedIoTDA, fake_clock: FakeClock
) -> None:
    event = run_trigger(make_trigger(instance_id="NOT/AN/ID"))
    assert event["status"] == "error"
    assert event["reason"] == "invalid"
    assert "instance_id" in event["message"]
    assert iotda_api.requests == []


def test_cancellation_propagates_and_releases_the_client(
    iotda_api: ScriptedIoTDA, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The triggerer cancels a trigger whose task was cleared: no event, nothing left open."""
    iotda_api.script = [history("PENDING")]

    async def scenario() -> tuple[bool, dict[str, int]]:
        agen = make_trigger(poll_interval=3600).run()
        task = asyncio.ensure_future(agen.__anext__())
        while not iotda_api.requests:
            await asyncio.sleep(0.001)
        await asyncio.sleep(0.01)  # now sleeping until the next poll
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            cancelled = True
        else:
            cancelled = False
        return cancelled, shared_state()

    cancelled, state = asyncio.run(scenario())
    assert cancelled
    assert state["users"] == 0
    assert iotda_api.clients[0].is_closed
