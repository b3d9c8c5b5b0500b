"""A real Airflow of separate processes in a temporary AIRFLOW_HOME, for end-to-end tests.

``AirflowStack`` migrates a sqlite metadata DB, then starts ``api-server``, ``scheduler``,
``dag-processor`` and ``triggerer`` (``python -m airflow ...`` of the running interpreter, so
the same Airflow line as the tests), each in its own process group with its own log file.
LocalExecutor runs the tasks: Airflow 3 runs them through the API server, so it works with
sqlite (the SequentialExecutor is gone).  The DB is read directly (sqlite3, read-only) to
observe DAG runs, asset events and the asset state store.

Every wait has a deadline and fails with the tail of the components' logs.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

REPO = Path(__file__).resolve().parents[3]
COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class AirflowStack:
    """Airflow's components as separate processes (see the module docstring)."""

    def __init__(self, home: Path, dag_files: list[Path], env: Mapping[str, str]) -> None:
        self.home = home
        self.dags = home / "dags"
        self.dags.mkdir(parents=True)
        for source in dag_files:
            (self.dags / source.name).symlink_to(source)
        self.logs = home / "component-logs"
        self.logs.mkdir()
        self.db_path = home / "airflow.db"
        self.port = free_port()
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")},
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": "4",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{self.port}/execution/",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{self.db_path}",
            "AIRFLOW__API__PORT": str(self.port),
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__API_AUTH__JWT_SECRET": "e2e-test-jwt-secret-not-a-real-one",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
            "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "1",
            # A killed triggerer's triggers go to the next one after this many seconds.
            "AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD": "4",
            "AIRFLOW__SCHEDULER__JOB_HEARTBEAT_SEC": "1",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
            "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "tests")]),
            **env,
        }

    # -- processes -------------------------------------------------------------------------------

    def migrate(self) -> None:
        subprocess.run(
            [sys.executable, "-m", "airflow", "db", "migrate"],
            env=self.env,
            check=True,
            capture_output=True,
            timeout=300,
        )

    def start(self, component: str) -> None:
        command = [sys.executable, "-m", "airflow", component]
        if component == "api-server":
            command += ["--port", str(self.port), "--host", "127.0.0.1"]
        log = (self.logs / f"{component}.log").open("ab")
        self.processes[component] = subprocess.Popen(
            command,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: kill() reaches its children
        )
        log.close()

    def kill(self, component: str, sig: int = signal.SIGKILL, wait: float = 15.0) -> None:
        """Send ``sig`` to the component's process group; SIGKILL it if it outlives ``wait``."""
        process = self.processes.pop(component, None)
        if process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        try:
            process.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=wait)
        # Children that outlived their parent (task runners) are in the same group.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)

    def stop_all(self) -> None:
        for component in list(self.processes):
            self.kill(component, signal.SIGTERM, wait=10.0)

    def check_alive(self) -> None:
        for name, process in self.processes.items():
            if process.poll() is not None:
                raise AssertionError(
                    f"{name} exited with {process.returncode}\n{self.log_tail(name)}"
                )

    def log_tail(self, component: str, lines: int = 40) -> str:
        path = self.logs / f"{component}.log"
        if not path.exists():
            return f"(no {component} log)"
        text = path.read_text(errors="replace").splitlines()[-lines:]
        return f"--- {component} log ---\n" + "\n".join(text)

    def all_log_tails(self) -> str:
        return "\n".join(self.log_tail(c) for c in COMPONENTS)

    # -- waiting ---------------------------------------------------------------------------------

    def wait_for(
        self, what: str, probe: Callable[[], T | None], timeout: float = 120.0, every: float = 0.25
    ) -> T:
        """Call ``probe`` until it returns something not None (or falsy-but-not-None)."""
        deadline = time.monotonic() + timeout
        while True:
            self.check_alive()
            with contextlib.suppress(sqlite3.OperationalError):  # locked or not migrated yet
                value = probe()
                if value is not None and value is not False:
                    return value
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"timed out after {timeout:g} s waiting for {what}\n{self.all_log_tails()}"
                )
            time.sleep(every)

    def wait_healthy(self, timeout: float = 180.0) -> None:
        url = f"http://127.0.0.1:{self.port}/api/v2/monitor/health"

        def healthy() -> bool | None:
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    return response.status == 200 or None
            except OSError:
                return None

        self.wait_for("the API server", healthy, timeout)

    # -- the metadata DB -------------------------------------------------------------------------

    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        connection = sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True, timeout=10)
        try:
            return connection.execute(sql, params).fetchall()
        finally:
            connection.close()

    def dag_runs(self, dag_id: str) -> list[tuple[int, str, str]]:
        """``(id, run_id, state)`` of the DAG's runs, oldest first."""
        rows = self.query(
            "SELECT id, run_id, state FROM dag_run WHERE dag_id = ? ORDER BY id", dag_id
        )
        return [(int(r[0]), str(r[1]), str(r[2])) for r in rows]

    def run_event_payloads(self, dag_run_id: int) -> list[Any]:
        """The payloads of the asset events that triggered a run."""
        rows = self.query(
            "SELECT ae.extra FROM asset_event ae JOIN dagrun_asset_event dae "
            "ON dae.event_id = ae.id WHERE dae.dag_run_id = ? ORDER BY ae.id",
            dag_run_id,
        )
        return [json.loads(r[0]).get("payload") for r in rows]

    def asset_event_payloads(self) -> list[Any]:
        rows = self.query("SELECT extra FROM asset_event ORDER BY id")
        return [json.loads(r[0]).get("payload") for r in rows]

    def task_states(self, dag_id: str, run_id: str) -> dict[str, str | None]:
        rows = self.query(
            "SELECT task_id, state FROM task_instance WHERE dag_id = ? AND run_id = ?",
            dag_id,
            run_id,
        )
        return {str(r[0]): r[1] for r in rows}

    def asset_state(self, key: str) -> Any:
        """The asset state store's value under ``key`` (Airflow 3.3), ``None`` if not written."""
        rows = self.query("SELECT value FROM asset_state_store WHERE key = ?", key)
        return json.loads(rows[0][0]) if rows else None


@contextlib.contextmanager
def running_stack(
    home: Path, dag_files: list[Path], env: Mapping[str, str]
) -> Iterator[AirflowStack]:
    """Migrate, start every component, wait for the API server; stop everything at the end."""
    stack = AirflowStack(home, dag_files, env)
    try:
        stack.migrate()
        for component in COMPONENTS:
            stack.start(component)
        stack.wait_healthy()
        yield stack
    finally:
        stack.stop_all()
