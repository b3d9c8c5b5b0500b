"""The simulated gateway: AK/SK signatures (SDK and V11), tokens, clock skew, project checks."""

from __future__ import annotations

import datetime as dt
import logging

import pytest
import requests

from airflow_provider_iotda.auth import Credentials, sign_request
from airflow_provider_iotda.hooks.iotda import SigningAuth
from airflow_provider_iotda.simulator import IoTDASimulator

from .sim_helpers import AK, INSTANCE_1, REGION, SK, TOKEN, tasks_url


def _get(
    sim: IoTDASimulator,
    credentials: Credentials | None = None,
    *,
    url: str | None = None,
    headers: dict[str, str] | None = None,
) -> requests.Response:
    return requests.get(
        url or tasks_url(sim),
        auth=SigningAuth(credentials) if credentials else None,
        headers=headers,
        timeout=5,
    )


def _assert_401(response: requests.Response, *fragments: str) -> None:
    assert response.status_code == 401, response.text
    body = response.json()
    assert body["error_code"] == "APIG.0301"
    assert body["error_msg"].startswith("Incorrect IAM authentication information")
    for fragment in fragments:
        assert fragment in body["error_msg"]
    assert response.headers["X-Request-Id"]
    assert SK not in response.text


def test_sdk_signature_accepted(sim: IoTDASimulator) -> None:
    assert _get(sim, Credentials(AK, SK)).status_code == 200


def test_v11_derived_signature_accepted(sim: IoTDASimulator) -> None:
    credentials = Credentials(AK, SK, algorithm="V11-HMAC-SHA256", region=REGION)
    response = _get(sim, credentials)
    assert response.status_code == 200
    assert response.json()["page"]["count"] == 6


def test_v11_for_another_region_rejected(sim: IoTDASimulator) -> None:
    credentials = Credentials(AK, SK, algorithm="V11-HMAC-SHA256", region="cn-south-1")
    _assert_401(_get(sim, credentials), "region")


@pytest.mark.parametrize("algorithm", ["SDK-HMAC-SHA256", "V11-HMAC-SHA256"])
def test_wrong_secret_key_rejected(sim: IoTDASimulator, algorithm: str) -> None:
    credentials = Credentials(AK, SK + "x", algorithm=algorithm, region=REGION)  # type: ignore[arg-type]
    _assert_401(_get(sim, credentials), "signature")


def test_unknown_access_key_rejected(sim: IoTDASimulator) -> None:
    _assert_401(_get(sim, Credentials("OTHERAK", SK)), "access key")


def test_no_credentials_rejected(sim: IoTDASimulator) -> None:
    _assert_401(_get(sim), "Authorization", "X-Auth-Token")


def test_garbage_authorization_rejected(sim: IoTDASimulator) -> None:
    _assert_401(_get(sim, headers={"Authorization": "Bearer abc"}), "SDK-HMAC-SHA256")


def test_token_accepted_and_bad_token_rejected(sim: IoTDASimulator) -> None:
    assert _get(sim, headers={"X-Auth-Token": TOKEN}).status_code == 200
    _assert_401(_get(sim, headers={"X-Auth-Token": "nope"}), "token")


def _signed_at(sim: IoTDASimulator, moment: dt.datetime) -> dict[str, str]:
    return sign_request(Credentials(AK, SK), "GET", tasks_url(sim), now=moment)


@pytest.mark.parametrize("minutes", [-20, 17])
def test_clock_skew_over_15_minutes_rejected(sim: IoTDASimulator, minutes: int) -> None:
    headers = _signed_at(sim, dt.datetime.now(dt.UTC) + dt.timedelta(minutes=minutes, seconds=30))
    response = _get(sim, headers=headers)
    direction = "behind" if minutes < 0 else "ahead of"
    # The date has whole seconds, so the reported skew is within a second of the real one.
    off_by = f"{abs(minutes)} min" if minutes > 0 else f"{abs(minutes) - 1} min"
    _assert_401(response, "X-Sdk-Date", off_by, direction, "at most 15 min")


def test_clock_skew_within_15_minutes_accepted(sim: IoTDASimulator) -> None:
    for minutes in (-14, 14):
        headers = _signed_at(sim, dt.datetime.now(dt.UTC) + dt.timedelta(minutes=minutes))
        assert _get(sim, headers=headers).status_code == 200


def test_advancing_simulated_time_does_not_break_auth(sim: IoTDASimulator) -> None:
    sim.advance(86400)
    assert _get(sim, Credentials(AK, SK)).status_code == 200


def test_missing_or_malformed_date_rejected(sim: IoTDASimulator) -> None:
    headers = sign_request(Credentials(AK, SK), "GET", tasks_url(sim))
    headers["X-Sdk-Date"] = "yesterday"
    _assert_401(_get(sim, headers=headers), "X-Sdk-Date")


def test_signature_covers_query_path_and_host(sim: IoTDASimulator) -> None:
    signed = sign_request(Credentials(AK, SK), "GET", tasks_url(sim) + "?limit=1")
    assert _get(sim, url=tasks_url(sim) + "?limit=1", headers=signed).status_code == 200
    _assert_401(_get(sim, url=tasks_url(sim) + "?limit=2", headers=signed), "signature")
    other_host = tasks_url(sim).replace("127.0.0.1", "localhost")
    _assert_401(_get(sim, url=other_host + "?limit=1", headers=signed), "Host")


def test_percent_encoded_marker_and_paths_verify(
    sim: IoTDASimulator, client: requests.Session
) -> None:
    # requests encodes nothing here, but the server must use the raw query string as sent.
    response = client.get(tasks_url(sim) + "?limit=2&marker=ffffffff-0000", timeout=5)
    assert response.status_code == 200


def test_other_project_is_forbidden(sim: IoTDASimulator, client: requests.Session) -> None:
    other = "fedcba9876543210fedcba9876543210"
    response = client.get(tasks_url(sim, INSTANCE_1, project=other), timeout=5)
    assert response.status_code == 403
    assert response.json()["error_code"] == "APIG.0302"
    assert "project" in response.json()["error_msg"]
    response = client.get(tasks_url(sim), headers={"X-Project-Id": other}, timeout=5)
    assert response.status_code == 403


def test_secret_never_logged(
    sim: IoTDASimulator, client: requests.Session, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    client.get(tasks_url(sim), timeout=5)
    _get(sim, Credentials(AK, SK + "x"))
    _get(sim, headers={"X-Auth-Token": "wrong"})
    assert SK not in caplog.text
    assert TOKEN not in caplog.text
    assert SK not in repr(sim)
    assert SK not in repr(sim.auth)
    assert SK not in str(sim.stats())
