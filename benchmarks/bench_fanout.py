"""Benchmark 4: audit fan-out: dumping the tasks of 200 instances with 50 ms latency each.

The simulator runs in its own process with 200 instances (3 tasks each) and 50 ms added to
every API request.  Timed side by side (interleaved, medians):

* ``IoTDAInstanceTaskListOperator.execute`` with the default ``max_concurrency`` (XCom output);
* the same operator with ``max_concurrency=1`` (sequential);
* Huawei's SDK (``IoTDMClient.list_instance_tasks``) listing the same instances one after the
  other, the way a script or a PythonOperator would without our operator.

Each run must return every task (600 records); the simulator counts requests and connections.
Targets (issue 23): the default within 1.3 times the latency floor (``ceil(200 / 16)`` rounds
of 50 ms = 0.65 s) and at least 10 times faster than the SDK's sequential listing.  The CPU
time of this process and of the simulator's during the default runs is printed too.

Experiment, off by default: ``--without-instance-log`` drops the operator's per-instance INFO
line (errors are still logged), to measure what those 200 lines cost.

Run: ``.venv/bin/python benchmarks/bench_fanout.py [--quick] [--without-instance-log]``
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from typing import Any

import benchlib
from benchlib import Report, median

LATENCY_MS = 50.0
TASKS_PER_INSTANCE = 3
TARGET_RATIO = 10.0
TARGET_FLOOR_RATIO = 1.3


def scenario(instances: int) -> dict[str, Any]:
    types = ["MODIFY", "FREEZE", "UNFREEZE", "UPDATE_ACCESS_CONFIG", "UPDATE_ALLOW_LISTS"]
    return {
        "instances": [
            {
                "instance_id": benchlib.instance_id(i),
                "tasks": [
                    {
                        "type": types[(i + n) % len(types)],
                        "created": -86400.0 * (n + 1) - i,
                        "timeline": [["PENDING", 0], ["RUNNING", 5], ["SUCCESS", 60]],
                        "target_config": {"flavor": {"type": "iotda.standard.s3", "size": 2}},
                    }
                    for n in range(TASKS_PER_INSTANCE)
                ],
            }
            for i in range(instances)
        ]
    }


def run_operator(ids: list[str], max_concurrency: int | None) -> int:
    from airflow_provider_iotda.operators.iotda import IoTDAInstanceTaskListOperator

    kwargs: dict[str, Any] = {}
    if max_concurrency is not None:
        kwargs["max_concurrency"] = max_concurrency
    operator = IoTDAInstanceTaskListOperator(task_id="audit", instance_ids=ids, **kwargs)
    records = operator.execute({})  # type: ignore[arg-type,unused-ignore]
    return len(records)


def sdk_runner(url: str) -> Callable[[list[str]], int]:
    from huaweicloudsdkcore.auth.credentials import BasicCredentials
    from huaweicloudsdkiotdm.v5 import IoTDMClient, ListInstanceTasksRequest

    client = (
        IoTDMClient.new_builder()
        .with_credentials(BasicCredentials(benchlib.AK, benchlib.SK, benchlib.PROJECT))
        .with_endpoints([url])
        .build()
    )

    def run(ids: list[str]) -> int:
        count = 0
        for instance in ids:
            response = client.list_instance_tasks(ListInstanceTasksRequest(instance_id=instance))
            count += len(response.tasks or [])
        return count

    return run


def drop_instance_log() -> None:
    """The experiment: the operator logs a listed instance only when listing it failed."""
    from airflow_provider_iotda.operators.iotda import IoTDAInstanceTaskListOperator as operator

    logged = operator._log_instance

    def errors_only(self: Any, result: Any) -> None:
        if result.error is not None:
            logged(self, result)

    operator._log_instance = errors_only  # type: ignore[method-assign]


def main() -> None:
    parser = benchlib.common_args(__doc__ or "")
    parser.add_argument(
        "--without-instance-log",
        action="store_true",
        help="experiment: no per-instance INFO line (errors still logged)",
    )
    args = parser.parse_args()
    instances = 40 if args.quick else 200
    repeats = (
        {"default": 1, "sequential": 1, "sdk": 1}
        if args.quick
        else {
            "default": 5,
            "sequential": 2,
            "sdk": 2,
        }
    )
    benchlib.isolate_airflow_home()
    log_file = benchlib.quiet_logging()
    from airflow_provider_iotda.operators.iotda import DEFAULT_MAX_CONCURRENCY

    if args.without_instance_log:
        drop_instance_log()
        print("EXPERIMENT: no per-instance INFO line")
    report = Report("4 audit fan-out")
    ids = [benchlib.instance_id(i) for i in range(instances)]
    expected = instances * TASKS_PER_INSTANCE
    have_sdk = benchlib.sdk_available()
    print(
        f"Audit of {instances} instances x {TASKS_PER_INSTANCE} tasks, {LATENCY_MS:.0f} ms added "
        f"latency per request, simulator in another process; {benchlib.load_note()}"
    )
    with (
        benchlib.scenario_file(scenario(instances)) as path,
        benchlib.SimProcess(scenario=path, latency_ms=LATENCY_MS) as sim,
    ):
        os.environ["AIRFLOW_CONN_IOTDA_DEFAULT"] = benchlib.connection_json(sim.url)
        runners: dict[str, Callable[[list[str]], int]] = {
            "default": lambda ids: run_operator(ids, None),
            "sequential": lambda ids: run_operator(ids, 1),
        }
        if have_sdk:
            runners["sdk"] = sdk_runner(sim.url)
        for run in runners.values():  # warm-up: imports, first connections
            run(ids[:4])
        times: dict[str, list[float]] = {name: [] for name in runners}
        cpu: dict[str, list[float]] = {"ours": [], "simulator": []}
        counts: dict[str, dict[str, int]] = {}
        for round_ in range(max(repeats.values())):
            for name, run in runners.items():
                if round_ >= repeats[name]:
                    continue
                before = sim.stats()
                sim_cpu = benchlib.process_cpu_seconds(sim.pid)
                our_cpu = time.process_time()
                started = time.perf_counter()
                got = run(ids)
                elapsed = time.perf_counter() - started
                if name == "default":
                    cpu["ours"].append(time.process_time() - our_cpu)
                    cpu["simulator"].append(benchlib.process_cpu_seconds(sim.pid) - sim_cpu)
                after = sim.stats()
                if got != expected:
                    raise SystemExit(f"{name}: got {got} tasks, expected {expected}")
                times[name].append(elapsed)
                counts[name] = {
                    "requests": after["requests"] - before["requests"],
                    "connections": after["connections"] - before["connections"],
                    "peak_open": after["connections_peak"],
                }
                print(
                    f"  {name:10} {elapsed:7.2f} s  {counts[name]['requests']} requests, "
                    f"{counts[name]['connections']} new connections"
                )

    fast = median(times["default"])
    sequential = median(times["sequential"])
    rounds = math.ceil(instances / DEFAULT_MAX_CONCURRENCY)
    floor = rounds * LATENCY_MS / 1000
    our_cpu, sim_cpu = median(cpu["ours"]), median(cpu["simulator"])
    print(
        f"  default: CPU {our_cpu:.2f} s here ({our_cpu / instances * 1000:.2f} ms per "
        f"instance), {sim_cpu:.2f} s in the simulator (medians)"
    )
    report.check(
        f"operator, default max_concurrency={DEFAULT_MAX_CONCURRENCY}, / latency floor",
        f"{fast:.2f} s / {floor:.2f} s = {fast / floor:.2f}",
        f"<= {TARGET_FLOOR_RATIO}",
        fast / floor <= TARGET_FLOOR_RATIO,
        note=f"floor: {rounds} rounds x {LATENCY_MS:.0f} ms; "
        f"{counts['default']['requests']} requests, "
        f"{counts['default']['connections']} connections",
    )
    report.add(
        "CPU during the default run, this process / simulator (median)",
        f"{our_cpu:.2f} s / {sim_cpu:.2f} s",
        note=f"{our_cpu / instances * 1000:.2f} ms per instance here",
    )
    report.add(
        "operator, max_concurrency=1",
        f"{sequential:.2f} s ({sequential / fast:.1f}x the default's time)",
        note=f"floor: {instances} x {LATENCY_MS:.0f} ms = {instances * LATENCY_MS / 1000:.1f} s",
    )
    if have_sdk:
        sdk = median(times["sdk"])
        ratio = sdk / fast
        report.check(
            "speed-up over Huawei's SDK listing one after another",
            f"{sdk:.2f} s / {fast:.2f} s = {ratio:.1f}x",
            f">= {TARGET_RATIO:.0f}x",
            ratio >= TARGET_RATIO,
        )
    else:
        report.add(
            "speed-up over Huawei's SDK listing one after another", benchlib.SDK_SKIP, status="SKIP"
        )
    if args.without_instance_log:
        report.add("experiment", "no per-instance INFO line", status="INFO")
    report.details = {"times": times, "cpu": cpu, "counts": counts, "log": str(log_file)}
    report.emit()


if __name__ == "__main__":
    main()
