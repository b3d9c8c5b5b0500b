"""Benchmark 6: shared polls: 1,000 deferred sensors' triggers on 50 instances, with and without
sharing, in the same run.

The simulator runs in another process with 50 instances x 20 tasks (the most the API lists per
instance); every task reaches SUCCESS at its own moment, spread evenly over 30-60 s after the
start.  Each side runs in a fresh child process (so that its peak memory is its own), against a
fresh simulator, and does what Airflow 3.3's triggerer does with 1,000 deferred sensors that all
start at once (a triggerer restart): in one event loop it builds each trigger from its serialised
kwargs (yielding to the loop between two, as ``TriggerRunner.create_triggers`` does), opens a
greenback portal per trigger, then

* **shared** (this provider on 3.3): as ``TriggerRunner.run_trigger`` does for a trigger whose
  ``shared_stream_key()`` is not ``None``: subscribes it to Airflow's own
  ``SharedStreamManager`` (configured from ``[triggerer] shared_stream_*``), iterates
  ``filter_shared_stream`` over the subscription until its event, and unsubscribes;
* **today** (sharing switched off: the standalone path of Airflow 3.1/3.2): iterates
  ``trigger.run()``, every trigger polling on its own and reading the connection itself
  (``IoTDAAsyncHook`` connection cache off, ``CONFIG_TTL = 0``).

Poll interval 10 s.  Measured per side: requests per instance per poll interval (each
instance's requests / how many intervals it was polled for: from the start until its last
trigger fired; target <= 1.25, the limit is 1), fire latency after SUCCESS (target: within one
interval), the longest event-loop stall with start-up included (a watchdog coroutine, as in
``bench_triggerer.py``; target < 50 ms), CPU of the loop's process (target: shared <= 1/5 of
today) and memory per trigger ((peak RSS - RSS before the triggers) / count).

Run: ``.venv/bin/python benchmarks/bench_shared_polls.py [--quick] [--triggers N] [--poll S]``
"""

from __future__ import annotations

import asyncio
import datetime as dt
import gc
import importlib
import json
import os
import subprocess
import sys
import time
from typing import Any

import benchlib
from bench_triggerer import TASKS_PER_INSTANCE, GcPauses, Plan, Stall, Watchdog
from benchlib import Report

RESULT_PREFIX = "SHARED-POLLS-SIDE: "
SIDES = ("today", "shared")
REQUESTS_TARGET = 1.25
STALL_TARGET = 0.050
CPU_TARGET = 0.2


async def drive(plan: Plan, side: str, deadline: float) -> dict[str, Any]:
    """Run every trigger of ``plan`` to its event in this loop, as the triggerer would."""
    greenback: Any = None
    if os.environ.get("AIRFLOW_DISABLE_GREENBACK_PORTAL", "").lower() != "true":
        import greenback

    streams: Any = None
    if side == "shared":
        from airflow.triggers.shared_stream import SharedStreamManager

        from airflow_provider_iotda.compat import conf

        streams = SharedStreamManager(
            max_subscriber_queue=conf.getint("triggerer", "shared_stream_subscriber_queue_size"),
            ack_timeout=conf.getfloat("triggerer", "shared_stream_ack_timeout"),
            cohort_grace_period=conf.getfloat("triggerer", "shared_stream_cohort_grace_period"),
        )

    origin = time.perf_counter()
    watchdog = Watchdog()
    gc_pauses = GcPauses(origin)
    gc.callbacks.append(gc_pauses)
    watch = asyncio.create_task(watchdog.run(origin))
    fired: dict[int, tuple[float, dict[str, Any]]] = {}

    async def run_one(index: int, trigger: Any) -> None:
        if greenback is not None:
            await greenback.ensure_portal()
        key = trigger.shared_stream_key() if streams is not None else None
        try:
            if key is not None:
                stream = streams.subscribe(trigger_id=index, trigger=trigger, key=key)
                events = trigger.filter_shared_stream(stream)
            else:
                events = trigger.run()
            async for event in events:
                fired[index] = (time.time(), event.payload)
        finally:
            if key is not None:
                await streams.unsubscribe(index, key)
            await trigger.cleanup()

    cpu0 = os.times()
    serialised = plan.serialise("iotda_default", deadline)
    tasks = []
    for index, (classpath, kwargs) in enumerate(serialised):
        await asyncio.sleep(0)
        module, _, name = classpath.rpartition(".")
        cls = getattr(importlib.import_module(module), name)
        tasks.append(asyncio.create_task(run_one(index, cls(**kwargs)), name=f"trigger-{index}"))
    created_after = time.perf_counter() - origin
    done, pending = await asyncio.wait(tasks, timeout=deadline + 30)
    for task in pending:
        task.cancel()
    errors = [t.exception() for t in done if not t.cancelled() and t.exception() is not None]
    if streams is not None:
        await streams.stop_all()
    wall = time.perf_counter() - origin
    cpu1 = os.times()
    watchdog.running = False
    await watch
    gc.callbacks.remove(gc_pauses)
    return {
        "fired": fired,
        "wall": wall,
        "cpu": (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system),
        "created_s": created_after,
        "watchdog": watchdog,
        "gc": gc_pauses,
        "pending": len(pending),
        "errors": [repr(e) for e in errors[:5]],
    }


def run_side(side: str, triggers: int, poll: float, spread: tuple[float, float]) -> None:
    """One side, in this (child) process; prints its figures and one RESULT_PREFIX line."""
    benchlib.isolate_airflow_home()
    log_file = benchlib.quiet_logging()
    plan = Plan(triggers, poll, spread)
    scenario = plan.build()
    from airflow_provider_iotda.hooks import iotda_async
    from airflow_provider_iotda.triggers import iotda, shared_poll  # noqa: F401

    if side == "today":
        iotda_async.CONFIG_TTL = 0  # every hook reads its connection, as before the cache
    with benchlib.scenario_file(scenario) as path, benchlib.SimProcess(scenario=path) as sim:
        os.environ["AIRFLOW_CONN_IOTDA_DEFAULT"] = benchlib.connection_json(sim.url)
        gc.collect()
        baseline_kb = benchlib.rss_kb()
        sim.post("/_sim/reset")  # the timeline counts from here
        stats = sim.stats()
        start = dt.datetime.strptime(stats["clock"]["start"], "%Y-%m-%dT%H:%M:%S.%fZ")
        start_epoch = start.replace(tzinfo=dt.UTC).timestamp()
        deadline = spread[1] + 5 * poll
        result = asyncio.run(drive(plan, side, deadline))
        peak_kb = benchlib.peak_rss_kb()
        after = sim.stats()

    fired: dict[int, tuple[float, dict[str, Any]]] = result["fired"]
    latencies: list[float] = []
    last_fire: dict[str, float] = {}  # instance -> seconds after the start
    successes = mismatched = 0
    for index, (instance, task, at) in enumerate(plan.tasks):
        if index not in fired:
            continue
        arrived, payload = fired[index]
        successes += payload.get("status") == "success"
        mismatched += (payload.get("task") or {}).get("task_id") != task
        latencies.append(arrived - (start_epoch + at))
        last_fire[instance] = max(last_fire.get(instance, 0.0), arrived - start_epoch)
    per_instance = {
        path.split("/")[-2]: count
        for path, count in after["paths"].items()
        if path.endswith("/tasks")
    }
    # Each instance was polled from the start until its last trigger fired.
    ratios = {
        instance: per_instance.get(instance, 0) / max(seconds / poll, 1.0)
        for instance, seconds in last_fire.items()
    }
    watchdog: Watchdog = result["watchdog"]
    worst = watchdog.worst or Stall(0, 0, 0, 0)
    worst_own = watchdog.worst_own or Stall(0, 0, 0, 0)
    gc_pauses: GcPauses = result["gc"]
    figures = {
        "side": side,
        "triggers": triggers,
        "instances": len({i for i, _, _ in plan.tasks}),
        "fired": len(fired),
        "successes": successes,
        "mismatched": mismatched,
        "pending": result["pending"],
        "errors": result["errors"],
        "latency_max": max(latencies) if latencies else None,
        "late": sum(1 for x in latencies if x > poll),
        "requests": after["requests"],
        "statuses": after["statuses"],
        "connections": after["connections"],
        "requests_per_interval": sum(per_instance.get(i, 0) for i in ratios)
        / max(sum(max(s / poll, 1.0) for s in last_fire.values()), 1.0),
        "requests_per_interval_max": max(ratios.values(), default=0.0),
        "stall_ms": worst.late * 1000,
        "stall_at": worst.at,
        "stall_own_ms": worst_own.busy * 1000,
        "gc_worst_ms": gc_pauses.worst() * 1000,
        "cpu_s": result["cpu"],
        "wall_s": result["wall"],
        "created_s": result["created_s"],
        "baseline_kb": baseline_kb,
        "peak_kb": peak_kb,
        "kb_per_trigger": (peak_kb - baseline_kb) / triggers,
    }
    print(
        f"[{side}] {len(fired)} of {triggers} fired ({successes} success, {mismatched} wrong "
        f"task) in {result['wall']:.1f} s; {after['requests']} requests "
        f"({figures['requests_per_interval']:.2f} per instance per interval, worst instance "
        f"{figures['requests_per_interval_max']:.2f}); slowest fire "
        f"{figures['latency_max'] or float('nan'):.2f} s after SUCCESS; longest stall "
        f"{figures['stall_ms']:.0f} ms at {worst.at:.2f} s (on CPU {figures['stall_own_ms']:.0f} "
        f"ms; longest GC pass {figures['gc_worst_ms']:.0f} ms); CPU {result['cpu']:.1f} s; "
        f"{figures['kb_per_trigger']:.1f} KB per trigger; log lines in {log_file}",
        flush=True,
    )
    print(RESULT_PREFIX + json.dumps(figures, default=str), flush=True)


def child(side: str, args: list[str]) -> dict[str, Any]:
    """Run one side in a fresh process; stream its lines, return its figures."""
    command = [sys.executable, __file__, "--side", side, *args]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, cwd=benchlib.REPO)
    assert proc.stdout is not None
    figures: dict[str, Any] = {}
    for line in proc.stdout:
        if line.startswith(RESULT_PREFIX):
            figures = json.loads(line[len(RESULT_PREFIX) :])
        else:
            print(line, end="", flush=True)
    if proc.wait() != 0 or not figures:
        raise RuntimeError(f"the {side} side exited {proc.returncode}")
    return figures


def ratio(new: float, old: float) -> str:
    return f"{new / old:.3f}" if old else "n/a"


def main() -> None:
    parser = benchlib.common_args(__doc__ or "")
    parser.add_argument("--triggers", type=int, default=None, help="triggers (1000)")
    parser.add_argument("--poll", type=float, default=None, help="poll interval, s (10)")
    parser.add_argument("--side", choices=SIDES, default=None, help=argparse_hidden())
    args = parser.parse_args()
    triggers = args.triggers or (100 if args.quick else 1000)
    poll = args.poll or (2.0 if args.quick else 10.0)
    spread = (4.0, 10.0) if args.quick else (30.0, 60.0)
    if args.side is not None:
        run_side(args.side, triggers, poll, spread)
        return

    print(
        f"{triggers} triggers ({triggers // TASKS_PER_INSTANCE} instances x "
        f"{TASKS_PER_INSTANCE} tasks), poll interval {poll:g} s, tasks succeed {spread[0]:g}-"
        f"{spread[1]:g} s after the start, all triggers started at once; each side in its own "
        f"process, simulator in another; {benchlib.load_note()}",
        flush=True,
    )
    passed = ["--triggers", str(triggers), "--poll", str(poll)] + (
        ["--quick"] if args.quick else []
    )
    today = child("today", passed)
    shared = child("shared", passed)

    report = Report("6 shared polls")
    ok = {
        side: f["successes"] == triggers and not f["mismatched"] and not f["pending"]
        for side, f in (("today", today), ("shared", shared))
    }
    report.check(
        f"triggers fired SUCCESS (of {triggers}), shared / today",
        f"{shared['successes']} / {today['successes']}",
        f"{triggers}",
        ok["shared"] and ok["today"],
    )
    report.check(
        "requests per instance per poll interval, shared (today)",
        f"{shared['requests_per_interval']:.2f} (worst instance "
        f"{shared['requests_per_interval_max']:.2f}); today {today['requests_per_interval']:.2f}",
        f"<= {REQUESTS_TARGET:g}",
        shared["requests_per_interval"] <= REQUESTS_TARGET,
        note=f"{shared['requests']} vs {today['requests']} requests, ratio "
        f"{ratio(shared['requests'], today['requests'])}",
    )
    report.check(
        "slowest fire after its task reached SUCCESS, shared (today)",
        f"{shared['latency_max']:.2f} s ({shared['late']} late); today "
        f"{today['latency_max']:.2f} s ({today['late']} late)",
        f"<= {poll:g} s (one poll interval)",
        ok["shared"] and shared["late"] == 0,
    )
    report.check(
        "longest event-loop stall, start-up included, shared (today)",
        f"{shared['stall_ms']:.0f} ms (on CPU {shared['stall_own_ms']:.0f}); today "
        f"{today['stall_ms']:.0f} ms (on CPU {today['stall_own_ms']:.0f})",
        f"< {STALL_TARGET * 1000:.0f} ms",
        shared["stall_ms"] < STALL_TARGET * 1000,
        note=f"ratio {ratio(shared['stall_ms'], today['stall_ms'])}; longest GC pass "
        f"{shared['gc_worst_ms']:.0f} / {today['gc_worst_ms']:.0f} ms",
    )
    report.check(
        "CPU of the loop's process, shared / today",
        f"{shared['cpu_s']:.2f} s / {today['cpu_s']:.2f} s = "
        f"{ratio(shared['cpu_s'], today['cpu_s'])}",
        f"<= {CPU_TARGET:g} (a fifth)",
        today["cpu_s"] > 0 and shared["cpu_s"] / today["cpu_s"] <= CPU_TARGET,
        note=f"over {shared['wall_s']:.0f} s / {today['wall_s']:.0f} s of wall time",
    )
    report.add(
        "memory per trigger, shared (today)",
        f"{shared['kb_per_trigger']:.1f} KB; today {today['kb_per_trigger']:.1f} KB",
        note=f"ratio {ratio(shared['kb_per_trigger'], today['kb_per_trigger'])}; (peak - RSS "
        "before the triggers) / count",
    )
    report.details = {"today": today, "shared": shared}
    report.emit()


def argparse_hidden() -> str:
    import argparse

    return argparse.SUPPRESS


if __name__ == "__main__":
    main()
