"""The waiting engine: what one look at an instance's task list means for one wait.

Every wait (the sensor's poke, reschedule and deferrable modes, the trigger alone or on a shared
poll, the resize/retry operators in the worker or deferred) is the same three pieces:

* a stream of :class:`InstancePoll` (one look at the task list each; made by
  :mod:`airflow_provider_iotda.triggers.shared_poll`, async or sync);
* :class:`Wait`, which judges each poll with :func:`decide` (the one pure rule) and the wait's
  deadline, and answers a :class:`Step`: the line to log and, once the wait is over, the
  :class:`TriggerOutcome`;
* :class:`TriggerOutcome`, the one event format: the trigger sends ``outcome.to_event()``, every
  ``execute_complete`` reads it back with :meth:`TriggerOutcome.read`, and the worker-side waits
  conclude from the same object.

Nothing here performs I/O, logs or imports Airflow.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from airflow_provider_iotda import validation
from airflow_provider_iotda.errors import IoTDAError
from airflow_provider_iotda.models import InstanceTask, format_api_time, select_task
from airflow_provider_iotda.retry import is_retryable

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


#: Why a poll failed, as the trigger's error events say it: ``"iotda"``: IoTDA answered with an
#: error (or not at all); ``"invalid"``: the connection or instance is not valid;
#: ``"exception"``: anything else (a missing connection, a bug).
FailureReason = Literal["iotda", "invalid", "exception"]


@dataclass(frozen=True)
class InstancePoll:
    """One look at an instance's task list, as every wait on the instance receives it.

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

    @classmethod
    def failed(cls, instance_id: str, started: float, exc: Exception) -> InstancePoll:
        """The poll for a failure, in the words the trigger's error events use."""
        reason: FailureReason
        if isinstance(exc, IoTDAError):
            reason, final, message = "iotda", not is_retryable(exc), str(exc)
        elif isinstance(exc, ValueError):
            reason, final, message = "invalid", True, str(exc)
        else:
            reason, final = "exception", True
            message = f"IoTDA trigger failed: {type(exc).__name__}: {exc}"
        return cls(instance_id, None, message, final, started, reason)


_OUTCOME_STATUSES = ("success", "failed", "timeout", "error")


@dataclass(frozen=True)
class TriggerOutcome:
    """The one event of ``IoTDAInstanceTaskTrigger``: built here (:meth:`to_event`) and read
    here (:meth:`read`), by the trigger, the sensor and the operators alike.

    ``status`` is ``success``, ``failed``, ``timeout`` or ``error`` (then ``reason``:
    ``not_found``, ``iotda``, ``invalid`` or ``exception``); ``task`` the task's dict when the
    event carries one.
    """

    status: str
    message: str
    task: dict[str, object] | None = None
    reason: str | None = None

    @classmethod
    def finished(cls, decision: Decision) -> TriggerOutcome:
        """The ``success`` or ``failed`` outcome of a decision that found the task done."""
        task = decision.task.to_dict() if decision.task is not None else None
        return cls(decision.state, decision.message, task)

    @classmethod
    def error(cls, reason: str, message: str) -> TriggerOutcome:
        """An ``error`` outcome (``reason`` says which kind)."""
        return cls("error", message, reason=reason)

    def to_event(self) -> dict[str, Any]:
        """The trigger event's payload (JSON only)."""
        if self.status == "error":
            return {"status": "error", "reason": self.reason, "message": self.message}
        return {"status": self.status, "task": self.task, "message": self.message}

    @classmethod
    def read(cls, event: object) -> TriggerOutcome:
        """``ValueError`` when ``event`` is not one of the trigger's events."""
        if not isinstance(event, dict) or event.get("status") not in _OUTCOME_STATUSES:
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


@dataclass(frozen=True)
class Step:
    """What one poll means for a wait: a line to log (``None``: nothing new), at ``level``, and
    the outcome once the wait is over (``None``: poll on)."""

    outcome: TriggerOutcome | None = None
    line: str | None = None
    level: Literal["info", "warning"] = "info"


@dataclass
class Wait:
    """One wait for one task, judged poll by poll (the engine of every waiting mode).

    :param started_at: epoch seconds of the first look (``waited`` counts from it).
    :param deadline: epoch seconds after which the wait ends with a ``timeout`` outcome
        (``None``: the caller enforces the timeout, as ``BaseSensorOperator`` does in poke mode).
    :param log_changes_only: give a line only when a look finds something new (shared polls:
        1,000 triggers would otherwise write 1,000 unchanged lines per interval).
    :param transient: the warning for a poll that failed but may work next time
        (``{error}`` is replaced).
    """

    query: TaskQuery
    success_statuses: Collection[str] = DEFAULT_SUCCESS_STATUSES
    failure_statuses: Collection[str] = DEFAULT_FAILURE_STATUSES
    started_at: float = 0.0
    deadline: float | None = None
    not_found_timeout: float | None = None
    log_changes_only: bool = False
    transient: str = "IoTDA did not answer this poll ({error}); polling on"
    #: The task as last seen, as its ``to_dict()`` (the timeout event's ``task``): plain values,
    #: so 1,000 waiting triggers do not each keep a parsed task and its datetimes alive.
    last_seen: dict[str, Any] | None = None
    _last_logged: tuple[str | None, str | None, int | None] | None = field(default=None, repr=False)

    def judge(self, poll: InstancePoll, now: float) -> Step:
        """The step for ``poll``, judged at ``now`` (epoch s)."""
        if poll.tasks is None:
            if poll.final:
                reason = poll.reason or "iotda"
                return Step(TriggerOutcome.error(reason, poll.error or "IoTDA poll failed"))
            warning = self.transient.format(error=poll.error)
            return Step(self.overdue(now), warning, "warning")
        task = self.query.find(poll.tasks)
        if task is not None:
            self.last_seen = task.to_dict()
        decision = decide(
            task,
            query=self.query,
            success_statuses=self.success_statuses,
            failure_statuses=self.failure_statuses,
            waited=poll.polled_at - self.started_at,
            not_found_timeout=self.not_found_timeout,
        )
        seen = (task.task_id, task.status, task.progress) if task is not None else (None,) * 3
        line: str | None = None
        if decision.done or not self.log_changes_only or seen != self._last_logged:
            line, self._last_logged = decision.message, seen
        if decision.state == "not_found":
            return Step(TriggerOutcome.error("not_found", decision.message), line)
        if decision.done:
            return Step(TriggerOutcome.finished(decision), line)
        return Step(self.overdue(now), line)

    def overdue(self, now: float) -> TriggerOutcome | None:
        """The ``timeout`` outcome once the deadline has passed, else ``None``."""
        if self.deadline is not None and now >= self.deadline:
            return self.timed_out(now)
        return None

    def timed_out(self, now: float) -> TriggerOutcome:
        """The ``timeout`` outcome (with the task last seen, if any)."""
        deadline = self.deadline if self.deadline is not None else now
        message = timeout_message(self.query, now - self.started_at, deadline - self.started_at)
        return TriggerOutcome("timeout", message, self.last_seen)


def active_tasks(
    tasks: Iterable[InstanceTask],
    task_type: str,
    statuses: Collection[str] = ("PENDING", "RUNNING"),
) -> list[InstanceTask]:
    """The tasks of ``task_type`` still in ``statuses`` (default: not finished), newest first."""
    found = [t for t in tasks if t.type == task_type and t.status in statuses]
    epoch = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    return sorted(found, key=lambda t: (t.create_time or epoch, t.task_id), reverse=True)
