"""Unit tests of triggers/shared_poll.py: the stream key and the shared poll loop (scripted
IoTDA, fake clock), and the connection read that the hooks of a loop share."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from iotda_async_fakes import FakeClock, ScriptedIoTDA, shared_state
from iotda_test_values import MODIFY_ID, TASKS_URL, TEST_INSTANCE, TEST_SK, history, page_json
from iotda_test_values import pending_task as task_json

from airflow_provider_iotda import clock
from airflow_provider_iotda.hooks import iotda_async
from airflow_provider_iotda.hooks.iotda_async import IoTDAAsyncHook
from airflow_provider_iotda.triggers import shared_poll
from airflow_provider_iotda.triggers.shared_poll import InstancePoll, poll_instance, stream_key

START = 1_700_000_000.0
OTHER_INSTANCE = "6b6f5c3e-1f1a-4e55-9d5a-0123456789ac"


def take_polls(count: int, **kwargs: Any) -> list[InstancePoll]:
    """The first ``count`` polls of ``poll_instance`` (then the loop is closed, as the
    triggerer cancels it when the last trigger leaves)."""
    kwargs.setdefault("iotda_conn_id", "iotda_default")
    kwargs.setdefault("instance_id", TEST_INSTANCE)
    kwargs.setdefault("poll_interval", 10.0)

    async def run() -> tuple[list[InstancePoll], dict[str, int]]:
        polls: list[InstancePoll] = []
        stream = poll_instance(**kwargs)
        async for poll in stream:
            polls.append(poll)
            if len(polls) == count:
                break
        await stream.aclose()  # type: ignore[attr-defined]
        return polls, shared_state()

    polls, state = asyncio.run(run())
    assert state["users"] == 0  # the loop's client was released when the stream closed
    return polls


# -- the key ---------------------------------------------------------------------------------


def test_stream_key_names_connection_instance_and_interval() -> None:
    key = stream_key("iotda_default", TEST_INSTANCE, 10)
    assert key == (shared_poll.KEY_PREFIX, "iotda_default", TEST_INSTANCE, "10.0")
    assert all(isinstance(part, str) for part in key)
    assert stream_key("iotda_default", TEST_INSTANCE, 10.0) == key  # one interval, two spellings
    assert stream_key("iotda_other", TEST_INSTANCE, 10) != key
    assert stream_key("iotda_default", OTHER_INSTANCE, 10) != key
    assert stream_key("iotda_default", TEST_INSTANCE, 30) != key


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (("iotda default!", TEST_INSTANCE, 10), "iotda_conn_id"),
        (("iotda_default", "NOT/AN/ID", 10), "instance_id"),
        (("iotda_default", TEST_INSTANCE, 0), "poll_interval"),
    ],
)
def test_stream_key_rejects_bad_values(args: tuple[Any, ...], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        stream_key(*args)


# -- the poll loop ---------------------------------------------------------------------------


def test_polls_list_every_task_at_a_fixed_cadence(
    iotda_api: ScriptedIoTDA, fake_clock: FakeClock
) -> None:
    fake_clock.now = START
    iotda_api.script = [history("PENDING"), history("RUNNING"), history("SUCCESS")]
    polls = take_polls(3, poll_interval=10)
    assert [p.polled_at for p in polls] == [START, START + 10, START + 20]
    assert fake_clock.sleeps == [10, 10]
    assert len(iotda_api.requests) == 3  # one request per poll
    assert all(str(r.url) == TASKS_URL for r in iotda_api.requests)
    assert iotda_api.bad_signatures == 0
    for poll, status in zip(polls, ["PENDING", "RUNNING", "SUCCESS"], strict=True):
        assert poll.ok
        assert poll.error is None
        assert not poll.final
        assert poll.instance_id == TEST_INSTANCE
        assert poll.tasks is not None
        assert next(t.task_id for t in poll.tasks) == MODIFY_ID
        assert poll.tasks[0].status == status
        assert len(poll.tasks) == 3  # every task, not only one trigger's


def test_first_poll_waits_a_random_share_of_one_interval(
    iotda_api: ScriptedIoTDA, fake_clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(clock, "first_poll_delay", lambda interval: interval / 4)
    fake_clock.now = START
    iotda_api.script = [history("PENDING")]
    polls = take_polls(2, poll_interval=8)
    assert fake_clock.sleeps == [2, 8]
    assert polls[0].polled_at == START + 2


def test_a_slow_answer_does_not_shift_the_cadence(
    iotda_api: ScriptedIoTDA, fake_clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_list = IoTDAAsyncHook.list_instance_tasks

    async def slow_list(self: Any, *args: Any, **kwargs: Any) -> Any:
        fake_clock.now += 4.0
        return await real_list(self, *args, **kwargs)

    monkeypatch.setattr(IoTDAAsyncHook, "list_instance_tasks", slow_list)
    fake_clock.now = START
    iotda_api.script = [history("PENDING")]
    take_polls(3, poll_interval=10)
    assert fake_clock.sleeps == [6, 6]


def test_a_full_page_is_followed_by_marker(iotda_api: ScriptedIoTDA, fake_clock: FakeClock) -> None:
    # A page as long as the largest limit (the service keeps 20 tasks: this never happens).
    full = [task_json(f"0a1b2c3d-0000-4000-8000-{n + 0x100:012x}") for n in range(500)]
    iotda_api.script = [
        page_json(full, marker=full[-1]["task_id"]),
        page_json([task_json(MODIFY_ID)]),
    ]
    (poll,) = take_polls(1)
    assert poll.tasks is not None
    assert len(poll.tasks) == 501
    assert len(iotda_api.requests) == 2
    assert iotda_api.requests[1].url.params["marker"] == full[-1]["task_id"]


@pytest.mark.parametrize(
    "failure",
    [
        httpx.Response(503, json={"error_code": "IOTDA.000010", "error_msg": "busy"}),
        httpx.Response(429, json={"error_code": "APIG.0308"}, headers={"Retry-After": "1"}),
        httpx.ConnectError("refused"),
    ],
)
def test_transient_failures_are_passed_on_and_polling_goes_on(
    iotda_api: ScriptedIoTDA, fake_clock: FakeClock, failure: httpx.Response | Exception
) -> None:
    # The hook's own 4 attempts fail: one failed poll; the next poll works.
    iotda_api.script = [failure] * 4 + [history("SUCCESS")]
    failed, healed = take_polls(2)
    assert failed.tasks is None
    assert not failed.ok
    assert failed.error
    assert not failed.final
    assert failed.reason == "iotda"
    assert TEST_SK not in failed.error
    assert healed.ok
    assert healed.tasks is not None
    assert len(iotda_api.requests) == 5


@pytest.mark.parametrize(("status", "code"), [(400, "IOTDA.000006"), (401, "APIGW.0301")])
def test_final_failures_are_marked_final_and_the_stream_goes_on(
    iotda_api: ScriptedIoTDA, fake_clock: FakeClock, status: int, code: str
) -> None:
    """A final error reaches the subscribers as such; the stream itself never ends (the
    triggerer cancels it when its last trigger leaves) and reads the connection again."""
    reads: list[str] = []
    real_read = IoTDAAsyncHook._read_config

    async def counting_read(self: IoTDAAsyncHook) -> Any:
        reads.append(self.iotda_conn_id)
        return await real_read(self)

    iotda_api.script = [httpx.Response(status, json={"error_code": code, "error_msg": "no"})]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(IoTDAAsyncHook, "_read_config", counting_read)
        polls = take_polls(3)
    assert all(p.final and p.reason == "iotda" and code in (p.error or "") for p in polls)
    assert len(iotda_api.requests) == 3
    assert len(reads) == 3  # after a final error the next poll reads the connection again


def test_a_missing_connection_is_a_final_exception_poll(
    monkeypatch: pytest.MonkeyPatch, fake_clock: FakeClock
) -> None:
    monkeypatch.delenv("AIRFLOW_CONN_IOTDA_MISSING", raising=False)
    polls = take_polls(2, iotda_conn_id="iotda_missing")
    for poll in polls:
        assert poll.final
        assert poll.reason == "exception"
        assert poll.error is not None
        assert "iotda_missing" in poll.error
        assert poll.error.startswith("IoTDA trigger failed: ")


def test_an_invalid_instance_is_a_final_invalid_poll(
    iotda_api: ScriptedIoTDA, fake_clock: FakeClock
) -> None:
    (poll,) = take_polls(1, instance_id="NOT/AN/ID")
    assert poll.final
    assert poll.reason == "invalid"
    assert "instance_id" in (poll.error or "")
    assert iotda_api.requests == []


def test_unexpected_errors_are_final_exception_polls(
    iotda_api: ScriptedIoTDA, fake_clock: FakeClock
) -> None:
    iotda_api.script = [RuntimeError("boom"), history("PENDING")]
    broken, fine = take_polls(2)
    assert broken.final
    assert broken.reason == "exception"
    assert broken.error == "IoTDA trigger failed: RuntimeError: boom"
    assert fine.ok


# -- the connection read the hooks of a loop share -------------------------------------------


def count_reads(monkeypatch: pytest.MonkeyPatch, *, delay: float = 0.0) -> list[str]:
    """Count the connection reads of every async hook (optionally slow ones)."""
    from airflow.sdk import BaseHook

    reads: list[str] = []
    real = BaseHook.aget_connection

    async def counting(conn_id: str) -> Any:
        reads.append(conn_id)
        await asyncio.sleep(delay)
        return await real(conn_id)

    monkeypatch.setattr(iotda_async.BaseHook, "aget_connection", staticmethod(counting))
    return reads


def test_hooks_starting_together_read_the_connection_once(
    iotda_conn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads = count_reads(monkeypatch, delay=0.01)  # all 200 hooks ask while the read is running

    async def one() -> Any:
        async with IoTDAAsyncHook() as hook:
            return await hook.get_config()

    async def scenario() -> list[Any]:
        return await asyncio.gather(*(one() for _ in range(200)))

    configs = asyncio.run(scenario())
    assert reads == ["iotda_default"]
    assert all(c is configs[0] for c in configs)
    assert configs[0].credentials.secret_key == TEST_SK


def test_a_failed_read_is_not_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    reads = count_reads(monkeypatch)
    monkeypatch.delenv("AIRFLOW_CONN_IOTDA_DEFAULT", raising=False)

    async def scenario() -> list[str]:
        outcomes = []
        async with IoTDAAsyncHook():  # holds the loop's share across both attempts
            for _ in range(2):
                try:
                    async with IoTDAAsyncHook() as hook:
                        await hook.get_config()
                except Exception as exc:
                    outcomes.append(type(exc).__name__)
        return outcomes

    assert len(asyncio.run(scenario())) == 2
    assert reads == ["iotda_default", "iotda_default"]


def test_a_cancelled_waiter_does_not_cancel_the_shared_read(
    iotda_conn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads = count_reads(monkeypatch, delay=0.05)

    async def scenario() -> Any:
        async with IoTDAAsyncHook() as first, IoTDAAsyncHook() as second:
            doomed = asyncio.ensure_future(first.get_config())
            kept = asyncio.ensure_future(second.get_config())
            await asyncio.sleep(0.01)
            doomed.cancel()
            return await kept

    assert asyncio.run(scenario()).credentials.secret_key == TEST_SK
    assert reads == ["iotda_default"]


def test_the_read_expires_and_can_be_forgotten(
    iotda_conn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads = count_reads(monkeypatch)

    async def read_twice() -> None:
        async with IoTDAAsyncHook():
            for _ in range(2):
                async with IoTDAAsyncHook() as hook:
                    await hook.get_config()

    async def read_forget_read() -> None:
        async with IoTDAAsyncHook():
            async with IoTDAAsyncHook() as hook:
                await hook.get_config()
            iotda_async.forget_connection("iotda_default")
            async with IoTDAAsyncHook() as hook:
                await hook.get_config()

    asyncio.run(read_twice())
    assert len(reads) == 1
    asyncio.run(read_forget_read())
    assert len(reads) == 3
    monkeypatch.setattr(iotda_async, "CONFIG_TTL", 1e-9)  # expired by the next hook
    asyncio.run(read_twice())
    assert len(reads) == 5
    monkeypatch.setattr(iotda_async, "CONFIG_TTL", 0)  # off: every hook reads
    asyncio.run(read_twice())
    assert len(reads) == 7


def test_a_hook_outside_async_with_reads_by_itself(
    iotda_conn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads = count_reads(monkeypatch)

    async def scenario() -> None:
        for _ in range(2):
            await IoTDAAsyncHook().get_config()

    asyncio.run(scenario())
    assert len(reads) == 2


def test_nothing_of_a_poll_stays_alive_while_the_stream_sleeps(
    iotda_api: ScriptedIoTDA, fake_clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """1,000 waiting triggers must not hold 1,000 parsed pages between polls: every full
    garbage collection of the triggerer would walk them (issue 23's start-up stall)."""
    import gc
    import weakref

    fake_clock.now = START
    iotda_api.script = [history("PENDING"), history("RUNNING")]
    alive_while_asleep: list[bool] = []
    refs: list[weakref.ref[InstancePoll]] = []

    async def sleep(seconds: float) -> None:
        gc.collect()
        alive_while_asleep.extend(ref() is not None for ref in refs)

    monkeypatch.setattr(clock, "sleep", sleep)

    async def run() -> None:
        stream = poll_instance("iotda_default", TEST_INSTANCE, 10.0)
        first = await anext(stream)
        assert first.tasks  # a real page, parsed
        refs.append(weakref.ref(first))
        del first
        await anext(stream)  # sleeps one interval first, then polls again
        await stream.aclose()  # type: ignore[attr-defined]

    asyncio.run(run())
    assert alive_while_asleep == [False]
