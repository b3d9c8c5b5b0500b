"""Fixtures of the unit tests (log capture); ``iotda_conn`` comes from tests/conftest.py."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
import structlog
import structlog.testing

from .unit_support import CapturedLogs


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> Iterator[CapturedLogs]:
    """Capture every log line at DEBUG: stdlib logging (caplog) and structlog (hook.log)."""
    caplog.set_level(logging.DEBUG)
    previous = structlog.get_config()
    capture = structlog.testing.LogCapture()
    structlog.configure(
        processors=[capture],
        wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG),
        cache_logger_on_first_use=False,
    )
    try:
        yield CapturedLogs(caplog, capture.entries)  # type: ignore[arg-type]
    finally:
        structlog.configure(**previous)
