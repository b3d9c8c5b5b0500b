"""Helpers of the trigger unit tests: a scripted IoTDA behind httpx.MockTransport and a fake
clock; the shared values are in ``tests/iotda_test_values.py``."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from iotda_test_values import MODIFY_ID, OLD_MODIFY_ID, page_json, verify_signature
from iotda_test_values import task_json as shared_task_json


def task_json(task_id: str = MODIFY_ID, status: str = "PENDING", **fields: Any) -> dict[str, Any]:
    """One task as the API lists it (:func:`iotda_test_values.task_json`, PENDING)."""
    return shared_task_json(task_id, status, **fields)


def page(*tasks: dict[str, Any]) -> dict[str, Any]:
    """A ``ListInstanceTasks`` answer without a marker."""
    return page_json(list(tasks))


def history(status: str = "PENDING", **extra: Any) -> dict[str, Any]:
    """The MODIFY we wait for (newest) and an older FAILED MODIFY."""
    return page(
        task_json(MODIFY_ID, status, **extra),
        task_json(
            OLD_MODIFY_ID,
            "FAILED",
            create_time="2024-04-01T10:00:00.000Z",
            status_detail="old failure",
        ),
    )


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
