"""What "waiting for an instance task" decides, shared by the sensor (poke) and the trigger.

:func:`decide` is the one pure function that maps what one look at the task list found to an
outcome; the sensor's ``poke`` and the trigger's loop both call it, so poke, reschedule and
deferrable mode can never disagree.  Nothing here performs I/O or imports Airflow.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Literal

from airflow_provider_iotda import validation
from airflow_provider_iotda.models import InstanceTask, format_api_time, select_task

DEFAULT_SUCCESS_STATUSES = frozenset({"SUCCESS"})
DEFAULT_FAILURE_STATUSES = frozenset({"FAILED"})

#: ``success``/``failed``: the task finished; ``waiting``: look again later;
#: ``not_found``: the task was not listed for longer than ``not_found_timeout``.
State = Literal["success", "failed", "waiting", "not_found"]


def format_duration(seconds: float) -> str:
    """``42 s``, ``3 min 05 s``, ``2 h 01 min``: how long the sensor has waited."""
    total = max(0, int(seconds))
    if total < 60:
        return f"{total} s"
    minutes, secs = divmod(total, 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


@dataclass(frozen=True)
class TaskQuery:
    """Which task to wait for: by ID, or the newest of a type created at or after a time."""

    instance_id: str
    instance_task_id: str | None = None
    instance_task_type: str | None = None
    created_after: dt.datetime | None = None

    def __post_init__(self) -> None:
        if (self.instance_task_id is None) == (self.instance_task_type is None):
            raise ValueError(
                "give exactly one of instance_task_id (a task ID) and instance_task_type "
                "(e.g. 'MODIFY')"
            )
        if self.instance_task_id is not None and self.created_after is not None:
            raise ValueError(
                "created_after applies only with instance_task_type; a task ID names one task"
            )

    @classmethod
    def build(
        cls,
        instance_id: object,
        *,
        instance_task_id: object = None,
        instance_task_type: object = None,
        created_after: object = None,
    ) -> TaskQuery:
        """Validate raw (rendered) values; each error names its field."""
        task_id = instance_task_id if instance_task_id not in (None, "") else None
        task_type = instance_task_type if instance_task_type not in (None, "") else None
        return cls(
            instance_id=validation.instance_id(instance_id),
            instance_task_id=validation.instance_task_id(task_id) if task_id is not None else None,
            instance_task_type=validation.task_type(task_type) if task_type is not None else None,
            created_after=validation.timestamp(created_after, "created_after"),
        )

    def find(self, tasks: Iterable[InstanceTask]) -> InstanceTask | None:
        """The task this query means among ``tasks``, or ``None``."""
        return select_task(
            tasks,
            instance_task_id=self.instance_task_id,
            instance_task_type=self.instance_task_type,
            created_after=self.created_after,
        )

    def describe(self) -> str:
        """``task 0a1b… of instance 6b6f…`` or ``the newest MODIFY task of instance 6b6f…``."""
        if self.instance_task_id is not None:
            return f"task {self.instance_task_id} of instance {self.instance_id}"
        after = (
            f" created at or after {format_api_time(self.created_after)}"
            if self.created_after is not None
            else ""
        )
        return f"the newest {self.instance_task_type} task{after} of instance {self.instance_id}"


@dataclass(frozen=True)
class Decision:
    """The outcome of one look at the task list, with the line to log or the error to raise."""

    state: State
    message: str
    task: InstanceTask | None = None

    @property
    def done(self) -> bool:
        """Whether waiting is over (success, failure or given up)."""
        return self.state != "waiting"


def check_statuses(
    success_statuses: object, failure_statuses: object
) -> tuple[frozenset[str], frozenset[str]]:
    """Validate both status sets: non-empty, upper-case names, and disjoint."""
    success = validation.task_statuses(success_statuses, "success_statuses")
    failure = validation.task_statuses(failure_statuses, "failure_statuses")
    both = success & failure
    if both:
        raise ValueError(
            f"success_statuses and failure_statuses must not share a status; "
            f"both contain {', '.join(sorted(both))}"
        )
    return success, failure


def _status_line(task: InstanceTask, query: TaskQuery, waited: float) -> str:
    progress = f", progress {task.progress}%" if task.progress is not None else ""
    return (
        f"{task.type} task {task.task_id} of instance {query.instance_id} is {task.status}"
        f"{progress}; waited {format_duration(waited)}"
    )


def failure_message(task: InstanceTask, instance_id: str) -> str:
    """The error for a task that ended in a failure status: ID, type, instance, status_detail."""
    detail = task.status_detail or "IoTDA gave no status_detail"
    return (
        f"IoTDA {task.type} task {task.task_id} of instance {instance_id} ended {task.status}: "
        f"{detail}"
    )


def timeout_message(query: TaskQuery, waited: float, timeout: float) -> str:
    """The error for a sensor that waited longer than its ``timeout``."""
    return (
        f"Sensor has timed out: waited {format_duration(waited)} ({waited:.0f} s) for "
        f"{query.describe()}, more than the timeout of {timeout:g} s"
    )


def decide(
    task: InstanceTask | None,
    *,
    query: TaskQuery,
    success_statuses: Collection[str],
    failure_statuses: Collection[str],
    waited: float,
    not_found_timeout: float | None,
) -> Decision:
    """Map what one list call found to an outcome.

    ``task`` is what :meth:`TaskQuery.find` returned; ``waited`` is the time in seconds since
    the sensor's first poke; ``not_found_timeout`` (``None``: no limit) is how long a task that
    is not listed is tolerated.  Statuses in neither set (``PENDING``, ``RUNNING``, unknown
    ones) keep waiting.
    """
    if task is None:
        limit = math.inf if not_found_timeout is None else not_found_timeout
        if waited > limit:
            return Decision(
                "not_found",
                f"IoTDA does not list {query.describe()}; waited {format_duration(waited)}, "
                f"longer than not_found_timeout ({limit:g} s)",
            )
        tolerance = "" if not_found_timeout is None else f" (tolerated for {limit:g} s)"
        return Decision(
            "waiting",
            f"IoTDA does not list {query.describe()} yet; waited {format_duration(waited)}"
            f"{tolerance}",
        )
    if task.status in success_statuses:
        return Decision("success", _status_line(task, query, waited), task)
    if task.status in failure_statuses:
        return Decision("failed", failure_message(task, query.instance_id), task)
    return Decision("waiting", _status_line(task, query, waited), task)


@dataclass(frozen=True)
class TriggerOutcome:
    """The one event of ``IoTDAInstanceTaskTrigger``, read: what every caller of the trigger
    (the sensor's and the operators' ``execute_complete``) maps to its result.

    ``status`` is ``success``, ``failed``, ``timeout`` or ``error`` (then ``reason``);
    ``task`` the task's dict when the event carries one.
    """

    status: str
    message: str
    task: dict[str, object] | None = None
    reason: str | None = None

    @classmethod
    def read(cls, event: object) -> TriggerOutcome:
        """``ValueError`` when ``event`` is not one of the trigger's events."""
        if not isinstance(event, dict) or event.get("status") not in (
            "success",
            "failed",
            "timeout",
            "error",
        ):
            raise ValueError(f"IoTDA trigger sent an unexpected event: {event!r}")
        task = event.get("task")
        reason = event.get("reason")
        return cls(
            status=str(event["status"]),
            message=str(event.get("message") or ""),
            task=task if isinstance(task, dict) else None,
            reason=str(reason) if reason is not None else None,
        )

    @property
    def error_message(self) -> str:
        """The message of an ``error`` event, worded as a poke would word the same error."""
        if self.reason == "iotda":
            return f"IoTDA call failed: {self.message}"
        return self.message or "IoTDA trigger failed"


def active_tasks(
    tasks: Iterable[InstanceTask],
    task_type: str,
    statuses: Collection[str] = ("PENDING", "RUNNING"),
) -> list[InstanceTask]:
    """The tasks of ``task_type`` still in ``statuses`` (default: not finished), newest first."""
    found = [t for t in tasks if t.type == task_type and t.status in statuses]
    epoch = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    return sorted(found, key=lambda t: (t.create_time or epoch, t.task_id), reverse=True)
