"""``python -m airflow_provider_iotda.simulator``: prints its URL, serves, stops cleanly."""

from __future__ import annotations

import re
import select
import signal
import subprocess
import sys
from collections.abc import Iterator

import pytest
import requests

from airflow_provider_iotda.auth import Credentials
from airflow_provider_iotda.hooks.iotda import SigningAuth

from .sim_helpers import AK, INSTANCE_1, PROJECT, SK, TOKEN

BASE = [sys.executable, "-m", "airflow_provider_iotda.simulator"]
ARGS = ["--port", "0", "--ak", AK, "--sk", SK, "--project-id", PROJECT, "--token", TOKEN]


def _first_line(process: subprocess.Popen[str], timeout: float = 10.0) -> str:
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], timeout)
    assert ready, "the simulator printed nothing"
    return process.stdout.readline().strip()


@pytest.fixture
def cli() -> Iterator[list[subprocess.Popen[str]]]:
    """Started processes; any still running at the end are killed."""
    processes: list[subprocess.Popen[str]] = []
    yield processes
    for process in processes:
        if process.poll() is None:
            process.kill()
            process.wait(5)


def _start(cli: list[subprocess.Popen[str]], *extra: str) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [*BASE, *ARGS, *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    cli.append(process)
    return process


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT], ids=["TERM", "INT"])
def test_cli_serves_and_stops_cleanly(
    cli: list[subprocess.Popen[str]], stop_signal: signal.Signals
) -> None:
    process = _start(cli, "--scenario", "demo", "--time-factor", "0", "--fault-next", "503")
    url = _first_line(process)
    match = re.fullmatch(r"http://127\.0\.0\.1:(\d+)", url)
    assert match
    assert int(match[1]) > 0
    tasks = f"{url}/v5/iot/{PROJECT}/iotda-instances/{INSTANCE_1}/tasks"
    with requests.Session() as session:
        session.auth = SigningAuth(Credentials(AK, SK))
        assert session.get(tasks, timeout=5).status_code == 503  # --fault-next
        body = session.get(tasks, timeout=5).json()
        assert body["page"]["count"] == 6
        assert body["tasks"][0]["status"] == "PENDING"
    assert requests.get(tasks, headers={"X-Auth-Token": TOKEN}, timeout=5).status_code == 200
    process.send_signal(stop_signal)
    out, err = process.communicate(timeout=10)
    assert process.returncode == 0, err
    assert SK not in out + err
    assert TOKEN not in out + err


def test_cli_rejects_a_bad_scenario(cli: list[subprocess.Popen[str]]) -> None:
    process = _start(cli, "--scenario", "/nonexistent/scenario.json")
    _, err = process.communicate(timeout=10)
    assert process.returncode == 2
    assert "cannot read scenario file" in err


def test_cli_rejects_a_bad_fault(cli: list[subprocess.Popen[str]]) -> None:
    process = _start(cli, "--fault", "teapot=0.5")
    _, err = process.communicate(timeout=10)
    assert process.returncode == 2
    assert "unknown fault kind" in err


def test_cli_needs_a_secret_key() -> None:
    result = subprocess.run(
        [*BASE, "--ak", AK, "--project-id", PROJECT],
        capture_output=True,
        text=True,
        timeout=10,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 2
    assert "--sk" in result.stderr
