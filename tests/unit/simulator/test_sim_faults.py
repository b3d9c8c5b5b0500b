"""Fault injection (every kind, rates, seeds, next-N) and the counters."""

from __future__ import annotations

import contextlib
import json
import time
from urllib.parse import urlsplit

import pytest
import requests

from airflow_provider_iotda.auth import Credentials
from airflow_provider_iotda.hooks.iotda import SigningAuth
from airflow_provider_iotda.simulator import (
    FAULT_KINDS,
    FaultConfig,
    FaultConfigError,
    IoTDASimulator,
)

from .sim_helpers import AK, PROJECT, SK, tasks_url


def test_429_with_retry_after(sim: IoTDASimulator, client: requests.Session) -> None:
    sim.set_faults(next_faults=["429"], retry_after=7)
    response = client.get(tasks_url(sim), timeout=5)
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "7"
    assert response.json()["error_code"] == "APIG.0308"
    assert response.headers["X-Request-Id"]
    assert client.get(tasks_url(sim), timeout=5).status_code == 200  # only the next one


@pytest.mark.parametrize("status", [500, 503])
def test_server_errors(sim: IoTDASimulator, client: requests.Session, status: int) -> None:
    sim.set_faults(next_faults=[str(status)])
    response = client.get(tasks_url(sim), timeout=5)
    assert response.status_code == status
    assert set(response.json()) == {"error_code", "error_msg"}
    assert response.headers["X-Request-Id"]


def test_dropped_connection_is_a_connection_error(
    sim: IoTDASimulator, client: requests.Session
) -> None:
    sim.set_faults(next_faults=["drop", "drop"])
    for _ in range(2):
        with pytest.raises(requests.ConnectionError):
            client.get(tasks_url(sim), timeout=5)
    assert client.get(tasks_url(sim), timeout=5).status_code == 200
    counters = sim.counters
    assert counters.faults == {"drop": 2}
    assert counters.statuses == {"200": 1}  # dropped requests have no status
    assert counters.requests == 3


def test_slow_answer_times_out_the_client(sim: IoTDASimulator, client: requests.Session) -> None:
    sim.set_faults(next_faults=["slow"], slow_seconds=1.0)
    started = time.monotonic()
    with pytest.raises(requests.Timeout):
        client.get(tasks_url(sim), timeout=0.3)
    assert time.monotonic() - started < 1.0
    sim.set_faults(next_faults=["slow"], slow_seconds=0.3)
    started = time.monotonic()
    response = client.get(tasks_url(sim), timeout=5)
    assert response.status_code == 200
    assert time.monotonic() - started >= 0.3


def test_added_latency(sim: IoTDASimulator, client: requests.Session) -> None:
    sim.set_faults(latency_ms=250)
    started = time.monotonic()
    assert client.get(tasks_url(sim), timeout=5).status_code == 200
    assert time.monotonic() - started >= 0.25
    assert sim.counters.faults == {"latency": 1}


def test_latency_for_a_share_of_requests(sim: IoTDASimulator, client: requests.Session) -> None:
    sim.set_faults(latency_ms=1, latency_rate=0.5)
    for _ in range(40):
        client.get(tasks_url(sim), timeout=5)
    assert 5 <= sim.counters.faults["latency"] <= 35


def test_malformed_json(sim: IoTDASimulator, client: requests.Session) -> None:
    sim.set_faults(next_faults=["malformed"])
    response = client.get(tasks_url(sim), timeout=5)
    assert response.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(response.text)


def test_truncated_json(sim: IoTDASimulator, client: requests.Session) -> None:
    full = client.get(tasks_url(sim), timeout=5).text
    sim.set_faults(next_faults=["truncated"])
    response = client.get(tasks_url(sim), timeout=5)
    assert response.status_code == 200
    assert full.startswith(response.text)
    assert 0 < len(response.text) < len(full)
    with pytest.raises(json.JSONDecodeError):
        json.loads(response.text)


def test_none_entries_skip_requests(sim: IoTDASimulator, client: requests.Session) -> None:
    sim.set_faults(next_faults=["none", "503"])
    statuses = [client.get(tasks_url(sim), timeout=5).status_code for _ in range(3)]
    assert statuses == [200, 503, 200]


def _statuses_with_rates(seed: int, n: int) -> list[int]:
    with (
        IoTDASimulator(
            ak=AK,
            sk=SK,
            project_id=PROJECT,
            seed=seed,
            faults={"rates": {"500": 0.3, "429": 0.2}},
        ) as sim,
        requests.Session() as session,
    ):
        session.auth = SigningAuth(Credentials(AK, SK))
        sim.add_instance("abc")
        return [session.get(tasks_url(sim, "abc"), timeout=5).status_code for _ in range(n)]


def test_rates_are_seeded_and_roughly_right() -> None:
    first = _statuses_with_rates(11, 120)
    assert first == _statuses_with_rates(11, 120)
    assert 15 <= first.count(500) <= 60
    assert 8 <= first.count(429) <= 45
    assert first.count(200) + first.count(500) + first.count(429) == 120


def test_faults_never_touch_the_control_endpoint(
    sim: IoTDASimulator, client: requests.Session
) -> None:
    sim.set_faults(rates={"drop": 1.0})
    for _ in range(3):
        response = requests.get(f"{sim.control_url}/stats", timeout=5)
        assert response.status_code == 200
    assert response.json()["fault_config"]["rates"] == {"drop": 1.0}
    with pytest.raises(requests.ConnectionError):
        client.get(tasks_url(sim), timeout=5)
    sim.clear_faults()
    assert client.get(tasks_url(sim), timeout=5).status_code == 200


def test_every_kind_is_counted(sim: IoTDASimulator, client: requests.Session) -> None:
    sim.set_faults(next_faults=list(FAULT_KINDS), slow_seconds=0)
    for _ in FAULT_KINDS:
        with contextlib.suppress(requests.ConnectionError):
            client.get(tasks_url(sim), timeout=5)
    assert sim.counters.faults == dict.fromkeys(FAULT_KINDS, 1)
    assert sim.stats()["pending_faults"] == []


@pytest.mark.parametrize(
    "settings",
    [
        {"rates": {"404": 0.1}},
        {"rates": {"500": 1.5}},
        {"rates": {"500": 0.6, "503": 0.6}},
        {"next_faults": ["boom"]},
        {"latency_ms": -1},
        {"surprise": 1},
    ],
)
def test_invalid_fault_settings(sim: IoTDASimulator, settings: dict[str, object]) -> None:
    with pytest.raises(FaultConfigError):
        sim.set_faults(**settings)


def test_counters(sim: IoTDASimulator, client: requests.Session) -> None:
    for _ in range(3):
        client.get(tasks_url(sim), timeout=5)  # one keep-alive connection
    for _ in range(2):
        requests.get(tasks_url(sim), timeout=5, headers={"Connection": "close"})  # 401, new conns
    requests.get(f"{sim.control_url}/health", timeout=5)
    counters = sim.counters
    assert counters.requests == 5
    assert counters.control_requests == 1
    assert counters.connections == 4
    assert counters.paths == {urlsplit(tasks_url(sim)).path: 5}
    assert counters.statuses == {"200": 3, "401": 2}
    assert counters.connections_peak >= 1
    stats = requests.get(f"{sim.control_url}/stats", timeout=5).json()
    assert stats["requests"] == 5
    assert stats["connections"] == 5
    assert stats["paths"] == counters.paths
    assert stats["statuses"] == counters.statuses


def test_fault_config_round_trips() -> None:
    config = FaultConfig(rates={"429": 0.25}, next_faults=("drop",), latency_ms=5, retry_after=3)
    assert FaultConfig.from_dict(config.to_dict()) == config
