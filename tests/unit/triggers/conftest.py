"""Fixtures of the trigger tests: a fake clock and no first-poll jitter (``iotda_api`` is in
tests/conftest.py)."""

from __future__ import annotations

from typing import Any

import pytest
from iotda_async_fakes import FakeClock

from airflow_provider_iotda import clock, compat


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
