"""One API call as a conversation without I/O: send, read, relearn the clock, retry, wait.

The sync hook (requests) and the async hook (httpx) differ only in how they send a request,
wait and log; everything they decide is here, once.  :func:`conversation` is a generator of
steps:

* :data:`SEND`: send the call now (signed afresh) and hand back the
  :class:`~airflow_provider_iotda.api.Answer`, or throw in the
  :class:`~airflow_provider_iotda.errors.IoTDAError` that sending raised;
* :class:`Note`: log this warning (the async driver does it off the event loop);
* :class:`Wait`: sleep this long before the next attempt;

and it returns the call's parsed result or raises its last error.  :func:`run` and
:func:`arun` are the two drivers (:class:`~airflow_provider_iotda.steps.Steps`).

The rules (the retry rule itself is :mod:`~airflow_provider_iotda.retry`'s): an answer is
read by the call's parser; a 401 whose ``Date`` shows this machine's clock over 5 minutes off
teaches the clock (:class:`~airflow_provider_iotda.clock.ClockOffset`) and the call is signed
and sent once more within the same attempt; an error that
:func:`~airflow_provider_iotda.retry.is_retryable` allows is retried after
:meth:`RetryPolicy.delay <airflow_provider_iotda.retry.RetryPolicy.delay>` seconds (noted once
per retry), up to ``max_retries`` times.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable, Generator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, TypeVar

from airflow_provider_iotda import api, retry, validation
from airflow_provider_iotda.clock import ClockOffset
from airflow_provider_iotda.errors import IoTDAAuthError, IoTDAError
from airflow_provider_iotda.steps import Steps

if TYPE_CHECKING:
    from airflow_provider_iotda.config import IoTDAConnectionConfig
    from airflow_provider_iotda.models import Instance, InstancePage, InstanceTask, InstanceTaskPage

T = TypeVar("T")

#: The step "send the call now".
SEND: Final = None


@dataclass(frozen=True)
class Wait:
    """The step "wait this many seconds before the next attempt"."""

    seconds: float


@dataclass(frozen=True)
class Note:
    """The step "log this warning" (``%``-style ``message`` and its ``args``)."""

    message: str
    args: tuple[Any, ...] = field(default=())


Step = Wait | Note | None
#: The steps of a call: a :data:`SEND` step is answered with the
#: :class:`~airflow_provider_iotda.api.Answer`, or with the error sending raised thrown in.
Conversation = Generator[Step, Any, T]


class _Notes:
    """A logger that keeps its warnings, for the conversation to hand to its driver."""

    def __init__(self) -> None:
        self.notes: list[Note] = []

    def warning(self, message: Any, /, *args: Any) -> None:
        self.notes.append(Note(str(message), args))


def _attempt(call: api.Call[T], clock: ClockOffset, conn_id: str) -> Conversation[T]:
    """One attempt: send and parse; after a 401 that corrects the clock, sign and send again."""
    try:
        return call.parse((yield SEND))
    except IoTDAAuthError as exc:
        notes = _Notes()
        if not clock.learn(exc, notes, conn_id):
            raise
    yield from notes.notes
    return call.parse((yield SEND))


def conversation(
    call: api.Call[T], policy: retry.RetryPolicy, clock: ClockOffset, conn_id: str = ""
) -> Conversation[T]:
    """The steps of ``call`` under ``policy`` (see the module docstring)."""
    for attempt in itertools.count(1):
        try:
            return (yield from _attempt(call, clock, conn_id))
        except IoTDAError as exc:
            if attempt > policy.max_retries or not retry.is_retryable(exc, call.method):
                raise
            delay = policy.delay(attempt, exc)
            notes = _Notes()
            retry.log_retry(notes, attempt, exc, delay)
        yield from notes.notes
        yield Wait(delay)
    raise AssertionError("unreachable")  # pragma: no cover


def run(conversation: Conversation[T], send: Callable[[], api.Answer], log: retry.Logger) -> T:
    """Drive ``conversation`` synchronously: ``send()``, ``log.warning``, sleep."""
    steps = Steps(conversation)
    for step in steps:
        if isinstance(step, Note):
            log.warning(step.message, *step.args)
        elif isinstance(step, Wait):
            retry.wait(step.seconds)
        else:
            try:
                steps.reply = send()
            except IoTDAError as exc:
                steps.failure = exc
    return steps.result


async def arun(
    conversation: Conversation[T], send: Callable[[], Awaitable[api.Answer]], log: retry.Logger
) -> T:
    """Drive ``conversation`` in an event loop: ``await send()``; warnings are written in a
    worker thread (a log handler may block: never on the loop); ``asyncio.sleep``."""
    steps = Steps(conversation)
    for step in steps:
        if isinstance(step, Note):
            await asyncio.to_thread(log.warning, step.message, *step.args)
        elif isinstance(step, Wait):
            await retry.async_wait(step.seconds)
        else:
            try:
                steps.reply = await send()
            except IoTDAError as exc:
                steps.failure = exc
    return steps.result


class InstanceApi:
    """The instance API's calls for one connection, every argument checked before anything is
    sent (``ValueError`` naming the field); the hooks only send them.

    An ``instance_id`` of ``None`` means the connection's default instance.
    """

    def __init__(self, config: IoTDAConnectionConfig) -> None:
        self.config = config

    def list_tasks(
        self,
        instance_id: str | None = None,
        *,
        offset: int | None = None,
        limit: int | None = None,
        marker: str | int | None = None,
    ) -> api.Call[InstanceTaskPage]:
        config = self.config
        instance = config.resolve_instance_id(instance_id)
        return api.list_tasks_call(
            config.endpoint, config.project_id, instance, offset=offset, limit=limit, marker=marker
        )

    def show_task(self, instance_task_id: str, instance_id: str | None) -> api.Call[InstanceTask]:
        task_id = validation.instance_task_id(instance_task_id)
        config = self.config
        instance = config.resolve_instance_id(instance_id)
        return api.show_task_call(config.endpoint, config.project_id, instance, task_id)

    def retry_task(self, instance_task_id: str, instance_id: str | None) -> api.Call[InstanceTask]:
        task_id = validation.instance_task_id(instance_task_id)
        config = self.config
        instance = config.resolve_instance_id(instance_id)
        return api.retry_task_call(config.endpoint, config.project_id, instance, task_id)

    def resize(
        self,
        instance_id: str | None,
        *,
        flavor_type: object,
        flavor_size: object,
        delay: object,
        is_auto_pay: object,
    ) -> api.Call[str | None]:
        config = self.config
        return api.resize_call(
            config.endpoint,
            config.project_id,
            config.resolve_instance_id(instance_id),
            flavor_type=flavor_type,
            flavor_size=flavor_size,
            delay=delay,
            is_auto_pay=is_auto_pay,
        )

    def show_instance(self, instance_id: str | None) -> api.Call[Instance]:
        config = self.config
        instance = config.resolve_instance_id(instance_id)
        return api.show_instance_call(config.endpoint, config.project_id, instance)

    def list_instances(
        self,
        *,
        offset: int | None = None,
        limit: int | None = None,
        marker: str | int | None = None,
    ) -> api.Call[InstancePage]:
        config = self.config
        return api.list_instances_call(
            config.endpoint, config.project_id, offset=offset, limit=limit, marker=marker
        )
