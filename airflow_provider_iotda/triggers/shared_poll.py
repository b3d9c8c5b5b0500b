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

The same stream serves every other wait: a trigger that polls alone (Airflow 3.1/3.2,
``dag.test()``) drives :func:`poll_instance` itself, and the operators' and the sensor's waits in
a worker use its sync form, :func:`iter_polls` / :func:`poll_once`.  Each poll is judged by
:class:`airflow_provider_iotda.waiting.Wait`.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Iterator
from typing import TYPE_CHECKING

from airflow_provider_iotda import clock, validation
from airflow_provider_iotda.errors import IoTDAError
from airflow_provider_iotda.waiting import FailureReason, InstancePoll

if TYPE_CHECKING:
    from airflow_provider_iotda.hooks.iotda import IoTDAHook
    from airflow_provider_iotda.hooks.iotda_async import IoTDAAsyncHook

log = logging.getLogger(__name__)

#: First element of every key: no other provider's trigger can share our polls by accident.
KEY_PREFIX = "airflow_provider_iotda.instance_tasks"


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


async def poll_instance(
    iotda_conn_id: str, instance_id: str, poll_interval: float, deadline: float | None = None
) -> AsyncGenerator[InstancePoll, None]:
    """List ``instance_id``'s tasks every ``poll_interval`` seconds, forever; one poll each time.

    Polls start every ``poll_interval`` seconds (a slow answer does not shift the cadence),
    after a random first delay of up to one interval (:func:`~airflow_provider_iotda.clock.
    first_poll_delay`).  Each poll is one request per page (plus the hook's retries) on the
    loop's shared client.  The connection comes from the loop's cache and is read again every
    ``CONFIG_TTL`` seconds and after a final error, so edited or rotated credentials are picked
    up.  Never raises and never ends on its own.  With a ``deadline`` (epoch s; a trigger that
    polls alone) no wait goes past it, so the last poll is made at the deadline.
    """
    from airflow_provider_iotda.hooks import iotda_async

    hook: iotda_async.IoTDAAsyncHook | None = None
    renew_at = 0.0
    delay = _until(clock.first_poll_delay(poll_interval), deadline)
    if delay > 0:
        await clock.sleep(delay)
    try:
        while True:
            started = clock.now()
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
                poll = await _failed(instance_id, started, exc)
            if poll.final:
                # Read the connection again before the next poll: it may have been fixed.
                iotda_async.forget_connection(iotda_conn_id)
                renew_at = 0.0
            yield poll
            # Keep nothing of this poll while asleep: 1,000 waiting triggers would otherwise
            # hold 1,000 pages of parsed tasks, which every full garbage collection walks.
            del poll
            await clock.sleep(_until(started + poll_interval - clock.now(), deadline))
    finally:
        if hook is not None:
            await hook.aclose()


def _until(pause: float, deadline: float | None) -> float:
    """``pause``, cut short at ``deadline``; never negative."""
    if deadline is not None:
        pause = min(pause, deadline - clock.now())
    return max(0.0, pause)


async def _poll_once(hook: IoTDAAsyncHook, instance_id: str, started: float) -> InstancePoll:
    try:
        tasks = tuple([task async for task in hook.iter_instance_tasks(instance_id)])
    except Exception as exc:
        return await _failed(instance_id, started, exc)
    return InstancePoll(instance_id=instance_id, tasks=tasks, polled_at=started)


async def _failed(instance_id: str, started: float, exc: Exception) -> InstancePoll:
    """The poll for a failure; an unexpected one is logged (off the event loop)."""
    poll = InstancePoll.failed(instance_id, started, exc)
    if poll.reason == "exception":
        from airflow_provider_iotda import compat

        await compat.alog(
            log, "error", "Polling instance %s failed unexpectedly", instance_id, exc=exc
        )
    return poll


# -- the same stream in a worker (sync) -------------------------------------------------------


def poll_once(hook: IoTDAHook, instance_id: str) -> InstancePoll:
    """One look at ``instance_id``'s task list with the sync hook.

    An ``IoTDAError`` becomes a failed poll (``final`` when retrying will not help), as in
    :func:`poll_instance`; anything else (a bad connection, a bug) propagates to the task.
    """
    started = clock.now()
    try:
        tasks = tuple(hook.iter_instance_tasks(instance_id))
    except IoTDAError as exc:
        return InstancePoll.failed(instance_id, started, exc)
    return InstancePoll(instance_id=instance_id, tasks=tasks, polled_at=started)


def iter_polls(
    hook: IoTDAHook, instance_id: str, poll_interval: float, deadline: float | None = None
) -> Iterator[InstancePoll]:
    """:func:`poll_instance`'s cadence in a worker: a poll now, then every ``poll_interval``
    seconds; the last wait is cut short at ``deadline`` (epoch s) so that a final poll is made
    at the deadline.  Ends only when the caller stops iterating."""
    while True:
        poll = poll_once(hook, instance_id)
        yield poll
        clock.sleep_sync(_until(poll.polled_at + poll_interval - clock.now(), deadline))


__all__ = [
    "KEY_PREFIX",
    "FailureReason",
    "InstancePoll",
    "iter_polls",
    "poll_instance",
    "poll_once",
    "stream_key",
]
