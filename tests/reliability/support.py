"""Shared values and helpers of the reliability tests.

The credentials equal those of ``tests/conftest.py`` (``from conftest import`` is ambiguous
when several test folders have a conftest, so they are repeated here).
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

TEST_AK = "TESTACCESSKEY0000001"
TEST_SK = "TESTSECRETKEY-do-not-leak-9f3a1c"
TEST_TOKEN = "TESTSECURITYTOKEN-do-not-leak-77aa"
TEST_PROJECT = "0123456789abcdef0123456789abcdef"
TEST_INSTANCE = "6b6f5c3e-1f1a-4e55-9d5a-0123456789ab"
TEST_ENDPOINT = "https://iotda-mgmt.cn-north-4.myhuaweicloud.com"
TASKS_URL = f"{TEST_ENDPOINT}/v5/iot/{TEST_PROJECT}/iotda-instances/{TEST_INSTANCE}/tasks"
SECRETS = (TEST_SK, TEST_TOKEN)
TASK_ID = "0a1b2c3d-0000-4000-8000-00000000aaaa"


def connection_json(login: str = TEST_AK, password: str = TEST_SK, **extra: Any) -> str:
    """An ``AIRFLOW_CONN_*`` JSON value; an extra given as ``None`` is left out."""
    extras: dict[str, Any] = {
        "region": "cn-north-4",
        "project_id": TEST_PROJECT,
        "instance_id": TEST_INSTANCE,
        "security_token": TEST_TOKEN,
        "max_retries": 3,
    }
    extras.update(extra)
    extras = {k: v for k, v in extras.items() if v is not None}
    return json.dumps(
        {"conn_type": "huaweicloud_iotda", "login": login, "password": password, "extra": extras}
    )


def task_json(task_id: str = TASK_ID, status: str = "SUCCESS", **extra: Any) -> dict[str, Any]:
    """One task as the API lists it."""
    return {
        "task_id": task_id,
        "type": "MODIFY",
        "status": status,
        "create_time": "2024-05-01T10:00:00.000Z",
        "start_time": None,
        "end_time": None,
        "target_config": None,
        "operate_window": None,
        **extra,
    }


def page_json(tasks: list[dict[str, Any]], marker: str | None = None) -> dict[str, Any]:
    """A ``ListInstanceTasks`` answer."""
    return {"page": {"count": len(tasks), "marker": marker}, "tasks": tasks}


class SilentServer:
    """A loopback TCP server that accepts connections and never answers (or, with
    ``headers_only``, sends a 200 status line and headers and then never the body; with
    ``trickle``, headers and then one byte of body every ``trickle`` seconds, for ever)."""

    def __init__(self, *, headers_only: bool = False, trickle: float | None = None) -> None:
        self.headers_only = headers_only or trickle is not None
        self.trickle = trickle
        self.accepted = 0
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(64)
        self._sock.settimeout(0.05)
        self._open: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="silent-server", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._sock.getsockname()[1]}"

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.accepted += 1
            self._open.append(conn)  # held open, never answered
            if self.headers_only:
                conn.sendall(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    b"Content-Length: 100000\r\n\r\n"
                )
            if self.trickle is not None:
                threading.Thread(target=self._trickle, args=(conn,), daemon=True).start()

    def _trickle(self, conn: socket.socket) -> None:
        assert self.trickle is not None
        while not self._stop.wait(self.trickle):
            try:
                conn.sendall(b" ")
            except OSError:
                return

    def __enter__(self) -> SilentServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(5)
        for conn in self._open:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()
        self._sock.close()


@contextmanager
def silent_server(
    *, headers_only: bool = False, trickle: float | None = None
) -> Iterator[SilentServer]:
    """A running :class:`SilentServer`."""
    with SilentServer(headers_only=headers_only, trickle=trickle) as server:
        yield server


class CountingStream:
    """A file-like body of ``size`` bytes made on demand; ``produced`` counts what was read."""

    def __init__(self, size: int, chunk: bytes = b" ") -> None:
        self.size = size
        self.produced = 0
        self.closed = False
        self._chunk = chunk

    def read(self, amount: int | None = -1, *args: Any, **kwargs: Any) -> bytes:
        left = self.size - self.produced
        n = left if amount is None or amount < 0 else min(amount, left)
        self.produced += n
        return (self._chunk * (n // len(self._chunk) + 1))[:n]

    def close(self) -> None:
        self.closed = True
