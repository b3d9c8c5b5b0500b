"""``IoTDAHook`` against requests-mock: calls, paging, retries, validation, errors, secrets.

What both hooks must do alike is tested on both in tests/unit/test_transport.py."""

from __future__ import annotations

import datetime as dt
import json
import socket
import threading
import types
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pendulum
import pytest
import requests
import requests_mock
from iotda_test_values import (
    TASKS_URL,
    TEST_AK,
    TEST_ENDPOINT,
    TEST_INSTANCE,
    TEST_PROJECT,
    TEST_SK,
    TEST_TOKEN,
    connection_json,
    page,
    task_json,
    verify_signature,
)

from airflow_provider_iotda import api
from airflow_provider_iotda.errors import (
    IoTDAAuthError,
    IoTDABadRequestError,
    IoTDAError,
    IoTDAForbiddenError,
    IoTDAInvalidResponseError,
    IoTDANotFoundError,
    IoTDAPaginationError,
    IoTDAServerError,
    IoTDAThrottledError,
    IoTDATransportError,
)
from airflow_provider_iotda.hooks import iotda as iotda_hook_module
from airflow_provider_iotda.hooks.iotda import IoTDAHook
from airflow_provider_iotda.models import InstanceTask
from airflow_provider_iotda.retry import RetryPolicy

from ..unit_support import API_EXAMPLE, CapturedLogs

OTHER_INSTANCE = "0a0b0c0d-0000-4000-8000-00000000abcd"
OTHER_URL = TASKS_URL.replace(TEST_INSTANCE, OTHER_INSTANCE)


def _query(request: Any) -> dict[str, str]:
    """The query of a recorded request, case kept (requests-mock's ``qs`` lower-cases)."""
    return {k: v[0] for k, v in parse_qs(urlsplit(request.url).query).items()}


def _error(status: int, code: str = "IOTDA.000006", msg: str = "Invalid input data.") -> Any:
    return {
        "status_code": status,
        "json": {"error_code": code, "error_msg": msg},
        "headers": {"X-Request-Id": f"req-{status}"},
    }


OK_PAGE = {"status_code": 200, "json": page(*[task_json("aa01")])}


# -- one page ----------------------------------------------------------------------------------


def test_list_instance_tasks_one_page(mock: requests_mock.Mocker, hook: IoTDAHook) -> None:
    mock.get(TASKS_URL, text=API_EXAMPLE, headers={"X-Request-Id": "r1"})
    result = hook.list_instance_tasks()
    assert result.count == 1
    assert result.marker == "1805431584415871305"
    assert [t.task_id for t in result.tasks] == [
        "075f413d-a3bb-4243-974d-8eb9221c2df8",
        "075f413d-a3bb-4243-974d-8eb9221c1234",
    ]
    request = mock.last_request
    assert request is not None
    assert request.method == "GET"
    assert urlsplit(request.url).path == (
        f"/v5/iot/{TEST_PROJECT}/iotda-instances/{TEST_INSTANCE}/tasks"
    )
    assert urlsplit(request.url).query == ""
    assert request.headers["X-Project-Id"] == TEST_PROJECT
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Authorization"].startswith(f"SDK-HMAC-SHA256 Access={TEST_AK}, ")
    assert verify_signature(request)


@pytest.mark.parametrize("marker", ["1805431584415871305", 1805431584415871305])
def test_list_with_offset_limit_and_marker(
    mock: requests_mock.Mocker, hook: IoTDAHook, marker: str | int
) -> None:
    mock.get(TASKS_URL, json=page(*[]))
    hook.list_instance_tasks(offset=3, limit=20, marker=marker)
    assert mock.last_request is not None
    assert _query(mock.last_request) == {
        "offset": "3",
        "limit": "20",
        "marker": "1805431584415871305",
    }
    assert verify_signature(mock.last_request)


def test_explicit_instance_overrides_the_connection(
    mock: requests_mock.Mocker, hook: IoTDAHook
) -> None:
    mock.get(OTHER_URL, json=page(*[]))
    hook.list_instance_tasks(OTHER_INSTANCE)
    assert mock.call_count == 1


def test_instance_required_when_the_connection_names_none(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_IOTDA_DEFAULT", connection_json(instance_id=None))
    with requests_mock.Mocker() as mocker, pytest.raises(ValueError, match="instance_id"):
        IoTDAHook().list_instance_tasks()
    assert mocker.call_count == 0


def test_security_token_is_sent_and_signed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_IOTDA_DEFAULT", connection_json(security_token=TEST_TOKEN))
    with requests_mock.Mocker() as mocker:
        mocker.get(TASKS_URL, json=page(*[]))
        IoTDAHook().list_instance_tasks()
    request = mocker.last_request
    assert request is not None
    assert request.headers["X-Security-Token"] == TEST_TOKEN
    assert "x-security-token" in request.headers["Authorization"]
    assert verify_signature(request)


def test_derived_signing_for_an_instance_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    endpoint = "https://e447071c94.st1.iotda-app.cn-north-4.myhuaweicloud.com"
    monkeypatch.setenv(
        "AIRFLOW_CONN_IOTDA_DEFAULT", connection_json(endpoint=endpoint, auth="auto")
    )
    with requests_mock.Mocker() as mocker:
        mocker.get(TASKS_URL.replace(TEST_ENDPOINT, endpoint), json=page(*[]))
        IoTDAHook().list_instance_tasks()
    request = mocker.last_request
    assert request is not None
    assert request.headers["Authorization"].startswith(f"V11-HMAC-SHA256 Credential={TEST_AK}/")
    assert "/cn-north-4/iotdm, " in request.headers["Authorization"]
    assert verify_signature(request)


# -- session and timeouts ----------------------------------------------------------------------


def test_one_session_per_hook(mock: requests_mock.Mocker, monkeypatch: pytest.MonkeyPatch) -> None:
    created: list[requests.Session] = []

    class CountingSession(iotda_hook_module._Session):
        def __init__(self) -> None:
            super().__init__()
            created.append(self)

    monkeypatch.setattr(iotda_hook_module, "_Session", CountingSession)
    mock.get(TASKS_URL, json=page(*[]))
    hook = IoTDAHook()
    session = hook.get_conn()
    for _ in range(3):
        hook.list_instance_tasks()
    list(hook.iter_instance_tasks())
    assert hook.get_conn() is session
    assert len(created) == 1
    assert mock.call_count == 4
    hook.close()
    assert hook.get_conn() is not session  # a closed hook opens a new session when used again
    assert len(created) == 2


def test_timeouts_on_every_call_including_retries(
    monkeypatch: pytest.MonkeyPatch, retry_sleeps: list[float]
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_IOTDA_DEFAULT", connection_json(timeout=12))
    with requests_mock.Mocker() as mocker:
        mocker.get(TASKS_URL, [_error(503), _error(502), OK_PAGE, OK_PAGE])
        hook = IoTDAHook()
        hook.list_instance_tasks()
        hook.find_instance_task(instance_task_id="aa01")
    assert mocker.call_count == 4
    assert [r.timeout for r in mocker.request_history] == [(10.0, 12.0)] * 4


@pytest.mark.parametrize("verify", [True, False])
def test_verify_setting_reaches_every_request(
    monkeypatch: pytest.MonkeyPatch, verify: bool
) -> None:
    """verify=false must win even when REQUESTS_CA_BUNDLE is set (requests prefers it)."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")
    monkeypatch.setenv("AIRFLOW_CONN_IOTDA_DEFAULT", connection_json(verify=str(verify).lower()))
    with requests_mock.Mocker() as mocker:
        mocker.get(TASKS_URL, json=page(*[]))
        IoTDAHook().list_instance_tasks()
    assert mocker.last_request is not None
    if verify:
        assert mocker.last_request.verify is not False
    else:
        assert mocker.last_request.verify is False


def test_default_timeouts(mock: requests_mock.Mocker, hook: IoTDAHook) -> None:
    mock.get(TASKS_URL, json=page(*[]))
    hook.list_instance_tasks()
    assert mock.last_request is not None
    timeout: Any = mock.last_request.timeout
    connect, read = timeout
    assert 0 < connect <= 30
    assert 0 < read <= 120


# -- paging ------------------------------------------------------------------------------------


def _tasks(n: int) -> list[dict[str, Any]]:
    """``n`` tasks, newest (largest ID) first."""
    return [
        task_json(f"{i:08x}", create_time=f"2024-01-{1 + i % 28:02d}T00:00:00.000Z")
        for i in range(n, 0, -1)
    ]


def _server(all_tasks: list[dict[str, Any]], marker_as_number: bool = False):  # type: ignore[no-untyped-def]
    """A requests-mock callback serving ``all_tasks`` like IoTDA (marker = last ID)."""

    def respond(request: Any, context: Any) -> Any:
        query = _query(request)
        limit = int(query.get("limit", 500))
        marker = query.get("marker")
        rows = [t for t in all_tasks if marker is None or t["task_id"] < marker][:limit]
        last = rows[-1]["task_id"] if rows else None
        if marker_as_number and last is not None:
            last = int(last, 16)
        return page(*rows, count=len(all_tasks), marker=last)

    return respond


def test_iter_follows_the_marker_until_a_short_page(
    mock: requests_mock.Mocker, hook: IoTDAHook
) -> None:
    all_tasks = _tasks(7)
    mock.get(TASKS_URL, json=_server(all_tasks))
    seen = [t.task_id for t in hook.iter_instance_tasks(page_size=3)]
    assert seen == [t["task_id"] for t in all_tasks]
    queries = [_query(r) for r in mock.request_history]
    assert queries == [
        {"limit": "3"},
        {"limit": "3", "marker": "00000005"},
        {"limit": "3", "marker": "00000002"},
    ]


def test_iter_stops_at_an_empty_page(mock: requests_mock.Mocker, hook: IoTDAHook) -> None:
    mock.get(TASKS_URL, json=_server(_tasks(4)))
    assert len(list(hook.iter_instance_tasks(page_size=2))) == 4
    # pages of 2, 2, then an empty page
    assert mock.call_count == 3
    markers = [_query(r).get("marker") for r in mock.request_history]
    assert len(markers) == len(set(markers))  # no page fetched twice


def test_iter_default_page_is_one_request(mock: requests_mock.Mocker, hook: IoTDAHook) -> None:
    mock.get(TASKS_URL, json=_server(_tasks(20)))
    assert len(list(hook.iter_instance_tasks())) == 20
    assert mock.call_count == 1
    assert mock.last_request is not None
    assert _query(mock.last_request) == {}


def test_iter_without_page_marker_uses_the_last_task_id(
    mock: requests_mock.Mocker, hook: IoTDAHook
) -> None:
    mock.get(
        TASKS_URL,
        [
            {"json": {"tasks": _tasks(4)[:2]}},
            {"json": {"tasks": _tasks(4)[2:]}},
            {"json": {"tasks": []}},
        ],
    )
    assert len(list(hook.iter_instance_tasks(page_size=2))) == 4
    assert [_query(r).get("marker") for r in mock.request_history] == [
        None,
        "00000003",
        "00000001",
    ]


def test_iter_accepts_number_markers(mock: requests_mock.Mocker, hook: IoTDAHook) -> None:
    """As in the API page's example, the marker may come as a JSON number."""
    ids = [15, 14, 13, 12, 11]

    def respond(request: Any, context: Any) -> Any:
        query = _query(request)
        marker = int(query["marker"]) if "marker" in query else None
        rows = [i for i in ids if marker is None or i < marker][: int(query["limit"])]
        return page(*[task_json(str(i)) for i in rows], marker=rows[-1] if rows else None)

    mock.get(TASKS_URL, json=respond)
    assert [t.task_id for t in hook.iter_instance_tasks(page_size=2)] == [str(i) for i in ids]
    assert [_query(r).get("marker") for r in mock.request_history] == [None, "14", "12"]


def test_iter_repeated_marker_is_a_clear_error(mock: requests_mock.Mocker, hook: IoTDAHook) -> None:
    same_page = {"json": page(*_tasks(2), marker="00000001")}
    mock.get(TASKS_URL, [same_page, same_page, same_page])
    with pytest.raises(IoTDAPaginationError, match="repeated page marker '00000001'"):
        list(hook.iter_instance_tasks(page_size=2))
    assert mock.call_count == 2  # the repeated page is never requested again


def test_iter_marker_cycle_is_detected(mock: requests_mock.Mocker, hook: IoTDAHook) -> None:
    mock.get(
        TASKS_URL,
        [
            {"json": page(*_tasks(2), marker="a")},
            {"json": page(*_tasks(2), marker="b")},
            {"json": page(*_tasks(2), marker="a")},
        ],
    )
    with pytest.raises(IoTDAPaginationError):
        list(hook.iter_instance_tasks(page_size=2))
    assert [_query(r).get("marker") for r in mock.request_history] == [None, "a", "b"]


# -- get / find --------------------------------------------------------------------------------

LISTED = [
    task_json("0c", type="MODIFY", status="RUNNING", create_time="2024-05-03T00:00:00.000Z"),
    task_json("0b", type="CREATE", status="SUCCESS", create_time="2024-05-02T00:00:00.000Z"),
    task_json("0a", type="MODIFY", status="SUCCESS", create_time="2024-05-01T00:00:00.000Z"),
]


def test_get_instance_task(mock: requests_mock.Mocker, hook: IoTDAHook) -> None:
    mock.get(TASKS_URL, json=page(*LISTED))
    found = hook.get_instance_task("0b")
    assert isinstance(found, InstanceTask)
    assert (found.task_id, found.type) == ("0b", "CREATE")
    assert hook.get_instance_task("0d") is None


def test_get_instance_task_on_another_instance(mock: requests_mock.Mocker, hook: IoTDAHook) -> None:
    mock.get(OTHER_URL, json=page(*LISTED))
    found = hook.get_instance_task("0a", OTHER_INSTANCE)
    assert found is not None
    assert found.task_id == "0a"
    assert mock.call_count == 1


def test_find_by_id(mock: requests_mock.Mocker, hook: IoTDAHook) -> None:
    mock.get(TASKS_URL, json=page(*LISTED))
    found = hook.find_instance_task(instance_task_id="0c")
    assert found is not None
    assert found.status == "RUNNING"
    assert hook.find_instance_task(instance_task_id="ff") is None


@pytest.mark.parametrize(
    ("created_after", "expected"),
    [
        (None, "0c"),
        ("2024-05-01T00:00:00Z", "0c"),
        ("2024-05-03T00:00:00Z", "0c"),  # at: inclusive
        ("2024-05-03T00:00:00.001Z", None),
        (dt.datetime(2024, 5, 3, 8, 0, tzinfo=dt.timezone(dt.timedelta(hours=8))), "0c"),
        (pendulum.datetime(2024, 5, 4, tz="UTC"), None),
    ],
)
def test_find_newest_of_a_type_created_at_or_after(
    mock: requests_mock.Mocker,
    hook: IoTDAHook,
    created_after: str | dt.datetime | None,
    expected: str | None,
) -> None:
    mock.get(TASKS_URL, json=page(*LISTED))
    found = hook.find_instance_task(instance_task_type="MODIFY", created_after=created_after)
    assert (found.task_id if found else None) == expected
    assert mock.call_count == 1


def test_find_needs_exactly_one_criterion(mock: requests_mock.Mocker, hook: IoTDAHook) -> None:
    with pytest.raises(ValueError, match="exactly one"):
        hook.find_instance_task()
    with pytest.raises(ValueError, match="exactly one"):
        hook.find_instance_task(instance_task_id="0a", instance_task_type="MODIFY")
    assert mock.call_count == 0


# -- retries -----------------------------------------------------------------------------------


def test_429_honours_retry_after(
    mock: requests_mock.Mocker, hook: IoTDAHook, retry_sleeps: list[float]
) -> None:
    throttled = _error(429, "APIG.0308", "The throttling threshold has been reached")
    throttled["headers"]["Retry-After"] = "7"
    mock.get(TASKS_URL, [throttled, OK_PAGE])
    assert [t.task_id for t in hook.list_instance_tasks().tasks] == ["aa01"]
    assert mock.call_count == 2
    assert retry_sleeps == [7.0]


@pytest.mark.parametrize(
    "failure",
    [
        _error(429, "APIG.0308", "throttled"),
        _error(500, "IOTDA.999999", "internal"),
        _error(502),
        _error(503),
        {"status_code": 503, "text": "<html>Service Unavailable</html>"},
        {"exc": requests.exceptions.ConnectionError("connection reset by peer")},
        {"exc": requests.exceptions.ConnectTimeout("connect timed out")},
        {"exc": requests.exceptions.ReadTimeout("read timed out")},
        {"exc": requests.exceptions.ChunkedEncodingError("truncated")},
        {"status_code": 200, "text": '{"tasks": [{"task_id": "aa'},
        {"status_code": 200, "text": "<html>maintenance</html>"},
    ],
)
def test_transient_failures_are_retried_with_backoff(
    mock: requests_mock.Mocker,
    hook: IoTDAHook,
    retry_sleeps: list[float],
    failure: dict[str, Any],
) -> None:
    mock.get(TASKS_URL, [failure, failure, failure, OK_PAGE])
    assert [t.task_id for t in hook.list_instance_tasks().tasks] == ["aa01"]
    assert mock.call_count == 4  # three retries are allowed by default
    assert len(retry_sleeps) == 3
    # exponential backoff with full jitter: each wait within its doubling ceiling
    for attempt, wait in enumerate(retry_sleeps, start=1):
        assert 0 <= wait <= 0.5 * 2 ** (attempt - 1)
    for request in mock.request_history:
        assert verify_signature(request)


@pytest.mark.parametrize(
    ("failure", "error"),
    [
        (_error(503), IoTDAServerError),
        (_error(429), IoTDAThrottledError),
        ({"exc": requests.exceptions.ConnectionError("refused")}, IoTDATransportError),
        ({"exc": requests.exceptions.ReadTimeout("slow")}, IoTDATransportError),
        ({"status_code": 200, "text": "not json"}, IoTDAInvalidResponseError),
    ],
)
def test_gives_up_after_the_retries_with_the_last_error(
    monkeypatch: pytest.MonkeyPatch,
    retry_sleeps: list[float],
    failure: dict[str, Any],
    error: type[IoTDAError],
) -> None:
    # No max_retries in the connection: the default allows at least 3 retries.
    monkeypatch.setenv("AIRFLOW_CONN_IOTDA_DEFAULT", connection_json(max_retries=None))
    with requests_mock.Mocker() as mocker:
        mocker.get(TASKS_URL, [failure] * 10)
        with pytest.raises(error):
            IoTDAHook().list_instance_tasks()
    assert mocker.call_count == 4
    assert len(retry_sleeps) == 3


def test_max_retries_from_the_connection(
    monkeypatch: pytest.MonkeyPatch, retry_sleeps: list[float]
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_IOTDA_DEFAULT", connection_json(max_retries=1))
    with requests_mock.Mocker() as mocker:
        mocker.get(TASKS_URL, [_error(503)] * 5)
        with pytest.raises(IoTDAServerError):
            IoTDAHook().list_instance_tasks()
    assert mocker.call_count == 2


def test_retry_policy_override(mock: requests_mock.Mocker, retry_sleeps: list[float]) -> None:
    mock.get(TASKS_URL, [_error(503)] * 10)
    with pytest.raises(IoTDAServerError):
        IoTDAHook(retry_policy=RetryPolicy(max_retries=5, base_delay=0.1)).list_instance_tasks()
    assert mock.call_count == 6
    assert all(0 <= w <= 3.2 for w in retry_sleeps)


def test_retries_are_logged(
    mock: requests_mock.Mocker, hook: IoTDAHook, logs: CapturedLogs
) -> None:
    mock.get(TASKS_URL, [_error(503, "IOTDA.000500", "busy"), OK_PAGE])
    hook.list_instance_tasks()
    warnings = [m for m in logs.messages("warning") if "retrying" in m]
    assert len(warnings) == 1
    assert "IoTDA 503 IOTDA.000500: busy (request id req-503)" in warnings[0]


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, IoTDABadRequestError),
        (401, IoTDAAuthError),
        (403, IoTDAForbiddenError),
        (404, IoTDANotFoundError),
    ],
)
def test_client_errors_are_not_retried(
    mock: requests_mock.Mocker,
    hook: IoTDAHook,
    retry_sleeps: list[float],
    status: int,
    error: type[IoTDAError],
) -> None:
    mock.get(TASKS_URL, [_error(status), OK_PAGE])
    with pytest.raises(error) as caught:
        hook.list_instance_tasks()
    assert mock.call_count == 1
    assert retry_sleeps == []
    assert caught.value.status == status
    assert caught.value.request_id == f"req-{status}"


# -- errors ------------------------------------------------------------------------------------


def test_error_message_and_fields(mock: requests_mock.Mocker, hook: IoTDAHook) -> None:
    mock.get(TASKS_URL, **_error(400))
    with pytest.raises(IoTDABadRequestError) as caught:
        hook.list_instance_tasks()
    assert str(caught.value) == ("IoTDA 400 IOTDA.000006: Invalid input data. (request id req-400)")
    assert caught.value.error_code == "IOTDA.000006"
    assert caught.value.error_msg == "Invalid input data."


def test_401_mentions_clock_skew(mock: requests_mock.Mocker, hook: IoTDAHook) -> None:
    mock.get(TASKS_URL, **_error(401, "APIG.0301", "Incorrect IAM authentication information"))
    with pytest.raises(IoTDAAuthError, match="clock"):
        hook.list_instance_tasks()


@pytest.mark.parametrize(
    "body",
    [
        {"page": {"count": 0}},
        {"tasks": "none"},
        {"tasks": [{"task_id": "a"}]},
        {"tasks": [task_json("a", create_time=12)]},
        ["tasks"],
        "tasks",
        42,
        None,
    ],
)
def test_wrong_shape_is_a_clear_error_without_retry(
    mock: requests_mock.Mocker, hook: IoTDAHook, retry_sleeps: list[float], body: Any
) -> None:
    mock.get(TASKS_URL, text=json.dumps(body))
    with pytest.raises(IoTDAInvalidResponseError, match=r"^IoTDA answer"):
        hook.list_instance_tasks()
    assert mock.call_count == 1


def test_body_over_the_cap_by_content_length(
    mock: requests_mock.Mocker, hook: IoTDAHook, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(api, "MAX_BODY_BYTES", 1000)
    body = json.dumps(page(*_tasks(40))).encode()
    assert len(body) > 1000
    mock.get(TASKS_URL, content=body, headers={"Content-Length": str(len(body))})
    with pytest.raises(IoTDAInvalidResponseError, match="exceeds the 1000-byte limit"):
        hook.list_instance_tasks()
    assert mock.call_count == 1


def test_body_over_the_cap_while_streaming(
    mock: requests_mock.Mocker, hook: IoTDAHook, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(api, "MAX_BODY_BYTES", 1000)
    body = json.dumps(page(*_tasks(40))).encode()

    def stream(request: Any, context: Any) -> bytes:
        context.headers.pop("Content-Length", None)
        return body

    mock.get(TASKS_URL, content=stream)
    with pytest.raises(IoTDAInvalidResponseError, match="exceeds the 1000-byte limit"):
        hook.list_instance_tasks()


def test_body_under_the_cap_is_read(mock: requests_mock.Mocker, hook: IoTDAHook) -> None:
    mock.get(TASKS_URL, json=page(*_tasks(20)))
    assert len(hook.list_instance_tasks().tasks) == 20


# -- validation before any request ------------------------------------------------------------

BAD_IDS = [
    "../x",
    "/",
    "..",
    "abc%2Fdef",
    "abc?limit=1",
    "abc#x",
    "abc\n",
    "ab c",
    "ä",
    "A" * 3,
    "a" * 37,
]


@pytest.mark.parametrize("bad", BAD_IDS)
def test_bad_instance_id_is_rejected_before_any_request(
    mock: requests_mock.Mocker, hook: IoTDAHook, bad: str
) -> None:
    calls: list[Callable[[], object]] = [
        lambda: hook.list_instance_tasks(bad),
        lambda: list(hook.iter_instance_tasks(bad)),
        lambda: hook.get_instance_task("0a", bad),
        lambda: hook.find_instance_task(bad, instance_task_type="MODIFY"),
    ]
    for call in calls:
        with pytest.raises(ValueError, match="instance_id must be 1 to 36 characters of") as caught:
            call()
        assert repr(bad)[:40] in str(caught.value)
    assert mock.call_count == 0


@pytest.mark.parametrize("bad", [*BAD_IDS[:-1], "f" * 65])
def test_bad_task_id_is_rejected_before_any_request(
    mock: requests_mock.Mocker, hook: IoTDAHook, bad: str
) -> None:
    with pytest.raises(ValueError, match="instance_task_id must be 1 to 64 characters"):
        hook.get_instance_task(bad)
    with pytest.raises(ValueError, match="instance_task_id must be"):
        hook.find_instance_task(instance_task_id=bad)
    assert mock.call_count == 0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"offset": -1}, "offset must be an integer from 0 to 500; got -1"),
        ({"offset": 501}, "offset must be an integer from 0 to 500; got 501"),
        ({"limit": 0}, "limit must be an integer from 1 to 500; got 0"),
        ({"limit": 501}, "limit must be an integer from 1 to 500; got 501"),
        ({"limit": "ten"}, "limit must be an integer from 1 to 500; got 'ten'"),
        ({"marker": "a/b"}, "marker must be 1 to 128 characters"),
        ({"marker": "a&limit=1"}, "marker must be"),
    ],
)
def test_bad_paging_arguments_are_rejected_before_any_request(
    mock: requests_mock.Mocker, hook: IoTDAHook, kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        hook.list_instance_tasks(**kwargs)
    assert mock.call_count == 0


def test_bad_page_size_type_or_time_rejected_before_any_request(
    mock: requests_mock.Mocker, hook: IoTDAHook
) -> None:
    with pytest.raises(ValueError, match="page_size must be an integer from 1 to 500"):
        list(hook.iter_instance_tasks(page_size=0))
    with pytest.raises(ValueError, match="instance_task_type must be an upper-case name"):
        hook.find_instance_task(instance_task_type="modify/..")
    with pytest.raises(ValueError, match="created_after must be a datetime or an ISO-8601"):
        hook.find_instance_task(instance_task_type="MODIFY", created_after="last tuesday")
    assert mock.call_count == 0


def test_bad_project_in_the_connection_is_rejected_before_any_request(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_IOTDA_DEFAULT", connection_json(project_id="../p"))
    with requests_mock.Mocker() as mocker, pytest.raises(ValueError, match="extra project_id"):
        IoTDAHook().list_instance_tasks()
    assert mocker.call_count == 0


# -- test_connection ----------------------------------------------------------------------------


def test_connection_ok(mock: requests_mock.Mocker, hook: IoTDAHook) -> None:
    mock.get(TASKS_URL, json=page(*[task_json("0a")], count=7))
    ok, message = hook.test_connection()
    assert ok is True
    assert TEST_INSTANCE in message
    assert "7 task" in message
    assert mock.call_count == 1
    assert mock.last_request is not None
    assert _query(mock.last_request) == {"limit": "1"}


@pytest.mark.parametrize(
    ("failure", "reason"),
    [
        (
            _error(401, "APIG.0301", "Incorrect IAM authentication information"),
            "Credentials rejected",
        ),
        (_error(403, "IOTDA.000003", "Forbidden"), "Access denied"),
        (_error(404, "IOTDA.014000", "Instance not found"), "IoTDA 404"),
        (_error(503), "IoTDA 503"),
        ({"exc": requests.exceptions.ConnectionError("refused")}, "Could not talk to IoTDA"),
        ({"status_code": 200, "text": "garbage"}, "not JSON"),
    ],
)
def test_connection_failures(
    mock: requests_mock.Mocker,
    hook: IoTDAHook,
    retry_sleeps: list[float],
    failure: dict[str, Any],
    reason: str,
) -> None:
    mock.get(TASKS_URL, [failure, OK_PAGE])
    ok, message = hook.test_connection()
    assert ok is False
    assert reason in message
    assert mock.call_count == 1  # one attempt: a connection test answers fast
    assert TEST_SK not in message


@pytest.mark.parametrize("status", [400, 404])
def test_connection_without_instance_accepts_unknown_instance(
    monkeypatch: pytest.MonkeyPatch, status: int
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_IOTDA_DEFAULT", connection_json(instance_id=None))
    with requests_mock.Mocker() as mocker:
        mocker.get(requests_mock.ANY, **_error(status, "IOTDA.014000", "instance not found"))
        ok, message = IoTDAHook().test_connection()
    assert ok is True
    assert "Credentials accepted" in message
    assert "no instance_id" in message
    assert mocker.call_count == 1
    assert mocker.last_request is not None
    assert verify_signature(mocker.last_request)


def test_connection_without_instance_still_fails_on_bad_credentials(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_IOTDA_DEFAULT", connection_json(instance_id=None))
    with requests_mock.Mocker() as mocker:
        mocker.get(requests_mock.ANY, **_error(401, "APIG.0301", "bad signature"))
        ok, message = IoTDAHook().test_connection()
    assert ok is False
    assert "Credentials rejected" in message
    assert "clock" in message


def test_connection_with_a_broken_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_IOTDA_DEFAULT", connection_json(project_id=None))
    with requests_mock.Mocker() as mocker:
        ok, message = IoTDAHook().test_connection()
    assert ok is False
    assert "project_id" in message
    assert mocker.call_count == 0


# -- secrets -------------------------------------------------------------------------------------


def test_secrets_never_in_logs_errors_or_reprs(
    monkeypatch: pytest.MonkeyPatch, logs: CapturedLogs, retry_sleeps: list[float]
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_IOTDA_DEFAULT", connection_json(security_token=TEST_TOKEN))
    messages: list[str] = []
    with requests_mock.Mocker() as mocker:
        mocker.get(
            TASKS_URL,
            [
                _error(503),
                {"exc": requests.exceptions.ConnectionError("reset")},
                {"status_code": 200, "text": "{trunc"},
                OK_PAGE,
                _error(401, "APIG.0301", "bad signature"),
                _error(403),
                {"exc": requests.exceptions.ReadTimeout("slow")},
                {"exc": requests.exceptions.ReadTimeout("slow")},
                {"exc": requests.exceptions.ReadTimeout("slow")},
                {"exc": requests.exceptions.ReadTimeout("slow")},
                {"status_code": 200, "json": {"no": "tasks"}},
                {"status_code": 200, "json": {"tasks": [], "page": {"count": 0}}},
            ],
        )
        hook = IoTDAHook()
        hook.list_instance_tasks()
        for _ in range(4):
            try:
                hook.list_instance_tasks()
            except IoTDAError as exc:
                messages.extend([str(exc), repr(exc), str(exc.__cause__)])
        messages.append(str(hook.test_connection()))
        sent = [r.headers for r in mocker.request_history]
    messages += [repr(hook), repr(hook.config), str(hook.config), repr(hook.config.credentials)]
    text = logs.text() + "\n".join(messages)
    assert "IoTDA call failed" in text  # the retries were logged...
    assert TEST_SK not in text  # ...and nothing secret was
    assert TEST_TOKEN not in text
    for headers in sent:  # request headers are never logged
        assert headers["Authorization"] not in text
        assert headers["Authorization"].rsplit("=", 1)[1] not in text
        assert headers["X-Sdk-Date"] not in text


# -- the environment's proxy and CA settings, read once -----------------------------------------

_PROXY_VARIABLES = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY")
_PROXY_VARIABLES += ("all_proxy", "NO_PROXY", "no_proxy", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")


@pytest.fixture
def environment_reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """A clean proxy environment; the URLs requests looked the environment's proxies up for."""
    for name in _PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    reads: list[str] = []
    real = requests.sessions.get_environ_proxies

    def counting(url: str, no_proxy: str | None = None) -> dict[str, str]:
        reads.append(url)
        return real(url, no_proxy=no_proxy)

    monkeypatch.setattr(requests.sessions, "get_environ_proxies", counting)
    return reads


@pytest.mark.parametrize(
    ("no_proxy", "proxied"),
    [(None, True), (".myhuaweicloud.com", False)],
    ids=["proxy", "NO_PROXY-covers-the-endpoint"],
)
def test_environment_proxy_and_ca_bundle_reach_every_request_read_once(
    monkeypatch: pytest.MonkeyPatch,
    environment_reads: list[str],
    no_proxy: str | None,
    proxied: bool,
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/private-ca.pem")
    if no_proxy is not None:
        monkeypatch.setenv("NO_PROXY", no_proxy)
    monkeypatch.setenv("AIRFLOW_CONN_IOTDA_DEFAULT", connection_json())
    with requests_mock.Mocker() as mocker:
        mocker.get(TASKS_URL, json=page(*[]))
        mocker.get(OTHER_URL, json=page(*[]))
        hook = IoTDAHook()
        hook.list_instance_tasks()
        hook.list_instance_tasks(OTHER_INSTANCE)
        list(hook.iter_instance_tasks())
    assert mocker.call_count == 3
    for request in mocker.request_history:
        assert request.proxies.get("https") == ("http://proxy.example:3128" if proxied else None)
        assert request.verify == "/etc/ssl/private-ca.pem"
    assert len(environment_reads) == 1  # requests alone reads it for each of the 3 requests
    # A new hook (a new session) reads the environment afresh.
    monkeypatch.setenv("HTTPS_PROXY", "http://other-proxy.example:8080")
    with requests_mock.Mocker() as mocker:
        mocker.get(TASKS_URL, json=page(*[]))
        IoTDAHook().list_instance_tasks()
    assert mocker.last_request is not None
    assert mocker.last_request.proxies.get("https") == (
        "http://other-proxy.example:8080" if proxied else None
    )


def test_session_settings_changed_later_still_apply(
    mock: requests_mock.Mocker, hook: IoTDAHook, environment_reads: list[str]
) -> None:
    mock.get(TASKS_URL, json=page(*[]))
    hook.list_instance_tasks()
    hook.get_conn().proxies["https"] = "http://set-on-the-session.example:1"
    hook.list_instance_tasks()
    first, second = mock.request_history
    assert first.proxies.get("https") is None
    assert second.proxies.get("https") == "http://set-on-the-session.example:1"


# -- the body deadline: one watchdog thread, not a thread per request ---------------------------


def test_no_thread_is_started_per_request(
    mock: requests_mock.Mocker, hook: IoTDAHook, monkeypatch: pytest.MonkeyPatch
) -> None:
    mock.get(TASKS_URL, json=page(*[]))
    hook.list_instance_tasks()  # the watchdog may start here, once per process
    started: list[threading.Thread] = []
    real_start = threading.Thread.start

    def counting_start(self: threading.Thread) -> None:
        started.append(self)
        real_start(self)

    monkeypatch.setattr(threading.Thread, "start", counting_start)
    for _ in range(20):
        hook.list_instance_tasks()
    assert mock.call_count == 21
    assert started == []


def _response_on(sock: socket.socket) -> Any:
    """What :class:`_BodyDeadline` reads of a streamed response: its socket."""
    return types.SimpleNamespace(
        raw=types.SimpleNamespace(connection=types.SimpleNamespace(sock=sock))
    )


def _blocked_read_ends(sock: socket.socket) -> bytes:
    """A read that blocks until the socket is shut down (the 30 s is only a safety net)."""
    sock.settimeout(30)
    return sock.recv(1)


def test_body_deadline_shuts_the_socket_down_when_due() -> None:
    ours, theirs = socket.socketpair()
    with ours, theirs:
        with iotda_hook_module._BodyDeadline(_response_on(ours), 0.05) as deadline:
            assert _blocked_read_ends(ours) == b""  # a blocked read fails at the deadline
        assert deadline.expired


def test_an_earlier_deadline_fires_while_a_later_one_waits() -> None:
    late_ours, late_theirs = socket.socketpair()
    early_ours, early_theirs = socket.socketpair()
    with late_ours, late_theirs, early_ours, early_theirs:
        with iotda_hook_module._BodyDeadline(_response_on(late_ours), 3600) as late:
            with iotda_hook_module._BodyDeadline(_response_on(early_ours), 0.05) as early:
                assert _blocked_read_ends(early_ours) == b""
            assert early.expired
        assert not late.expired
        late_theirs.sendall(b"x")
        assert _blocked_read_ends(late_ours) == b"x"  # untouched


def test_a_finished_body_deadline_never_fires() -> None:
    kept_ours, kept_theirs = socket.socketpair()
    due_ours, due_theirs = socket.socketpair()
    with kept_ours, kept_theirs, due_ours, due_theirs:
        with iotda_hook_module._BodyDeadline(_response_on(kept_ours), 0.01) as finished:
            pass  # the body was read in time
        with iotda_hook_module._BodyDeadline(_response_on(due_ours), 0.05) as due:
            # Deadlines fire in order: once the later one has, the earlier one would have.
            assert _blocked_read_ends(due_ours) == b""
        assert due.expired
        assert not finished.expired
        kept_theirs.sendall(b"y")
        assert _blocked_read_ends(kept_ours) == b"y"  # the socket was not shut down
