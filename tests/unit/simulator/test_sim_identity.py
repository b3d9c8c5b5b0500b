"""The simulator's credential stand-ins (ECS metadata, pod identity, STS) and gateway clock."""

from __future__ import annotations

import datetime as dt
import email.utils
import re
import time

import pytest
import requests

from airflow_provider_iotda.auth import Credentials
from airflow_provider_iotda.hooks.iotda import SigningAuth
from airflow_provider_iotda.simulator import IoTDASimulator
from airflow_provider_iotda.simulator.__main__ import build_parser

from .sim_helpers import ID_TOKEN, POD_TOKEN, tasks_url


def metadata_credential(sim: IoTDASimulator) -> dict[str, str]:
    token = requests.put(
        sim.url + "/meta-data/latest/api/token",
        headers={"X-Metadata-Token-Ttl-Seconds": "21600"},
        timeout=5,
    )
    assert token.status_code == 200
    answer = requests.get(
        sim.url + "/openstack/latest/securitykey",
        headers={"X-Metadata-Token": token.text},
        timeout=5,
    )
    assert answer.status_code == 200
    credential: dict[str, str] = answer.json()["credential"]
    return credential


def call_api(sim: IoTDASimulator, credential: Credentials) -> requests.Response:
    with requests.Session() as session:
        session.auth = SigningAuth(credential)
        return session.get(tasks_url(sim), timeout=5)


def test_metadata_credentials_work_with_their_token(sim: IoTDASimulator) -> None:
    c = metadata_credential(sim)
    assert set(c) == {"access", "secret", "securitytoken", "expires_at"}
    expires = dt.datetime.strptime(c["expires_at"], "%Y-%m-%dT%H:%M:%S.%fZ")
    assert (
        abs((expires.replace(tzinfo=dt.UTC) - dt.datetime.now(dt.UTC)).total_seconds() - 3600) < 10
    )
    ok = call_api(sim, Credentials(c["access"], c["secret"], security_token=c["securitytoken"]))
    assert ok.status_code == 200
    no_token = call_api(sim, Credentials(c["access"], c["secret"]))
    assert no_token.status_code == 401
    assert "needs its X-Security-Token" in no_token.json()["error_msg"]
    wrong = call_api(sim, Credentials(c["access"], c["secret"], security_token="other-token"))
    assert "does not belong" in wrong.json()["error_msg"]


def test_expired_credentials_are_rejected(sim: IoTDASimulator) -> None:
    sim.set_credential_ttl(0.3)
    c = metadata_credential(sim)
    time.sleep(0.4)
    answer = call_api(sim, Credentials(c["access"], c["secret"], security_token=c["securitytoken"]))
    assert answer.status_code == 401
    assert "has expired" in answer.json()["error_msg"]
    assert c["secret"] not in answer.text


def test_securitykey_needs_the_imds_token(sim: IoTDASimulator) -> None:
    for headers in ({}, {"X-Metadata-Token": "made-up"}):
        answer = requests.get(sim.url + "/openstack/latest/securitykey", headers=headers, timeout=5)
        assert answer.status_code == 401


def test_imds_v1_style_answers_404_and_needs_no_token() -> None:
    with IoTDASimulator(
        ak="A", sk="S-secret", project_id="p1", metadata_token_required=False
    ) as sim:
        assert requests.put(sim.url + "/meta-data/latest/api/token", timeout=5).status_code == 404
        answer = requests.get(sim.url + "/openstack/latest/securitykey", timeout=5)
        assert answer.status_code == 200


def test_pod_identity_and_sts(sim: IoTDASimulator) -> None:
    url = sim.url + "/cce/pod-identity/credentials"
    assert requests.post(url, json={}, headers={"Authorization": "x"}, timeout=5).status_code == 401
    pod = requests.post(url, json={}, headers={"Authorization": POD_TOKEN}, timeout=5)
    assert set(pod.json()["credential"]) == {"access", "secret", "securitytoken", "expires_at"}
    body = {"provider_urn": "p", "agency_urn": "a", "id_token": ID_TOKEN, "duration_seconds": 900}
    sts = requests.post(sim.url + "/v5/agencies/assume-with-oidc", json=body, timeout=5)
    c = sts.json()["credentials"]
    assert set(c) == {"access_key_id", "secret_access_key", "security_token", "expiration"}
    ok = call_api(
        sim,
        Credentials(c["access_key_id"], c["secret_access_key"], security_token=c["security_token"]),
    )
    assert ok.status_code == 200
    bad = requests.post(
        sim.url + "/v5/agencies/assume-with-oidc", json={**body, "id_token": "forged"}, timeout=5
    )
    assert bad.status_code == 401
    missing = requests.post(sim.url + "/v5/agencies/assume-with-oidc", json={}, timeout=5)
    assert missing.status_code == 400
    assert sim.identity.counts["pod_identity"] == 1
    assert sim.identity.counts["oidc"] == 1


def test_credential_endpoints_are_not_api_requests(sim: IoTDASimulator) -> None:
    sim.set_faults(rates={"500": 1.0})
    metadata_credential(sim)  # would fail if faults applied
    assert sim.counters.requests == 0


@pytest.mark.parametrize("offset", [1200, -1200])
def test_clock_offset_moves_date_and_the_skew_check(
    sim: IoTDASimulator, client: requests.Session, offset: float
) -> None:
    sim.set_clock_offset(offset)
    answer = client.get(tasks_url(sim), timeout=5)
    assert answer.status_code == 401
    # X-Sdk-Date has whole seconds: the skew reads 20 min or a second less.
    assert re.search(r"(19 min 5\d s|20 min)", answer.json()["error_msg"])
    server = email.utils.parsedate_to_datetime(answer.headers["Date"])
    assert abs((server - dt.datetime.now(dt.UTC)).total_seconds() - offset) < 5
    sim.reset()
    assert client.get(tasks_url(sim), timeout=5).status_code == 200


def test_clock_control_endpoint(sim: IoTDASimulator) -> None:
    answer = requests.post(
        sim.control_url + "/clock", json={"offset": 60, "credential_ttl": 120}, timeout=5
    )
    assert answer.json()["offset"] == 60
    assert answer.json()["credential_ttl"] == 120
    assert sim.identity.clock_offset == 60
    bad = requests.post(sim.control_url + "/clock", json={"offset": "soon"}, timeout=5)
    assert bad.status_code == 400
    bad = requests.post(sim.control_url + "/clock", json={"credential_ttl": 0}, timeout=5)
    assert bad.status_code == 400
    assert requests.get(sim.control_url + "/clock", timeout=5).json()["offset"] == 60


def test_cli_options() -> None:
    args = build_parser().parse_args(
        [
            "--ak",
            "A",
            "--project-id",
            "p",
            "--clock-offset",
            "-1200",
            "--credential-ttl",
            "5",
            "--oidc-token",
            "t1",
            "--pod-token",
            "pt",
        ]
    )
    assert (args.clock_offset, args.credential_ttl, args.oidc_token, args.pod_token) == (
        -1200.0,
        5.0,
        ["t1"],
        "pt",
    )
