"""Fakes for async code (the async hook and the triggers): a scripted IoTDA behind
httpx.MockTransport, a fake clock, and a look at the event loop's shared client; builders and
shared values are in ``tests/iotda_test_values.py``."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from iotda_test_values import verify_signature

from airflow_provider_iotda.hooks import iotda_async

Answer = httpx.Response | BaseException | dict[str, Any]


@dataclass
class ScriptedIoTDA:
    """Answers requests in order from ``script`` (the last answer repeats); records requests and
    checks every signature against the SK."""

    script: list[Answer] = field(default_factory=list)
    requests: list[httpx.Request] = field(default_factory=list)
    bad_signatures: int = 0
    client_threads: list[str] = field(default_factory=list)
    clients: list[httpx.AsyncClient] = field(default_factory=list)

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if not verify_signature(request):
            self.bad_signatures += 1
        index = min(len(self.requests), len(self.script)) - 1
        answer = self.script[index]
        if isinstance(answer, BaseException):
            raise answer
        if isinstance(answer, dict):
            return httpx.Response(200, json=answer)
        return answer

    def new_client(self, verify: bool) -> httpx.AsyncClient:
        """Stand-in for iotda_async._new_client (records the thread it is built in)."""
        self.client_threads.append(threading.current_thread().name)
        client = httpx.AsyncClient(transport=httpx.MockTransport(self.handle), verify=verify)
        self.clients.append(client)
        return client


class FakeClock:
    """Replaces the trigger's wall clock and sleep: sleeping moves the clock, instantly."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def time(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


def collect(agen_factory: Callable[[], Any]) -> list[Any]:
    """Run an async generator to its end in a fresh event loop; return everything it yielded."""

    async def run() -> list[Any]:
        return [event async for event in agen_factory()]

    return asyncio.run(run())


def shared_state() -> dict[str, int]:
    """Users, open clients and free request permits of the running loop's share."""
    share = iotda_async._SHARES.get(asyncio.get_running_loop())
    if share is None:
        return {"users": 0, "clients": 0, "free_permits": iotda_async.MAX_IN_FLIGHT}
    return {
        "users": share.users,
        "clients": len(share.clients),
        "free_permits": share.semaphore._value,
    }


async def run_shared(manager: Any, trigger_id: int, trigger: Any) -> list[Any]:
    """What Airflow 3.3's ``TriggerRunner.run_trigger`` does with a trigger that has a shared-
    stream key: subscribe to ``manager`` (a ``SharedStreamManager``), feed the subscription to
    ``filter_shared_stream``, then unsubscribe and clean up.  Returns the events' payloads."""
    key = trigger.shared_stream_key()
    assert key is not None, "the trigger opted out of sharing"
    stream = manager.subscribe(trigger_id=trigger_id, trigger=trigger, key=key)
    try:
        return [event.payload async for event in trigger.filter_shared_stream(stream)]
    finally:
        await manager.unsubscribe(trigger_id, key)
        await trigger.cleanup()


def add_resize_tasks(
    simulator: Any, instances: list[str], *, step: float, per_instance: int = 20
) -> dict[str, tuple[str, str]]:
    """``per_instance`` MODIFY tasks on each instance of ``simulator``: PENDING, RUNNING after
    ``step`` s, then FAILED (every third, with "resize result") or SUCCESS after ``2 * step``.
    Returns ``task_id -> (instance, final status)``."""
    expected: dict[str, tuple[str, str]] = {}
    for i, instance in enumerate(instances):
        for j in range(per_instance):
            final = "FAILED" if (i + j) % 3 == 0 else "SUCCESS"
            task_id = simulator.add_task(
                instance,
                "MODIFY",
                [("PENDING", 0), ("RUNNING", step), (final, 2 * step, "resize result")],
            )
            expected[task_id] = (instance, final)
    return expected
