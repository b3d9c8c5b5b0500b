"""Issue 23 §1: a trigger's log lines never block the event loop.

Many triggers fire in one loop while every log write is slow (a sink that holds each write for
``SINK_SECONDS``, as a triggerer's log socket does when the supervisor drains it late).  The
loop is measured from inside, by a heartbeat task: its longest gap between two ticks is the
loop's longest stall.  Writing the lines on the loop thread (``trigger.log.info``) stalls it for
at least one write (and up to one write per trigger); written off the loop (``compat.alog``),
the loop keeps ticking while the writes wait.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import structlog
from iotda_async_fakes import ScriptedIoTDA
from iotda_test_values import MODIFY_ID, TEST_INSTANCE, history

from airflow_provider_iotda import clock, compat
from airflow_provider_iotda.triggers.iotda import (
    IoTDAInstanceTaskEventTrigger,
    IoTDAInstanceTaskTrigger,
)

SENSOR_TRIGGERS = 8
WATCHERS = 3
#: Each log write holds the sink this long: well above the loop's other stalls on a busy test
#: machine (first imports, client set-up: about 0.1 s), so the measure tells the two apart.
SINK_SECONDS = 0.6


class SlowSink:
    """A structlog processor and a logging handler that block each write; record the thread."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.threads: list[int] = []
        self.lines: list[str] = []
        self.gate = threading.Event()  # never set: each write waits SINK_SECONDS

    def write(self, line: str) -> None:
        self.gate.wait(SINK_SECONDS)
        with self.lock:
            self.threads.append(threading.get_ident())
            self.lines.append(line)

    def processor(self, logger: Any, method: str, event: dict[str, Any]) -> dict[str, Any]:
        if getattr(logger, "name", "").startswith(OURS):  # Airflow's own lines pass at once
            self.write(str(event.get("event")))
        raise structlog.DropEvent


@dataclasses.dataclass
class _NamedLogger:
    """What structlog wraps: only its name matters (the sink drops every event)."""

    name: str


#: The loggers of this provider: a trigger's ``self.log`` (named after its class) and the
#: modules' loggers.  Airflow 3.1 logs a line of its own on the loop while it parses the
#: connection (a warning about the ``_`` in the connection type); that one is Airflow's.
OURS = "airflow_provider_iotda"


class _SlowHandler(logging.Handler):
    def __init__(self, sink: SlowSink) -> None:
        super().__init__(logging.DEBUG)
        self.sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        self.sink.write(record.getMessage())


@pytest.fixture
def slow_sink(monkeypatch: pytest.MonkeyPatch) -> Iterator[SlowSink]:
    sink = SlowSink()
    saved = structlog.get_config()
    structlog.configure(
        processors=[sink.processor],
        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
        logger_factory=lambda *args: _NamedLogger(str(args[0]) if args else ""),
        cache_logger_on_first_use=False,
    )
    handler = _SlowHandler(sink)
    package_log = logging.getLogger("airflow_provider_iotda")
    package_log.addHandler(handler)
    monkeypatch.setattr(clock, "first_poll_delay", lambda interval: 0.0)
    try:
        yield sink
    finally:
        package_log.removeHandler(handler)
        structlog.configure(**saved)


async def _heartbeat(stop: asyncio.Event, gaps: list[float]) -> None:
    loop = asyncio.get_running_loop()
    last = loop.time()
    while not stop.is_set():
        await asyncio.sleep(0.002)
        now = loop.time()
        gaps.append(now - last)
        last = now


async def _write_on_the_loop(
    logger: Any, level: str, msg: str, *args: object, exc: BaseException | None = None
) -> None:
    """What the triggers did before issue 23: ``self.log.info(...)`` on the loop's thread."""
    getattr(logger, level)(msg, *args, **({"exc_info": exc} if exc is not None else {}))


def _fire_together(slow_sink: SlowSink) -> tuple[list[dict[str, Any]], float, int]:
    """Sensor triggers that all find their task done, and watchers taking their first look, in
    one loop; returns their events, the loop's longest stall and the loop's thread."""
    sensors = [
        IoTDAInstanceTaskTrigger(
            iotda_conn_id="iotda_default",
            instance_id=TEST_INSTANCE,
            instance_task_id=MODIFY_ID,
            poll_interval=30,
        )
        for _ in range(SENSOR_TRIGGERS)
    ]
    watchers = [
        IoTDAInstanceTaskEventTrigger(instance_id=TEST_INSTANCE, poll_interval=30 + n)
        for n in range(WATCHERS)
    ]

    async def first_event(trigger: IoTDAInstanceTaskTrigger) -> dict[str, Any]:
        async for event in trigger.run():
            return dict(event.payload)
        raise AssertionError("no event")

    async def watch(trigger: IoTDAInstanceTaskEventTrigger) -> None:
        async for _ in trigger.run():  # its first look is history: it logs and polls on
            pass

    async def scenario() -> tuple[list[dict[str, Any]], float, int]:
        stop, gaps = asyncio.Event(), [0.0]
        beat = asyncio.ensure_future(_heartbeat(stop, gaps))
        await asyncio.sleep(0)
        watching = [asyncio.ensure_future(watch(w)) for w in watchers]
        events = await asyncio.gather(*(first_event(t) for t in sensors))
        while len(slow_sink.lines) < SENSOR_TRIGGERS + 2 * WATCHERS:  # watchers' two lines
            await asyncio.sleep(0.01)
        for task in watching:
            task.cancel()
        await asyncio.gather(*watching, return_exceptions=True)
        stop.set()
        await beat
        return events, max(gaps), threading.get_ident()

    return asyncio.run(scenario())


def test_triggers_firing_together_never_stall_the_loop_on_a_slow_log_sink(
    iotda_api: ScriptedIoTDA, slow_sink: SlowSink
) -> None:
    iotda_api.script = [history("SUCCESS")]  # every trigger's first poll finds the task done
    events, stall, loop_thread = _fire_together(slow_sink)

    assert [e["status"] for e in events] == ["success"] * SENSOR_TRIGGERS
    # Every line reached the sink (same messages), none of them written on the loop's thread.
    assert sum("is SUCCESS" in line for line in slow_sink.lines) == SENSOR_TRIGGERS
    assert sum("First look at instance" in line for line in slow_sink.lines) == WATCHERS
    assert loop_thread not in slow_sink.threads
    # The loop's longest stall, measured inside the loop, is shorter than one log write.
    assert stall < SINK_SECONDS, f"the loop stalled {stall:.3f} s"


def test_the_heartbeat_sees_a_stall_when_lines_are_written_on_the_loop(
    iotda_api: ScriptedIoTDA, slow_sink: SlowSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The control: the same scenario with the lines written as before (on the loop's thread)
    stalls the loop for at least one write, so the measure above can fail."""
    monkeypatch.setattr(compat, "alog", _write_on_the_loop)
    iotda_api.script = [history("SUCCESS")]
    events, stall, loop_thread = _fire_together(slow_sink)
    assert [e["status"] for e in events] == ["success"] * SENSOR_TRIGGERS
    assert loop_thread in slow_sink.threads
    assert stall >= SINK_SECONDS


def test_alog_writes_a_stdlib_logger_off_the_loop(slow_sink: SlowSink) -> None:
    """The shared poll's module logger is a stdlib logger: same line, off the loop's thread."""
    log = logging.getLogger("airflow_provider_iotda.triggers.shared_poll")
    log.setLevel(logging.INFO)

    async def scenario() -> int:
        await compat.alog(log, "error", "Polling instance %s failed unexpectedly", "i-1")
        await compat.alog(log, "debug", "not written: below the level")
        return threading.get_ident()

    loop_thread = asyncio.run(scenario())
    assert slow_sink.lines == ["Polling instance i-1 failed unexpectedly"]
    assert slow_sink.threads
    assert loop_thread not in slow_sink.threads
