"""Helpers of the trigger unit tests: a scripted IoTDA behind httpx.MockTransport and a fake
clock (a uniquely named module: see tests/unit/unit_support.py)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx

from airflow_provider_iotda.auth import expected_authorization, parse_authorization

TEST_SK = "TESTSECRETKEY-do-not-leak-9f3a1c"
TEST_PROJECT = "0123456789abcdef0123456789abcdef"
TEST_INSTANCE = "6b6f5c3e-1f1a-4e55-9d5a-0123456789ab"
TEST_ENDPOINT = "https://iotda-mgmt.cn-north-4.myhuaweicloud.com"
TASKS_URL = f"{TEST_ENDPOINT}/v5/iot/{TEST_PROJECT}/iotda-instances/{TEST_INSTANCE}/tasks"
MODIFY_ID = "0a1b2c3d-0000-4000-8000-00000000aaaa"
OLD_MODIFY_ID = "0a1b2c3d-0000-4000-8000-000000000001"


def task_json(
    task_id: str = MODIFY_ID,
    status: str = "PENDING",
    *,
    type: str = "MODIFY",
    create_time: str = "2024-05-01T10:00:00.000Z",
    **extra: Any,
) -> dict[str, Any]:
    return {
        "task_id": task_id,
        "type": type,
        "status": status,
        "create_time": create_time,
        "start_time": None,
        "end_time": None,
        "target_config": None,
        "operate_window": None,
        **extra,
    }


def page(*tasks: dict[str, Any]) -> dict[str, Any]:
    return {"page": {"count": len(tasks), "marker": None}, "tasks": list(tasks)}


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
        self._check_signature(request)
        index = min(len(self.requests), len(self.script)) - 1
        answer = self.script[index]
        if isinstance(answer, BaseException):
            raise answer
        if isinstance(answer, dict):
            return httpx.Response(200, json=answer)
        return answer

    def _check_signature(self, request: httpx.Request) -> None:
        parsed = parse_authorization(request.headers["Authorization"])
        parts = urlsplit(str(request.url))
        expected = expected_authorization(
            parsed,
            TEST_SK,
            request.method,
            parts.path,
            parts.query,
            dict(request.headers),
            request.content,
        )
        if expected != request.headers["Authorization"]:
            self.bad_signatures += 1

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
