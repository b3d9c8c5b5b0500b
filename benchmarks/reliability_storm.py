"""Fault-storm figures: the provider keeps working, never reports a wrong result, loses nothing.

Runs, against the local IoTDA simulator in a storm of about 30 % 5xx, 10 % 429 (Retry-After:
1 s), 5 % dropped connections and 5 % answers slower than the client's 0.5 s timeout:

* the dump operator (``IoTDAInstanceTaskListOperator``), ``--trials`` seeded trials (default
  50), four instances with several pages each, to a JSON Lines file: each trial must end with a
  complete, correct file or with no file at all;
* the sensor (``IoTDAInstanceTaskSensor``) in poke, reschedule and deferrable mode, run by
  ``dag.test()`` in a temporary Airflow home, ``--sensor-runs`` runs per mode (half ending
  SUCCESS, half FAILED): each must succeed or fail as the task did, reporting only statuses
  the task really had;
* ``make demo`` (``--demo``, on by default), whose own scan looks for its SK and token in
  everything it printed and wrote.

Prints a table of trials, faults injected by kind (the simulator's counters), retries (waits
between attempts, counted in the hooks' retry sleep) and outcomes.  Exit status 1 if any trial
was wrong.  The trials themselves live in ``tests/integration/reliability/storm.py`` (shared with
the
tests).  Backoff waits are skipped (``--real-sleeps`` keeps them): they only add wall time.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

REPO = Path(__file__).resolve().parent.parent
FAULT_ORDER = ("500", "503", "429", "drop", "slow", "malformed", "truncated")


def prepare_airflow_home() -> Path:
    """A temporary AIRFLOW_HOME (sqlite) whose DAGs folder holds the storm DAGs; migrated."""
    home = Path(tempfile.mkdtemp(prefix="iotda-reliability-airflow-home-"))
    dags = home / "dags"
    dags.mkdir()
    (dags / "reliability_storm_dags.py").symlink_to(
        REPO / "tests" / "system" / "dag_files" / "reliability_storm_dags.py"
    )
    os.environ.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "ERROR",
        }
    )
    subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"],
        check=True,
        capture_output=True,
        env=os.environ.copy(),
        timeout=600,
    )
    return home


@contextmanager
def console_to(path: Path) -> Iterator[TextIO]:
    """Send everything written to stdout/stderr (Airflow's logs, the trials' expected retry
    warnings and task failures) to ``path``; yield a stream to the real console."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    console = os.fdopen(os.dup(saved[0]), "w", buffering=1)
    with open(path, "ab") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            yield console
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
            console.close()


def row(cells: list[Any], widths: list[int]) -> str:
    return "  ".join(
        str(c).ljust(w) if i == 0 else str(c).rjust(w)
        for i, (c, w) in enumerate(zip(cells, widths, strict=True))
    )


def print_table(tallies: list[Any]) -> None:
    kinds = [k for k in FAULT_ORDER if any(t.faults.get(k) for t in tallies)]
    outcomes = sorted({o for t in tallies for o in t.outcomes})
    header = ["trials of", "n", "requests", "faults", *kinds, "retries", *outcomes, "wrong"]
    rows = [
        [
            t.kind,
            t.trials,
            t.requests,
            t.injected,
            *[t.faults.get(k, 0) for k in kinds],
            t.retries,
            *[t.outcomes.get(o, 0) for o in outcomes],
            len(t.wrong),
        ]
        for t in tallies
    ]
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    print(row(header, widths))
    print(row(["-" * w for w in widths], widths))
    for cells in rows:
        print(row(cells, widths))


def run_demo() -> tuple[bool, str]:
    """``python -m demo``; returns (passed, its secret-scan line)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    proc = subprocess.run(
        [sys.executable, "-m", "demo"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    scan = next((line for line in proc.stdout.splitlines() if "secret scan" in line), "")
    sys.path.insert(0, str(REPO))
    from demo.__main__ import SECRETS as DEMO_SECRETS

    leaked = any(s in proc.stdout + proc.stderr for s in DEMO_SECRETS)
    return proc.returncode == 0 and not leaked, scan.replace("==> ", "").strip()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=50, help="operator trials (default 50)")
    parser.add_argument(
        "--sensor-runs", type=int, default=6, help="sensor runs per mode (default 6)"
    )
    parser.add_argument("--real-sleeps", action="store_true", help="keep the backoff waits")
    parser.add_argument("--no-demo", dest="demo", action="store_false", help="skip make demo")
    args = parser.parse_args(argv)

    started = time.monotonic()
    home = prepare_airflow_home()
    sys.path.insert(0, str(REPO / "tests"))
    from integration.reliability import storm

    from airflow_provider_iotda import retry

    print(f"Airflow home {home} (sqlite, migrated); storm rates {storm.STORM_RATES}")
    print(
        f"client timeout {storm.CLIENT_TIMEOUT} s, slow answers {storm.SLOW_SECONDS} s, "
        f"Retry-After {storm.RETRY_AFTER} s, max_retries {storm.STORM_MAX_RETRIES}"
    )
    if not args.real_sleeps:

        async def no_async_sleep(seconds: float) -> None:
            return None

        retry._sleep = lambda seconds: None
        retry._async_sleep = no_async_sleep
        print("backoff waits patched out (airflow_provider_iotda.retry._sleep/_async_sleep)")
    trial_log = home / "trials.log"
    print(f"the trials' own output (Airflow logs, expected retries and failures): {trial_log}")

    operator = storm.Tally("operator dump")
    sensors = []
    with console_to(trial_log) as console:
        with tempfile.TemporaryDirectory(prefix="iotda-storm-out-") as out:
            for seed in range(args.trials):
                operator.add(storm.operator_trial(seed, Path(out) / f"trial-{seed}"))
        print(f"operator: {args.trials} trials, {time.monotonic() - started:.0f} s", file=console)
        with tempfile.TemporaryDirectory(prefix="iotda-storm-outbox-") as outbox_dir:
            outbox = Path(outbox_dir) / "failures.jsonl"
            for m, mode in enumerate(("poke", "reschedule", "deferrable")):
                tally = storm.Tally(f"sensor {mode}")
                for i in range(args.sensor_runs):
                    final = "SUCCESS" if i % 2 == 0 else "FAILED"
                    tally.add(storm.sensor_trial(mode, final, 1000 + 100 * m + i, outbox))
                sensors.append(tally)
                print(
                    f"sensor {mode}: {args.sensor_runs} runs, {time.monotonic() - started:.0f} s",
                    file=console,
                )

    tallies = [operator, *sensors]
    print()
    print_table(tallies)
    wrong = [w for t in tallies for w in t.wrong]
    for result in wrong:
        print(f"WRONG {result.kind} seed {result.seed}: {result.detail}")
    print(
        "\noperator: complete = the file equals what the simulator lists; no_file = the task "
        "failed after its retries and left nothing behind (no file, no temporary file)"
    )
    print(
        "sensor: success/failed = the run ended as the task did (runs alternate SUCCESS and "
        "FAILED); every status reported was one the task had"
    )
    print("retries = waits between attempts (one per retry); requests - retries = calls made")
    demo_ok = True
    if args.demo:
        demo_ok, scan = run_demo()
        print(f"demo (make demo): {'passed' if demo_ok else 'FAILED'}; {scan}")
    print(f"total {time.monotonic() - started:.0f} s; wrong results: {len(wrong)}")
    return 0 if not wrong and demo_ok else 1


if __name__ == "__main__":
    sys.exit(main())
