"""The one retry rule, used by the sync and the async hook alike.

What is retryable for a GET (safe to repeat): 429, 5xx, connection errors, timeouts and a 2xx
whose body is not JSON.  For a POST (a resize, a task retry) only what certainly did not reach
IoTDA: 429 (the API gateway refused it) and a connection that could not be opened; a timeout,
a dropped connection, a 5xx or a broken answer may mean IoTDA acted on it, so it is never sent
again.  Never retryable: 400, 401, 403, 404 and answers of the wrong shape.  How long to wait:
the server's ``Retry-After`` when it gives one (capped), else exponential backoff with full
jitter.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from airflow_provider_iotda.errors import IoTDAError, IoTDAThrottledError, IoTDATransportError

if TYPE_CHECKING:
    import tenacity


class Logger(Protocol):
    """What the retry log needs: stdlib and structlog loggers both fit."""

    def warning(self, event: Any, /, *args: Any) -> Any: ...


def _sleep(seconds: float) -> None:
    time.sleep(seconds)


async def _async_sleep(seconds: float) -> None:
    await asyncio.sleep(seconds)


def wait(seconds: float) -> None:
    """Sleep between attempts (tests replace ``_sleep`` to record the waits instead)."""
    _sleep(seconds)


async def async_wait(seconds: float) -> None:
    """:func:`wait` for the event loop."""
    await _async_sleep(seconds)


#: Methods that may be repeated whatever happened to an earlier attempt.
SAFE_METHODS = frozenset({"GET", "HEAD"})


def is_retryable(error: BaseException, method: str = "GET") -> bool:
    """True for errors that repeating the same request may cure without doing anything twice."""
    if not isinstance(error, IoTDAError) or not error.retryable:
        return False
    if method.upper() in SAFE_METHODS:
        return True
    if isinstance(error, IoTDAThrottledError):
        return True
    return isinstance(error, IoTDATransportError) and not error.request_sent


@dataclass(frozen=True)
class RetryPolicy:
    """How many times to retry and how long to wait between attempts."""

    max_retries: int = 3
    base_delay: float = 0.5
    max_delay: float = 30.0
    max_retry_after: float = 120.0

    def delay(
        self, attempt: int, error: BaseException | None, rng: random.Random | None = None
    ) -> float:
        """Seconds to wait before retry number ``attempt`` (1-based) after ``error``."""
        if isinstance(error, IoTDAThrottledError) and error.retry_after is not None:
            return min(error.retry_after, self.max_retry_after)
        ceiling = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
        return (rng or random).uniform(0, ceiling)

    def _tenacity_kwargs(
        self, method: str, log: Logger | None, extra: dict[str, Any]
    ) -> dict[str, Any]:
        import tenacity

        def wait(state: tenacity.RetryCallState) -> float:
            outcome = state.outcome
            error = outcome.exception() if outcome is not None else None
            return self.delay(state.attempt_number, error)

        if log is not None:
            extra.setdefault("before_sleep", _log_retry(log))
        return {
            "stop": tenacity.stop_after_attempt(self.max_retries + 1),
            "retry": tenacity.retry_if_exception(lambda error: is_retryable(error, method)),
            "wait": wait,
            "reraise": True,
            **extra,
        }

    def retrying(
        self, log: Logger | None = None, *, method: str = "GET", **extra: Any
    ) -> tenacity.Retrying:
        """A ``tenacity.Retrying`` for synchronous calls of ``method``; each retry is logged.

        The hooks themselves run :func:`airflow_provider_iotda.transport.conversation`, which
        applies the same rule; this is for calls of your own.
        """
        import tenacity

        return tenacity.Retrying(sleep=wait, **self._tenacity_kwargs(method, log, extra))

    def async_retrying(
        self, log: Logger | None = None, *, method: str = "GET", **extra: Any
    ) -> tenacity.AsyncRetrying:
        """A ``tenacity.AsyncRetrying`` (waits with ``asyncio.sleep``), as :meth:`retrying`."""
        import tenacity

        return tenacity.AsyncRetrying(sleep=async_wait, **self._tenacity_kwargs(method, log, extra))


def log_retry(log: Logger, attempt: int, error: BaseException | None, delay: float) -> None:
    """The one warning per retry: the attempt, the error (never headers) and the wait."""
    log.warning("IoTDA call failed (attempt %d): %s; retrying in %.1f s", attempt, error, delay)


def _log_retry(log: Logger) -> Callable[[tenacity.RetryCallState], None]:
    """:func:`log_retry` as tenacity's ``before_sleep``."""

    def before_sleep(state: tenacity.RetryCallState) -> None:
        outcome = state.outcome
        error = outcome.exception() if outcome is not None else None
        sleep = state.next_action.sleep if state.next_action else 0.0
        log_retry(log, state.attempt_number, error, sleep)

    return before_sleep
