"""Benchmark 2: HTTP requests per poke and TCP connections per poke-mode wait.

``IoTDAInstanceTaskSensor.execute`` runs in poke mode (as a worker runs it, with a minimal
context: poke mode reads nothing from it) against the simulator on loopback, whose clock is
frozen and moved forward by 10 s after every poke, so the task reaches SUCCESS on exactly the
N-th poke.  The simulator counts API requests and TCP connections; the sensor's ``poke`` is
wrapped to count pokes.  Run once naming the task by ID and once by type (newest MODIFY task
created after a time).

Run: ``.venv/bin/python benchmarks/bench_poke.py [--quick]``
"""

from __future__ import annotations

import datetime as dt
import os
import time
from typing import Any

import benchlib
from benchlib import Report

STEP = 10.0  # simulated seconds per poke


def run_wait(sim: Any, pokes_wanted: int, by: str, poke_interval: float) -> dict[str, Any]:
    from airflow_provider_iotda.sensors.iotda import IoTDAInstanceTaskSensor

    instance = benchlib.instance_id(7)
    sim.reset()
    # As a DAG would pass "{{ data_interval_start }}": a little before the task was created.
    created_after = sim.now() - dt.timedelta(minutes=1)
    # Older tasks, so that the listing is realistic (several tasks, the wanted one among them).
    for n in range(5):
        sim.add_task(instance, "FREEZE" if n % 2 else "UNFREEZE", created=-3600 * (n + 1))
    task = sim.add_task(
        instance,
        "MODIFY",
        [("PENDING", 0), ("RUNNING", STEP), ("SUCCESS", STEP * (pokes_wanted - 1))],
    )
    target = (
        {"instance_task_id": task}
        if by == "id"
        else {"instance_task_type": "MODIFY", "created_after": created_after.isoformat()}
    )
    sensor = IoTDAInstanceTaskSensor(
        task_id=f"wait_by_{by}",
        instance_id=instance,
        poke_interval=poke_interval,
        timeout=60,
        mode="poke",
        deferrable=False,
        **target,
    )
    pokes = 0
    poke = sensor.poke

    def counting_poke(context: Any) -> Any:
        nonlocal pokes
        pokes += 1
        try:
            return poke(context)
        finally:
            sim.advance(STEP)

    sensor.poke = counting_poke  # type: ignore[method-assign]
    before = sim.counters
    started = time.perf_counter()
    result = sensor.execute({})  # type: ignore[arg-type,unused-ignore]
    wall = time.perf_counter() - started
    after = sim.counters
    return {
        "pokes": pokes,
        "requests": after.requests - before.requests,
        "connections": after.connections - before.connections,
        "status": result.get("status") if isinstance(result, dict) else result,
        "wall_s": wall,
    }


def main() -> None:
    args = benchlib.common_args(__doc__ or "").parse_args()
    pokes_wanted = 4 if args.quick else 8
    poke_interval = 0.2 if args.quick else 0.5
    benchlib.isolate_airflow_home()
    benchlib.quiet_logging()
    from airflow_provider_iotda.simulator import IoTDASimulator

    report = Report("2 requests per poke")
    print(
        f"Poke mode, task reaches SUCCESS on poke {pokes_wanted}, poke_interval {poke_interval} s "
        f"(below the simulator's 30 s keep-alive); {benchlib.load_note()}"
    )
    with IoTDASimulator(
        ak=benchlib.AK, sk=benchlib.SK, project_id=benchlib.PROJECT, time_factor=0, seed=3
    ) as sim:
        os.environ["AIRFLOW_CONN_IOTDA_DEFAULT"] = benchlib.connection_json(sim.url)
        for by in ("id", "type"):
            got = run_wait(sim, pokes_wanted, by, poke_interval)
            print(
                f"by {by}: {got['pokes']} pokes, {got['requests']} requests, "
                f"{got['connections']} TCP connection(s), final status {got['status']}, "
                f"{got['wall_s']:.1f} s"
            )
            per_poke = got["requests"] / max(got["pokes"], 1)
            report.check(
                f"task named by {by}: requests per poke",
                f"{got['requests']}/{got['pokes']} = {per_poke:.2f}",
                "1.00",
                got["requests"] == got["pokes"] == pokes_wanted and got["status"] == "SUCCESS",
            )
            report.check(
                f"task named by {by}: TCP connections for the whole wait",
                str(got["connections"]),
                "1",
                got["connections"] == 1,
            )
            report.details[by] = got
    report.emit()


if __name__ == "__main__":
    main()
