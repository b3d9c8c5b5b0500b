"""Real triggerer: N deferred sensors firing together, and the loop blocks the triggerer reports.

Not a test (it takes minutes and needs the machine to itself to mean much).  It starts a real
Airflow of separate processes (``api-server``, ``scheduler``, ``dag-processor``,
``triggerer``; LocalExecutor, sqlite, a temporary AIRFLOW_HOME:
``tests/system/e2e/airflow_stack.py``)
and the simulator in another process with a frozen clock.  One DAG maps
``IoTDAInstanceTaskSensor(deferrable=True)`` over N tasks on N/20 instances; every sensor
pokes once and defers.  When all N are deferred, the simulator's clock jumps so that every task
is SUCCESS at once: at the next poll of each instance (shared on Airflow 3.3) all N triggers
fire together, each writing its log lines.  Then it reads the triggerer's own log for
"Triggerer's async thread was blocked for X seconds" warnings (Airflow warns above
``[triggerer] blocked_main_thread_warning_threshold``, 0.2 s by default) from the moment the
clock jumped to the moment every task succeeded.

Goal (issue 23): no blocked warning with 200 sensors.

Run: ``.venv/bin/python benchmarks/bench_real_triggerer.py [--sensors 200] [--poll 5]``
"""

from __future__ import annotations

import json
import os
import re
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import benchlib
from benchlib import Report

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from system.e2e.airflow_stack import running_stack  # noqa: E402

TASKS_PER_INSTANCE = 20
DAG_ID = "bench_real_triggerer"
SUCCESS_AT = 100_000.0  # simulated seconds after creation: reached only by the clock jump
BLOCKED = re.compile(r"async thread was blocked for ([0-9.]+) seconds")

DAG_FILE = """
import os, json
from airflow.sdk import DAG
from airflow_provider_iotda.sensors.iotda import IoTDAInstanceTaskSensor

with DAG("{dag_id}", schedule=None, catchup=False, max_active_tasks={sensors}):
    IoTDAInstanceTaskSensor.partial(
        task_id="wait",
        deferrable=True,
        poke_interval={poll},
        timeout=3600,
        max_active_tis_per_dag={sensors},
    ).expand_kwargs(json.loads(os.environ["BENCH_SENSOR_KWARGS"]))
"""


def scenario(sensors: int) -> tuple[dict[str, object], list[dict[str, str]]]:
    instances: list[dict[str, object]] = []
    kwargs: list[dict[str, str]] = []
    for k in range(sensors):
        i, n = divmod(k, TASKS_PER_INSTANCE)
        if n == 0:
            instances.append({"instance_id": benchlib.instance_id(i), "tasks": []})
        task = benchlib.task_id(i, n)
        timeline = [["RUNNING", 0], ["SUCCESS", SUCCESS_AT, "done"]]
        tasks = instances[-1]["tasks"]
        assert isinstance(tasks, list)
        tasks.append({"task_id": task, "type": "MODIFY", "created": 0, "timeline": timeline})
        kwargs.append({"instance_id": benchlib.instance_id(i), "instance_task_id": task})
    return {"instances": instances}, kwargs


def main() -> None:
    parser = benchlib.common_args(__doc__ or "")
    parser.add_argument("--sensors", type=int, default=None, help="deferred sensors (200)")
    parser.add_argument("--poll", type=float, default=5.0, help="poke/poll interval, s (5)")
    parser.add_argument("--parallelism", type=int, default=8, help="LocalExecutor slots (8)")
    parser.add_argument(
        "--code",
        type=Path,
        default=None,
        help="run Airflow's processes on the provider in this checkout instead (e.g. a worktree "
        "of main, to compare); its directory goes first on PYTHONPATH",
    )
    args = parser.parse_args()
    sensors = args.sensors or (40 if args.quick else 200)
    report = Report("7 real triggerer")
    data, kwargs = scenario(sensors)
    import airflow

    print(
        f"Airflow {airflow.__version__}: {sensors} deferred sensors on "
        f"{len(data['instances'])} instances (poll {args.poll:g} s), one real triggerer; "  # type: ignore[arg-type]
        f"{benchlib.load_note()}"
    )
    home = Path(tempfile.mkdtemp(prefix="iotda-real-triggerer-"))
    dag_file = home / "dag-src" / "bench_real_triggerer.py"
    dag_file.parent.mkdir()
    dag_file.write_text(
        textwrap.dedent(DAG_FILE.format(dag_id=DAG_ID, sensors=sensors, poll=args.poll))
    )
    started = time.monotonic()
    with (
        benchlib.scenario_file(data) as path,
        benchlib.SimProcess(scenario=path, extra_args=["--time-factor", "0"]) as sim,
    ):
        env = {
            "AIRFLOW_CONN_IOTDA_DEFAULT": benchlib.connection_json(sim.url),
            "BENCH_SENSOR_KWARGS": json.dumps(kwargs),
            "AIRFLOW__CORE__PARALLELISM": str(args.parallelism),
            "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": str(sensors),
            "AIRFLOW__TRIGGERER__CAPACITY": str(max(1000, sensors)),
        }
        if args.code is not None:
            # ``python -m airflow`` puts its working directory first on sys.path: start the
            # processes outside this checkout, so that PYTHONPATH's first entry wins.
            print(f"provider code from {args.code}")
            os.chdir(home)
            paths = [args.code, REPO, REPO / "tests"]
            env["PYTHONPATH"] = os.pathsep.join(str(p) for p in paths)
        with running_stack(home / "airflow", [dag_file], env) as stack:
            stack.wait_for(
                "the DAG to be parsed",
                lambda: stack.query("SELECT 1 FROM dag WHERE dag_id = ?", DAG_ID) or None,
                timeout=300,
            )
            import subprocess

            subprocess.run(
                [sys.executable, "-m", "airflow", "dags", "trigger", DAG_ID],
                env=stack.env,
                check=True,
                capture_output=True,
                timeout=120,
            )

            def count(state: str) -> int:
                rows = stack.query(
                    "SELECT count(*) FROM task_instance WHERE dag_id = ? AND state = ?",
                    DAG_ID,
                    state,
                )
                return int(rows[0][0])

            stack.wait_for(
                f"{sensors} deferred sensors",
                lambda: count("deferred") == sensors or None,
                timeout=3600,
                every=2.0,
            )
            deferred_after = time.monotonic() - started
            print(f"all {sensors} sensors deferred after {deferred_after:.0f} s")
            time.sleep(3 * args.poll)  # the shared polls settle in
            log_path = stack.logs / "triggerer.log"
            mark = log_path.stat().st_size
            sim.post("/_sim/advance", {"seconds": SUCCESS_AT + 1})
            jumped = time.monotonic()
            stack.wait_for(
                f"{sensors} sensors to succeed",
                lambda: count("success") == sensors or None,
                timeout=1800,
                every=1.0,
            )
            fired_in = time.monotonic() - jumped
            time.sleep(2.0)  # the watchdog reports a block after it ended
            with log_path.open("rb") as log:
                log.seek(mark)
                after = log.read().decode(errors="replace")
            with log_path.open("rb") as log:
                before = log.read(mark).decode(errors="replace")
            requests = sim.stats()["requests"]
    blocks = [float(x) for x in BLOCKED.findall(after)]
    earlier = [float(x) for x in BLOCKED.findall(before)]
    print(
        f"every sensor succeeded {fired_in:.1f} s after the clock jump; simulator requests "
        f"{requests}"
    )
    print(
        f"triggerer 'blocked' warnings while the {sensors} sensors fired: {len(blocks)}"
        + (f", longest {max(blocks):.2f} s ({blocks})" if blocks else "")
    )
    print(
        f"(before the jump, while {sensors} sensors deferred: {len(earlier)} warnings"
        + (f", longest {max(earlier):.2f} s)" if earlier else ")")
    )
    report.check(
        f"'blocked' warnings while {sensors} deferred sensors fire together",
        f"{len(blocks)}" + (f" (longest {max(blocks):.2f} s)" if blocks else ""),
        "0",
        not blocks,
        note=f"all succeeded {fired_in:.1f} s after the tasks did; home {home}",
    )
    report.add(
        "'blocked' warnings while the sensors deferred (start-up)",
        f"{len(earlier)}" + (f" (longest {max(earlier):.2f} s)" if earlier else ""),
    )
    report.details = {
        "sensors": sensors,
        "blocked_while_firing_s": blocks,
        "blocked_before_s": earlier,
        "fired_in_s": fired_in,
        "airflow": airflow.__version__,
        "home": str(home),
        "pid": os.getpid(),
    }
    report.emit()


if __name__ == "__main__":
    main()
