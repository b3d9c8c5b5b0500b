"""Fixtures of the trigger tests: a fake clock and no first-poll jitter (``iotda_api`` is in
tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from iotda_async_fakes import FakeClock
from iotda_test_values import TEST_AK, TEST_PROJECT, TEST_SK, endpoint_connection_json

from airflow_provider_iotda import clock, compat
from airflow_provider_iotda.simulator import IoTDASimulator


async def _inline_log(
    logger: Any, level: str, msg: str, *args: object, exc: BaseException | None = None
) -> None:
    getattr(logger, level)(msg, *args, **({"exc_info": exc} if exc is not None else {}))


@pytest.fixture
def fake_clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    """The clock and sleep of every wait (``airflow_provider_iotda.clock``), under the test's
    control.

    With sleeps instant, a log line written in a worker thread (``compat.alog``) would let a
    shared poll run ahead by a few polls while the line is written: under the fake clock the
    triggers write their lines inline, so each poll is judged before the next one is made.
    (tests/unit/triggers/test_iotda_logging.py checks the real ``alog`` with a slow log sink.)
    """
    fake = FakeClock()
    monkeypatch.setattr(clock, "now", fake.time)
    monkeypatch.setattr(clock, "sleep", fake.sleep)
    monkeypatch.setattr(compat, "alog", _inline_log)
    return fake


@pytest.fixture(autouse=True)
def no_first_poll_jitter(monkeypatch: pytest.MonkeyPatch) -> None:
    """Trigger unit tests poll at once; test_first_poll_is_spread_over_one_interval sets one."""
    monkeypatch.setattr(clock, "first_poll_delay", lambda interval: 0.0)


@pytest.fixture
def simulator(monkeypatch: pytest.MonkeyPatch) -> Iterator[IoTDASimulator]:
    """A simulator with a frozen clock (the test moves it) and ``iotda_sim`` pointing at it."""
    with IoTDASimulator(ak=TEST_AK, sk=TEST_SK, project_id=TEST_PROJECT, time_factor=0) as sim:
        monkeypatch.setenv("AIRFLOW_CONN_IOTDA_SIM", endpoint_connection_json(sim.url))
        yield sim
