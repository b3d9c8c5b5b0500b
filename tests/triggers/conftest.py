"""Fixtures of the trigger tests: a scripted IoTDA (httpx.MockTransport) and a fake clock."""

from __future__ import annotations

import pytest

from airflow_provider_iotda.hooks import iotda_async
from airflow_provider_iotda.triggers import iotda as trigger_module

from .trigger_support import FakeClock, ScriptedIoTDA


@pytest.fixture
def iotda_api(monkeypatch: pytest.MonkeyPatch, iotda_conn: str) -> ScriptedIoTDA:
    """``iotda_default`` answered by a script: set ``iotda_api.script`` in the test."""
    api = ScriptedIoTDA()
    monkeypatch.setattr(iotda_async, "_new_client", api.new_client)
    return api


@pytest.fixture
def fake_clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    """The trigger's clock and sleep, under the test's control."""
    clock = FakeClock()
    monkeypatch.setattr(trigger_module, "_now", clock.time)
    monkeypatch.setattr(trigger_module, "_sleep", clock.sleep)
    return clock


@pytest.fixture(autouse=True)
def no_first_poll_jitter(monkeypatch: pytest.MonkeyPatch) -> None:
    """Trigger unit tests poll at once; test_first_poll_is_spread_over_one_interval sets one."""
    monkeypatch.setattr(trigger_module, "_first_poll_delay", lambda interval: 0.0)
