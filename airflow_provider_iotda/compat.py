"""What moved between Airflow 3.1, 3.2 and 3.3, in one place.

Every other module imports these names from here, never with a try/except of its own.  Each
shim says why it exists and which Airflow line needs it; delete a shim when that line is no
longer supported.  Importing this module is cheap (``airflow.sdk`` is already imported by any
DAG file).

Feature flags (``HAS_*``) tell what the running Airflow offers; code that uses a newer feature
checks the flag and takes the plain path otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Awaitable, Iterator
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    # Type-check against the newest line (3.3): the names below have the same API everywhere.
    from airflow.sdk import CronDataIntervalTimetable, conf
    from airflow.sdk.exceptions import (
        AirflowException,
        AirflowFailException,
        AirflowSensorTimeout,
        AirflowSkipException,
    )
    from airflow.sdk.log import mask_secret
    from airflow.triggers.base import BaseEventTrigger, TriggerEvent

    HAS_SHARED_STREAMS: bool
else:
    import airflow.sdk as _sdk
    import airflow.sdk.exceptions as _sdk_exceptions

    # 3.1: ``airflow.sdk`` has no ``conf``; ``airflow.configuration.conf`` is the same parser.
    if hasattr(_sdk, "conf"):
        conf = _sdk.conf
    else:  # Airflow 3.1
        from airflow.configuration import conf

    # 3.1: the task exceptions live in ``airflow.exceptions`` only (3.2 moved them to the SDK,
    # and 3.3 warns on the old path).
    if hasattr(_sdk_exceptions, "AirflowFailException"):
        from airflow.sdk.exceptions import (
            AirflowException,
            AirflowFailException,
            AirflowSensorTimeout,
            AirflowSkipException,
        )
    else:  # Airflow 3.1
        from airflow.exceptions import (
            AirflowException,
            AirflowFailException,
            AirflowSensorTimeout,
            AirflowSkipException,
        )

    from airflow.sdk.log import mask_secret


def _has_amask_secret() -> bool:
    import airflow.sdk.log

    return hasattr(airflow.sdk.log, "amask_secret")


#: 3.3: ``amask_secret`` tells the triggerer's supervisor without blocking the event loop.
HAS_AMASK_SECRET: bool = _has_amask_secret()

# The trigger bases and HAS_SHARED_STREAMS are resolved on first use (module ``__getattr__``):
# ``airflow.triggers.base`` costs a few milliseconds that a DAG file importing only the sensor
# or an operator should not pay.
_LAZY_TRIGGER_NAMES = frozenset({"BaseEventTrigger", "TriggerEvent"})


@functools.cache
def _has_shared_streams() -> bool:
    # 3.3: ``BaseEventTrigger.shared_stream_key`` / ``open_shared_stream`` /
    # ``filter_shared_stream`` and ``airflow.triggers.shared_stream.SharedStreamManager``.
    from airflow.triggers.base import BaseEventTrigger

    return hasattr(BaseEventTrigger, "shared_stream_key")


def _cron_data_interval_timetable() -> Any:
    # 3.1: ``CronDataIntervalTimetable`` is not re-exported by ``airflow.sdk``.  Resolved on
    # first use: it imports croniter (about 8 ms), which the sensor and operators never need.
    import airflow.sdk

    if "CronDataIntervalTimetable" in getattr(airflow.sdk, "__all__", ()):
        return airflow.sdk.CronDataIntervalTimetable
    from airflow.timetables.interval import CronDataIntervalTimetable  # Airflow 3.1

    return CronDataIntervalTimetable


def __getattr__(name: str) -> Any:
    if name == "CronDataIntervalTimetable":
        return _cron_data_interval_timetable()
    if name in _LAZY_TRIGGER_NAMES:
        import airflow.triggers.base

        return getattr(airflow.triggers.base, name)
    if name == "HAS_SHARED_STREAMS":
        #: 3.3: one poll loop per shared-stream key, fanned out to every subscribing trigger.
        return _has_shared_streams()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _reads_conn_fields() -> bool:
    import airflow.providers_manager

    return hasattr(airflow.providers_manager.ProvidersManager, "_load_ui_metadata")


#: 3.2: the connection form is built from the provider info's ``conn-fields`` and
#: ``ui-field-behaviour``; 3.1 builds it from the hook's ``get_connection_form_widgets`` and
#: ``get_ui_field_behaviour`` only.  Resolved on first call.
@functools.cache
def has_conn_fields_form() -> bool:
    return _reads_conn_fields()


async def amask_secret(secret: str) -> None:
    """Register ``secret`` with Airflow's masker from inside an event loop.

    3.3 has ``amask_secret``.  On 3.1 and 3.2 the sync ``mask_secret`` registers the value with
    this process's masker (which redacts the trigger's own log lines) and then tries to tell
    the supervisor through a sync bridge that refuses to run inside the loop; it catches that
    refusal itself, so the call neither blocks nor raises.
    """
    if HAS_AMASK_SECRET:
        from airflow.sdk.log import amask_secret as _amask

        await _amask(secret)
    else:  # Airflow 3.1, 3.2
        mask_secret(secret)


#: 3.1: ``BaseSensorOperator`` rejects a bad ``poke_interval``, ``timeout`` or ``mode`` with
#: ``AirflowException``; 3.2 and 3.3 with ``ValueError`` (tests/unit/test_compat.py checks the
#: running line does what this says).
@functools.cache
def sensor_args_raise_airflow_exception() -> bool:
    major, minor = (int(part) for part in airflow_version().split(".")[:2])
    return (major, minor) < (3, 2)


@contextlib.contextmanager
def bad_sensor_args_as_value_error() -> Iterator[None]:
    """Around ``BaseSensorOperator.__init__``: bad input raises ``ValueError`` on every line.

    Airflow 3.1 rejects a bad ``poke_interval``, ``timeout`` or ``mode`` with
    ``AirflowException``; 3.2+ with ``ValueError``, which is what bad input raises everywhere in
    this provider.
    """
    try:
        yield
    except AirflowException as exc:
        if not sensor_args_raise_airflow_exception():
            raise
        raise ValueError(str(exc)) from exc


_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}


def alog(
    logger: Any, level: str, msg: str, *args: object, exc: BaseException | None = None
) -> Awaitable[None]:
    """Write one log line from inside an event loop without blocking the loop: ``await`` it.

    A trigger's log write takes the log output's lock and writes to the triggerer's log socket;
    done on the loop thread, 200 triggers firing together blocked a real triggerer for seconds.
    Triggers get structlog loggers on every supported line (checked on 3.1.8 and 3.3.2):
    their ``ainfo``/``awarning``/... run the write in a worker thread, as Airflow's own
    triggerer logs.  Other loggers (a stdlib ``logging.Logger``, such as a module's logger) are
    written with the same call in a thread (``asyncio.to_thread`` copies the context, so the
    line still carries the trigger's ids).  Same message, same logger; ``exc`` adds its
    traceback.

    The logger's coroutine is returned, not awaited here, so that structlog records the
    caller's file and line (it takes the frame that awaits its coroutine).
    """
    extra: dict[str, Any] = {"exc_info": exc} if exc is not None else {}
    async_method = getattr(logger, f"a{level}", None)
    if async_method is not None and asyncio.iscoroutinefunction(async_method):
        return cast("Awaitable[None]", async_method(msg, *args, **extra))
    if isinstance(logger, logging.Logger) and not logger.isEnabledFor(_LEVELS[level]):
        return _written()
    return asyncio.to_thread(getattr(logger, level), msg, *args, **extra)


async def _written() -> None:
    """Nothing to write (the level is off)."""


def airflow_version() -> str:
    """The running Airflow's version string (``3.2.2``)."""
    import airflow

    return str(airflow.__version__)


__all__ = [
    "HAS_AMASK_SECRET",
    "HAS_SHARED_STREAMS",
    "AirflowException",
    "AirflowFailException",
    "AirflowSensorTimeout",
    "AirflowSkipException",
    "BaseEventTrigger",
    "CronDataIntervalTimetable",
    "TriggerEvent",
    "airflow_version",
    "alog",
    "amask_secret",
    "bad_sensor_args_as_value_error",
    "conf",
    "has_conn_fields_form",
    "mask_secret",
    "sensor_args_raise_airflow_exception",
]
