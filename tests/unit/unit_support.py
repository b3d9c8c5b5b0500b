"""Shared values and helpers of the unit tests.

The values equal those of ``tests/conftest.py``.  They live in a module with a unique name because
``from conftest import ...`` picks whichever ``conftest`` module pytest imported last (another
test folder's ``conftest.py`` when the whole suite runs).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import pytest

from airflow_provider_iotda.auth import expected_authorization, parse_authorization

TEST_AK = "TESTACCESSKEY0000001"
TEST_SK = "TESTSECRETKEY-do-not-leak-9f3a1c"
TEST_TOKEN = "TESTSECURITYTOKEN-do-not-leak-77aa"
TEST_PROJECT = "0123456789abcdef0123456789abcdef"
TEST_INSTANCE = "6b6f5c3e-1f1a-4e55-9d5a-0123456789ab"
TEST_ENDPOINT = "https://iotda-mgmt.cn-north-4.myhuaweicloud.com"
TASKS_URL = f"{TEST_ENDPOINT}/v5/iot/{TEST_PROJECT}/iotda-instances/{TEST_INSTANCE}/tasks"

#: The example response of the API page (seed/list-instance-tasks.txt), verbatim.
API_EXAMPLE = """{
  "page" : {
    "count" : 1,
    "marker" : 1805431584415871305
  },
  "tasks" : [ {
    "task_id" : "075f413d-a3bb-4243-974d-8eb9221c2df8",
    "type" : "CREATE",
    "status" : "SUCCESS",
    "create_time" : "2020-08-19T01:52:49.493Z",
    "start_time" : "2020-08-19T01:52:49.492Z",
    "end_time" : "2020-08-19T01:52:49.492Z",
    "target_config" : null,
    "operate_window" : null
  }, {
    "task_id" : "075f413d-a3bb-4243-974d-8eb9221c1234",
    "type" : "MODIFY",
    "status" : "PENDING",
    "create_time" : "2021-08-19T01:52:49.493Z",
    "start_time" : "2021-08-19T01:52:49.492Z",
    "end_time" : "2021-08-19T01:52:49.492Z",
    "target_config" : {
      "flavor" : {
        "type" : "iotda.standard.s2",
        "size" : 2
      }
    },
    "operate_window" : {
      "start_time" : "18:00",
      "end_time" : "22:00"
    }
  } ]
}"""


def connection_json(login: str = TEST_AK, password: str = TEST_SK, **extra: object) -> str:
    """An ``AIRFLOW_CONN_*`` JSON value; an extra given as ``None`` is left out."""
    extras: dict[str, object] = {
        "region": "cn-north-4",
        "project_id": TEST_PROJECT,
        "instance_id": TEST_INSTANCE,
        "max_retries": 3,
    }
    extras.update(extra)
    extras = {k: v for k, v in extras.items() if v is not None}
    return json.dumps(
        {"conn_type": "huaweicloud_iotda", "login": login, "password": password, "extra": extras}
    )


def task(
    task_id: str,
    *,
    type: Any = "MODIFY",
    status: Any = "SUCCESS",
    create_time: Any = "2024-01-01T00:00:00.000Z",
    **more: Any,
) -> dict[str, Any]:
    """One task object as the API returns it (any JSON value allowed, to test bad ones)."""
    return {
        "task_id": task_id,
        "type": type,
        "status": status,
        "create_time": create_time,
        "start_time": None,
        "end_time": None,
        "target_config": None,
        "operate_window": None,
        **more,
    }


def page(tasks: list[dict[str, Any]], *, count: int | None = None, marker: Any = "") -> Any:
    """A ``ListInstanceTasks`` body; ``marker`` defaults to the last task's ID."""
    if marker == "":
        marker = tasks[-1]["task_id"] if tasks else None
    return {
        "page": {"count": len(tasks) if count is None else count, "marker": marker},
        "tasks": tasks,
    }


def verify_signature(request: Any, secret: str = TEST_SK) -> bool:
    """Whether a request recorded by requests-mock carries a valid signature for ``secret``."""
    value = request.headers["Authorization"]
    parts = urlsplit(request.url)
    received = {**request.headers, "Host": parts.netloc}
    body = request.body or b""
    payload = body.encode() if isinstance(body, str) else body
    expected = expected_authorization(
        parse_authorization(value),
        secret,
        request.method,
        parts.path,
        parts.query,
        received,
        payload,
    )
    return bool(expected == value)


@dataclass
class CapturedLogs:
    """Everything logged during a test: stdlib records and structlog events (Airflow's hooks)."""

    caplog: pytest.LogCaptureFixture
    events: list[dict[str, Any]]

    def text(self) -> str:
        """All of it as text, raw (before Airflow's masker could redact anything)."""
        return "\n".join([self.caplog.text, *(repr(event) for event in self.events)])

    def messages(self, level: str) -> list[str]:
        """Structlog events and stdlib records of ``level`` (``"warning"``...), as text."""
        found = [
            str(e["event"]) % tuple(e.get("positional_args", ()))
            for e in self.events
            if e.get("log_level") == level
        ]
        found += [
            r.getMessage() for r in self.caplog.records if r.levelname.lower() == level.lower()
        ]
        return found
