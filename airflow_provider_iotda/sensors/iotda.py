"""``IoTDAInstanceTaskSensor``: wait until an IoTDA instance task reaches SUCCESS or FAILED.

Importing this module is cheap: the hooks (requests, httpx) and the trigger are imported when
the sensor runs.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseSensorOperator, PokeReturnValue

from airflow_provider_iotda import validation
from airflow_provider_iotda.compat import (
    AirflowException,
    AirflowFailException,
    AirflowSensorTimeout,
    bad_sensor_args_as_value_error,
    conf,
)
from airflow_provider_iotda.config import DEFAULT_CONN_ID
from airflow_provider_iotda.hook_access import IoTDAHookMixin
from airflow_provider_iotda.waiting import (
    DEFAULT_FAILURE_STATUSES,
    DEFAULT_SUCCESS_STATUSES,
    TaskQuery,
    TriggerOutcome,
    Wait,
    check_statuses,
    timeout_message,
)

if TYPE_CHECKING:
    from airflow.sdk import Context

#: Default for ``not_found_timeout``: how long a task that IoTDA does not list is tolerated.
DEFAULT_NOT_FOUND_TIMEOUT = 600.0


def _given(value: object) -> bool:
    return value is not None and value != ""


class IoTDAInstanceTaskSensor(IoTDAHookMixin, BaseSensorOperator):
    """Wait until an IoTDA instance task (e.g. the MODIFY task of a resize) has finished.

    The task is named either by ``instance_task_id`` or by ``instance_task_type`` (the newest
    task of that type, optionally created at or after ``created_after``): exactly one of the two.
    Each poke is one list request.  On success the task's ``to_dict()`` is the XCom return value;
    a task in ``failure_statuses`` fails the sensor with ``AirflowFailException`` (no retries;
    ``retry_on_failed_task=True`` raises ``AirflowException`` so that ``retries`` apply).
    Throttling, 5xx, timeouts and dropped connections (after the hook's own retries) are logged
    and the sensor pokes again; 400/401/403/404 fail at once with IoTDA's error.

    :param iotda_conn_id: connection of type ``huaweicloud_iotda``. (templated)
    :param instance_id: the instance; default: the connection's ``instance_id``. (templated)
    :param instance_task_id: the ID of the task to wait for. (templated)
    :param instance_task_type: or wait for the newest task of this type, e.g. ``"MODIFY"``.
        (templated)
    :param created_after: with ``instance_task_type``: only tasks created at or after this
        datetime or ISO-8601 string, e.g. ``"{{ data_interval_start }}"``. (templated)
    :param success_statuses: statuses that mean done (default ``{"SUCCESS"}``).
    :param failure_statuses: statuses that mean failed (default ``{"FAILED"}``); any other
        status, known or not, keeps the sensor waiting.
    :param not_found_timeout: seconds (or a timedelta) a task that IoTDA does not list is
        tolerated, counted from the first poke; ``None``: until ``timeout``. Default 600.
    :param retry_on_failed_task: let Airflow retry the sensor when the task ends failed.
    :param deferrable: wait in the triggerer instead of a worker slot (``None``, the default:
        the ``[operators] default_deferrable`` option, read when the DAG is parsed).

    ``poke_interval``, ``timeout``, ``mode``, ``soft_fail``, ``silent_fail`` and ``never_fail``
    work as for every sensor (``BaseSensorOperator`` applies them, in deferrable mode too); the
    timeout raises ``AirflowSensorTimeout`` in poke, reschedule and deferrable mode alike.
    """

    template_fields: Sequence[str] = (
        "instance_id",
        "instance_task_id",
        "instance_task_type",
        "created_after",
        "iotda_conn_id",
    )
    ui_color = "#f3e5d8"

    def __init__(
        self,
        *,
        iotda_conn_id: str = DEFAULT_CONN_ID,
        instance_id: str | None = None,
        instance_task_id: str | None = None,
        instance_task_type: str | None = None,
        created_after: dt.datetime | str | None = None,
        success_statuses: Collection[str] = DEFAULT_SUCCESS_STATUSES,
        failure_statuses: Collection[str] = DEFAULT_FAILURE_STATUSES,
        not_found_timeout: dt.timedelta | float | None = DEFAULT_NOT_FOUND_TIMEOUT,
        retry_on_failed_task: bool = False,
        deferrable: bool | None = None,
        **kwargs: Any,
    ) -> None:
        with bad_sensor_args_as_value_error():
            super().__init__(**kwargs)
        if _given(instance_task_id) == _given(instance_task_type):
            raise ValueError(
                f"{self.task_id}: give exactly one of instance_task_id (a task ID) and "
                f"instance_task_type (e.g. 'MODIFY'); got "
                f"instance_task_id={instance_task_id!r}, instance_task_type={instance_task_type!r}"
            )
        if _given(instance_task_id) and _given(created_after):
            raise ValueError(
                f"{self.task_id}: created_after applies only with instance_task_type; "
                "a task ID names one task"
            )
        success, failure = check_statuses(success_statuses, failure_statuses)
        self.iotda_conn_id = iotda_conn_id
        self.instance_id = instance_id
        self.instance_task_id = instance_task_id
        self.instance_task_type = instance_task_type
        self.created_after = created_after
        self.success_statuses = success
        self.failure_statuses = failure
        self.not_found_timeout = (
            validation.positive_number(not_found_timeout, "not_found_timeout", allow_zero=True)
            if not_found_timeout is not None
            else None
        )
        self.retry_on_failed_task = validation.strict_bool(
            retry_on_failed_task, "retry_on_failed_task"
        )
        self.deferrable = (
            validation.strict_bool(deferrable, "deferrable")
            if deferrable is not None
            else conf.getboolean("operators", "default_deferrable", fallback=False)
        )
        if self.deferrable and self.poke_interval <= 0:
            raise ValueError(
                f"{self.task_id}: poke_interval must be greater than 0 in deferrable mode "
                f"(it is the trigger's poll interval); got {self.poke_interval!r}"
            )
        self._check_static_fields()
        self._started_at: float | None = None

    def _check_static_fields(self) -> None:
        """Validate now (at DAG parse time) whatever is not a template."""
        checks = (
            ("instance_id", validation.instance_id),
            ("instance_task_id", validation.instance_task_id),
            ("instance_task_type", validation.task_type),
        )
        for name, check in checks:
            value = getattr(self, name)
            if _given(value) and not validation.is_template(value):
                check(value, name)  # a non-string fails here too, naming the field
        if isinstance(self.created_after, dt.datetime) or (
            isinstance(self.created_after, str) and not validation.is_template(self.created_after)
        ):
            validation.timestamp(self.created_after, "created_after")

    # -- shared pieces -------------------------------------------------------------------------

    def _query(self) -> TaskQuery:
        """The rendered parameters, validated (``ValueError`` names the field)."""
        instance = self.hook.resolve_instance_id(self.instance_id or None)
        return TaskQuery.build(
            instance,
            instance_task_id=self.instance_task_id,
            instance_task_type=self.instance_task_type,
            created_after=self.created_after,
        )

    def _start(self, context: Context) -> float:
        """Epoch seconds of the first poke: in reschedule mode, of the first try's first poke."""
        if self._started_at is None:
            first: dt.datetime | None = None
            if self.reschedule and not self.deferrable:
                first = context["ti"].get_first_reschedule_date(context)
            self._started_at = first.timestamp() if first is not None else time.time()
        return self._started_at

    def _waited(self) -> float:
        return time.time() - (self._started_at if self._started_at is not None else time.time())

    def _failed(self, message: str) -> AirflowException:
        if self.retry_on_failed_task:
            return AirflowException(message)
        return AirflowFailException(message)

    # -- poke / reschedule / deferrable ---------------------------------------------------------

    def execute(self, context: Context) -> Any:
        """``BaseSensorOperator.execute``: it pokes, and applies ``soft_fail``, ``silent_fail``,
        ``never_fail`` and the timeout.  In deferrable mode the first poke that finds the task
        still running defers to the triggerer (see :meth:`poke`)."""
        self._start(context)
        try:
            return super().execute(context)
        finally:
            self._close_hook()

    def poke(self, context: Context) -> bool | PokeReturnValue:
        """One look at the task list, judged by the waiting engine (:class:`~airflow_provider_
        iotda.waiting.Wait`); ``PokeReturnValue(True, task dict)`` once the task succeeded.

        In deferrable mode a task still waiting is not poked again here: the sensor defers
        (``TaskDeferred`` passes through the base class untouched) and the trigger polls.
        """
        from airflow_provider_iotda.triggers.shared_poll import poll_once

        query = self._query()
        wait = self._wait_for(query, self._start(context))
        step = wait.judge(poll_once(self.hook, query.instance_id), time.time())
        if step.line is not None:
            getattr(self.log, step.level)("%s", step.line)
        if step.outcome is not None:
            return PokeReturnValue(is_done=True, xcom_value=self._conclude(step.outcome))
        if self.deferrable:
            self._defer(query)
        return False

    def _wait_for(self, query: TaskQuery, started: float, deadline: float | None = None) -> Wait:
        """This sensor's wait: in poke mode without a deadline (``BaseSensorOperator`` keeps
        the timeout), deferred with ``started + timeout``."""
        return Wait(
            query,
            self.success_statuses,
            self.failure_statuses,
            started_at=started,
            deadline=deadline,
            not_found_timeout=self.not_found_timeout,
            transient="IoTDA did not answer this poke ({error}); poking again later",
        )

    def _defer(self, query: TaskQuery) -> None:
        """Hand the wait to ``IoTDAInstanceTaskTrigger`` with what is left of ``timeout``."""
        from airflow_provider_iotda.triggers.iotda import IoTDAInstanceTaskTrigger

        started = self._started_at if self._started_at is not None else time.time()
        remaining = self.timeout - (time.time() - started)
        if remaining <= 0:
            raise AirflowSensorTimeout(timeout_message(query, self._waited(), self.timeout))
        self.log.info("Deferring: waiting in the triggerer for %s", query.describe())
        wait = self._wait_for(query, started, deadline=started + self.timeout)
        self.defer(
            trigger=IoTDAInstanceTaskTrigger.waiting_for(
                self.iotda_conn_id, wait, self.poke_interval
            ),
            method_name="execute_complete",
            timeout=dt.timedelta(seconds=remaining),
        )

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> Any:
        """Turn the trigger's event into the same outcome as poke mode.

        ``BaseSensorOperator.resume_execution`` wraps this call: it applies ``soft_fail`` and
        ``never_fail`` to what is raised here, and turns a deferral timeout into
        ``AirflowSensorTimeout``.
        """
        try:
            outcome = TriggerOutcome.read(event)
        except ValueError as exc:
            raise AirflowException(str(exc)) from exc
        if outcome.status == "success":
            self.log.info("%s", outcome.message)
        return self._conclude(outcome)

    def _conclude(self, outcome: TriggerOutcome) -> Any:
        """The task's dict for a success; raise what the outcome means otherwise."""
        if outcome.status == "success":
            return outcome.task
        if outcome.status == "failed":
            raise self._failed(outcome.message)
        if outcome.status == "timeout":
            raise AirflowSensorTimeout(outcome.message)
        raise AirflowException(outcome.error_message)
