"""Helpers of the reliability tests; the shared values are in ``tests/iotda_test_values.py``."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from iotda_test_values import MODIFY_ID, TEST_SK, TEST_TOKEN
from iotda_test_values import connection_json as shared_connection_json

SECRETS = (TEST_SK, TEST_TOKEN)
TASK_ID = MODIFY_ID


def connection_json(**extra: Any) -> str:
    """An ``AIRFLOW_CONN_*`` JSON value: :func:`iotda_test_values.connection_json` with a
    security token; an extra given as ``None`` (``security_token`` too) is left out."""
    return shared_connection_json(**{"security_token": TEST_TOKEN, **extra})


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
