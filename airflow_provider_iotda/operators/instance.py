"""Operators that change an IoTDA instance and wait for the task they start.

* :class:`IoTDAResizeInstanceOperator` orders a new flavor (specification) and waits for its
  MODIFY task, exactly once: an Airflow retry never orders a second resize.
* :class:`IoTDARetryInstanceTaskOperator` runs a FAILED task again and waits for it.

Both wait in the worker (poke mode) or in the triggerer (``deferrable=True``, the same
:class:`~airflow_provider_iotda.triggers.iotda.IoTDAInstanceTaskTrigger` the sensor uses, with
the same events).  Either way the wait is the waiting engine's: the same poll stream
(:mod:`airflow_provider_iotda.triggers.shared_poll`, sync in the worker), judged by
:class:`airflow_provider_iotda.waiting.Wait`, ending in a
:class:`~airflow_provider_iotda.waiting.TriggerOutcome` that ``execute_complete`` reads.
Importing this module is cheap: the hooks (requests, httpx) and the trigger are imported when
a task runs.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NoReturn

from airflow.sdk import BaseOperator

from airflow_provider_iotda import clock, validation
from airflow_provider_iotda.compat import AirflowException, AirflowFailException, conf
from airflow_provider_iotda.config import DEFAULT_CONN_ID
from airflow_provider_iotda.hook_access import IoTDAHookMixin
from airflow_provider_iotda.waiting import (
    DEFAULT_FAILURE_STATUSES,
    DEFAULT_SUCCESS_STATUSES,
    TaskQuery,
    TriggerOutcome,
    Wait,
    active_tasks,
    format_duration,
)

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_iotda.models import Instance, InstanceTask

#: Default ``timeout``: a delayed resize waits up to a day for the operate window, then runs.
DEFAULT_TIMEOUT = dt.timedelta(days=2)
#: How far before the resize request the new MODIFY task is looked for (clock skew between this
#: machine and IoTDA).
CLOCK_SKEW = dt.timedelta(minutes=5)
#: How long the new MODIFY task may be missing from the list after the resize was ordered.
NOT_LISTED_TIMEOUT = 600.0
RUNNING_STATUSES = ("PENDING", "RUNNING")
#: XCom key under which a deferring operator keeps what ``execute_complete`` needs besides the
#: event (the instance, the order); also passed as the deferral's ``kwargs``, which
#: ``dag.test()`` does not hand back.
WAIT_XCOM_KEY = "iotda_wait"


def _flavor_size(value: object) -> int:
    """``flavor_size``, also as the string of digits a template renders."""
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    return validation.flavor_size(value)


def _deferrable(value: object) -> bool:
    if value is None:
        return conf.getboolean("operators", "default_deferrable", fallback=False)
    return validation.strict_bool(value, "deferrable")


class _WaitForInstanceTask(IoTDAHookMixin, BaseOperator):
    """What both operators share: the hook, the connection, and waiting for one task."""

    ui_color = "#f3e5d8"

    def __init__(
        self,
        *,
        iotda_conn_id: str = DEFAULT_CONN_ID,
        instance_id: str | None = None,
        wait_for_completion: bool = True,
        deferrable: bool | None = None,
        poke_interval: dt.timedelta | float = 60.0,
        timeout: dt.timedelta | float = DEFAULT_TIMEOUT,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.iotda_conn_id = iotda_conn_id
        self.instance_id = instance_id
        self.wait_for_completion = validation.strict_bool(
            wait_for_completion, "wait_for_completion"
        )
        self.deferrable = _deferrable(deferrable)
        self.poke_interval = validation.positive_number(poke_interval, "poke_interval")
        self.timeout = validation.positive_number(timeout, "timeout")
        if self.instance_id and not validation.is_template(self.instance_id):
            validation.instance_id(self.instance_id)

    def _result(self, instance_id: str, task: dict[str, Any] | None, **extra: Any) -> Any:
        raise NotImplementedError

    def execute(self, context: Context) -> Any:
        """Run the subclass's ``_execute`` with this execution's hook, closed at the end."""
        try:
            return self._execute(context)
        finally:
            self._close_hook()

    def _execute(self, context: Context) -> Any:
        raise NotImplementedError

    # -- waiting -------------------------------------------------------------------------------

    def _wait(self, context: Context, query: TaskQuery, started: float, **extra: Any) -> Any:
        """Wait for the task ``query`` names: defer, or poll every ``poke_interval`` here.

        In the worker the wait is the trigger's, in sync form: the same poll stream
        (:func:`~airflow_provider_iotda.triggers.shared_poll.iter_polls`), judged by the same
        :class:`~airflow_provider_iotda.waiting.Wait`, ending in the same outcome, which
        :meth:`execute_complete` turns into the result.
        """
        from airflow_provider_iotda.triggers.shared_poll import iter_polls

        if self.deferrable:
            self._defer(context, query, started, extra)
        wait = self._wait_for(query, started)
        polls = iter_polls(self.hook, query.instance_id, self.poke_interval, wait.deadline)
        for poll in polls:
            step = wait.judge(poll, clock.now())
            if step.line is not None:
                getattr(self.log, step.level)("%s", step.line)
            if step.outcome is not None:
                return self._conclude(step.outcome, query.instance_id, extra)
        raise AssertionError("unreachable: the poll stream never ends")  # pragma: no cover

    def _wait_for(self, query: TaskQuery, started: float) -> Wait:
        """The wait both modes share: default statuses, ``timeout`` from ``started``."""
        return Wait(
            query,
            started_at=started,
            deadline=started + self.timeout,
            not_found_timeout=None if query.instance_task_id else NOT_LISTED_TIMEOUT,
            transient="IoTDA did not answer this look ({error}); looking again later",
        )

    def _timed_out(self, query: TaskQuery, waited: float) -> NoReturn:
        raise AirflowException(
            f"{self.task_id} timed out: waited {format_duration(waited)} for "
            f"{query.describe()}, the timeout is {self.timeout:g} s"
        )

    def _defer(
        self, context: Context, query: TaskQuery, started: float, extra: dict[str, Any]
    ) -> NoReturn:
        from airflow_provider_iotda.triggers.iotda import IoTDAInstanceTaskTrigger

        remaining = self.timeout - (clock.now() - started)
        if remaining <= 0:
            self._timed_out(query, clock.now() - started)
        self.log.info("Deferring: waiting in the triggerer for %s", query.describe())
        resume = {"instance_id": query.instance_id, **extra}
        context["ti"].xcom_push(key=WAIT_XCOM_KEY, value=resume)
        wait = self._wait_for(query, started)
        self.defer(
            trigger=IoTDAInstanceTaskTrigger.waiting_for(
                self.iotda_conn_id, wait, self.poke_interval
            ),
            method_name="execute_complete",
            kwargs=resume,
            timeout=dt.timedelta(seconds=remaining),
        )
        raise AssertionError("unreachable: defer() raises TaskDeferred")  # pragma: no cover

    def execute_complete(
        self, context: Context, event: dict[str, Any] | None = None, **resume: Any
    ) -> Any:
        """Turn the trigger's event into the same outcome as poke mode."""
        try:
            outcome = TriggerOutcome.read(event)
        except ValueError as exc:
            raise AirflowException(str(exc)) from exc
        if "instance_id" not in resume:
            kept = context["ti"].xcom_pull(task_ids=self.task_id, key=WAIT_XCOM_KEY)
            resume = dict(kept) if isinstance(kept, dict) else {}
        instance_id = str(resume.pop("instance_id", ""))
        if outcome.status == "success":
            self.log.info("%s", outcome.message)
        return self._conclude(outcome, instance_id, resume)

    def _conclude(self, outcome: TriggerOutcome, instance_id: str, extra: dict[str, Any]) -> Any:
        """The XCom of a success; raise what any other outcome means (both modes)."""
        if outcome.status == "success":
            return self._result(instance_id, outcome.task, **extra)
        if outcome.status == "failed":
            raise AirflowFailException(outcome.message)
        if outcome.status == "timeout":
            raise AirflowException(f"{self.task_id} timed out: {outcome.message}")
        raise AirflowException(outcome.error_message)


class IoTDAResizeInstanceOperator(_WaitForInstanceTask):
    """Give an IoTDA instance a new flavor and wait for the MODIFY task that does it.

    Exactly once:

    * the instance already has the flavor: nothing is ordered, the operator succeeds (saying so);
    * a MODIFY task to the same flavor is already PENDING or RUNNING (an earlier try of this
      task, or someone in the console): it is waited for, nothing is ordered;
    * a MODIFY task to another flavor is PENDING or RUNNING: the operator fails at once, naming
      that task;
    * an Airflow retry never orders a second resize: a later try that finds a MODIFY to the
      same flavor created since the DAG run started adopts it (waiting for it, succeeding, or
      failing with its ``status_detail`` when it FAILED; use
      :class:`IoTDARetryInstanceTaskOperator` to run it again).

    The resize answer carries no task ID: the MODIFY task is found by type, target flavor and
    creation time (at or after the order, minus :data:`CLOCK_SKEW`).  A FAILED task fails the
    operator (``AirflowFailException``, no retries) with IoTDA's ``status_detail``.  A resize
    whose answer was lost (timeout, dropped connection, 5xx) is not sent again: the try fails,
    and the next try looks at the task list before ordering anything.

    XCom: ``{"instance_id", "order_id", "task"}`` (``task`` the finished task's ``to_dict()``,
    ``None`` without waiting or when nothing had to change; ``order_id`` ``None`` when nothing
    was ordered).

    :param flavor_type: the new specification, e.g. ``"iotda.standard.s3"``. (templated)
    :param flavor_size: its number of units, an int >= 1. (templated)
    :param instance_id: the instance; default: the connection's ``instance_id``. (templated)
    :param delay: run the change in the instance's operate window (which must be set): the task
        waits PENDING until then, possibly for hours, so use ``deferrable=True``.
    :param is_auto_pay: pay a prepaid (yearly/monthly) instance's order from the balance.
    :param wait_for_completion: wait for the MODIFY task (default) or return once ordered.
    :param deferrable: wait in the triggerer (default: ``[operators] default_deferrable``).
    :param poke_interval: seconds between looks at the task (default 60).
    :param timeout: seconds (or a timedelta) to wait in all (default 2 days).
    :param iotda_conn_id: connection of type ``huaweicloud_iotda``. (templated)
    """

    template_fields: Sequence[str] = ("instance_id", "flavor_type", "flavor_size", "iotda_conn_id")

    def __init__(
        self,
        *,
        flavor_type: str,
        flavor_size: int | str,
        instance_id: str | None = None,
        delay: bool = False,
        is_auto_pay: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(instance_id=instance_id, **kwargs)
        self.flavor_type = flavor_type
        self.flavor_size = flavor_size
        self.delay = validation.strict_bool(delay, "delay")
        self.is_auto_pay = validation.strict_bool(is_auto_pay, "is_auto_pay")
        if not validation.is_template(flavor_type):
            validation.flavor_type(flavor_type)
        if not validation.is_template(flavor_size):
            _flavor_size(flavor_size)

    def _result(self, instance_id: str, task: dict[str, Any] | None, **extra: Any) -> Any:
        return {"instance_id": instance_id, "order_id": extra.get("order_id"), "task": task}

    def _execute(self, context: Context) -> Any:
        from airflow_provider_iotda.errors import IoTDAError

        flavor_type = validation.flavor_type(self.flavor_type)
        flavor_size = _flavor_size(self.flavor_size)
        wanted = f"{flavor_type} x {flavor_size}"
        hook = self.hook
        instance_id = hook.resolve_instance_id(self.instance_id or None)
        started = clock.now()
        try:
            tasks = list(hook.iter_instance_tasks(instance_id))
            adopted = self._adopt(context, instance_id, tasks, flavor_type, flavor_size, started)
            if adopted is not None:
                return adopted
            instance = hook.show_instance(instance_id)
            if instance.flavor is not None and instance.flavor.same_as(flavor_type, flavor_size):
                self.log.info(
                    "Instance %s already has flavor %s: nothing to order", instance_id, wanted
                )
                return self._result(instance_id, None)
            self._check_resizable(instance, wanted)
            ordered_at = dt.datetime.now(dt.UTC)
            order_id = hook.resize_instance(
                instance_id,
                flavor_type=flavor_type,
                flavor_size=flavor_size,
                delay=self.delay,
                is_auto_pay=self.is_auto_pay,
            )
        except IoTDAError as exc:
            raise AirflowException(
                f"IoTDA call failed: {exc} (a resize whose answer was lost is not sent again; "
                "the next try of this task checks the instance's tasks before ordering)"
            ) from exc
        self.log.info(
            "Resize of instance %s to %s ordered (order %s)%s",
            instance_id,
            wanted,
            order_id,
            ", to run in the operate window" if self.delay else "",
        )
        if not self.wait_for_completion:
            return self._result(instance_id, None, order_id=order_id)
        task_id = self._new_task_id(instance_id, ordered_at, flavor_type, flavor_size)
        if task_id is not None:
            return self._follow(context, instance_id, task_id, order_id, started)
        query = TaskQuery(
            instance_id, instance_task_type="MODIFY", created_after=ordered_at - CLOCK_SKEW
        )
        return self._wait(context, query, started, order_id=order_id)

    def _adopt(
        self,
        context: Context,
        instance_id: str,
        tasks: list[InstanceTask],
        flavor_type: str,
        flavor_size: int,
        started: float,
    ) -> Any:
        """What the task list says before anything is ordered: the result of waiting for (or
        concluding from) a MODIFY to this flavor that is running or an earlier try's; ``None``
        when a resize may be ordered.  A MODIFY to another flavor that is running fails."""
        wanted = f"{flavor_type} x {flavor_size}"
        running = active_tasks(tasks, "MODIFY", RUNNING_STATUSES)
        for task in running:
            target = task.target_flavor
            if target is not None and target.same_as(flavor_type, flavor_size):
                self.log.info(
                    "MODIFY task %s to %s is already %s on instance %s: waiting for it "
                    "instead of ordering the resize again",
                    task.task_id,
                    wanted,
                    task.status,
                    instance_id,
                )
                return self._follow(context, instance_id, task.task_id, None, started)
        if running:
            other = running[0]
            to = other.target_flavor.describe() if other.target_flavor else "another flavor"
            raise AirflowFailException(
                f"Instance {instance_id} already has MODIFY task {other.task_id} "
                f"{other.status} (to {to}); not ordering {wanted} on top of it"
            )
        earlier = self._earlier_try_modify(context, tasks, flavor_type, flavor_size)
        if earlier is not None:
            return self._adopt_finished(context, instance_id, earlier, started)
        return None

    def _follow(
        self,
        context: Context,
        instance_id: str,
        task_id: str,
        order_id: str | None,
        started: float,
    ) -> Any:
        if not self.wait_for_completion:
            return self._result(instance_id, None, order_id=order_id)
        query = TaskQuery(instance_id, instance_task_id=task_id)
        return self._wait(context, query, started, order_id=order_id)

    def _earlier_try_modify(
        self, context: Context, tasks: list[InstanceTask], flavor_type: str, flavor_size: int
    ) -> InstanceTask | None:
        """On a retry of this task: the MODIFY to the same flavor created since the DAG run
        started (what an earlier try ordered), if any."""
        ti = context.get("ti")
        if ti is None or int(getattr(ti, "try_number", 1) or 1) <= 1:
            return None
        run = context.get("dag_run")
        since = getattr(run, "start_date", None) or getattr(run, "run_after", None)
        after = validation.timestamp(since, "dag_run.start_date") if since else None
        same = [
            t
            for t in tasks
            if t.type == "MODIFY"
            and t.target_flavor is not None
            and t.target_flavor.same_as(flavor_type, flavor_size)
            and (
                after is None or (t.create_time is not None and t.create_time >= after - CLOCK_SKEW)
            )
        ]
        return same[0] if same else None  # the list is newest first

    def _adopt_finished(
        self, context: Context, instance_id: str, task: InstanceTask, started: float
    ) -> Any:
        if task.status == "SUCCESS":
            self.log.info(
                "An earlier try's MODIFY task %s of instance %s succeeded: nothing to order",
                task.task_id,
                instance_id,
            )
            return self._result(instance_id, task.to_dict())
        if task.status in DEFAULT_FAILURE_STATUSES:
            from airflow_provider_iotda.waiting import failure_message

            raise AirflowFailException(
                f"{failure_message(task, instance_id)}. An earlier try of this task ordered it; "
                "not ordering a second resize (IoTDARetryInstanceTaskOperator runs it again)"
            )
        return self._follow(context, instance_id, task.task_id, None, started)

    def _check_resizable(self, instance: Instance, wanted: str) -> None:
        if instance.status not in (None, "ACTIVE"):
            raise AirflowFailException(
                f"Instance {instance.instance_id} is {instance.status}; IoTDA resizes only an "
                f"ACTIVE instance, so {wanted} is not ordered"
            )

    def _new_task_id(
        self, instance_id: str, ordered_at: dt.datetime, flavor_type: str, flavor_size: int
    ) -> str | None:
        """The ID of the MODIFY task the resize started, when IoTDA already lists it."""
        from airflow_provider_iotda.errors import IoTDAError

        after = ordered_at - CLOCK_SKEW
        try:
            tasks = list(self.hook.iter_instance_tasks(instance_id))
        except IoTDAError as exc:
            self.log.warning("Could not list the new MODIFY task yet (%s)", exc)
            return None
        for task in tasks:  # newest first
            target = task.target_flavor
            if (
                task.type == "MODIFY"
                and task.create_time is not None
                and task.create_time >= after
                and target is not None
                and target.same_as(flavor_type, flavor_size)
            ):
                return task.task_id
        return None


class IoTDARetryInstanceTaskOperator(_WaitForInstanceTask):
    """Run a FAILED IoTDA instance task again and wait for it.

    A task that is PENDING or RUNNING (already running again, e.g. retried by an earlier try or
    in the console) is waited for without a retry request.  A task that is SUCCESS is an error
    on the first try (nothing to retry); on a later try of this Airflow task it is the earlier
    try's retry that succeeded, and the operator succeeds.  XCom: ``{"instance_id",
    "instance_task_id", "task"}``.

    :param instance_task_id: the task to retry. (templated)
    :param instance_id: the instance; default: the connection's ``instance_id``. (templated)
    :param wait_for_completion: wait for the task (default) or return once it is retried.
    :param deferrable: wait in the triggerer (default: ``[operators] default_deferrable``).
    :param poke_interval: seconds between looks at the task (default 60).
    :param timeout: seconds (or a timedelta) to wait in all (default 2 days).
    :param iotda_conn_id: connection of type ``huaweicloud_iotda``. (templated)
    """

    template_fields: Sequence[str] = ("instance_task_id", "instance_id", "iotda_conn_id")

    def __init__(
        self, *, instance_task_id: str, instance_id: str | None = None, **kwargs: Any
    ) -> None:
        super().__init__(instance_id=instance_id, **kwargs)
        self.instance_task_id = instance_task_id
        if not validation.is_template(instance_task_id):
            validation.instance_task_id(instance_task_id)

    def _result(self, instance_id: str, task: dict[str, Any] | None, **extra: Any) -> Any:
        return {
            "instance_id": instance_id,
            "instance_task_id": extra.get("instance_task_id") or self.instance_task_id,
            "task": task,
        }

    def _execute(self, context: Context) -> Any:
        from airflow_provider_iotda.errors import IoTDAError

        task_id = validation.instance_task_id(self.instance_task_id)
        hook = self.hook
        instance_id = hook.resolve_instance_id(self.instance_id or None)
        started = clock.now()
        try:
            task = hook.show_instance_task(task_id, instance_id)
            if task.status in DEFAULT_FAILURE_STATUSES:
                task = hook.retry_instance_task(task_id, instance_id)
                self.log.info(
                    "%s task %s of instance %s retried: %s",
                    task.type,
                    task_id,
                    instance_id,
                    task.status,
                )
            elif task.status in RUNNING_STATUSES:
                self.log.info(
                    "%s task %s of instance %s is already %s: waiting for it, not retrying",
                    task.type,
                    task_id,
                    instance_id,
                    task.status,
                )
            elif task.status in DEFAULT_SUCCESS_STATUSES and self._later_try(context):
                self.log.info("Task %s is SUCCESS: an earlier try's retry succeeded", task_id)
                return self._result(instance_id, task.to_dict(), instance_task_id=task_id)
            else:
                raise AirflowFailException(
                    f"{task.type} task {task_id} of instance {instance_id} is {task.status}, "
                    "not FAILED: there is nothing to retry"
                )
        except IoTDAError as exc:
            raise AirflowException(f"IoTDA call failed: {exc}") from exc
        if not self.wait_for_completion:
            return self._result(instance_id, None, instance_task_id=task_id)
        query = TaskQuery(instance_id, instance_task_id=task_id)
        return self._wait(context, query, started, instance_task_id=task_id)

    @staticmethod
    def _later_try(context: Context) -> bool:
        ti = context.get("ti")
        return ti is not None and int(getattr(ti, "try_number", 1) or 1) > 1
