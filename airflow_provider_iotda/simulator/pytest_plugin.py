"""pytest fixtures: ``pytest_plugins = ["airflow_provider_iotda.simulator.pytest_plugin"]``.

``iotda_simulator`` yields a running :class:`IoTDASimulator`, reset before each test (clock
restarted, scenario reloaded, faults cleared, counters zeroed).  One server serves the whole
session.  Override the session-scoped ``iotda_simulator_config`` fixture to change its
settings (keyword arguments of :class:`IoTDASimulator`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from airflow_provider_iotda.simulator.scenario import DEMO_SCENARIO_PATH
from airflow_provider_iotda.simulator.server import IoTDASimulator

DEFAULT_CONFIG: dict[str, Any] = {
    "ak": "sim-access-key",
    "sk": "sim-secret-key",
    "project_id": "0123456789abcdef0123456789abcdef",
    "scenario": DEMO_SCENARIO_PATH,
    "tokens": ("sim-token",),
}


@pytest.fixture(scope="session")
def iotda_simulator_config() -> dict[str, Any]:
    """Keyword arguments for the session's simulator (override in a conftest)."""
    return dict(DEFAULT_CONFIG)


@pytest.fixture(scope="session")
def iotda_simulator_server(iotda_simulator_config: dict[str, Any]) -> Iterator[IoTDASimulator]:
    """The session's running simulator (not reset between tests)."""
    with IoTDASimulator(**iotda_simulator_config) as simulator:
        yield simulator


@pytest.fixture
def iotda_simulator(iotda_simulator_server: IoTDASimulator) -> IoTDASimulator:
    """A running simulator, freshly reset for this test."""
    iotda_simulator_server.reset()
    return iotda_simulator_server
