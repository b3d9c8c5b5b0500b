"""Benchmark 3: triggerer capacity: 1,000 ``IoTDAInstanceTaskTrigger``s in one event loop.

The simulator runs in another process with 50 instances x 20 tasks (the most the API lists per
instance); every task reaches SUCCESS at its own moment, spread evenly over 30-60 s after the
start.  This process then does what Airflow's triggerer does with 1,000 deferred sensors:
in one asyncio event loop it builds each trigger from its serialised kwargs (yielding to the
loop between two, as ``TriggerRunner.create_triggers`` does), opens a greenback portal per
trigger (as ``TriggerRunner.run_trigger`` does unless disabled), logs what ``run_trigger`` logs
(``"trigger %s starting"`` synchronously, then ``await log.ainfo(...)`` per event and at the
end, through a structlog logger named like the triggerer's), iterates ``trigger.run()`` until
its event, and calls ``cleanup()``.  Poll interval 10 s.  The connection comes from
``AIRFLOW_CONN_IOTDA_DEFAULT`` through ``BaseHook.aget_connection``, which works outside a
triggerer (it falls back to the environment-variable secrets backend).

This is the standalone path (``trigger.run()``, what Airflow 3.1 and 3.2 run, and 3.3 for a
trigger without a shared-stream key); ``bench_shared_polls.py`` measures Airflow 3.3's shared
polls.  Before anything runs, the process imports what a triggerer process has loaded before
its first trigger: our trigger modules and ``airflow.jobs.triggerer_job_runner`` (which brings
the supervisor, its comms and anyio); each event loop then creates an ``anyio.Event()`` first,
as ``TriggerRunner.arun`` does on Airflow 3.2+ (skipped where that module does not use anyio,
Airflow 3.1), so that first-use imports (anyio's asyncio backend, the supervisor behind the
first ``aget_connection``) land in no measured window.

Measured, in the long run (the run above; serialising the triggers, the scheduler's work, is
done before the watchdog starts):

* fire latency: the event's arrival minus the moment the simulator's timeline puts the task at
  SUCCESS (target: every trigger within one poll interval);
* peak RSS (``VmHWM``) and memory per trigger: (peak - RSS just before the triggers) / count;
* CPU share: this process's CPU time / wall time of the run (1.0 = one core busy);
* TCP connections the simulator saw opened, and requests per poll;
* the longest event-loop stall, start-up included: a watchdog coroutine sleeps 5 ms in a loop
  and records how late it wakes (Airflow's triggerer warns at 0.2 s; target under 50 ms).

Then, 1,000 triggers starting at once, side by side with Airflow's own, in R rounds
(``--rounds``, default 3) in one new event loop, each round both sides, alternating which goes
first (ours, theirs / theirs, ours / ...):

* ours: the same 1,000 triggers, created one by one as above; the loop is watched from the
  first creation until one poll interval after the last (their first polls included); then
  they are cancelled and their cleanup awaited, outside the window;
* theirs: as many of Airflow's ``DateTimeTrigger`` (providers.standard), created the same way,
  all due 3 s after they were serialised; watched until all have fired;
* each side is serialised first, then ``gc.collect()`` runs, then its window opens: each side
  pays for the garbage it makes, not for the collection debt the other side (or the long run)
  left behind; the GC passes inside each side's longest stall are reported by generation.

The rounds use a second simulator, started after the long run, whose tasks all succeed an hour
after its start: no trigger fires in a round, and the long run keeps its own simulator, its clock
restarted (``/_sim/reset``) right before its triggers, and its RSS, CPU and connection figures
free of the rounds.  The checked figure is median(ours) / median(Airflow's) of the rounds'
longest stalls (issue 23's target: at most 0.5); max / max is printed beside it.

Run: ``.venv/bin/python benchmarks/bench_triggerer.py [--quick] [--triggers N] [--poll S]
[--rounds R]``
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import gc
import itertools
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import benchlib
from benchlib import Report

TASKS_PER_INSTANCE = 20  # the API lists at most 20 tasks per instance
WATCHDOG_PERIOD = 0.005
STALL_TARGET = 0.050
AIRFLOW_WARNS_AT = 0.2
CREATED = -120.0  # tasks were created 2 min before the run starts
RUNNING_AT = 60.0  # ... and run from 1 min before it


@dataclass
class Plan:
    """Which task each trigger waits for and when (seconds after the start) it succeeds."""

    triggers: int
    poll: float
    spread: tuple[float, float]
    tasks: list[tuple[str, str, float]] = field(default_factory=list)  # instance, task, at

    def build(self) -> dict[str, Any]:
        rng = random.Random(3)
        low, high = self.spread
        moments = [low + (high - low) * k / max(self.triggers - 1, 1) for k in range(self.triggers)]
        rng.shuffle(moments)
        instances: list[dict[str, Any]] = []
        for k in range(self.triggers):
            i, n = divmod(k, TASKS_PER_INSTANCE)
            if n == 0:
                instances.append({"instance_id": benchlib.instance_id(i), "tasks": []})
            task = benchlib.task_id(i, n)
            at = moments[k]
            instances[-1]["tasks"].append(
                {
                    "task_id": task,
                    "type": "MODIFY",
                    "created": CREATED,
                    "timeline": [
                        ["PENDING", 0],
                        ["RUNNING", RUNNING_AT],
                        ["SUCCESS", at - CREATED],
                    ],
                }
            )
            self.tasks.append((benchlib.instance_id(i), task, at))
        return {"instances": instances}

    def serialise(self, conn_id: str, deadline_in: float) -> list[tuple[str, dict[str, Any]]]:
        """One ``IoTDAInstanceTaskTrigger`` per task, serialised as the scheduler stores it
        (started now, due to time out ``deadline_in`` s later)."""
        from airflow_provider_iotda.triggers.iotda import IoTDAInstanceTaskTrigger

        now = time.time()
        return [
            IoTDAInstanceTaskTrigger(
                iotda_conn_id=conn_id,
                instance_id=instance,
                instance_task_id=task,
                poll_interval=self.poll,
                started_at=now,
                deadline=now + deadline_in,
            ).serialize()
            for instance, task, _ in self.tasks
        ]


@dataclass
class Stall:
    """One late wake-up of the watchdog: when, how late, and why (from the kernel's view)."""

    at: float  # seconds after the loop started
    late: float  # wall-clock lateness
    on_cpu: float  # of the interval, time this thread ran (= loop work: callbacks, GC)
    waiting: float  # of the interval, time it waited for a CPU (other processes' load)

    @property
    def busy(self) -> float:
        """Lateness explained by the loop's own work (callbacks, GC): time on the CPU."""
        return max(0.0, min(self.late, self.on_cpu))

    @property
    def off_cpu(self) -> float:
        """Lateness neither on the CPU nor waiting for a core: blocked in a system call, or the
        virtual CPU itself was not running (host steal time)."""
        return max(0.0, self.late - self.on_cpu - self.waiting)


@dataclass
class Watchdog:
    """Wakes every few ms and records how late it was (= how long the loop was blocked).

    ``/proc/thread-self/schedstat`` tells apart a loop that was busy (time on the CPU) from a
    process that was runnable but waiting for a core (machine load from other processes).
    """

    period: float = WATCHDOG_PERIOD
    stalls: list[Stall] = field(default_factory=list)  # wake-ups later than 20 ms
    samples: list[tuple[float, float]] = field(default_factory=list)  # (at, late) of every wake
    worst: Stall | None = None
    worst_own: Stall | None = None
    running: bool = True

    def worst_before(self, moment: float) -> float:
        """The longest stall that ended before ``moment`` (seconds after the origin)."""
        return max(
            (late for at, late in self.samples if at + self.period + late <= moment), default=0.0
        )

    async def run(self, origin: float) -> None:
        fd = os.open("/proc/thread-self/schedstat", os.O_RDONLY)

        def sched() -> tuple[float, float]:
            on_cpu, waiting, _ = os.pread(fd, 128, 0).split()
            return int(on_cpu) / 1e9, int(waiting) / 1e9

        try:
            while self.running:
                before = time.perf_counter()
                cpu0, wait0 = sched()
                await asyncio.sleep(self.period)
                late = time.perf_counter() - before - self.period
                cpu1, wait1 = sched()
                stall = Stall(before - origin, late, cpu1 - cpu0, wait1 - wait0)
                self.samples.append((stall.at, late))
                if self.worst is None or late > self.worst.late:
                    self.worst = stall
                if self.worst_own is None or stall.busy > self.worst_own.busy:
                    self.worst_own = stall
                if late > 0.020:
                    self.stalls.append(stall)
        finally:
            os.close(fd)


@dataclass
class GcPauses:
    """Durations of the garbage collector's passes (a gen-2 pass over a big heap stalls)."""

    origin: float = 0.0
    pauses: list[tuple[int, float, float]] = field(default_factory=list)  # (gen, at, seconds)
    _started: float = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            took = time.perf_counter() - self._started
            self.pauses.append((info["generation"], self._started - self.origin, took))

    def worst(self, generation: int | None = None) -> float:
        return max(
            (s for g, _, s in self.pauses if generation is None or g == generation), default=0.0
        )

    def within(self, start: float, end: float) -> float:
        """GC time that started between ``start`` and ``end`` (seconds after the origin)."""
        return sum(s for _, at, s in self.pauses if start <= at <= end)

    def by_generation(self, start: float, end: float) -> dict[int, float]:
        """:meth:`within`, per generation."""
        out: dict[int, float] = {}
        for generation, at, took in self.pauses:
            if start <= at <= end:
                out[generation] = out.get(generation, 0.0) + took
        return out


@dataclass
class PollTrace:
    """Start and end of every ``list_instance_tasks`` call (one poll: every instance here lists
    20 tasks, one page), per hook (= per trigger's poll stream; a stream renews its hook every
    ``CONFIG_TTL``, so a period is counted between two polls of the same hook only).

    A thin timing wrapper around the hook method; it changes nothing in what the hook does.
    """

    calls: dict[int, list[tuple[float, float]]] = field(default_factory=dict)

    def install(self) -> Any:
        from airflow_provider_iotda.hooks.iotda_async import IoTDAAsyncHook

        original = IoTDAAsyncHook.list_instance_tasks
        calls = self.calls

        async def traced(hook: Any, *args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return await original(hook, *args, **kwargs)
            finally:
                calls.setdefault(id(hook), []).append((started, time.perf_counter()))

        IoTDAAsyncHook.list_instance_tasks = traced  # type: ignore[method-assign,assignment]
        return lambda: setattr(IoTDAAsyncHook, "list_instance_tasks", original)

    def durations(self) -> list[float]:
        return [end - start for polls in self.calls.values() for start, end in polls]

    def periods(self) -> list[float]:
        """Time from the start of one poll to the start of the next, per trigger."""
        return [
            later[0] - earlier[0]
            for polls in self.calls.values()
            for earlier, later in itertools.pairwise(polls)
        ]


TRIGGERER_MODULE = "airflow.jobs.triggerer_job_runner"
ROUNDS_SUCCEED_AFTER = 3600.0  # the rounds' tasks succeed an hour after their simulator starts
DUE_IN = 3.0  # Airflow's DateTimeTriggers are due this long after they were serialised


def load_triggerer() -> bool:
    """Import what a triggerer process has loaded before its first trigger runs (its runner
    module brings the supervisor, comms and anyio).  Whether that module uses anyio (3.2+)."""
    import importlib

    return hasattr(importlib.import_module(TRIGGERER_MODULE), "anyio")


async def start_loop() -> None:
    """What ``TriggerRunner.arun`` does in its loop before it creates any trigger: on Airflow
    3.2+ an ``anyio.Event()`` (the first one imports anyio's asyncio backend)."""
    import sys

    runner = sys.modules.get(TRIGGERER_MODULE)
    anyio = getattr(runner, "anyio", None)
    if anyio is not None:
        anyio.Event()


@dataclass
class Driver:
    """Runs one trigger as ``TriggerRunner.run_trigger`` runs it on the standalone path (same
    in Airflow 3.1, 3.2 and 3.3): a greenback portal unless disabled, the synchronous
    ``"trigger %s starting"`` line, ``await log.ainfo`` per event, ``cleanup()`` and a last
    ``await log.ainfo`` however it ends."""

    portal: bool = field(
        default_factory=lambda: (
            os.environ.get("AIRFLOW_DISABLE_GREENBACK_PORTAL", "").lower() != "true"
        )
    )
    log: Any = None

    def __post_init__(self) -> None:
        import structlog

        if self.log is None:
            self.log = structlog.get_logger(logger_name=TRIGGERER_MODULE)

    async def run(self, index: int, trigger: Any, on_event: Callable[[int, Any], None]) -> None:
        from structlog.contextvars import bind_contextvars

        if self.portal:
            import greenback

            await greenback.ensure_portal()
        bind_contextvars(trigger_id=index)
        name = f"ID {index}"
        self.log.info("trigger %s starting", name)
        try:
            async for event in trigger.run():
                await self.log.ainfo("Trigger fired event", name=name, result=event)
                on_event(index, event)
        finally:
            with contextlib.suppress(Exception):
                await trigger.cleanup()
            await self.log.ainfo("trigger completed", name=name)

    async def create(
        self,
        serialised: list[tuple[str, dict[str, Any]]],
        on_event: Callable[[int, Any], None],
    ) -> list[asyncio.Task[None]]:
        """Build each trigger from its class path and kwargs, one by one, yielding to the loop
        between two (``TriggerRunner.create_triggers``), and start it."""
        import importlib

        tasks = []
        for index, (classpath, kwargs) in enumerate(serialised):
            await asyncio.sleep(0)
            module, _, name = classpath.rpartition(".")
            trigger = getattr(importlib.import_module(module), name)(**kwargs)
            tasks.append(
                asyncio.create_task(self.run(index, trigger, on_event), name=f"trigger-{index}")
            )
        return tasks


@dataclass
class Window:
    """The loop watched from now on: the watchdog and the GC passes, both timed from
    ``origin``.  ``collect`` runs a full collection first, outside the window."""

    origin: float = 0.0
    watchdog: Watchdog = field(default_factory=Watchdog)
    gc: GcPauses = field(default_factory=GcPauses)
    task: asyncio.Task[None] | None = None

    @classmethod
    def open(cls, *, collect: bool = False) -> Window:
        if collect:
            gc.collect()
        window = cls(origin=time.perf_counter())
        window.gc.origin = window.origin
        gc.callbacks.append(window.gc)
        window.task = asyncio.create_task(window.watchdog.run(window.origin))
        return window

    async def close(self) -> float:
        """Stop watching; the window's length (s)."""
        length = time.perf_counter() - self.origin
        self.watchdog.running = False
        if self.task is not None:
            await self.task
        gc.callbacks.remove(self.gc)
        return length


@dataclass
class StartUp:
    """One side of one round: the longest stall of its start-up window."""

    side: str  # "ours" or "airflow"
    round: int
    first: bool  # this side went first in its round
    worst: Stall
    gc_in_worst: dict[int, float]  # generation -> GC seconds that started inside the stall
    window_s: float
    fired: int
    gc_passes: int
    full_gc: int  # of them, generation-2 (full) collections
    #: the longest stall that ended before the side's events were due (its start-up without
    #: the burst of events that follows); the whole window's when none was due
    before_due: float = 0.0

    def describe(self) -> str:
        gc_text = (
            ", ".join(f"gen {g} {s * 1000:.0f} ms" for g, s in sorted(self.gc_in_worst.items()))
            or "none"
        )
        return (
            f"{self.worst.late * 1000:.0f} ms at {self.worst.at:.2f} s (on CPU "
            f"{self.worst.busy * 1000:.0f} ms, waiting for a core "
            f"{self.worst.waiting * 1000:.0f} ms; GC in it: {gc_text})"
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "round": self.round,
            "first": self.first,
            "stall_s": self.worst.late,
            "at_s": self.worst.at,
            "on_cpu_s": self.worst.busy,
            "waiting_s": self.worst.waiting,
            "gc_in_stall_s": {str(g): s for g, s in self.gc_in_worst.items()},
            "window_s": self.window_s,
            "fired": self.fired,
            "gc_passes": self.gc_passes,
            "gen2_passes": self.full_gc,
            "before_due_s": self.before_due,
        }


def summarise(
    side: str,
    number: int,
    first: bool,
    window: Window,
    length: float,
    fired: int,
    due_at: float | None = None,
) -> StartUp:
    worst = window.watchdog.worst or Stall(0, 0, 0, 0)
    before = worst.late if due_at is None else window.watchdog.worst_before(due_at)
    return StartUp(
        side=side,
        round=number,
        first=first,
        worst=worst,
        gc_in_worst=window.gc.by_generation(worst.at, worst.at + worst.late + WATCHDOG_PERIOD),
        window_s=length,
        fired=fired,
        gc_passes=len(window.gc.pauses),
        full_gc=sum(1 for g, _, _ in window.gc.pauses if g == 2),
        before_due=before,
    )


async def run_triggers(plan: Plan, deadline: float) -> dict[str, Any]:
    """The long run: every trigger until its event (or the deadline + 30 s)."""
    await start_loop()
    fired: dict[int, tuple[float, dict[str, Any]]] = {}

    def on_event(index: int, event: Any) -> None:
        fired[index] = (time.time(), event.payload)

    driver = Driver()
    trace = PollTrace()
    uninstall = trace.install()
    # Serialise every trigger first (the scheduler's side), before the watch starts.
    serialised = plan.serialise("iotda_default", deadline)
    cpu0 = os.times()
    window = Window.open()
    tasks = await driver.create(serialised, on_event)
    created_after = time.perf_counter() - window.origin
    done, pending = await asyncio.wait(tasks, timeout=deadline + 30)
    for task in pending:
        task.cancel()
    errors = [t.exception() for t in done if not t.cancelled() and t.exception() is not None]
    wall = time.perf_counter() - window.origin
    cpu1 = os.times()
    await window.close()
    uninstall()
    return {
        "fired": fired,
        "wall": wall,
        "cpu": (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system),
        "created_s": created_after,
        "watchdog": window.watchdog,
        "gc": window.gc,
        "trace": trace,
        "pending": len(pending),
        "errors": [repr(e) for e in errors[:5]],
    }


async def start_ours(plan: Plan, conn_id: str, number: int, first: bool) -> StartUp:
    """Our triggers created at once, watched until one poll interval after the last creation,
    then cancelled (their cleanup outside the window)."""
    fired = 0

    def on_event(_index: int, _event: Any) -> None:
        nonlocal fired
        fired += 1

    serialised = plan.serialise(conn_id, ROUNDS_SUCCEED_AFTER)
    driver = Driver()
    window = Window.open(collect=True)
    tasks = await driver.create(serialised, on_event)
    await asyncio.sleep(plan.poll)
    length = await window.close()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return summarise("ours", number, first, window, length, fired)


async def start_airflows(count: int, number: int, first: bool, due_in: float = DUE_IN) -> StartUp:
    """``count`` of Airflow's ``DateTimeTrigger`` created at once, all due ``due_in`` s after
    they were serialised; watched until the last has fired."""
    from airflow.providers.standard.triggers.temporal import DateTimeTrigger
    from airflow.sdk import timezone

    fired = 0

    def on_event(_index: int, _event: Any) -> None:
        nonlocal fired
        fired += 1

    moment = timezone.utcnow() + dt.timedelta(seconds=due_in)
    serialised = [DateTimeTrigger(moment=moment).serialize() for _ in range(count)]
    driver = Driver()
    window = Window.open(collect=True)
    due_at = moment.timestamp() - time.time()  # when all are due, in seconds after the origin
    tasks = await driver.create(serialised, on_event)
    _, pending = await asyncio.wait(tasks, timeout=due_in + 60)
    length = await window.close()
    for task in pending:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return summarise("airflow", number, first, window, length, fired, due_at)


async def run_rounds(plan: Plan, conn_id: str, rounds: int) -> list[StartUp]:
    """``rounds`` rounds of both start-ups in one loop, alternating which side goes first."""
    await start_loop()
    results: list[StartUp] = []
    for number in range(1, rounds + 1):
        ours_first = number % 2 == 1
        for side in ("ours", "airflow") if ours_first else ("airflow", "ours"):
            first = (side == "ours") == ours_first
            if side == "ours":
                results.append(await start_ours(plan, conn_id, number, first))
            else:
                results.append(await start_airflows(len(plan.tasks), number, first))
    return results


def main() -> None:
    parser = benchlib.common_args(__doc__ or "")
    parser.add_argument("--triggers", type=int, default=None, help="triggers (1000)")
    parser.add_argument("--poll", type=float, default=None, help="poll interval, s (10)")
    parser.add_argument(
        "--spread",
        type=float,
        nargs=2,
        default=None,
        help="tasks succeed between A and B s (30 60)",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="start-up rounds beside Airflow's DateTimeTrigger, alternating who goes first (3)",
    )
    parser.add_argument(
        "--no-greenback",
        action="store_true",
        help="skip greenback portals (as AIRFLOW_DISABLE_GREENBACK_PORTAL=true does)",
    )
    parser.add_argument(
        "--max-in-flight",
        type=int,
        default=None,
        help="experiment: override hooks.iotda_async.MAX_IN_FLIGHT",
    )
    parser.add_argument(
        "--gc-freeze",
        action="store_true",
        help="experiment: gc.freeze() before the triggers start (Airflow's triggerer does not)",
    )
    parser.add_argument(
        "--profile", action="store_true", help="run under cProfile and print the top functions"
    )
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error(f"--rounds must be a whole number of at least 1, got {args.rounds}")
    triggers = args.triggers or (100 if args.quick else 1000)
    poll = args.poll or (2.0 if args.quick else 10.0)
    spread = tuple(args.spread) if args.spread else ((4.0, 10.0) if args.quick else (30.0, 60.0))
    if args.no_greenback:
        os.environ["AIRFLOW_DISABLE_GREENBACK_PORTAL"] = "true"
    benchlib.isolate_airflow_home()
    log_file = benchlib.quiet_logging()

    plan = Plan(triggers, poll, (spread[0], spread[1]))
    scenario = plan.build()
    report = Report("3 triggerer capacity")
    print(
        f"{triggers} triggers ({triggers // TASKS_PER_INSTANCE} instances x "
        f"{TASKS_PER_INSTANCE} tasks), poll interval {poll:g} s, tasks succeed {spread[0]:g}-"
        f"{spread[1]:g} s after the start; simulator in another process; {benchlib.load_note()}"
    )
    # What a triggerer process has loaded before any trigger runs.
    from airflow_provider_iotda.hooks import iotda_async
    from airflow_provider_iotda.triggers import iotda  # noqa: F401

    with_anyio = load_triggerer()

    if args.max_in_flight is not None:
        if not hasattr(iotda_async, "MAX_IN_FLIGHT"):
            parser.error("hooks.iotda_async has no MAX_IN_FLIGHT any more")
        print(f"EXPERIMENT: MAX_IN_FLIGHT {iotda_async.MAX_IN_FLIGHT} -> {args.max_in_flight}")
        iotda_async.MAX_IN_FLIGHT = args.max_in_flight
    profiler = None
    if args.profile:
        import cProfile

        profiler = cProfile.Profile()
        print("PROFILING: figures are inflated by the profiler")

    with benchlib.scenario_file(scenario) as path, benchlib.SimProcess(scenario=path) as sim:
        os.environ["AIRFLOW_CONN_IOTDA_DEFAULT"] = benchlib.connection_json(sim.url)
        gc.collect()
        baseline_kb = benchlib.rss_kb()
        sim_cpu0 = benchlib.process_cpu_seconds(sim.pid)
        # Restart the simulator's clock now: the timeline counts from here.
        sim.post("/_sim/reset")
        stats = sim.stats()
        start = dt.datetime.strptime(stats["clock"]["start"], "%Y-%m-%dT%H:%M:%S.%fZ")
        start_epoch = start.replace(tzinfo=dt.UTC).timestamp()
        deadline = spread[1] + 5 * poll
        if args.gc_freeze:
            print("EXPERIMENT: gc.freeze() before the triggers start")
            gc.freeze()
        steal0 = benchlib.steal_seconds()
        if profiler is not None:
            profiler.enable()
        result = asyncio.run(run_triggers(plan, deadline=deadline))
        steal = benchlib.steal_seconds() - steal0
        peak_kb = benchlib.peak_rss_kb()
        sim_cpu = benchlib.process_cpu_seconds(sim.pid) - sim_cpu0
        after = sim.stats()

    # The start-up rounds: a second simulator whose tasks succeed long after the rounds.
    later = Plan(triggers, poll, (ROUNDS_SUCCEED_AFTER, ROUNDS_SUCCEED_AFTER + spread[1]))
    with (
        benchlib.scenario_file(later.build()) as path,
        benchlib.SimProcess(scenario=path) as sim,
    ):
        os.environ["AIRFLOW_CONN_IOTDA_ROUNDS"] = benchlib.connection_json(sim.url)
        rounds_load = benchlib.load_note()
        starts = asyncio.run(run_rounds(later, "iotda_rounds", args.rounds))
    if profiler is not None:
        profiler.disable()

    fired: dict[int, tuple[float, dict[str, Any]]] = result["fired"]
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    mismatched = 0
    for index, (_instance, task, at) in enumerate(plan.tasks):
        if index not in fired:
            continue
        arrived, payload = fired[index]
        status = str(payload.get("status", "?"))
        statuses[status] = statuses.get(status, 0) + 1
        latencies.append(arrived - (start_epoch + at))
        if (payload.get("task") or {}).get("task_id") != task:
            mismatched += 1
    successes = statuses.get("success", 0)
    late = sum(1 for x in latencies if x > poll)
    worst = max(latencies) if latencies else float("nan")
    watchdog: Watchdog = result["watchdog"]
    gc_pauses: GcPauses = result["gc"]
    startup_window = result["created_s"] + poll
    startup = [s for s in watchdog.stalls if s.at < startup_window]
    steady = [s for s in watchdog.stalls if s.at >= startup_window]
    grown_mb = (peak_kb - baseline_kb) / 1024
    per_trigger_kb = (peak_kb - baseline_kb) / triggers
    requests = after["requests"]
    cpu_share = result["cpu"] / result["wall"]

    print(
        f"\nall triggers created in {result['created_s']:.2f} s; run took {result['wall']:.1f} s; "
        f"events: {statuses}; not fired: {triggers - len(fired)}; wrong task: {mismatched}"
    )
    if latencies:
        ordered = sorted(latencies)
        print(
            f"fire latency after SUCCESS: min {ordered[0]:.2f} s, median "
            f"{ordered[len(ordered) // 2]:.2f} s, p99 {ordered[int(len(ordered) * 0.99)]:.2f} s, "
            f"max {worst:.2f} s; later than one poll interval: {late}"
        )
    print(
        f"RSS: {baseline_kb / 1024:.0f} MB before the triggers, peak {peak_kb / 1024:.0f} MB "
        f"(+{grown_mb:.1f} MB, {per_trigger_kb:.1f} KB per trigger)"
    )
    print(
        f"CPU: this process {result['cpu']:.1f} s over {result['wall']:.1f} s = "
        f"{cpu_share:.1%} of one core ({result['cpu'] / max(requests, 1) * 1000:.2f} ms per "
        f"request); simulator {sim_cpu:.1f} s"
    )
    print(
        f"simulator: {requests} requests ({requests / triggers:.1f} per trigger), "
        f"{after['connections']} TCP connections opened, at most {after['connections_peak']} "
        f"open; statuses {after['statuses']}"
    )
    worst_stall = watchdog.worst or Stall(0, 0, 0, 0)
    worst_own = watchdog.worst_own or Stall(0, 0, 0, 0)
    print(
        f"event loop: longest stall {worst_stall.late * 1000:.1f} ms at {worst_stall.at:.2f} s; "
        f"longest caused by the loop's own work (on CPU) {worst_own.busy * 1000:.1f} ms at "
        f"{worst_own.at:.2f} s; host steal during the run {steal:.2f} s"
    )
    print(
        f"  stalls > 20 ms: {len(startup)} during start-up (first {startup_window:.1f} s), "
        f"{len(steady)} after; GC passes {len(gc_pauses.pauses)} "
        f"({sum(1 for p in gc_pauses.pauses if p[0] == 2)} of gen 2), longest "
        f"{gc_pauses.worst() * 1000:.1f} ms (gen 2: {gc_pauses.worst(2) * 1000:.1f} ms)"
    )
    slowest = sorted(watchdog.stalls, key=lambda s: -s.late)[:5]
    for stall in slowest:
        print(
            f"    at {stall.at:6.2f} s: {stall.late * 1000:6.1f} ms late: on CPU "
            f"{stall.on_cpu * 1000:6.1f} ms, waiting for a core {stall.waiting * 1000:6.1f} ms, "
            f"off CPU otherwise {stall.off_cpu * 1000:6.1f} ms; GC in it "
            f"{gc_pauses.within(stall.at, stall.at + stall.late + WATCHDOG_PERIOD) * 1000:6.1f} ms"
        )
    trace: PollTrace = result["trace"]
    durations, periods = sorted(trace.durations()), sorted(trace.periods())
    if durations and periods:
        print(
            f"polls: one call takes (semaphore wait + request + parsing) median "
            f"{durations[len(durations) // 2] * 1000:.1f} ms, p99 "
            f"{durations[int(len(durations) * 0.99)] * 1000:.0f} ms, max "
            f"{durations[-1] * 1000:.0f} ms; start-to-start period median "
            f"{periods[len(periods) // 2]:.3f} s, max "
            f"{periods[-1]:.3f} s (poll interval {poll:g} s)"
        )
    ours_starts = [x for x in starts if x.side == "ours"]
    their_starts = [x for x in starts if x.side == "airflow"]
    print(
        f"\n{triggers} triggers starting at once, {args.rounds} rounds in one loop beside as many "
        f"of Airflow's DateTimeTrigger (ours: creation + one poll interval, none due; Airflow's: "
        f"until all fired, due {DUE_IN:g} s after serialising; gc.collect() before each window; "
        f"triggerer module loaded first, anyio.Event in the loop: "
        f"{'yes' if with_anyio else 'no, this Airflow does not use anyio there'}); {rounds_load}"
    )
    for number in range(1, args.rounds + 1):
        for x in (x for x in starts if x.round == number):
            label = "ours" if x.side == "ours" else "Airflow's"
            print(
                f"  round {number}{' (went first)' if x.first else '             '} "
                f"{label:9} {x.describe()}; window {x.window_s:.2f} s, fired {x.fired}, "
                f"GC passes {x.gc_passes} ({x.full_gc} of gen 2)"
            )
    ours_stalls = [x.worst.late for x in ours_starts]
    their_stalls = [x.worst.late for x in their_starts]
    ours_start, theirs_start = benchlib.median(ours_stalls), benchlib.median(their_stalls)
    start_ratio = ours_start / theirs_start if theirs_start > 0 else float("inf")
    max_ratio = max(ours_stalls) / max(their_stalls) if max(their_stalls) > 0 else float("inf")
    their_fired = min(x.fired for x in their_starts)
    ours_fired = sum(x.fired for x in ours_starts)
    print(
        f"  longest stall, median (max) of {args.rounds}: ours {ours_start * 1000:.0f} ms "
        f"({max(ours_stalls) * 1000:.0f} ms), Airflow's {theirs_start * 1000:.0f} ms "
        f"({max(their_stalls) * 1000:.0f} ms); ratio of medians {start_ratio:.2f}, of maxima "
        f"{max_ratio:.2f}"
    )
    their_before = benchlib.median([x.before_due for x in their_starts])
    before_ratio = ours_start / their_before if their_before > 0 else float("inf")
    print(
        f"  Airflow's before its events were due (its start-up without the burst of "
        f"{triggers} events due at one moment): median {their_before * 1000:.0f} ms (max "
        f"{max(x.before_due for x in their_starts) * 1000:.0f} ms); ours / that "
        f"{before_ratio:.2f}"
    )
    print(f"trigger log lines went to {log_file}")
    if result["errors"]:
        print(f"errors: {result['errors']}")

    all_ok = successes == triggers and mismatched == 0 and not result["pending"]
    report.check(
        f"triggers fired SUCCESS (of {triggers})",
        f"{successes}",
        f"{triggers}",
        all_ok,
        note=f"not fired {triggers - len(fired)}, other events {triggers - successes}",
    )
    report.check(
        "slowest fire after its task reached SUCCESS",
        f"{worst:.3f} s ({late} of {len(latencies)} later than {poll:g} s, by up to "
        f"{max(0.0, worst - poll) * 1000:.0f} ms)",
        f"<= {poll:g} s (one poll interval)",
        bool(latencies) and late == 0 and all_ok,
    )
    report.check(
        "longest event-loop stall (start-up included)",
        f"{worst_stall.late * 1000:.0f} ms (longest on-CPU one {worst_own.busy * 1000:.0f} ms)",
        f"< {STALL_TARGET * 1000:.0f} ms (Airflow warns at {AIRFLOW_WARNS_AT * 1000:.0f})",
        worst_stall.late < STALL_TARGET,
        note=f"longest GC pass {gc_pauses.worst() * 1000:.0f} ms",
    )
    report.check(
        f"{triggers} starting at once: longest stall, ours / Airflow's DateTimeTrigger "
        f"(median of {args.rounds} rounds)",
        f"{ours_start * 1000:.0f} ms / {theirs_start * 1000:.0f} ms = {start_ratio:.2f} "
        f"(max/max {max(ours_stalls) * 1000:.0f} / {max(their_stalls) * 1000:.0f} ms = "
        f"{max_ratio:.2f})",
        "<= 0.5 (same loop, alternating order)",
        start_ratio <= 0.5 and their_fired == triggers and ours_fired == 0,
        note=f"DateTimeTriggers fired {their_fired} of {triggers} in every round; "
        f"ours fired early {ours_fired}",
    )
    report.add(
        f"{triggers} starting at once: ours / Airflow's longest stall before its events are due",
        f"{ours_start * 1000:.0f} ms / {their_before * 1000:.0f} ms = {before_ratio:.2f}",
        note="Airflow's start-up without its burst of events (all due at one moment); the "
        "checked figure above counts that burst, as issue 23 measured it",
    )
    report.add("peak RSS of the loop's process", f"{peak_kb / 1024:.0f} MB")
    report.add(
        "memory per trigger",
        f"{per_trigger_kb:.1f} KB",
        note=f"(peak - RSS before the triggers) / {triggers}; includes the shared client",
    )
    report.add(
        "CPU share (process CPU / wall)",
        f"{cpu_share:.1%} of one core",
        note=f"{result['cpu']:.1f} s CPU over {result['wall']:.1f} s",
    )
    report.add(
        "TCP connections opened",
        f"{after['connections']} (at most {after['connections_peak']} open)",
        note=f"{requests} requests",
    )
    report.details = {
        "triggers": triggers,
        "poll": poll,
        "latency": {"max": worst, "late": late},
        "statuses": statuses,
        "baseline_kb": baseline_kb,
        "peak_kb": peak_kb,
        "cpu_s": result["cpu"],
        "wall_s": result["wall"],
        "sim_cpu_s": sim_cpu,
        "requests": requests,
        "connections": after["connections"],
        "connections_peak": after["connections_peak"],
        "worst_stall": vars(worst_stall),
        "worst_own_stall": vars(worst_own),
        "gc_worst_s": gc_pauses.worst(),
        "steal_s": steal,
        "created_s": result["created_s"],
        "poll_call_max_s": durations[-1] if durations else None,
        "poll_period_max_s": periods[-1] if periods else None,
        "start_stall_ours_s": ours_start,
        "start_stall_datetime_trigger_s": theirs_start,
        "start_stall_ratio": start_ratio,
        "start_stall_ratio_max": max_ratio,
        "start_stall_datetime_trigger_before_due_s": their_before,
        "start_stall_ratio_before_due": before_ratio,
        "start_rounds": {
            "rounds": args.rounds,
            "anyio_event": with_anyio,
            "ours": [x.as_json() for x in ours_starts],
            "airflow": [x.as_json() for x in their_starts],
        },
    }
    if profiler is not None:
        import pstats

        stats_out = pstats.Stats(profiler)
        stats_out.sort_stats("cumulative").print_stats(30)
        stats_out.sort_stats("tottime").print_stats(20)
    report.emit()


if __name__ == "__main__":
    main()
