"""Fixtures of the trigger tests: a fake clock and no first-poll jitter (``iotda_api`` is in
tests/conftest.py)."""

from __future__ import annotations

import pytest
from iotda_async_fakes import FakeClock

from airflow_provider_iotda.triggers import iotda as trigger_module
from airflow_provider_iotda.triggers import shared_poll


@pytest.fixture
def fake_clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    """The clock and sleep of the trigger and of the shared poll, under the test's control."""
    clock = FakeClock()
    for module in (trigger_module, shared_poll):
        monkeypatch.setattr(module, "_now", clock.time)
        monkeypatch.setattr(module, "_sleep", clock.sleep)
    return clock


@pytest.fixture(autouse=True)
def no_first_poll_jitter(monkeypatch: pytest.MonkeyPatch) -> None:
    """Trigger unit tests poll at once; test_first_poll_is_spread_over_one_interval sets one."""
    monkeypatch.setattr(trigger_module, "_first_poll_delay", lambda interval: 0.0)
    monkeypatch.setattr(shared_poll, "_first_poll_delay", lambda interval: 0.0)
