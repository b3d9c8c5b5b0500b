"""The clock: the time and the waits every poll loop uses, and clock-skew correction.

:func:`now`, :func:`sleep`, :func:`sleep_sync` and :func:`first_poll_delay` are the only
places the waiting code (triggers, shared polls, operators) reads the time, waits or draws the
first poll's jitter; callers use them as ``clock.now()`` so that tests patch them once here.

Clock-skew correction: sign with the service's time when this machine's clock is off.

IoTDA's gateway rejects (401) a request whose ``X-Sdk-Date`` is more than 15 minutes from its
own clock.  When a rejection carries a ``Date`` header more than :data:`SKEW_THRESHOLD` away
from our (corrected) clock, :meth:`ClockOffset.learn` records the difference, warns once, and
the caller signs again with the corrected time; later requests use the offset at once.
Neither Huawei's SDK nor botocore does this; the AWS JavaScript SDK does.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import email.utils
import random
import threading
import time
import weakref
from collections.abc import Callable, Coroutine
from typing import Any, Final

from airflow_provider_iotda.errors import IoTDAAuthError


def now() -> float:
    """Wall-clock epoch seconds (deadlines survive a triggerer restart); patched in tests."""
    return time.time()


def sleep(seconds: float) -> Coroutine[Any, Any, None]:
    """Wait between polls in an event loop (``await clock.sleep(s)``); patched in tests.

    ``asyncio.sleep`` itself, not a coroutine around it: one object less for each of 1,000
    waiting triggers to keep alive.
    """
    return asyncio.sleep(seconds)


def sleep_sync(seconds: float) -> None:
    """Wait between polls in a worker (an operator's poke mode); patched in tests."""
    time.sleep(seconds)


def first_poll_delay(poll_interval: float) -> float:
    """A random share of one interval before the first poll; patched in tests.

    The sensor has just poked when it defers, and triggers deferred together (mapped sensors, a
    triggerer restart) would otherwise poll in lock-step, in bursts that load IoTDA and the
    triggerer at once: a random phase spreads the polls over the interval.
    """
    return random.uniform(0, poll_interval)


#: Seconds of difference from the service's ``Date`` above which the offset is corrected.
SKEW_THRESHOLD: Final = 300.0


def parse_http_date(value: str | None) -> dt.datetime | None:
    """An RFC 7231 ``Date`` header as an aware UTC datetime; ``None`` when unusable."""
    if not value:
        return None
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC)


def describe_offset(seconds: float) -> str:
    """``-1200.4`` -> ``20 min 0 s behind``."""
    total = round(abs(seconds))
    minutes, secs = divmod(total, 60)
    hours, minutes = divmod(minutes, 60)
    parts = [f"{hours} h" if hours else "", f"{minutes} min" if minutes else "", f"{secs} s"]
    return " ".join(p for p in parts if p) + (" behind" if seconds < 0 else " ahead of")


class ClockOffset:
    """Seconds to add to the local clock to get the service's time (thread-safe)."""

    def __init__(self, local_clock: Callable[[], dt.datetime] | None = None) -> None:
        self._local = local_clock or (lambda: dt.datetime.now(dt.UTC))
        self._lock = threading.Lock()
        self.seconds = 0.0
        self.warned = False

    def now(self) -> dt.datetime:
        """The corrected time: what the service's clock says now (as best we know)."""
        return self._local() + dt.timedelta(seconds=self.seconds)

    def signing_time(self) -> dt.datetime | None:
        """The time to sign with: ``None`` (the signer reads the clock) until a skew is found."""
        return self.now() if self.seconds else None

    def learn(self, error: BaseException, log: Any = None, conn_id: str = "") -> bool:
        """Take the offset from a 401's ``Date`` when it is over the threshold.

        Returns True when the offset changed, i.e. signing again may now succeed.  The first
        correction is logged once as a warning on ``log``.
        """
        if not isinstance(error, IoTDAAuthError):
            return False
        server = parse_http_date(getattr(error, "server_date", None))
        if server is None:
            return False
        with self._lock:
            skew = (server - self.now()).total_seconds()
            if abs(skew) <= SKEW_THRESHOLD:
                return False
            local_offset = (server - self._local()).total_seconds()
            self.seconds = local_offset
            first, self.warned = not self.warned, True
        if first and log is not None:
            log.warning(
                "The clock of this machine is %s IoTDA's (Date header of its answer%s): "
                "signing with the corrected time from now on. Fix the clock (NTP).",
                describe_offset(-local_offset),
                f", connection {conn_id!r}" if conn_id else "",
            )
        return True


_SHARED: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, ClockOffset]] = (
    weakref.WeakKeyDictionary()
)


def shared_offset(conn_id: str) -> ClockOffset:
    """The running loop's offset for this connection: every async hook of it learns at once."""
    offsets = _SHARED.setdefault(asyncio.get_running_loop(), {})
    offset = offsets.get(conn_id)
    if offset is None:
        offset = offsets[conn_id] = ClockOffset()
    return offset
