"""One poll of an instance's task list, shared by every trigger that waits on that instance.

On Airflow 3.3 the triggerer runs one poll loop per *shared-stream key* and hands each poll to
every trigger that returned that key (``airflow.triggers.shared_stream.SharedStreamManager``).
The IoTDA triggers return :func:`stream_key` of (connection, instance, poll interval), and the
loop is :func:`poll_instance`: one list request per instance per interval (all pages), however
many deferred sensors or asset watchers wait on the instance.  Each trigger then decides for
itself what a poll means (its own task, statuses and deadline).

The manager keys groups by the key alone, not by the trigger's class: a group is opened by the
``open_shared_stream`` of whichever trigger subscribed first, so every IoTDA trigger class
delegates it here and all of them understand the same :class:`InstancePoll`.

Nothing here raises to the manager: a poll that failed is an :class:`InstancePoll` with
``error`` set (``final`` when retrying will not help), and the loop polls on at its cadence
until the manager cancels it (when the last trigger of the group leaves).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from airflow_provider_iotda import validation
from airflow_provider_iotda.errors import IoTDAError
from airflow_provider_iotda.models import InstanceTask
from airflow_provider_iotda.retry import is_retryable

if TYPE_CHECKING:
    from airflow_provider_iotda.hooks.iotda_async import IoTDAAsyncHook

log = logging.getLogger(__name__)

#: First element of every key: no other provider's trigger can share our polls by accident.
KEY_PREFIX = "airflow_provider_iotda.instance_tasks"

#: Why a poll failed, as the trigger's error events say it: ``"iotda"``: IoTDA answered with an
#: error (or not at all); ``"invalid"``: the connection or instance is not valid;
#: ``"exception"``: anything else (a missing connection, a bug).
FailureReason = Literal["iotda", "invalid", "exception"]


@dataclass(frozen=True)
class InstancePoll:
    """One look at an instance's task list, as every subscriber of the stream receives it.

    :param instance_id: the instance polled.
    :param tasks: every task the instance lists (all pages); ``None`` when the poll failed.
    :param error: why the poll failed (a message without secrets); ``None`` when it worked.
    :param final: the failure will not heal by polling again (400/401/403/404 from IoTDA, an
        invalid or missing connection); transient failures (throttling, 5xx, timeouts) are not.
    :param polled_at: epoch seconds when the poll started.
    :param reason: the kind of failure (see :data:`FailureReason`); ``None`` when it worked.
    """

    instance_id: str
    tasks: tuple[InstanceTask, ...] | None
    error: str | None = None
    final: bool = False
    polled_at: float = 0.0
    reason: FailureReason | None = None

    @property
    def ok(self) -> bool:
        """Whether the poll listed the tasks."""
        return self.tasks is not None


def stream_key(iotda_conn_id: str, instance_id: str, poll_interval: float) -> tuple[str, ...]:
    """The ``shared_stream_key`` of every IoTDA trigger on this connection, instance and cadence.

    Validated here (a ``ValueError`` names the field), so two spellings of one interval
    (``10`` and ``10.0``) share one poll.
    """
    return (
        KEY_PREFIX,
        validation.conn_id(iotda_conn_id, "iotda_conn_id"),
        validation.instance_id(instance_id),
        repr(float(validation.positive_number(poll_interval, "poll_interval"))),
    )


def _now() -> float:
    """Wall-clock epoch seconds; patched in tests."""
    return time.time()


async def _sleep(seconds: float) -> None:
    """Wait between polls; patched in tests."""
    await asyncio.sleep(seconds)


def _first_poll_delay(poll_interval: float) -> float:
    """A random share of one interval before a stream's first poll; patched in tests.

    The sensor has just poked when it defers, and after a triggerer restart every stream starts
    at once: a random phase spreads the streams' polls over the interval instead of sending
    them in one burst each interval.
    """
    return random.uniform(0, poll_interval)


async def poll_instance(
    iotda_conn_id: str, instance_id: str, poll_interval: float
) -> AsyncIterator[InstancePoll]:
    """List ``instance_id``'s tasks every ``poll_interval`` seconds, forever; one poll each time.

    Polls start every ``poll_interval`` seconds (a slow answer does not shift the cadence),
    after a random first delay of up to one interval.  Each poll is one request per page (plus
    the hook's retries) on the loop's shared client.  The connection comes from the loop's
    cache and is read again every ``CONFIG_TTL`` seconds and after a final error, so edited
    or rotated credentials are picked up.  Never raises and never ends on its own.
    """
    from airflow_provider_iotda.hooks import iotda_async

    hook: iotda_async.IoTDAAsyncHook | None = None
    renew_at = 0.0
    delay = _first_poll_delay(poll_interval)
    if delay > 0:
        await _sleep(delay)
    try:
        while True:
            started = _now()
            try:
                if hook is None or started >= renew_at:
                    # The new hook is entered before the old one leaves: the loop's shared
                    # client stays open in between.
                    fresh = iotda_async.IoTDAAsyncHook(iotda_conn_id)
                    await fresh.__aenter__()
                    old, hook = hook, fresh
                    renew_at = started + iotda_async.CONFIG_TTL
                    if old is not None:
                        await old.aclose()
                poll = await _poll_once(hook, instance_id, started)
            except Exception as exc:  # a hook that cannot even be built (bad conn_id)
                poll = _failed(instance_id, started, exc)
            if poll.final:
                # Read the connection again before the next poll: it may have been fixed.
                iotda_async.forget_connection(iotda_conn_id)
                renew_at = 0.0
            yield poll
            await _sleep(max(0.0, started + poll_interval - _now()))
    finally:
        if hook is not None:
            await hook.aclose()


async def _poll_once(hook: IoTDAAsyncHook, instance_id: str, started: float) -> InstancePoll:
    try:
        tasks = tuple([task async for task in hook.iter_instance_tasks(instance_id)])
    except Exception as exc:
        return _failed(instance_id, started, exc)
    return InstancePoll(instance_id=instance_id, tasks=tasks, polled_at=started)


def _failed(instance_id: str, started: float, exc: Exception) -> InstancePoll:
    """The poll for a failure, in the words the trigger's error events use."""
    reason: FailureReason
    if isinstance(exc, IoTDAError):
        # Transient ones are logged by each trigger ("polling on"), as without sharing.
        reason, final, message = "iotda", not is_retryable(exc), str(exc)
    elif isinstance(exc, ValueError):
        reason, final, message = "invalid", True, str(exc)
    else:
        log.exception("Polling instance %s failed unexpectedly", instance_id)
        reason, final = "exception", True
        message = f"IoTDA trigger failed: {type(exc).__name__}: {exc}"
    return InstancePoll(
        instance_id=instance_id,
        tasks=None,
        error=message,
        final=final,
        polled_at=started,
        reason=reason,
    )
