"""Fixtures of the unit tests (log capture, the mocked hooks); ``iotda_conn`` comes from
tests/conftest.py."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
import requests_mock
import structlog
import structlog.testing

from airflow_provider_iotda.hooks.iotda import IoTDAHook

from .hook_doubles import HookDouble
from .unit_support import CapturedLogs


@pytest.fixture
def mock(iotda_conn: str) -> Iterator[requests_mock.Mocker]:
    """requests-mock in front of the sync hook's ``iotda_default`` endpoint."""
    with requests_mock.Mocker() as mocker:
        yield mocker


@pytest.fixture
def hook(iotda_conn: str) -> Iterator[IoTDAHook]:
    """A sync hook on ``iotda_default`` (use it with ``mock``)."""
    with IoTDAHook() as created:
        yield created


@pytest.fixture(params=["sync", "async"])
def either_hook(
    request: pytest.FixtureRequest, iotda_conn: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[HookDouble]:
    """The sync hook, then the async hook, each answering the same script."""
    with requests_mock.Mocker() as mocker:
        yield HookDouble(request.param, mocker, monkeypatch)


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
