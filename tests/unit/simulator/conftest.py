"""Fixtures for the simulator tests: one session-wide simulator, reset before every test."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from airflow_provider_iotda.auth import Credentials
from airflow_provider_iotda.hooks.iotda import SigningAuth
from airflow_provider_iotda.simulator import DEMO_SCENARIO_PATH, IoTDASimulator
from airflow_provider_iotda.simulator.pytest_plugin import (  # noqa: F401  (fixtures)
    iotda_simulator,
    iotda_simulator_server,
)

from .sim_helpers import AK, ID_TOKEN, POD_TOKEN, PROJECT, REGION, SK, TOKEN


@pytest.fixture(scope="session")
def iotda_simulator_config() -> dict[str, Any]:
    """Frozen clock (tests move time with advance()), fixed seed, the demo scenario."""
    return {
        "ak": AK,
        "sk": SK,
        "project_id": PROJECT,
        "scenario": DEMO_SCENARIO_PATH,
        "tokens": [TOKEN],
        "time_factor": 0,
        "seed": 7,
        "region": REGION,
        "oidc_tokens": [ID_TOKEN],
        "pod_token": POD_TOKEN,
    }


@pytest.fixture
def sim(request: pytest.FixtureRequest) -> IoTDASimulator:
    """Short name for the plugin's ``iotda_simulator`` (the session simulator, reset)."""
    simulator: IoTDASimulator = request.getfixturevalue("iotda_simulator")
    return simulator


@pytest.fixture
def client() -> Iterator[requests.Session]:
    """A session that signs with the simulator's AK/SK (SDK-HMAC-SHA256)."""
    with requests.Session() as session:
        session.auth = SigningAuth(Credentials(AK, SK))
        session.headers["Content-Type"] = "application/json"
        yield session
