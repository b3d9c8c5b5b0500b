"""Each decision of compat.py, checked on the running Airflow line (the suite runs on 3.1, 3.2
and 3.3: ``make test-all``).  Each test names what the line must offer and checks that compat
took the matching branch."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import airflow
import airflow.sdk
import airflow.sdk.exceptions
import airflow.sdk.log
import pytest

from airflow_provider_iotda import compat

REPO = Path(__file__).resolve().parents[2]
LINE = tuple(int(part) for part in airflow.__version__.split(".")[:2])


def test_the_line_is_a_supported_one() -> None:
    assert LINE in {(3, 1), (3, 2), (3, 3)}
    assert compat.airflow_version() == airflow.__version__


def test_conf_is_the_sdk_one_where_it_exists() -> None:
    if LINE >= (3, 2):
        assert compat.conf is airflow.sdk.conf
    else:
        from airflow.configuration import conf

        assert not hasattr(airflow.sdk, "conf")
        assert compat.conf is conf
    assert compat.conf.getboolean("operators", "default_deferrable", fallback=False) in {
        True,
        False,
    }


@pytest.mark.parametrize(
    "name",
    ["AirflowException", "AirflowFailException", "AirflowSensorTimeout", "AirflowSkipException"],
)
def test_task_exceptions_are_the_ones_the_task_runner_catches(name: str) -> None:
    if LINE >= (3, 2):
        assert getattr(compat, name) is getattr(airflow.sdk.exceptions, name)
    else:
        from airflow import exceptions as core_exceptions

        assert not hasattr(airflow.sdk.exceptions, "AirflowFailException")
        assert getattr(compat, name) is getattr(core_exceptions, name)


def test_cron_timetable() -> None:
    if hasattr(airflow.sdk, "CronDataIntervalTimetable"):
        assert compat.CronDataIntervalTimetable is airflow.sdk.CronDataIntervalTimetable
    else:
        from airflow.timetables.interval import CronDataIntervalTimetable

        assert LINE == (3, 1)
        assert compat.CronDataIntervalTimetable is CronDataIntervalTimetable


def test_trigger_bases_are_lazy_and_airflows_own() -> None:
    code = (
        "import sys, airflow.sdk\n"
        "before = 'airflow.triggers.base' in sys.modules\n"
        "import airflow_provider_iotda.compat as c\n"
        "print(before or 'airflow.triggers.base' not in sys.modules)\n"
        "import airflow.triggers.base as b\n"
        "print(c.BaseEventTrigger is b.BaseEventTrigger, c.TriggerEvent is b.TriggerEvent)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO
    ).stdout.split("\n")
    assert out[0] == "True"  # importing compat did not import the trigger bases
    assert out[1] == "True True"
    with pytest.raises(AttributeError, match="BaseTrigger"):
        compat.BaseTrigger  # noqa: B018 - a test-only export, dropped


def test_shared_streams_from_3_3() -> None:
    from airflow.triggers.base import BaseEventTrigger

    assert hasattr(BaseEventTrigger, "shared_stream_key") == compat.HAS_SHARED_STREAMS
    assert (LINE >= (3, 3)) == compat.HAS_SHARED_STREAMS


def test_amask_secret_from_3_3_and_never_raises_in_a_loop() -> None:
    assert hasattr(airflow.sdk.log, "amask_secret") == compat.HAS_AMASK_SECRET
    assert (LINE >= (3, 3)) == compat.HAS_AMASK_SECRET
    asyncio.run(compat.amask_secret("compat-test-secret-value"))


def test_connection_form_from_conn_fields_from_3_2() -> None:
    import airflow.providers_manager

    expected = hasattr(airflow.providers_manager.ProvidersManager, "_load_ui_metadata")
    assert compat.has_conn_fields_form() == expected == (LINE >= (3, 2))


def test_bad_sensor_arguments_are_value_errors_on_every_line() -> None:
    from airflow.sdk import BaseSensorOperator

    assert compat.sensor_args_raise_airflow_exception() == (LINE == (3, 1))
    with pytest.raises(ValueError, match="poke_interval"), compat.bad_sensor_args_as_value_error():
        BaseSensorOperator(task_id="bad", poke_interval=-5)
    # Other errors pass through untouched.
    with pytest.raises(KeyError), compat.bad_sensor_args_as_value_error():
        raise KeyError("x")


class _AsyncLogger:
    """A logger with structlog's async methods (what triggers get on 3.1, 3.2 and 3.3)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []

    async def awarning(self, msg: str, *args: Any, **kw: Any) -> None:
        self.calls.append((msg, args, kw))

    def warning(self, msg: str, *args: Any, **kw: Any) -> None:  # pragma: no cover
        raise AssertionError("the sync method must not be used in a loop")


def test_alog_uses_the_loggers_async_method_where_it_has_one() -> None:
    logger = _AsyncLogger()
    error = RuntimeError("boom")
    asyncio.run(compat.alog(logger, "warning", "x %s", 1, exc=error))
    assert logger.calls == [("x %s", (1,), {"exc_info": error})]


def test_alog_writes_a_stdlib_logger_in_a_thread_and_skips_disabled_levels(
    caplog: pytest.LogCaptureFixture,
) -> None:
    log = logging.getLogger("airflow_provider_iotda.test_compat")
    threads: list[int] = []

    class Record(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            threads.append(threading.get_ident())

    handler = Record()
    log.addHandler(handler)
    try:
        with caplog.at_level(logging.INFO, logger=log.name):

            async def scenario() -> int:
                await compat.alog(log, "info", "written %s", "off the loop")
                await compat.alog(log, "debug", "below the level")
                return threading.get_ident()

            loop_thread = asyncio.run(scenario())
    finally:
        log.removeHandler(handler)
    assert [r.getMessage() for r in caplog.records] == ["written off the loop"]
    assert len(threads) == 1
    assert loop_thread not in threads


def test_alog_keeps_the_callers_file_and_line() -> None:
    """The line in the task's log names the trigger's code, not compat.py (structlog takes the
    frame that awaits its coroutine; Airflow's processors add ``filename`` and ``lineno``)."""
    import structlog

    seen: list[dict[str, Any]] = []

    def keep(logger: Any, method: str, event: dict[str, Any]) -> dict[str, Any]:
        seen.append(dict(event))
        raise structlog.DropEvent

    saved = structlog.get_config()
    structlog.configure(
        processors=[
            structlog.processors.CallsiteParameterAdder(
                [
                    structlog.processors.CallsiteParameter.FILENAME,
                    structlog.processors.CallsiteParameter.FUNC_NAME,
                ]
            ),
            keep,
        ],
        cache_logger_on_first_use=False,
    )
    try:

        async def the_callers_function() -> None:
            await compat.alog(structlog.get_logger("x"), "info", "hello %s", "there")

        asyncio.run(the_callers_function())
    finally:
        structlog.configure(**saved)
    assert seen[0]["event"] == "hello there"
    assert seen[0]["filename"] == "test_compat.py"
    assert seen[0]["func_name"] == "the_callers_function"
