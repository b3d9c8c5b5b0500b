"""``make demo``: the example DAGs in a real Airflow against the built-in IoTDA simulator.

Steps: a temporary AIRFLOW_HOME with sqlite (``airflow db migrate``); the simulator with the
demo scenario on a free loopback port; ``iotda_default`` pointed at it through the
environment; ``airflow dags test`` for ``wait_for_modify`` (deferrable sensor),
``resize_and_wait`` (the resize ordered, its MODIFY task waited for in the triggerer, the new
flavor read back), ``audit_instance_tasks`` and ``audit_history_to_sql`` (into SQLite); a table
of the audit file and of the history table; a scan of everything
Airflow wrote for the demo's secret key.  The simulator is stopped on every exit path.  Exit
code 0 only if every DAG run succeeded and no secret leaked.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from airflow_provider_iotda.simulator.scenario import DEMO_SCENARIO_PATH

REPO = Path(__file__).resolve().parent.parent
# The installed package's copy: the wheel smoke test (.ci/wheel-smoke) runs this demo from a
# directory that holds no package source.
SCENARIO = DEMO_SCENARIO_PATH
# Recognisable demo credentials: the final check greps every output and file for them.
DEMO_AK = "DEMOACCESSKEY000001"
DEMO_SK = "DEMO-SECRET-KEY-must-never-appear-7c41"
DEMO_TOKEN = "DEMO-SECURITY-TOKEN-must-never-appear-19be"
DEMO_PROJECT = "0a1b2c3d4e5f60718293a4b5c6d7e8f9"
SECRETS = (DEMO_SK, DEMO_TOKEN)
# A structlog line of `airflow dags test`: time, level, message, [logger], key=value...
LOG_LINE = re.compile(r"^(\S+)\s+\[(\w+)\s*\]\s+(.*?)\s+\[([\w.]+)\]")
RUN_STATE = re.compile(r"\bstate=(\w+)")


def say(text: str) -> None:
    print(f"\033[1m==> {text}\033[0m" if sys.stdout.isatty() else f"==> {text}", flush=True)


def start_simulator(env: dict[str, str]) -> tuple[subprocess.Popen[str], str]:
    """Start the simulator on a free port; returns the process and its base URL."""
    cmd = [
        sys.executable,
        "-m",
        "airflow_provider_iotda.simulator",
        "--port",
        "0",
        "--ak",
        DEMO_AK,
        "--sk",
        DEMO_SK,
        "--project-id",
        DEMO_PROJECT,
        "--scenario",
        str(SCENARIO),
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env)
    assert proc.stdout is not None
    url = proc.stdout.readline().strip()
    if not url.startswith("http"):
        proc.kill()
        raise RuntimeError(f"simulator did not start (printed {url!r})")
    return proc, url


def interesting(line: str) -> str | None:
    """The part of an ``airflow dags test`` line worth showing, or None.

    Shown: what the provider's sensor, trigger and operator log, what the example DAGs' own
    tasks log, errors, and the final state of the DAG run.
    """
    match = LOG_LINE.match(line.rstrip())
    if match is None:
        return None
    stamp, level, message, logger = match.groups()
    clock = stamp[11:19]
    if "DagRun Finished" in message:
        state = RUN_STATE.search(message)
        return f"{clock} DAG run finished: {state.group(1) if state else '?'}"
    ours = "airflow_provider_iotda" in logger or "unusual_prefix" in logger
    if ours or level in ("error", "critical"):
        return f"{clock} {message[:200]}"
    return None


def run_dag_test(args: list[str], env: dict[str, str], transcript: list[str]) -> bool:
    """Run ``airflow dags test ...``, echo the interesting lines, keep the whole transcript."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "airflow", "dags", "test", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    assert proc.stdout is not None
    previous = None
    for line in proc.stdout:
        transcript.append(line)
        shown = interesting(line)
        # The sensor and its trigger may log the same status twice in a row: show it once.
        if shown and shown[9:] != previous:
            print("   " + shown, flush=True)
            previous = shown[9:]
    return proc.wait() == 0


def audit_table(base: Path) -> list[Path]:
    """Print a table (instance x type x status) of every audit file under ``base``; name the
    HTML reports beside them."""
    from airflow_provider_iotda.records import infer_format, parse

    files = sorted(p for p in base.rglob("*") if p.is_file() and infer_format(p.name))
    for page in sorted(base.rglob("*.html")):
        say(f"audit report (open it in a browser): {page}")
    for path in files:
        records = parse(path.read_bytes(), infer_format(path.name) or "jsonl")
        say(f"audit file {path} holds {len(records)} record(s)")
        counts = Counter((r["instance_id"], r["type"], r["status"]) for r in records)
        print(f"   {'instance':<38}{'type':<22}{'status':<9}{'count':>5}")
        for (instance, task_type, status), n in sorted(counts.items()):
            print(f"   {instance:<38}{task_type:<22}{status:<9}{n:>5}")
    return files


def history_table(path: Path) -> None:
    """Print the audit history table the SQL example DAG wrote (SQLite)."""
    import sqlite3

    if not path.exists():
        say(f"no history database at {path}")
        return
    with sqlite3.connect(path) as db:
        rows = db.execute(
            "SELECT instance_id, task_id, type, status, create_time, first_seen_at"
            " FROM iotda_instance_tasks ORDER BY instance_id, create_time DESC"
        ).fetchall()
        changes = db.execute("SELECT COUNT(*) FROM iotda_instance_tasks_status_history").fetchone()
        gaps = db.execute("SELECT COUNT(*) FROM iotda_instance_tasks_gaps").fetchone()
    say(
        f"table iotda_instance_tasks holds {len(rows)} task(s); "
        f"{changes[0]} status observation(s), {gaps[0]} gap(s)"
    )
    print(
        f"   {'instance':<38}{'task':<38}{'type':<22}{'status':<9}{'created (UTC)':<25}first seen"
    )
    for instance, task_id, task_type, status, created, seen in rows:
        print(f"   {instance:<38}{task_id:<38}{task_type:<22}{status:<9}{created or '':<25}{seen}")


def find_leaks(home: Path, transcript: list[str]) -> list[str]:
    """Every place (output or file under AIRFLOW_HOME) where a demo secret appears."""
    leaks = [
        f"output line: {line.strip()[:80]}"
        for line in transcript
        if any(s in line for s in SECRETS)
    ]
    for path in home.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            leaks += [f"file {path}" for s in SECRETS if s.encode() in data]
    return leaks


def main() -> int:
    started = time.monotonic()
    home = Path(tempfile.mkdtemp(prefix="iotda-demo-airflow-home-"))
    audit_base = home / "audit"
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "example_dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "IOTDA_AUDIT_BASE": str(audit_base),
        "IOTDA_EXAMPLE_POKE_INTERVAL": "4",
        "PYTHONUNBUFFERED": "1",
    }
    scenario = json.loads(SCENARIO.read_text())
    instances = [i["instance_id"] for i in scenario["instances"]]
    say(f"AIRFLOW_HOME={home} (sqlite); migrating the metadata database")
    subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    simulator, url = start_simulator(env)
    transcript: list[str] = []
    ok = {
        "wait_for_modify": False,
        "resize_and_wait": False,
        "audit_instance_tasks": False,
        "audit_history_to_sql": False,
    }
    try:
        say(f"IoTDA simulator listening on {url} with {len(instances)} instances")
        env["AIRFLOW_CONN_IOTDA_DEFAULT"] = json.dumps(
            {
                "conn_type": "huaweicloud_iotda",
                "login": DEMO_AK,
                "password": DEMO_SK,
                "extra": {
                    "endpoint": url,
                    "region": "cn-north-4",
                    "project_id": DEMO_PROJECT,
                    "instance_id": instances[0],
                    "security_token": DEMO_TOKEN,
                },
            }
        )
        env["AIRFLOW_VAR_IOTDA_AUDIT_INSTANCE_IDS"] = json.dumps(instances)
        say("airflow dags test wait_for_modify  (deferrable sensor waits for the MODIFY task)")
        ok["wait_for_modify"] = run_dag_test(["wait_for_modify"], env, transcript)
        # The demo's third instance (lab-west, iotda.standard.s2 x 1) gets a second unit.
        resize_conf = {"instance_id": instances[2], "flavor_type": "iotda.standard.s2"}
        say(
            f"airflow dags test resize_and_wait  (resize {instances[2]} to iotda.standard.s2 x 2,"
            " wait for its MODIFY task deferred, read the new flavor back)"
        )
        ok["resize_and_wait"] = run_dag_test(
            ["resize_and_wait", "--conf", json.dumps({**resize_conf, "flavor_size": 2})],
            env,
            transcript,
        )
        say("airflow dags test audit_instance_tasks  (yesterday's tasks of every instance)")
        ok["audit_instance_tasks"] = run_dag_test(["audit_instance_tasks"], env, transcript)
        audit_table(audit_base)
        history_db = home / "iotda-history.db"
        env["AIRFLOW_CONN_IOTDA_AUDIT_DB"] = json.dumps(
            {"conn_type": "sqlite", "host": str(history_db)}
        )
        say(f"airflow dags test audit_history_to_sql  (every instance's tasks into {history_db})")
        ok["audit_history_to_sql"] = run_dag_test(["audit_history_to_sql"], env, transcript)
        history_table(history_db)
    finally:
        simulator.send_signal(signal.SIGTERM)
        try:
            simulator.wait(timeout=10)
        except subprocess.TimeoutExpired:
            simulator.kill()
    (home / "demo-transcript.log").write_text("".join(transcript))
    say(f"full output of the DAG runs: {home / 'demo-transcript.log'}")
    leaks = find_leaks(home, transcript)
    for leak in leaks:
        print(f"   SECRET LEAK: {leak}")
    say(f"secret scan of {len(transcript)} output lines and {home}: {len(leaks)} leak(s)")
    for dag_id, success in ok.items():
        say(f"{dag_id}: {'success' if success else 'FAILED'}")
    say(f"demo took {time.monotonic() - started:.0f} s")
    return 0 if all(ok.values()) and not leaks else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("interrupted; simulator stopped", file=sys.stderr)
        sys.exit(130)
