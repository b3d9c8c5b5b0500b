"""Errors built from IoTDA answers, and the one retry rule (sync and async)."""

from __future__ import annotations

import asyncio
import json
import pickle
import random
import socket
import ssl
from dataclasses import dataclass

import pytest

from airflow_provider_iotda.errors import (
    IoTDAAuthError,
    IoTDABadRequestError,
    IoTDAClientError,
    IoTDAError,
    IoTDAForbiddenError,
    IoTDAInvalidResponseError,
    IoTDANotFoundError,
    IoTDAPaginationError,
    IoTDAServerError,
    IoTDAThrottledError,
    IoTDATransportError,
    TransportStage,
    error_from_response,
    error_from_transport,
    parse_retry_after,
)
from airflow_provider_iotda.retry import RetryPolicy, is_retryable


def _body(code: str = "IOTDA.000006", msg: str = "Invalid input data.") -> bytes:
    return json.dumps({"error_code": code, "error_msg": msg}).encode()


def test_message_format_and_attributes() -> None:
    error = error_from_response(400, {"X-Request-Id": "req-123"}, _body())
    assert str(error) == "IoTDA 400 IOTDA.000006: Invalid input data. (request id req-123)"
    assert isinstance(error, IoTDABadRequestError)
    assert (error.status, error.error_code, error.error_msg, error.request_id) == (
        400,
        "IOTDA.000006",
        "Invalid input data.",
        "req-123",
    )
    assert not error.retryable


def test_request_id_header_is_case_insensitive_and_optional() -> None:
    assert error_from_response(400, {"x-request-id": "r1"}, _body()).request_id == "r1"
    error = error_from_response(400, {}, _body())
    assert error.request_id is None
    assert str(error) == "IoTDA 400 IOTDA.000006: Invalid input data."


@pytest.mark.parametrize(
    ("status", "cls", "retryable"),
    [
        (400, IoTDABadRequestError, False),
        (401, IoTDAAuthError, False),
        (403, IoTDAForbiddenError, False),
        (404, IoTDANotFoundError, False),
        (409, IoTDAClientError, False),
        (429, IoTDAThrottledError, True),
        (500, IoTDAServerError, True),
        (502, IoTDAServerError, True),
        (503, IoTDAServerError, True),
        (504, IoTDAServerError, True),
    ],
)
def test_status_to_class(status: int, cls: type[IoTDAError], retryable: bool) -> None:
    error = error_from_response(status, {}, _body("APIG.0308", "Too many requests"))
    assert type(error) is cls
    assert isinstance(error, IoTDAError)
    assert error.retryable is retryable
    assert is_retryable(error) is retryable


def test_hierarchy() -> None:
    for client in (IoTDABadRequestError, IoTDAAuthError, IoTDAForbiddenError, IoTDANotFoundError):
        assert issubclass(client, IoTDAClientError)
    for cls in (
        IoTDAClientError,
        IoTDAThrottledError,
        IoTDAServerError,
        IoTDATransportError,
        IoTDAInvalidResponseError,
        IoTDAPaginationError,
    ):
        assert issubclass(cls, IoTDAError)
    assert IoTDATransportError("x").retryable
    assert not IoTDAPaginationError("x").retryable


def test_401_mentions_the_clock() -> None:
    error = error_from_response(401, {"X-Request-Id": "r"}, _body("APIG.0301", "Incorrect IAM"))
    message = str(error)
    assert message.startswith("IoTDA 401 APIG.0301: Incorrect IAM (request id r)")
    assert "clock" in message
    assert "15 minutes" in message
    assert "X-Sdk-Date" in message


def test_403_mentions_the_project() -> None:
    assert "project_id" in str(error_from_response(403, {}, _body()))


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"<html>Bad Gateway</html>", "IoTDA 502: non-JSON error body: '<html>Bad Gateway</html>'"),
        (b"", "IoTDA 502: empty error body"),
        (b"[1, 2]", "IoTDA 502: non-JSON error body: '[1, 2]'"),
        (b"\xff\xfe", "IoTDA 502: non-JSON error body: '\ufffd\ufffd'"),
        (b"[" * 100_000, "IoTDA 502: non-JSON error body: '" + "[" * 200 + "'"),
    ],
)
def test_error_with_a_body_that_is_not_iotda_json(body: bytes, expected: str) -> None:
    error = error_from_response(502, {}, body)
    assert str(error) == expected
    assert error.error_code is None


def test_deeply_nested_json_error_body() -> None:
    body = b"[" * 100_000 + b"]" * 100_000
    error = error_from_response(500, {}, body)
    assert isinstance(error, IoTDAServerError)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("7", 7.0), (" 2.5 ", 2.5), ("0", 0.0), ("-1", None), ("soon", None), (None, None)],
)
def test_retry_after(value: str | None, seconds: float | None) -> None:
    assert parse_retry_after(value) == seconds
    headers = {"Retry-After": value} if value is not None else {}
    error = error_from_response(429, headers, _body("APIG.0308", "throttled"))
    assert isinstance(error, IoTDAThrottledError)
    assert error.retry_after == seconds


def test_http_date_retry_after_is_ignored() -> None:
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") is None


def test_errors_survive_pickling() -> None:
    error = error_from_response(429, {"X-Request-Id": "r9", "Retry-After": "3"}, _body())
    copy = pickle.loads(pickle.dumps(error))  # noqa: S301 - our own object
    assert type(copy) is IoTDAThrottledError
    assert str(copy) == str(error)
    assert (copy.status, copy.error_code, copy.request_id, copy.retry_after) == (
        429,
        "IOTDA.000006",
        "r9",
        3.0,
    )
    invalid = pickle.loads(pickle.dumps(IoTDAInvalidResponseError("x", retryable=True)))  # noqa: S301
    assert invalid.retryable


def test_is_retryable_only_for_iotda_errors() -> None:
    assert not is_retryable(ValueError("x"))
    assert not is_retryable(KeyError("x"))
    assert is_retryable(IoTDAInvalidResponseError("not JSON", retryable=True))
    assert not is_retryable(IoTDAInvalidResponseError("wrong shape"))


# -- RetryPolicy ---------------------------------------------------------------------------------


def test_delay_honours_retry_after_capped() -> None:
    policy = RetryPolicy(max_retry_after=60)
    throttled = error_from_response(429, {"Retry-After": "7"}, b"")
    assert policy.delay(1, throttled) == 7.0
    assert policy.delay(5, throttled) == 7.0
    long = error_from_response(429, {"Retry-After": "3600"}, b"")
    assert policy.delay(1, long) == 60.0


def test_delay_is_exponential_backoff_with_full_jitter() -> None:
    policy = RetryPolicy(base_delay=0.5, max_delay=4.0)
    rng = random.Random(1234)
    error = IoTDAServerError("x")
    for attempt, ceiling in [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (5, 4.0), (9, 4.0)]:
        waits = [policy.delay(attempt, error, rng) for _ in range(200)]
        assert all(0 <= w <= ceiling for w in waits)
        assert len(set(waits)) > 150  # jittered, not a constant
        assert max(waits) > ceiling * 0.9  # spread over the whole range
    # A 429 without Retry-After backs off like any other retryable error.
    bare = error_from_response(429, {}, b"")
    assert 0 <= policy.delay(1, bare, rng) <= 0.5


def _flaky(errors: list[BaseException]):  # type: ignore[no-untyped-def]
    calls: list[int] = []

    def call() -> str:
        calls.append(1)
        if errors:
            raise errors.pop(0)
        return "ok"

    return call, calls


def _run(policy: RetryPolicy, call) -> str | None:  # type: ignore[no-untyped-def]
    result = None
    for attempt in policy.retrying():
        with attempt:
            result = call()
    return result


def test_retrying_retries_then_succeeds(retry_sleeps: list[float]) -> None:
    call, calls = _flaky([IoTDAServerError("a"), IoTDATransportError("b")])
    assert _run(RetryPolicy(max_retries=3), call) == "ok"
    assert len(calls) == 3
    assert len(retry_sleeps) == 2


def test_retrying_gives_up_after_max_retries_with_the_last_error(
    retry_sleeps: list[float],
) -> None:
    errors: list[BaseException] = [IoTDAServerError(f"e{i}") for i in range(10)]
    call, calls = _flaky(errors)
    with pytest.raises(IoTDAServerError, match="e3"):
        _run(RetryPolicy(max_retries=3), call)
    assert len(calls) == 4
    assert len(retry_sleeps) == 3


@pytest.mark.parametrize(
    "error",
    [
        IoTDABadRequestError("x"),
        IoTDAAuthError("x"),
        IoTDAForbiddenError("x"),
        IoTDAInvalidResponseError("x"),
        ValueError("x"),
    ],
)
def test_retrying_does_not_retry_final_errors(
    error: BaseException, retry_sleeps: list[float]
) -> None:
    call, calls = _flaky([error])
    with pytest.raises(type(error)):
        _run(RetryPolicy(max_retries=3), call)
    assert len(calls) == 1
    assert retry_sleeps == []


def test_retrying_waits_what_the_server_asks(retry_sleeps: list[float]) -> None:
    call, _ = _flaky([error_from_response(429, {"Retry-After": "9"}, b"")])
    for attempt in RetryPolicy(max_retries=1).retrying():
        with attempt:
            call()
    assert retry_sleeps == [9.0]


def test_async_retrying_shares_the_rule(retry_sleeps: list[float]) -> None:
    errors: list[BaseException] = [
        error_from_response(429, {"Retry-After": "4"}, b""),
        IoTDAServerError("x"),
    ]

    async def run() -> tuple[str, int]:
        calls = 0
        async for attempt in RetryPolicy(max_retries=3, base_delay=1.0).async_retrying():
            with attempt:
                calls += 1
                if errors:
                    raise errors.pop(0)
                return "ok", calls
        raise AssertionError("unreachable")

    assert asyncio.run(run()) == ("ok", 3)
    assert retry_sleeps[0] == 4.0
    assert 0 <= retry_sleeps[1] <= 2.0
    assert len(retry_sleeps) == 2


# -- no answer: error_from_transport -------------------------------------------------------------


@dataclass(frozen=True)
class _Limits:
    endpoint: str = "https://iotda-mgmt.cn-nort-4.myhuaweicloud.com"
    connect_timeout: float = 10.0
    timeout: float = 2.5
    body_timeout: float = 60.0


def _wrapped(cause: BaseException, *outer: BaseException) -> BaseException:
    """``cause`` wrapped in ``outer`` (innermost first), as HTTP libraries chain them."""
    error = cause
    for wrapper in outer:
        wrapper.__cause__ = error
        error = wrapper
    return error


def test_a_name_that_does_not_resolve_names_the_host_however_deep_the_cause() -> None:
    unresolved = socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    class LibraryError(Exception):
        """An HTTP library's error keeping its reason as an attribute (urllib3's way)."""

        def __init__(self, reason: BaseException) -> None:
            super().__init__("wrapped")
            self.reason = reason

    for error in (
        _wrapped(unresolved, OSError("resolve"), RuntimeError("connect")),
        RuntimeError(LibraryError(unresolved)),  # in the arguments, then in .reason
    ):
        made = error_from_transport(error, "dropped", _Limits())
        assert str(made) == (
            "Could not talk to IoTDA at https://iotda-mgmt.cn-nort-4.myhuaweicloud.com: the host "
            "name iotda-mgmt.cn-nort-4.myhuaweicloud.com does not resolve (DNS); check the region "
            "or endpoint of the connection (no connection: the request was not sent)"
        )
        assert made.request_sent is False  # a name that does not resolve: nothing was sent
        assert made.retryable


@pytest.mark.parametrize(
    ("stage", "cause", "message", "sent"),
    [
        ("connect", None, "at {e}: the connection could not be opened (no connection", False),
        ("connect_timeout", None, "{e}: no connection within 10 s (no connection", False),
        ("timeout", None, "IoTDA did not answer within 2.5 s ({e})", True),
        ("body", None, "IoTDA did not send its whole answer within 60 s ({e})", True),
        ("dropped", None, "at {e}: the connection broke before the whole answer arrived", True),
        ("dropped", ConnectionResetError(104, "Connection reset by peer"), "by peer", True),
        ("connect", ConnectionRefusedError(111, "x"), "{h} refused the connection (no conn", False),
        ("dropped", ConnectionRefusedError(111, "x"), "{h} refused the connection (no conn", False),
        ("connect", OSError(101, "Network is unreachable"), "{e}: Network is unreachable (", False),
        ("dropped", ssl.SSLError(1, "x"), "{e}: TLS failed (", True),
        ("connect", ssl.SSLError(1, "x"), "{e}: TLS failed (", False),
    ],
)
def test_each_stage_and_cause_has_one_message(
    stage: TransportStage, cause: BaseException | None, message: str, sent: bool
) -> None:
    limits = _Limits()
    error = _wrapped(cause, RuntimeError("library")) if cause else RuntimeError("library")
    made = error_from_transport(error, stage, limits)
    host = "iotda-mgmt.cn-nort-4.myhuaweicloud.com"
    assert message.format(e=limits.endpoint, h=host) in str(made)
    assert made.request_sent is sent
    assert "[" not in str(made)


def test_a_rejected_certificate_says_so_and_proves_nothing_was_sent() -> None:
    rejected = ssl.SSLCertVerificationError(1, "certificate verify failed")
    rejected.verify_message = "self-signed certificate"
    made = error_from_transport(_wrapped(rejected, RuntimeError("ssl")), "dropped", _Limits())
    assert "the TLS certificate of iotda-mgmt.cn-nort-4.myhuaweicloud.com was not accepted " in (
        str(made)
    )
    assert "(self-signed certificate)" in str(made)
    assert made.request_sent is False


def test_the_library_s_own_words_never_reach_the_message() -> None:
    """A library message may carry a URL, a header or a secret: only types and causes are used."""
    secret = "SK-in-a-library-message-7f1e"
    error = _wrapped(OSError(secret), RuntimeError(f"Authorization: {secret}"))
    for stage in ("connect", "connect_timeout", "timeout", "body", "dropped"):
        made = error_from_transport(error, stage, _Limits())  # type: ignore[arg-type]
        assert secret not in str(made)
        assert secret not in repr(made)


def test_a_cycle_of_causes_ends() -> None:
    first, second = RuntimeError("a"), RuntimeError("b")
    first.__cause__, second.__context__ = second, first
    assert "the connection broke" in str(error_from_transport(first, "dropped", _Limits()))
