"""``python -m airflow_provider_iotda.simulator``: prints its URL (then its instances and a
connection to paste), serves, stops cleanly; names the ``simulator`` extra when it is missing."""

from __future__ import annotations

import json
import os
import re
import select
import shlex
import signal
import subprocess
import sys
from collections.abc import Iterator

import pytest
import requests

from airflow_provider_iotda.auth import Credentials
from airflow_provider_iotda.hooks.iotda import IoTDAHook, SigningAuth
from airflow_provider_iotda.simulator import IoTDASimulator, Scenario
from airflow_provider_iotda.simulator.__main__ import (
    SECRET_KEY_PLACEHOLDER,
    SK_ENV,
    startup_lines,
)
from airflow_provider_iotda.simulator.server import SIMULATOR_EXTRA_INSTALL

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


def _start(
    cli: list[subprocess.Popen[str]],
    *extra: str,
    args: list[str] = ARGS,
    env: dict[str, str] | None = None,
) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [*BASE, *args, *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
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


CONN_LINE = "export AIRFLOW_CONN_IOTDA_DEFAULT="


@pytest.mark.parametrize("sk_from", ["flag", "environment"])
def test_cli_prints_instances_and_a_connection_but_never_the_secret_key(
    cli: list[subprocess.Popen[str]], monkeypatch: pytest.MonkeyPatch, sk_from: str
) -> None:
    if sk_from == "flag":
        process = _start(cli, "--scenario", "demo", "--time-factor", "0")
    else:
        args = [arg for arg in ARGS if arg not in ("--sk", SK)]
        env = {**os.environ, SK_ENV: SK}
        process = _start(cli, "--scenario", "demo", "--time-factor", "0", args=args, env=env)
    lines = [_first_line(process)]
    assert process.stdout is not None
    while not lines[-1].startswith(CONN_LINE):
        line = process.stdout.readline()
        assert line, f"the simulator stopped printing after {lines}"
        lines.append(line.rstrip("\n"))
    url = lines[0]
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", url)
    shown = "\n".join(lines)
    for instance in Scenario.demo().instances:
        assert instance.instance_id in shown
        assert instance.name is not None
        assert instance.name in shown

    # The connection works as printed once the placeholder is replaced by the secret key.
    (value,) = shlex.split(lines[-1].removeprefix("export AIRFLOW_CONN_IOTDA_DEFAULT="))
    conn = json.loads(value)
    assert conn == {
        "conn_type": "huaweicloud_iotda",
        "login": AK,
        "password": SECRET_KEY_PLACEHOLDER,
        "extra": {"endpoint": url, "project_id": PROJECT},
    }
    conn["password"] = SK
    monkeypatch.setenv("AIRFLOW_CONN_IOTDA_DEFAULT", json.dumps(conn))
    with IoTDAHook() as hook:
        assert hook.list_instance_tasks(INSTANCE_1).count == 6

    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=10)
    assert process.returncode == 0, err
    everything = shown + out + err
    assert AK in everything
    assert SK not in everything
    assert TOKEN not in everything


def test_startup_lines_of_an_empty_simulator() -> None:
    simulator = IoTDASimulator(ak=AK, sk=SK, project_id=PROJECT)
    simulator.bind()
    try:
        url = simulator.url
        lines = startup_lines(simulator)
    finally:
        simulator.stop()
    assert lines[0] == url
    assert lines[1].startswith(f"No instances yet in project {PROJECT}")
    assert sum(line.startswith(CONN_LINE) for line in lines) == 1
    assert SK not in "\n".join(lines)


@pytest.mark.parametrize(
    "missing", [("starlette",), ("uvicorn",), ("starlette", "uvicorn")], ids="+".join
)
def test_cli_without_the_simulator_extra_names_it(missing: tuple[str, ...]) -> None:
    code = (
        "import runpy, sys\n"
        f"for name in {missing!r}:\n"
        "    sys.modules[name] = None\n"
        f"sys.argv = ['simulator', *{ARGS!r}]\n"
        "runpy.run_module('airflow_provider_iotda.simulator', run_name='__main__')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert result.stdout == ""
    (line,) = result.stderr.strip().splitlines()
    assert SIMULATOR_EXTRA_INSTALL in line
    assert 'pip install "airflow-provider-iotda[simulator]"' in line
    assert all(name in line for name in missing)
    assert SK not in result.stderr
