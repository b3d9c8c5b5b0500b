"""A running ``airflow api-server`` (simple auth manager, every user an admin, connection tests
enabled) on a free loopback port, and an authenticated client for its REST API."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from airflow_provider_iotda.config import CONN_TYPE

AK = "FORMTESTACCESSKEY001"
SK = "FORM-SECRET-do-not-leak-3b7e11"
PROJECT = "0123456789abcdef0123456789abcdef"
STARTUP_SECONDS = 120
REPO = Path(__file__).resolve().parents[3]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class ApiServer:
    """A running ``airflow api-server`` and an authenticated client for it."""

    def __init__(self, url: str, token: str) -> None:
        self.url = url
        self.client = httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=60
        )

    def hook_meta(self) -> dict[str, Any]:
        response = self.client.get("/ui/connections/hook_meta")
        assert response.status_code == 200, response.text
        (entry,) = [e for e in response.json() if e["connection_type"] == CONN_TYPE]
        return entry  # type: ignore[no-any-return]

    def test_connection(self, **body: Any) -> httpx.Response:
        return self.client.post("/api/v2/connections/test", json=body)

    def stored(self, connection_id: str) -> dict[str, Any]:
        """A saved connection as the REST API returns it (the password masked)."""
        response = self.client.get(f"/api/v2/connections/{connection_id}")
        assert response.status_code == 200, response.text
        return response.json()  # type: ignore[no-any-return]


@contextlib.contextmanager
def running_api_server(log_path: Path) -> Iterator[ApiServer]:
    port = free_port()
    env = {
        **os.environ,
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
        "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",
        "AIRFLOW__API_AUTH__JWT_SECRET": "form-test-jwt-secret-0123456789abcdef",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    }
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "airflow", "api-server", "-H", "127.0.0.1", "-p", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: the workers stop with it
        )
    url = f"http://127.0.0.1:{port}"
    try:
        token = _wait_for_token(url, process, log_path)
        server = ApiServer(url, token)
        yield server
        server.client.close()
    finally:
        stop_process_group(process, 30)


def stop_process_group(process: subprocess.Popen[bytes], grace: float) -> None:
    """SIGTERM to the process group (a server and its workers), SIGKILL after ``grace`` s."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)


def _wait_for_token(url: str, process: subprocess.Popen[bytes], log_path: Path) -> str:
    """Wait for the server (up to STARTUP_SECONDS) and get an all-admins token."""
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"airflow api-server exited:\n{log_path.read_text()[-3000:]}")
        try:
            response = httpx.get(f"{url}/auth/token", timeout=5)
        except httpx.TransportError:
            time.sleep(0.5)
            continue
        if response.status_code in (200, 201):
            return str(response.json()["access_token"])
        time.sleep(0.5)
    pytest.fail(f"airflow api-server did not start:\n{log_path.read_text()[-3000:]}")
