"""The one retry rule, used by the sync hook and the async trigger alike.

What is retryable: 429, 5xx, connection errors, timeouts and a 200 whose body is not JSON
(every call we make is a GET, safe to repeat).  What is not: 400, 401, 403, 404 and answers of
the wrong shape.  How long to wait: the server's ``Retry-After`` when it gives one (capped),
else exponential backoff with full jitter.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from airflow_provider_iotda.errors import IoTDAError, IoTDAThrottledError

if TYPE_CHECKING:
    import tenacity


class Logger(Protocol):
    """What the retry log needs: stdlib and structlog loggers both fit."""

    def warning(self, event: Any, /, *args: Any) -> Any: ...


def _sleep(seconds: float) -> None:
    time.sleep(seconds)


async def _async_sleep(seconds: float) -> None:
    await asyncio.sleep(seconds)


def is_retryable(error: BaseException) -> bool:
    """True for errors that repeating the same GET may cure."""
    return isinstance(error, IoTDAError) and error.retryable


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

    def _tenacity_kwargs(self) -> dict[str, Any]:
        import tenacity

        def wait(state: tenacity.RetryCallState) -> float:
            outcome = state.outcome
            error = outcome.exception() if outcome is not None else None
            return self.delay(state.attempt_number, error)

        return {
            "stop": tenacity.stop_after_attempt(self.max_retries + 1),
            "retry": tenacity.retry_if_exception(is_retryable),
            "wait": wait,
            "reraise": True,
        }

    def retrying(self, log: Logger | None = None, **extra: Any) -> tenacity.Retrying:
        """A ``tenacity.Retrying`` for synchronous calls; each retry is logged on ``log``."""
        import tenacity

        if log is not None:
            extra.setdefault("before_sleep", _log_retry(log))
        return tenacity.Retrying(
            sleep=lambda seconds: _sleep(seconds), **self._tenacity_kwargs(), **extra
        )

    def async_retrying(self, log: Logger | None = None, **extra: Any) -> tenacity.AsyncRetrying:
        """A ``tenacity.AsyncRetrying`` (waits with ``asyncio.sleep``) for the trigger."""
        import tenacity

        if log is not None:
            extra.setdefault("before_sleep", _log_retry(log))
        return tenacity.AsyncRetrying(
            sleep=lambda seconds: _async_sleep(seconds), **self._tenacity_kwargs(), **extra
        )


def _log_retry(log: Logger) -> Callable[[tenacity.RetryCallState], None]:
    """One warning per retry: the attempt, the error (never headers) and the wait."""

    def before_sleep(state: tenacity.RetryCallState) -> None:
        outcome = state.outcome
        error = outcome.exception() if outcome is not None else None
        sleep = state.next_action.sleep if state.next_action else 0.0
        log.warning(
            "IoTDA call failed (attempt %d): %s; retrying in %.1f s",
            state.attempt_number,
            error,
            sleep,
        )

    return before_sleep
