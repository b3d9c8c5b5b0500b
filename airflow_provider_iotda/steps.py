"""Running a generator of I/O steps: the one driver loop of the sans-I/O code.

The API calls (:mod:`~airflow_provider_iotda.transport`) and the credential sources
(:mod:`~airflow_provider_iotda.credentials`) decide everything in generators that yield the
I/O they need (send this, read that file, wait) and receive its result.  A sync and an async
driver each perform the steps; :class:`Steps` is the bookkeeping they share::

    steps = Steps(plan)
    for step in steps:              # the next step, until the plan returns
        try:
            steps.reply = perform(step)     # or: await perform(step)
        except SomeError as exc:
            steps.failure = exc             # raised inside the plan, at its yield
    return steps.result

Nothing here does I/O or imports anything heavy.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from typing import Any, Generic, TypeVar

S = TypeVar("S")
T = TypeVar("T")


class Steps(Generic[S, T]):
    """Iterates over the steps of ``plan``, handing it each :attr:`reply` or :attr:`failure`."""

    result: T

    def __init__(self, plan: Generator[S, Any, T]) -> None:
        self._plan = plan
        #: What the step just performed gave (sent into the plan).
        self.reply: Any = None
        #: What the step just performed raised (thrown into the plan).
        self.failure: BaseException | None = None

    def __iter__(self) -> Iterator[S]:
        while True:
            reply, failure = self.reply, self.failure
            self.reply = self.failure = None
            try:
                step = self._plan.send(reply) if failure is None else self._plan.throw(failure)
            except StopIteration as stop:
                self.result = stop.value
                return
            yield step
