"""Clock-skew correction: the offset rule and both hooks' one re-signed retry (requests-mock)."""

from __future__ import annotations

import asyncio
import datetime as dt
import email.utils

import httpx
import pytest
import requests_mock
from iotda_test_values import TASKS_URL, TEST_SK, connection_json, verify_signature

from airflow_provider_iotda import clock
from airflow_provider_iotda.auth import parse_sdk_date
from airflow_provider_iotda.clock import ClockOffset, parse_http_date
from airflow_provider_iotda.errors import IoTDAAuthError, IoTDAServerError, error_from_response

from .unit_support import CapturedLogs

LOCAL = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)


def http_date(moment: dt.datetime) -> str:
    return email.utils.format_datetime(moment, usegmt=True)


def rejection(server_time: dt.datetime, status: int = 401) -> Exception:
    return error_from_response(
        status,
        {"Date": http_date(server_time)},
        b'{"error_code": "APIG.0301", "error_msg": "Incorrect IAM authentication information"}',
    )


def test_parse_http_date() -> None:
    assert parse_http_date("Tue, 01 Dec 2026 12:20:00 GMT") == LOCAL + dt.timedelta(minutes=20)
    assert parse_http_date("yesterday") is None
    assert parse_http_date(None) is None


def test_the_error_keeps_the_date_header() -> None:
    error = rejection(LOCAL)
    assert isinstance(error, IoTDAAuthError)
    assert error.server_date == http_date(LOCAL)


@pytest.mark.parametrize(
    ("server_minutes", "learns"), [(20, True), (-20, True), (4, False), (-4.9, False)]
)
def test_offset_is_learned_beyond_five_minutes(server_minutes: float, learns: bool) -> None:
    offset = ClockOffset(lambda: LOCAL)
    server = LOCAL + dt.timedelta(minutes=server_minutes)
    assert offset.learn(rejection(server)) is learns
    assert offset.seconds == (server_minutes * 60 if learns else 0.0)
    assert offset.now() == (server if learns else LOCAL)
    assert offset.signing_time() == (server if learns else None)


def test_only_a_401_with_a_date_teaches() -> None:
    offset = ClockOffset(lambda: LOCAL)
    far = LOCAL + dt.timedelta(hours=1)
    assert not offset.learn(rejection(far, 500))
    assert not offset.learn(IoTDAAuthError("no date"))
    assert not offset.learn(ValueError("x"))
    assert not isinstance(rejection(far, 500), IoTDAAuthError)
    assert isinstance(rejection(far, 500), IoTDAServerError)
    assert offset.seconds == 0.0


def test_warns_once_naming_the_offset_and_ntp(logs: CapturedLogs) -> None:
    import structlog

    log = structlog.get_logger()
    offset = ClockOffset(lambda: LOCAL)
    assert offset.learn(rejection(LOCAL + dt.timedelta(minutes=20)), log, "iotda_x")
    # A second correction (the clock drifted further) changes the offset but does not warn.
    assert offset.learn(rejection(LOCAL + dt.timedelta(minutes=40)), log, "iotda_x")
    (warning,) = logs.messages("warning")
    assert "20 min 0 s behind IoTDA's" in warning
    assert "NTP" in warning
    assert "'iotda_x'" in warning
    assert offset.seconds == 2400


def _skewed_answers(minutes: float) -> list[dict[str, object]]:
    server = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=minutes)
    return [
        {
            "status_code": 401,
            "headers": {"Date": http_date(server)},
            "json": {"error_code": "APIG.0301", "error_msg": "X-Sdk-Date too far"},
        },
        {"status_code": 200, "json": {"tasks": [], "page": {"count": 0}}},
        {"status_code": 200, "json": {"tasks": [], "page": {"count": 0}}},
    ]


def _warnings_seen(logs: CapturedLogs, capsys: pytest.CaptureFixture[str]) -> int:
    # Airflow may reconfigure structlog on first use (then the warning goes to stdout).
    out = capsys.readouterr()
    return (logs.text() + out.out + out.err).count("Fix the clock (NTP)")


def test_sync_hook_signs_again_with_the_service_time(
    iotda_conn: str, logs: CapturedLogs, capsys: pytest.CaptureFixture[str]
) -> None:
    from airflow_provider_iotda.hooks.iotda import IoTDAHook

    with requests_mock.Mocker() as mock:
        mock.get(TASKS_URL, _skewed_answers(20))
        with IoTDAHook() as hook:
            hook.list_instance_tasks()
            hook.list_instance_tasks()  # uses the offset at once: one request
    first, retried, later = mock.request_history
    for request in (retried, later):
        signed = parse_sdk_date(request.headers["X-Sdk-Date"])
        assert abs((signed - dt.datetime.now(dt.UTC)).total_seconds() - 1200) < 60
        assert verify_signature(request, TEST_SK)
    assert (
        abs((parse_sdk_date(first.headers["X-Sdk-Date"]) - dt.datetime.now(dt.UTC)).total_seconds())
        < 60
    )
    assert _warnings_seen(logs, capsys) == 1


def test_sync_hook_retries_only_once(iotda_conn: str) -> None:
    from airflow_provider_iotda.hooks.iotda import IoTDAHook

    far = http_date(dt.datetime.now(dt.UTC) + dt.timedelta(minutes=20))
    with requests_mock.Mocker() as mock:
        mock.get(TASKS_URL, status_code=401, headers={"Date": far}, json={"error_msg": "bad AK"})
        with pytest.raises(IoTDAAuthError), IoTDAHook() as hook:
            hook.list_instance_tasks()
    assert mock.call_count == 2  # the original and one re-signed retry


def test_sync_hook_does_not_retry_a_plain_401(iotda_conn: str) -> None:
    from airflow_provider_iotda.hooks.iotda import IoTDAHook

    near = http_date(dt.datetime.now(dt.UTC) + dt.timedelta(minutes=1))
    with requests_mock.Mocker() as mock:
        mock.get(TASKS_URL, status_code=401, headers={"Date": near}, json={"error_msg": "bad"})
        with pytest.raises(IoTDAAuthError), IoTDAHook() as hook:
            hook.list_instance_tasks()
    assert mock.call_count == 1


def test_async_hooks_of_a_loop_share_the_offset(
    monkeypatch: pytest.MonkeyPatch, logs: CapturedLogs, capsys: pytest.CaptureFixture[str]
) -> None:
    from airflow_provider_iotda.hooks import iotda_async
    from airflow_provider_iotda.hooks.iotda_async import IoTDAAsyncHook

    monkeypatch.setenv("AIRFLOW_CONN_IOTDA_DEFAULT", connection_json())
    server = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=-20)
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        skew = (parse_sdk_date(request.headers["X-Sdk-Date"]) - server).total_seconds()
        if abs(skew) > 900:
            return httpx.Response(401, headers={"Date": http_date(server)}, json={"error_msg": "x"})
        return httpx.Response(200, json={"tasks": [], "page": {"count": 0}})

    monkeypatch.setattr(
        iotda_async,
        "_new_client",
        lambda verify: httpx.AsyncClient(transport=httpx.MockTransport(handler)),
    )

    async def main() -> float:
        async with IoTDAAsyncHook() as first:
            await first.list_instance_tasks()
        async with IoTDAAsyncHook() as second:  # another trigger of the same connection
            await second.list_instance_tasks()
        return clock.shared_offset("iotda_default").seconds

    learned = asyncio.run(main())
    assert abs(learned + 1200) < 60
    assert len(seen) == 3  # 401, re-signed retry, then the second hook right away
    out = capsys.readouterr()
    text = logs.text() + out.out + out.err
    assert text.count("Fix the clock (NTP)") == 1
    assert "ahead of IoTDA's" in text


def test_first_poll_delay_is_a_random_share_of_one_interval() -> None:
    from airflow_provider_iotda.clock import first_poll_delay

    delays = [first_poll_delay(10.0) for _ in range(200)]
    assert all(0 <= d <= 10.0 for d in delays)
    assert len(set(delays)) > 150  # random, not a constant
