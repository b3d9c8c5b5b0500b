"""``IoTDAInstanceTaskTrigger``: the deferrable half of ``IoTDAInstanceTaskSensor``.

Waits for one task of an instance and yields exactly one event, a dict with ``status``:

* ``"success"``: ``task`` (the task's ``to_dict()``) and ``message``;
* ``"failed"``: ``task`` and ``message`` (ID, type, instance, ``status_detail``);
* ``"timeout"``: ``message`` and ``task`` (last seen, or ``None``);
* ``"error"``: ``reason`` (``"not_found"``, ``"iotda"``, ``"invalid"`` or ``"exception"``) and
  ``message``.

Two ways to look at the task list, with the same events:

* **shared** (Airflow 3.3's triggerer): the trigger returns a ``shared_stream_key`` of
  (connection, instance, poll interval), so the triggerer polls each instance once per interval
  for all the triggers waiting on it (:mod:`airflow_provider_iotda.triggers.shared_poll`) and
  hands every poll to :meth:`IoTDAInstanceTaskTrigger.filter_shared_stream`;
* **standalone** (:meth:`IoTDAInstanceTaskTrigger.run`: Airflow 3.1 and 3.2, ``dag.test()``, a
  trigger without an explicit ``instance_id``): the trigger drives the same poll stream
  (:func:`~airflow_provider_iotda.triggers.shared_poll.poll_instance`) by itself.

Each poll is judged by :class:`airflow_provider_iotda.waiting.Wait` (the rule the sensor's
``poke`` and the operators use), and the event is a
:class:`~airflow_provider_iotda.waiting.TriggerOutcome`.  Every log line on the run path is
written off the event loop (:func:`airflow_provider_iotda.compat.alog`).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Hashable, Iterable
from typing import Any, cast

from airflow_provider_iotda import clock, compat, task_events, validation
from airflow_provider_iotda.compat import BaseEventTrigger, TriggerEvent
from airflow_provider_iotda.config import DEFAULT_CONN_ID
from airflow_provider_iotda.triggers.shared_poll import InstancePoll, poll_instance, stream_key
from airflow_provider_iotda.waiting import (
    DEFAULT_FAILURE_STATUSES,
    DEFAULT_SUCCESS_STATUSES,
    TaskQuery,
    TriggerOutcome,
    Wait,
    check_statuses,
)

CLASSPATH = "airflow_provider_iotda.triggers.iotda.IoTDAInstanceTaskTrigger"


class _ClassLogger:
    """``log`` is the class's logger (``LoggingMixin.logger()``: same name, same lines), made once
    per class rather than once per trigger: 1,000 waiting triggers need not hold 1,000 loggers."""

    @property
    def log(self) -> Any:
        return cast("Any", type(self)).logger()


class IoTDAInstanceTaskTrigger(_ClassLogger, BaseEventTrigger):
    """Wait for an IoTDA instance task to reach a success or failure status.

    :param iotda_conn_id: connection of type ``huaweicloud_iotda``.
    :param instance_id: the instance (``None``: the connection's ``instance_id``; such a trigger
        polls on its own, since the instance is known only once the connection is read).
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

    A ``BaseEventTrigger`` only for Airflow 3.3's shared polls; it is a deferred task's trigger,
    not an asset watcher, so it keeps running in the task's triggerer queue
    (:attr:`supports_triggerer_queue`, which ``BaseEventTrigger`` turns off).
    """

    supports_triggerer_queue: bool = True

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
        # Tuples of strings: the garbage collector stops tracking them (1,000 waiting triggers).
        self.success_statuses = tuple(sorted(success))
        self.failure_statuses = tuple(sorted(failure))
        self.poll_interval = float(poll_interval)
        self.started_at = float(started_at) if started_at is not None else clock.now()
        self.deadline = float(deadline) if deadline is not None else None
        self.not_found_timeout = float(not_found_timeout) if not_found_timeout is not None else None

    @classmethod
    def waiting_for(
        cls, iotda_conn_id: str, wait: Wait, poll_interval: float
    ) -> IoTDAInstanceTaskTrigger:
        """The trigger that carries ``wait`` on in the triggerer (how the sensor and the
        operators defer: the same query, statuses, start, deadline and tolerance)."""
        query = wait.query
        return cls(
            iotda_conn_id=iotda_conn_id,
            instance_id=query.instance_id,
            instance_task_id=query.instance_task_id,
            instance_task_type=query.instance_task_type,
            created_after=query.created_after.isoformat() if query.created_after else None,
            success_statuses=sorted(wait.success_statuses),
            failure_statuses=sorted(wait.failure_statuses),
            poll_interval=poll_interval,
            started_at=wait.started_at,
            deadline=wait.deadline,
            not_found_timeout=wait.not_found_timeout,
        )

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

    # -- shared polls (Airflow 3.3's triggerer) ------------------------------------------------

    def shared_stream_key(self) -> Hashable | None:
        """(connection, instance, poll interval): triggers that agree share one poll.

        ``None`` (poll alone, in :meth:`run`) when no instance is given (the connection names
        it) or the values are invalid (:meth:`run` then sends the ``invalid`` error event).
        """
        if not self.instance_id:
            return None
        try:
            return stream_key(self.iotda_conn_id, self.instance_id, self.poll_interval)
        except ValueError:
            return None

    @classmethod
    def open_shared_stream(cls, kwargs: dict[str, Any]) -> AsyncIterator[InstancePoll]:
        """The group's poll loop: :func:`~airflow_provider_iotda.triggers.shared_poll.
        poll_instance` on the kwargs' connection, instance and interval (the key's fields)."""
        return poll_instance(
            kwargs["iotda_conn_id"], kwargs["instance_id"], kwargs["poll_interval"]
        )

    async def filter_shared_stream(
        self, shared_stream: AsyncIterator[Any]
    ) -> AsyncIterator[TriggerEvent]:
        """Judge each shared poll for this trigger's task; yield one event, as :meth:`run`.

        Only what changed is logged (1,000 triggers share the polls).
        """
        try:
            outcome = await self._follow(shared_stream, self._wait_for(self.instance_id))
        except Exception as exc:
            outcome = await self._error_outcome(exc)
        yield TriggerEvent(outcome.to_event())  # type: ignore[no-untyped-call]

    # -- standalone -----------------------------------------------------------------------------

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Poll until the task finishes, the deadline passes or an error; yield one event.

        The trigger drives the instance's poll stream alone (every look logged, not only
        changes).  Written flat (no coroutine per step): each of 1,000 waiting triggers keeps
        its chain of coroutines alive while it sleeps.
        """
        polls: AsyncGenerator[InstancePoll, None] | None = None
        try:
            instance = self.instance_id
            if not instance:  # the connection names the instance
                from airflow_provider_iotda.hooks.iotda_async import IoTDAAsyncHook

                async with IoTDAAsyncHook(self.iotda_conn_id) as hook:
                    instance = await hook.resolve_instance_id(None)
            wait = self._wait_for(instance, log_changes_only=False)
            polls = poll_instance(
                self.iotda_conn_id, wait.query.instance_id, self.poll_interval, self.deadline
            )
            # The stream itself waits no later than the deadline, and polls once more then.
            outcome = await self._follow(polls, wait, paced_to_deadline=True)
        except Exception as exc:
            outcome = await self._error_outcome(exc)
        finally:
            if polls is not None:
                await polls.aclose()
        yield TriggerEvent(outcome.to_event())  # type: ignore[no-untyped-call]

    # -- both -----------------------------------------------------------------------------------

    def _wait_for(self, instance: str | None, *, log_changes_only: bool = True) -> Wait:
        """This trigger's wait (``ValueError`` naming the field for a bad instance or task)."""
        query = TaskQuery.build(
            instance,
            instance_task_id=self.instance_task_id,
            instance_task_type=self.instance_task_type,
            created_after=self.created_after,
        )
        return Wait(
            query,
            self.success_statuses,
            self.failure_statuses,
            started_at=self.started_at,
            deadline=self.deadline,
            not_found_timeout=self.not_found_timeout,
            log_changes_only=log_changes_only,
        )

    async def _follow(
        self, polls: AsyncIterator[Any], wait: Wait, *, paced_to_deadline: bool = False
    ) -> TriggerOutcome:
        """Judge poll after poll until the wait is over; log each step off the event loop.

        A shared stream knows nothing of this trigger's deadline: the wait for its next poll
        is cut at the deadline (unless ``paced_to_deadline``: the trigger's own stream).
        """
        while True:
            poll = await (anext(polls) if paced_to_deadline else self._next_poll(polls))
            if poll is None:  # the deadline passed before the next poll
                return wait.timed_out(clock.now())
            if not isinstance(poll, InstancePoll):
                raise TypeError(f"the shared stream sent {type(poll).__name__}, not InstancePoll")
            step = wait.judge(poll, clock.now())
            del poll  # nothing of the page stays alive while the next poll is awaited
            if step.line is not None:
                await compat.alog(self.log, step.level, "%s", step.line)
            if step.outcome is not None:
                return step.outcome
            del step

    async def _next_poll(self, polls: AsyncIterator[Any]) -> Any:
        """The next poll, or ``None`` once the deadline has passed without one."""
        try:
            if self.deadline is None:
                return await anext(polls)
            remaining = self.deadline - clock.now()
            if remaining <= 0:
                return None
            try:
                async with asyncio.timeout(remaining):
                    return await anext(polls)
            except TimeoutError:
                return None
        except StopAsyncIteration:
            raise RuntimeError("the shared IoTDA poll ended") from None

    async def _error_outcome(self, exc: Exception) -> TriggerOutcome:
        """The error outcome for a wait that raised (the sensor must learn what happened)."""
        if isinstance(exc, ValueError):
            return TriggerOutcome.error("invalid", str(exc))
        await compat.alog(self.log, "error", "IoTDA trigger failed unexpectedly", exc=exc)
        message = f"IoTDA trigger failed: {type(exc).__name__}: {exc}"
        return TriggerOutcome.error("exception", message)


EVENT_CLASSPATH = "airflow_provider_iotda.triggers.iotda.IoTDAInstanceTaskEventTrigger"

#: Seconds between handing an event to the triggerer and remembering it as reported: the
#: triggerer writes events to the metadata DB on its next loop (about a second), while state
#: store writes go at once; remembering first would lose the event in a crash in between.
PERSIST_GRACE = 5.0


class _MemoryStore:
    """Where a watcher keeps its :class:`~airflow_provider_iotda.task_events.Memory`.

    Airflow 3.3: the asset state store the triggerer gives the trigger (one key per watcher),
    so the memory survives triggerer restarts.  Otherwise (3.1, 3.2, a trigger shared by
    several assets, a store that fails) in this process only.
    """

    def __init__(self, trigger: IoTDAInstanceTaskEventTrigger, key: str) -> None:
        self._trigger = trigger
        self._key = key
        self._store = getattr(trigger, "asset_state_store", None)

    @property
    def durable(self) -> bool:
        return self._store is not None

    async def _log(self, level: str, msg: str, *args: object) -> None:
        await compat.alog(self._trigger.log, level, msg, *args)

    async def _give_up(self, action: str, exc: Exception) -> None:
        await self._log(
            "warning",
            "Could not %s the asset state store (%s: %s); the watcher remembers reported tasks "
            "in memory only",
            action,
            type(exc).__name__,
            exc,
        )
        self._store = None

    async def load(self) -> task_events.Memory | None:
        if self._store is None:
            await self._log(
                "info",
                "No asset state store (Airflow %s): the watcher remembers reported tasks in "
                "memory only; after a triggerer restart it takes a new first look",
                _airflow_version(),
            )
            return None
        try:
            value = await self._store.aget(self._key, None)
        except Exception as exc:  # ValueError: one trigger watches several assets
            await self._give_up("read", exc)
            return None
        memory = task_events.Memory.from_json(value)
        if value is not None and memory is None:
            await self._log(
                "warning",
                "Ignoring unreadable state %r under %s: taking a first look",
                value,
                self._key,
            )
        return memory

    async def save(self, memory: task_events.Memory) -> None:
        if self._store is None:
            return
        try:
            await self._store.aset(self._key, memory.to_json())
        except Exception as exc:
            await self._give_up("write", exc)


def _airflow_version() -> str:
    from airflow_provider_iotda.compat import airflow_version

    return airflow_version()


class IoTDAInstanceTaskEventTrigger(_ClassLogger, BaseEventTrigger):
    """Fire once for each task of an instance that finishes: for asset watchers.

    ``Asset(..., watchers=[AssetWatcher("name", IoTDAInstanceTaskEventTrigger(...))])``
    starts the asset's DAGs when a task of ``instance_id`` reaches one of ``statuses``.  The
    event's payload (``triggering_asset_events[asset][i].extra["payload"]``) is
    ``{"instance_id", "task": <the task's to_dict()>, "previous_status"}``.

    Tasks already finished at the watcher's first look are history and never fire; a task
    fires again only if its status changes again (a FAILED task retried to SUCCESS).  On
    Airflow 3.3 what was reported is kept in the asset state store, so a task that finished
    while the triggerer was down fires once when it is back.  See the README, "Start a DAG
    when a task finishes", for what older Airflow guarantees.

    :param instance_id: the instance (required, not templated: watchers get no context).
    :param iotda_conn_id: connection of type ``huaweicloud_iotda``.
    :param task_types: only tasks of these types (default: all).
    :param statuses: the statuses that fire (default ``SUCCESS`` and ``FAILED``).
    :param poll_interval: seconds between polls of the task list.
    """

    def __init__(
        self,
        *,
        instance_id: str,
        iotda_conn_id: str = DEFAULT_CONN_ID,
        task_types: Iterable[str] | str | None = None,
        statuses: Iterable[str] | str = task_events.DEFAULT_EVENT_STATUSES,
        poll_interval: float = 60.0,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        if validation.is_template(instance_id):
            raise ValueError(
                f"instance_id must be the instance's ID itself; got {instance_id!r} "
                "(asset watchers are not rendered: no templates)"
            )
        self.instance_id = validation.instance_id(instance_id)
        self.iotda_conn_id = validation.conn_id(iotda_conn_id)
        types = validation.task_types(task_types) if task_types is not None else None
        self.task_types = sorted(types) if types is not None else None
        self.statuses = sorted(validation.task_statuses(statuses))
        self.poll_interval = validation.positive_number(poll_interval, "poll_interval")

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Class path and kwargs; sorted lists, so equal watchers serialise (and hash) equally."""
        return (
            EVENT_CLASSPATH,
            {
                "instance_id": self.instance_id,
                "iotda_conn_id": self.iotda_conn_id,
                "task_types": list(self.task_types) if self.task_types is not None else None,
                "statuses": list(self.statuses),
                "poll_interval": self.poll_interval,
            },
        )

    @property
    def watch_spec(self) -> task_events.WatchSpec:
        types = frozenset(self.task_types) if self.task_types is not None else None
        return task_events.WatchSpec(frozenset(self.statuses), types)

    # -- shared polls (Airflow 3.3) --------------------------------------------------------------

    def shared_stream_key(self) -> Hashable | None:
        """The poll shared with every watcher and deferred sensor of this instance."""
        from airflow_provider_iotda import compat

        if not compat.HAS_SHARED_STREAMS:
            return None
        from airflow_provider_iotda.triggers.shared_poll import stream_key

        return stream_key(self.iotda_conn_id, self.instance_id, self.poll_interval)

    @classmethod
    async def open_shared_stream(cls, kwargs: dict[str, Any]) -> AsyncIterator[Any]:
        """The group's poll (``kwargs``: any member's; only the key's fields are used)."""
        from airflow_provider_iotda.triggers.shared_poll import poll_instance

        async for poll in poll_instance(
            kwargs["iotda_conn_id"], kwargs["instance_id"], float(kwargs["poll_interval"])
        ):
            yield poll

    async def filter_shared_stream(
        self, shared_stream: AsyncIterator[Any]
    ) -> AsyncIterator[TriggerEvent]:
        """This watcher's events from the shared polls."""
        async for event in self._events(shared_stream):
            yield event

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Without shared streams (Airflow 3.1, 3.2): drive a poll of its own."""
        from airflow_provider_iotda.triggers.shared_poll import poll_instance

        polls = poll_instance(self.iotda_conn_id, self.instance_id, self.poll_interval)
        async for event in self._events(polls):
            yield event

    # -- the events ------------------------------------------------------------------------------

    async def _events(self, polls: AsyncIterator[Any]) -> AsyncIterator[TriggerEvent]:
        spec = self.watch_spec
        store = _MemoryStore(
            self, task_events.memory_key(self.iotda_conn_id, self.instance_id, spec)
        )
        memory = await store.load()
        saved = memory
        if memory is not None:
            await compat.alog(
                self.log,
                "info",
                "Watching instance %s; %d task(s) remembered from before",
                self.instance_id,
                len(memory.statuses),
            )
        async for poll in polls:
            if poll.tasks is None:
                await compat.alog(
                    self.log,
                    "error" if poll.final else "warning",
                    "Could not list the tasks of instance %s: %s",
                    self.instance_id,
                    poll.error,
                )
                continue
            result = task_events.look(memory, poll.tasks, spec)
            if memory is None:
                history = sum(
                    1 for t in poll.tasks if spec.watches(t) and t.status in spec.statuses
                )
                await compat.alog(
                    self.log,
                    "info",
                    "First look at instance %s: %d finished task(s) are history, not news",
                    self.instance_id,
                    history,
                )
            for news in result.news:
                await compat.alog(
                    self.log,
                    "info",
                    "%s task %s of instance %s is %s",
                    news.task.type,
                    news.task.task_id,
                    self.instance_id,
                    news.task.status,
                )
                yield TriggerEvent(task_events.event_payload(self.instance_id, news))  # type: ignore[no-untyped-call]
            memory = result.memory
            if result.news and store.durable:
                await clock.sleep(PERSIST_GRACE)
            if memory != saved:
                await store.save(memory)
                saved = memory
