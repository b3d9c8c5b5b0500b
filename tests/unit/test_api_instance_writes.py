"""The POST calls (resize, task retry): bodies, signatures, validation before sending, and the
retry rule for POSTs (never sent twice when IoTDA may have acted); sync hook with requests-mock,
async hook with a scripted transport."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
import requests
import requests_mock
from iotda_test_values import TEST_ENDPOINT, TEST_INSTANCE, TEST_PROJECT, verify_signature
from iotda_test_values import task_json as task
from urllib3.exceptions import MaxRetryError, NewConnectionError

from airflow_provider_iotda import api
from airflow_provider_iotda.errors import (
    IoTDABadRequestError,
    IoTDAError,
    IoTDAInvalidResponseError,
    IoTDAServerError,
    IoTDAThrottledError,
    IoTDATransportError,
)
from airflow_provider_iotda.hooks import iotda_async
from airflow_provider_iotda.hooks.iotda import IoTDAHook
from airflow_provider_iotda.hooks.iotda_async import IoTDAAsyncHook
from airflow_provider_iotda.retry import is_retryable

INSTANCE_URL = f"{TEST_ENDPOINT}/v5/iot/{TEST_PROJECT}/iotda-instances/{TEST_INSTANCE}"
RESIZE_URL = f"{INSTANCE_URL}/resize"
TASK_ID = "0a1b2c3d-0000-4000-8000-00000000aaaa"
RETRY_URL = f"{INSTANCE_URL}/tasks/{TASK_ID}/retry"
S3 = {"flavor_type": "iotda.standard.s3", "flavor_size": 2}


def _refused() -> requests.exceptions.ConnectionError:
    """What requests raises when the TCP connection cannot be opened."""
    reason = NewConnectionError(None, "Connection refused")  # type: ignore[arg-type]
    return requests.exceptions.ConnectionError(MaxRetryError(None, RESIZE_URL, reason))  # type: ignore[arg-type]


# -- resize ----------------------------------------------------------------------------------------


def test_resize_posts_the_signed_body_and_returns_the_order(
    mock: requests_mock.Mocker, hook: IoTDAHook
) -> None:
    mock.post(RESIZE_URL, json={"order_id": "CS2401011200ABCDEF"})
    order = hook.resize_instance(**S3, delay=True, is_auto_pay=True)
    assert order == "CS2401011200ABCDEF"
    request = mock.request_history[0]
    assert request.method == "POST"
    assert json.loads(request.body) == {
        "flavor": {"type": "iotda.standard.s3", "size": 2},
        "delay": True,
        "is_auto_pay": True,
    }
    assert request.headers["Content-Type"] == "application/json"
    assert verify_signature(request)  # the body hash is part of the signature


def test_resize_signature_covers_the_body(mock: requests_mock.Mocker, hook: IoTDAHook) -> None:
    mock.post(RESIZE_URL, json={"order_id": "x"})
    hook.resize_instance(**S3)
    request = mock.request_history[0]
    request.body = request.body.replace(b'"size":2', b'"size":9')
    assert not verify_signature(request)


def test_resize_without_order_id_returns_none(mock: requests_mock.Mocker, hook: IoTDAHook) -> None:
    mock.post(RESIZE_URL, json={})
    assert hook.resize_instance(**S3) is None


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"flavor_size": 0}, "flavor_size"),
        ({"flavor_size": "2"}, "flavor_size"),
        ({"flavor_size": True}, "flavor_size"),
        ({"flavor_size": 2.0}, "flavor_size"),
        ({"flavor_type": "iotda standard"}, "flavor_type"),
        ({"flavor_type": "../s3"}, "flavor_type"),
        ({"flavor_type": ""}, "flavor_type"),
        ({"flavor_type": None}, "flavor_type"),
        ({"delay": "false"}, "delay"),
        ({"is_auto_pay": 1}, "is_auto_pay"),
        ({"instance_id": "ABC"}, "instance_id"),
    ],
)
def test_resize_refuses_bad_input_before_sending(
    mock: requests_mock.Mocker, hook: IoTDAHook, changes: dict[str, Any], field: str
) -> None:
    kwargs: dict[str, Any] = {**S3, **changes}
    with pytest.raises(ValueError, match=field) as caught:
        hook.resize_instance(**kwargs)
    assert repr(next(iter(changes.values())))[:20] in str(caught.value)
    assert mock.call_count == 0


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (
            {"status_code": 500, "json": {"error_code": "IOTDA.000000", "error_msg": "x"}},
            IoTDAServerError,
        ),
        ({"status_code": 503, "text": "busy"}, IoTDAServerError),
        ({"exc": requests.exceptions.ReadTimeout("slow")}, IoTDATransportError),
        ({"exc": requests.exceptions.ConnectionError("reset by peer")}, IoTDATransportError),
        ({"status_code": 200, "text": '{"order_id": "CS'}, IoTDAInvalidResponseError),
    ],
)
def test_a_post_that_may_have_reached_iotda_is_sent_once(
    mock: requests_mock.Mocker, hook: IoTDAHook, answer: dict[str, Any], error: type[IoTDAError]
) -> None:
    mock.post(RESIZE_URL, [answer, {"json": {"order_id": "second"}}])
    with pytest.raises(error):
        hook.resize_instance(**S3)
    assert mock.call_count == 1


@pytest.mark.parametrize(
    "first",
    [
        {"status_code": 429, "json": {"error_code": "APIG.0308", "error_msg": "x"}},
        {"exc": requests.exceptions.ConnectTimeout("no route")},
        {"exc": _refused()},
    ],
)
def test_a_post_that_did_not_reach_iotda_is_retried(
    mock: requests_mock.Mocker, hook: IoTDAHook, first: dict[str, Any], retry_sleeps: list[float]
) -> None:
    mock.post(RESIZE_URL, [first, {"json": {"order_id": "CS1"}}])
    assert hook.resize_instance(**S3) == "CS1"
    assert mock.call_count == 2
    assert len(retry_sleeps) == 1


def test_a_400_is_final(mock: requests_mock.Mocker, hook: IoTDAHook) -> None:
    body = {"error_code": "IOTDA.014002", "error_msg": "The instance is MODIFYING"}
    mock.post(RESIZE_URL, status_code=400, json=body)
    with pytest.raises(IoTDABadRequestError, match="MODIFYING"):
        hook.resize_instance(**S3)
    assert mock.call_count == 1


# -- retry of a task -------------------------------------------------------------------------------


def test_retry_instance_task_posts_without_body(
    mock: requests_mock.Mocker, hook: IoTDAHook
) -> None:
    mock.post(RETRY_URL, json=task(TASK_ID, status="PENDING", progress=0))
    retried = hook.retry_instance_task(TASK_ID)
    assert (retried.task_id, retried.status, retried.progress) == (TASK_ID, "PENDING", 0)
    request = mock.request_history[0]
    assert request.method == "POST"
    assert not request.body
    assert verify_signature(request)


def test_retry_instance_task_is_not_repeated_after_a_5xx(
    mock: requests_mock.Mocker, hook: IoTDAHook
) -> None:
    mock.post(RETRY_URL, [{"status_code": 502, "text": ""}, {"json": task(TASK_ID)}])
    with pytest.raises(IoTDAServerError):
        hook.retry_instance_task(TASK_ID)
    assert mock.call_count == 1


def test_retry_instance_task_checks_the_id(mock: requests_mock.Mocker, hook: IoTDAHook) -> None:
    with pytest.raises(ValueError, match="instance_task_id"):
        hook.retry_instance_task("0a1b/../x")
    assert mock.call_count == 0


# -- the rule ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "get", "post"),
    [
        (IoTDAThrottledError("429"), True, True),
        (IoTDAServerError("500"), True, False),
        (IoTDATransportError("timeout"), True, False),
        (IoTDATransportError("refused", request_sent=False), True, True),
        (IoTDAInvalidResponseError("not JSON", retryable=True), True, False),
        (IoTDABadRequestError("400"), False, False),
        (ValueError("x"), False, False),
    ],
)
def test_one_rule_for_gets_and_posts(error: BaseException, get: bool, post: bool) -> None:
    assert is_retryable(error) is get
    assert is_retryable(error, "GET") is get
    assert is_retryable(error, "post") is post


# -- async hook ------------------------------------------------------------------------------------


class _Scripted:
    def __init__(self, answers: list[Any]) -> None:
        self.answers = answers
        self.requests: list[httpx.Request] = []

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers[min(len(self.requests), len(self.answers)) - 1]
        if isinstance(answer, BaseException):
            raise answer
        return answer

    def client(self, verify: bool) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.MockTransport(self.handle), verify=verify)


@pytest.fixture
def scripted(monkeypatch: pytest.MonkeyPatch, iotda_conn: str) -> _Scripted:
    fake = _Scripted([])
    monkeypatch.setattr(iotda_async, "_new_client", fake.client)
    return fake


def test_async_hook_shows_a_task_and_an_instance(scripted: _Scripted) -> None:
    scripted.answers = [
        httpx.Response(200, json=task(TASK_ID, status="RUNNING", progress=30)),
        httpx.Response(200, json={"instance_id": TEST_INSTANCE, "status": "MODIFYING"}),
    ]

    async def run() -> tuple[Any, Any]:
        async with IoTDAAsyncHook() as hook:
            return await hook.show_instance_task(TASK_ID), await hook.show_instance()

    shown, instance = asyncio.run(run())
    assert (shown.status, shown.progress) == ("RUNNING", 30)
    assert instance.status == "MODIFYING"
    assert [str(r.url) for r in scripted.requests] == [
        f"{INSTANCE_URL}/tasks/{TASK_ID}",
        INSTANCE_URL,
    ]
    assert all(verify_signature(r) for r in scripted.requests)


def _post_call() -> api.Call[str | None]:
    return api.resize_call(TEST_ENDPOINT, TEST_PROJECT, TEST_INSTANCE, **S3)


@pytest.mark.parametrize(
    ("first", "sent"),
    [
        (httpx.Response(500, json={}), 1),
        (httpx.ReadTimeout("slow"), 1),
        (httpx.RemoteProtocolError("dropped"), 1),
        (httpx.Response(429, json={}), 2),
        (httpx.ConnectError("refused"), 2),
        (httpx.ConnectTimeout("no route"), 2),
    ],
)
def test_async_hook_applies_the_post_rule(scripted: _Scripted, first: Any, sent: int) -> None:
    scripted.answers = [first, httpx.Response(200, json={"order_id": "CS2"})]

    async def run() -> Any:
        async with IoTDAAsyncHook() as hook:
            return await hook._call(_post_call())

    if sent == 1:
        with pytest.raises(IoTDAError):
            asyncio.run(run())
    else:
        assert asyncio.run(run()) == "CS2"
    assert len(scripted.requests) == sent
    request = scripted.requests[0]
    assert request.method == "POST"
    assert json.loads(request.content)["flavor"] == {"type": "iotda.standard.s3", "size": 2}
    assert verify_signature(request)
