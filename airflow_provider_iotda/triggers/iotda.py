"""``IoTDAInstanceTaskTrigger``: the deferrable half of ``IoTDAInstanceTaskSensor``.

Polls the instance's task list with :class:`~airflow_provider_iotda.hooks.iotda_async.
IoTDAAsyncHook` (one request per poll, never blocking the event loop) and yields exactly one
event, a dict with ``status``:

* ``"success"``: ``task`` (the task's ``to_dict()``) and ``message``;
* ``"failed"``: ``task`` and ``message`` (ID, type, instance, ``status_detail``);
* ``"timeout"``: ``message`` and ``task`` (last seen, or ``None``);
* ``"error"``: ``reason`` (``"not_found"``, ``"iotda"``, ``"invalid"`` or ``"exception"``) and
  ``message``.

The outcome of each poll comes from :func:`airflow_provider_iotda.waiting.decide`, the
function the sensor's ``poke`` uses.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Iterable
from typing import Any

from airflow_provider_iotda import validation
from airflow_provider_iotda.compat import BaseTrigger, TriggerEvent
from airflow_provider_iotda.errors import IoTDAError
from airflow_provider_iotda.models import InstanceTask
from airflow_provider_iotda.retry import is_retryable
from airflow_provider_iotda.waiting import (
    DEFAULT_FAILURE_STATUSES,
    DEFAULT_SUCCESS_STATUSES,
    TaskQuery,
    check_statuses,
    decide,
    timeout_message,
)

CLASSPATH = "airflow_provider_iotda.triggers.iotda.IoTDAInstanceTaskTrigger"


def _now() -> float:
    """Wall-clock epoch seconds (deadlines survive a triggerer restart); patched in tests."""
    return time.time()


async def _sleep(seconds: float) -> None:
    """Wait between polls; patched in tests."""
    await asyncio.sleep(seconds)


def _first_poll_delay(poll_interval: float) -> float:
    """A random share of one interval before the first poll; patched in tests.

    The sensor has just poked when it defers, so polling at once would repeat that request; and
    triggers deferred together (mapped sensors, a triggerer restart) would otherwise poll in
    lock-step, in bursts that load IoTDA and the triggerer's garbage collector at once.
    """
    return random.uniform(0, poll_interval)


class IoTDAInstanceTaskTrigger(BaseTrigger):
    """Wait for an IoTDA instance task to reach a success or failure status.

    :param iotda_conn_id: connection of type ``huaweicloud_iotda``.
    :param instance_id: the instance (``None``: the connection's ``instance_id``).
    :param instance_task_id: the task's ID; or
    :param instance_task_type: the newest task of this type (e.g. ``"MODIFY"``) ...
    :param created_after: ... created at or after this ISO-8601 time.
    :param success_statuses: statuses that end the wait successfully.
    :param failure_statuses: statuses that end it with a ``failed`` event.
    :param poll_interval: seconds between polls.
    :param started_at: epoch seconds of the sensor's first poke (default: now).
    :param deadline: epoch seconds after which a ``timeout`` event is sent (``None``: never).
    :param not_found_timeout: seconds after ``started_at`` that a task that is not listed is
        tolerated (``None``: until the deadline).
    """

    def __init__(
        self,
        *,
        iotda_conn_id: str,
        instance_id: str | None = None,
        instance_task_id: str | None = None,
        instance_task_type: str | None = None,
        created_after: str | None = None,
        success_statuses: Iterable[str] = tuple(DEFAULT_SUCCESS_STATUSES),
        failure_statuses: Iterable[str] = tuple(DEFAULT_FAILURE_STATUSES),
        poll_interval: float = 60.0,
        started_at: float | None = None,
        deadline: float | None = None,
        not_found_timeout: float | None = None,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        # Numbers and statuses are checked here (ValueError naming the field).
        success, failure = check_statuses(success_statuses, failure_statuses)
        poll_interval = validation.positive_number(poll_interval, "poll_interval")
        if not_found_timeout is not None:
            not_found_timeout = validation.positive_number(
                not_found_timeout, "not_found_timeout", allow_zero=True
            )
        for name, moment in (("started_at", started_at), ("deadline", deadline)):
            if moment is not None:
                validation.positive_number(moment, name)
        # The instance, task and connection are checked in run() (an "invalid" error event).
        self.iotda_conn_id = iotda_conn_id
        self.instance_id = instance_id
        self.instance_task_id = instance_task_id
        self.instance_task_type = instance_task_type
        self.created_after = created_after
        self.success_statuses = sorted(success)
        self.failure_statuses = sorted(failure)
        self.poll_interval = float(poll_interval)
        self.started_at = float(started_at) if started_at is not None else _now()
        self.deadline = float(deadline) if deadline is not None else None
        self.not_found_timeout = float(not_found_timeout) if not_found_timeout is not None else None

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Class path and JSON-able kwargs (no secrets: the connection is read when it runs)."""
        return (
            CLASSPATH,
            {
                "iotda_conn_id": self.iotda_conn_id,
                "instance_id": self.instance_id,
                "instance_task_id": self.instance_task_id,
                "instance_task_type": self.instance_task_type,
                "created_after": self.created_after,
                "success_statuses": list(self.success_statuses),
                "failure_statuses": list(self.failure_statuses),
                "poll_interval": self.poll_interval,
                "started_at": self.started_at,
                "deadline": self.deadline,
                "not_found_timeout": self.not_found_timeout,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Poll until the task finishes, the deadline passes or an error; yield one event."""
        try:
            event = await self._wait()
        except ValueError as exc:
            event = {"status": "error", "reason": "invalid", "message": str(exc)}
        except Exception as exc:  # never die silently: the sensor must learn what happened
            self.log.exception("IoTDA trigger failed unexpectedly")
            event = {
                "status": "error",
                "reason": "exception",
                "message": f"IoTDA trigger failed: {type(exc).__name__}: {exc}",
            }
        yield TriggerEvent(event)  # type: ignore[no-untyped-call]

    async def _wait(self) -> dict[str, Any]:
        from airflow_provider_iotda.hooks.iotda_async import IoTDAAsyncHook

        async with IoTDAAsyncHook(self.iotda_conn_id) as hook:
            instance = await hook.resolve_instance_id(self.instance_id)
            query = TaskQuery.build(
                instance,
                instance_task_id=self.instance_task_id,
                instance_task_type=self.instance_task_type,
                created_after=self.created_after,
            )
            last_seen: InstanceTask | None = None
            delay = _first_poll_delay(self.poll_interval)
            if self.deadline is not None:
                delay = min(delay, max(0.0, self.deadline - _now()))
            if delay > 0:
                await _sleep(delay)
            while True:
                poll_started = _now()
                try:
                    task = await hook.find_instance_task(
                        query.instance_id,
                        instance_task_id=query.instance_task_id,
                        instance_task_type=query.instance_task_type,
                        created_after=query.created_after,
                    )
                except IoTDAError as exc:
                    if not is_retryable(exc):
                        return {"status": "error", "reason": "iotda", "message": str(exc)}
                    self.log.warning("IoTDA did not answer this poll (%s); polling on", exc)
                else:
                    last_seen = task or last_seen
                    decision = decide(
                        task,
                        query=query,
                        success_statuses=self.success_statuses,
                        failure_statuses=self.failure_statuses,
                        waited=_now() - self.started_at,
                        not_found_timeout=self.not_found_timeout,
                    )
                    self.log.info("%s", decision.message)
                    if decision.state == "not_found":
                        return {
                            "status": "error",
                            "reason": "not_found",
                            "message": decision.message,
                        }
                    if decision.done and decision.task is not None:
                        return {
                            "status": decision.state,
                            "task": decision.task.to_dict(),
                            "message": decision.message,
                        }
                now = _now()
                if self.deadline is not None and now >= self.deadline:
                    return {
                        "status": "timeout",
                        "message": timeout_message(
                            query, now - self.started_at, self.deadline - self.started_at
                        ),
                        "task": last_seen.to_dict() if last_seen is not None else None,
                    }
                # Polls start every poll_interval (the poll's own duration is not added on), so a
                # task is seen within one interval of finishing, however slow the answers are.
                pause = max(0.0, poll_started + self.poll_interval - now)
                if self.deadline is not None:
                    pause = min(pause, self.deadline - now)
                await _sleep(pause)
