"""Fixtures of the operator tests: a requests-mock IoTDA and a real one on loopback."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests_mock

from .operator_fakes import FakeIoTDA, LoopbackIoTDA, connection_json


@pytest.fixture
def fake_iotda(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeIoTDA]:
    """requests-mock serving ``FakeIoTDA``; the ``iotda_default`` connection points at it."""
    monkeypatch.setenv("AIRFLOW_CONN_IOTDA_DEFAULT", connection_json())
    with requests_mock.Mocker() as mocker:
        yield FakeIoTDA(mocker)


@pytest.fixture
def loopback_iotda(monkeypatch: pytest.MonkeyPatch) -> Iterator[LoopbackIoTDA]:
    """A real HTTP fake on 127.0.0.1 (for concurrency), with the connection pointing at it."""
    with LoopbackIoTDA() as fake:
        monkeypatch.setenv("AIRFLOW_CONN_IOTDA_DEFAULT", connection_json(endpoint=fake.url))
        yield fake
