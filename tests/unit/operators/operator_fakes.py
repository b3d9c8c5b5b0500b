"""Helpers for the operator tests: a requests-mock fake of ListInstanceTasks, test IDs."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests_mock
from iotda_test_values import TEST_PROJECT, task_json, tasks_url
from iotda_test_values import connection_json as shared_connection_json

from airflow_provider_iotda.operators.iotda import IoTDAInstanceTaskListOperator

# Credentials of their own (the leak checks look for these); the rest is iotda_test_values'.
OP_AK = "OPTESTACCESSKEY00001"
OP_SK = "OPTEST-SECRET-KEY-do-not-leak-41c7"
OP_TOKEN = "OPTEST-SECURITY-TOKEN-do-not-leak-8d2e"
REPO = Path(__file__).resolve().parents[3]


def connection_json(**extra: object) -> str:
    """An ``AIRFLOW_CONN_*`` value for ``iotda_default`` with the operator tests' credentials
    (``None`` drops a default extra)."""
    return shared_connection_json(OP_AK, OP_SK, **extra)


# Instance IDs used by the tests (valid: [a-f0-9-]).
INSTANCE_A = "aaaaaaaa-0000-4000-8000-00000000000a"
INSTANCE_B = "bbbbbbbb-0000-4000-8000-00000000000b"
INSTANCE_C = "cccccccc-0000-4000-8000-00000000000c"


def api_task(
    task_id: str,
    type: str = "MODIFY",
    status: str = "SUCCESS",
    create_time: str | None = "2024-05-01T10:00:00.000Z",
    **fields: Any,
) -> dict[str, Any]:
    """A task object as the API returns it (``status_detail``/``progress`` only when given)."""
    return task_json(task_id, status, type=type, create_time=create_time, **fields)


def op(**kwargs: Any) -> IoTDAInstanceTaskListOperator:
    """The operator with ``task_id="dump"`` unless given."""
    kwargs.setdefault("task_id", "dump")
    return IoTDAInstanceTaskListOperator(**kwargs)


def expected(instance_id: str, tasks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The records the operator makes of ``tasks`` (as the API lists them)."""
    return [{"instance_id": instance_id, "project_id": TEST_PROJECT, **t} for t in tasks]


def listing(directory: Path) -> list[str]:
    """The names in ``directory`` (none if it does not exist)."""
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


class FakeIoTDA:
    """Serves each instance's task list (newest first) with real marker paging.

    ``fail[instance_id]`` is a status code answered for that instance; ``on_request`` is
    called (in the requesting thread) before each answer.  :meth:`answer` is the whole logic;
    requests-mock (``mocker``) or :class:`LoopbackIoTDA` (a real socket) serve it.
    """

    def __init__(self, mocker: requests_mock.Mocker | None = None) -> None:
        self.mocker = mocker
        self.instances: dict[str, list[dict[str, Any]]] = {}
        self.fail: dict[str, int] = {}
        self.on_request: Callable[[str], None] | None = None
        self.requests: list[tuple[str, dict[str, list[str]]]] = []
        self._lock = threading.Lock()

    def add(self, instance_id: str, tasks: list[dict[str, Any]]) -> None:
        self.instances[instance_id] = tasks
        if self.mocker is not None:
            self.mocker.get(tasks_url(instance_id), json=self._mock_callback(instance_id))

    def answer(self, instance_id: str, qs: dict[str, list[str]]) -> tuple[int, dict[str, Any]]:
        """(status, JSON body) for one list call with query ``qs``."""
        with self._lock:
            self.requests.append((instance_id, qs))
        if self.on_request is not None:
            self.on_request(instance_id)
        status = self.fail.get(instance_id)
        if status is not None:
            return status, {"error_code": "IOTDA.000006", "error_msg": f"injected {status}"}
        tasks = self.instances[instance_id]
        marker = qs.get("marker", [None])[0]
        limit = int(qs.get("limit", ["500"])[0])
        start = 0
        if marker is not None:
            start = next(i for i, t in enumerate(tasks) if t["task_id"] == marker) + 1
        page = tasks[start : start + limit]
        return 200, {
            "tasks": page,
            "page": {"count": len(tasks), "marker": page[-1]["task_id"] if page else None},
        }

    def _mock_callback(self, instance_id: str) -> Callable[[Any, Any], Any]:
        def callback(request: Any, context: Any) -> Any:
            status, body = self.answer(instance_id, request.qs)
            context.status_code = status
            context.headers["X-Request-Id"] = "req-1"
            return body

        return callback

    def requests_for(self, instance_id: str) -> list[dict[str, list[str]]]:
        return [qs for inst, qs in self.requests if inst == instance_id]


_TASKS_PATH = re.compile(r"/v5/iot/[^/]+/iotda-instances/([a-f0-9-]+)/tasks")


class LoopbackIoTDA(FakeIoTDA):
    """:class:`FakeIoTDA` on a real HTTP socket on 127.0.0.1, one thread per connection.

    requests-mock serialises every request behind one global lock, so concurrency can only be
    observed through a real server.  Signatures are not checked here.
    """

    def __init__(self) -> None:
        super().__init__()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                match = _TASKS_PATH.fullmatch(parts.path)
                if match is None or match.group(1) not in fake.instances:
                    status, body = 404, {"error_code": "IOTDA.000404", "error_msg": "no such"}
                else:
                    status, body = fake.answer(match.group(1), parse_qs(parts.query))
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> LoopbackIoTDA:
        self.thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)
