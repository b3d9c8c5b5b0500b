"""Benchmark 3: triggerer capacity: 1,000 ``IoTDAInstanceTaskTrigger``s in one event loop.

The simulator runs in another process with 50 instances x 20 tasks (the most the API lists per
instance); every task reaches SUCCESS at its own moment, spread evenly over 30-60 s after the
start.  This process then does what Airflow's triggerer does with 1,000 deferred sensors:
in one asyncio event loop it builds each trigger from its serialised kwargs (yielding to the
loop between two, as ``TriggerRunner.create_triggers`` does), opens a greenback portal per
trigger (as ``TriggerRunner.run_trigger`` does unless disabled), iterates ``trigger.run()``
until its event, and calls ``cleanup()``.  Poll interval 10 s.  The connection comes from
``AIRFLOW_CONN_IOTDA_DEFAULT`` through ``BaseHook.aget_connection``, which works outside a
triggerer (it falls back to the environment-variable secrets backend).

Measured:

* fire latency: the event's arrival minus the moment the simulator's timeline puts the task at
  SUCCESS (target: every trigger within one poll interval);
* peak RSS (``VmHWM``) and memory per trigger: (peak - RSS just before the triggers) / count;
* CPU share: this process's CPU time / wall time of the run (1.0 = one core busy);
* TCP connections the simulator saw opened, and requests per poll;
* the longest event-loop stall, start-up included: a watchdog coroutine sleeps 5 ms in a loop
  and records how late it wakes (Airflow's triggerer warns at 0.2 s; target under 50 ms);
* 1,000 triggers starting at once, side by side with Airflow's own: after our triggers, the
  same loop starts as many of Airflow's ``DateTimeTrigger`` (providers.standard), created the
  same way, all due a few seconds later; the longest stall of each start-up (ours: the
  creation plus the first poll interval) and their ratio (issue 23's target: ours at most half
  of Airflow's).

Run: ``.venv/bin/python benchmarks/bench_triggerer.py [--quick] [--triggers N] [--poll S]``
"""

from __future__ import annotations

import asyncio
import datetime as dt
import gc
import itertools
import os
import random
import time
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
    worst: Stall | None = None
    worst_own: Stall | None = None
    running: bool = True

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


async def run_triggers(plan: Plan, deadline: float) -> dict[str, Any]:
    import importlib

    from airflow_provider_iotda.triggers.iotda import IoTDAInstanceTaskTrigger

    greenback: Any = None
    if os.environ.get("AIRFLOW_DISABLE_GREENBACK_PORTAL", "").lower() != "true":
        import greenback

    origin = time.perf_counter()
    watchdog = Watchdog()
    gc_pauses = GcPauses(origin)
    gc.callbacks.append(gc_pauses)
    watch = asyncio.create_task(watchdog.run(origin))
    fired: dict[int, tuple[float, dict[str, Any]]] = {}
    now = time.time()

    async def run_one(index: int, trigger: Any) -> None:
        if greenback is not None:
            await greenback.ensure_portal()
        try:
            async for event in trigger.run():
                fired[index] = (time.time(), event.payload)
        finally:
            await trigger.cleanup()

    trace = PollTrace()
    uninstall = trace.install()
    cpu0 = os.times()
    # Serialise every trigger first (the scheduler side), then create them in the loop.
    serialised = [
        IoTDAInstanceTaskTrigger(
            iotda_conn_id="iotda_default",
            instance_id=instance,
            instance_task_id=task,
            poll_interval=plan.poll,
            started_at=now,
            deadline=now + deadline,
        ).serialize()
        for instance, task, _ in plan.tasks
    ]
    tasks = []
    for index, (classpath, kwargs) in enumerate(serialised):
        await asyncio.sleep(0)
        module, _, name = classpath.rpartition(".")
        cls = getattr(importlib.import_module(module), name)
        trigger = cls(**kwargs)
        tasks.append(asyncio.create_task(run_one(index, trigger), name=f"trigger-{index}"))
    created_after = time.perf_counter() - origin
    done, pending = await asyncio.wait(tasks, timeout=deadline + 30)
    for task in pending:
        task.cancel()
    errors = [t.exception() for t in done if not t.cancelled() and t.exception() is not None]
    wall = time.perf_counter() - origin
    cpu1 = os.times()
    watchdog.running = False
    await watch
    gc.callbacks.remove(gc_pauses)
    uninstall()
    return {
        "fired": fired,
        "wall": wall,
        "cpu": (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system),
        "created_s": created_after,
        "watchdog": watchdog,
        "gc": gc_pauses,
        "trace": trace,
        "pending": len(pending),
        "errors": [repr(e) for e in errors[:5]],
    }


async def run_datetime_triggers(count: int, due_in: float = 3.0) -> dict[str, Any]:
    """``count`` of Airflow's ``DateTimeTrigger`` started at once, as :func:`run_triggers`
    starts ours (serialised, created one by one in the loop, a greenback portal each), all due
    ``due_in`` seconds later; the loop's stalls from the first creation to the last event."""
    import importlib

    from airflow.providers.standard.triggers.temporal import DateTimeTrigger
    from airflow.sdk import timezone

    greenback: Any = None
    if os.environ.get("AIRFLOW_DISABLE_GREENBACK_PORTAL", "").lower() != "true":
        import greenback

    moment = timezone.utcnow() + dt.timedelta(seconds=due_in)
    serialised = [DateTimeTrigger(moment=moment).serialize() for _ in range(count)]
    origin = time.perf_counter()
    watchdog = Watchdog()
    watch = asyncio.create_task(watchdog.run(origin))
    fired = 0

    async def run_one(trigger: Any) -> None:
        nonlocal fired
        if greenback is not None:
            await greenback.ensure_portal()
        try:
            async for _event in trigger.run():
                fired += 1
                break
        finally:
            await trigger.cleanup()

    tasks = []
    for classpath, kwargs in serialised:
        await asyncio.sleep(0)
        module, _, name = classpath.rpartition(".")
        trigger = getattr(importlib.import_module(module), name)(**kwargs)
        tasks.append(asyncio.create_task(run_one(trigger)))
    await asyncio.wait(tasks, timeout=due_in + 60)
    watchdog.running = False
    await watch
    worst = watchdog.worst or Stall(0, 0, 0, 0)
    own = watchdog.worst_own or Stall(0, 0, 0, 0)
    return {"fired": fired, "worst": worst, "own": own, "wall": time.perf_counter() - origin}


async def run_both(plan: Plan, deadline: float) -> tuple[dict[str, Any], dict[str, Any]]:
    """Ours, then as many of Airflow's ``DateTimeTrigger`` in the same loop."""
    ours = await run_triggers(plan, deadline)
    theirs = await run_datetime_triggers(plan.triggers)
    return ours, theirs


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
        result, airflows = asyncio.run(run_both(plan, deadline=deadline))
        if profiler is not None:
            profiler.disable()
        steal = benchlib.steal_seconds() - steal0
        peak_kb = benchlib.peak_rss_kb()
        sim_cpu = benchlib.process_cpu_seconds(sim.pid) - sim_cpu0
        after = sim.stats()

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
    ours_start = max((s.late for s in startup), default=0.0)
    if watchdog.worst is not None and watchdog.worst.at < startup_window:
        ours_start = max(ours_start, watchdog.worst.late)
    theirs_start = airflows["worst"].late
    start_ratio = ours_start / theirs_start if theirs_start > 0 else float("inf")
    ours_own = max((s.busy for s in startup), default=0.0)
    print(
        f"{triggers} triggers starting at once, same loop: longest stall ours "
        f"{ours_start * 1000:.0f} ms (creation + first interval), Airflow's DateTimeTrigger "
        f"{theirs_start * 1000:.0f} ms ({airflows['fired']} fired in {airflows['wall']:.1f} s); "
        f"ratio {start_ratio:.2f}; on-CPU part of the longest stall: ours "
        f"{ours_own * 1000:.0f} ms, Airflow's {airflows['own'].busy * 1000:.0f} ms"
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
        f"{triggers} starting at once: longest stall, ours / Airflow's DateTimeTrigger",
        f"{ours_start * 1000:.0f} ms / {theirs_start * 1000:.0f} ms = {start_ratio:.2f}",
        "<= 0.5 (same run, same loop)",
        start_ratio <= 0.5 and airflows["fired"] == triggers,
        note=f"{airflows['fired']} DateTimeTriggers fired",
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
    }
    if profiler is not None:
        import pstats

        stats_out = pstats.Stats(profiler)
        stats_out.sort_stats("cumulative").print_stats(30)
        stats_out.sort_stats("tottime").print_stats(20)
    report.emit()


if __name__ == "__main__":
    main()
