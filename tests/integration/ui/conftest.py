"""One api-server and one simulator for every test of the connection form (API and browser)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from airflow_provider_iotda.simulator import IoTDASimulator

from .api_server import AK, PROJECT, SK, ApiServer, running_api_server


@pytest.fixture(scope="package")
def api_server(airflow_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    log_path = tmp_path_factory.mktemp("api-server") / "api-server.log"
    with running_api_server(log_path) as server:
        yield server


@pytest.fixture(scope="package")
def simulator() -> Iterator[IoTDASimulator]:
    with IoTDASimulator(ak=AK, sk=SK, project_id=PROJECT, time_factor=0, seed=3) as sim:
        yield sim
