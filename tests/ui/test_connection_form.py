"""The connection form as a real ``airflow api-server`` serves it, and its Test button's route.

One api-server (simple auth manager, every user an admin, connection tests enabled) runs on a
free loopback port for this module, on the test session's temporary AIRFLOW_HOME.  The form's
metadata is ``GET /ui/connections/hook_meta``; its Test button posts the form's values to
``POST /api/v2/connections/test``, which runs ``IoTDAHook.test_connection`` on a random
temporary connection ID.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import airflow
import httpx
import pytest

from airflow_provider_iotda.config import CONN_TYPE, EXTRA_FIELDS
from airflow_provider_iotda.get_provider_info import CONN_FIELDS
from airflow_provider_iotda.simulator import IoTDASimulator

pytestmark = pytest.mark.integration

AK = "FORMTESTACCESSKEY001"
SK = "FORM-SECRET-do-not-leak-3b7e11"
PROJECT = "0123456789abcdef0123456789abcdef"
AIRFLOW_VERSION = tuple(int(part) for part in airflow.__version__.split(".")[:2])
#: Airflow 3.2 builds the form from ``conn-fields``; 3.1 only from hook methods.
READS_CONN_FIELDS = AIRFLOW_VERSION >= (3, 2)
STARTUP_SECONDS = 120
REPO = Path(__file__).resolve().parents[2]


def _free_port() -> int:
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


@pytest.fixture(scope="module")
def api_server(airflow_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    port = _free_port()
    log_path = tmp_path_factory.mktemp("api-server") / "api-server.log"
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
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(30)
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


@pytest.fixture(scope="module")
def simulator() -> Iterator[IoTDASimulator]:
    with IoTDASimulator(ak=AK, sk=SK, project_id=PROJECT, time_factor=0, seed=3) as sim:
        yield sim


def _form_body(connection_id: str = "my_iotda", **values: Any) -> dict[str, Any]:
    """What the form's Test button posts: the standard fields and every form field's value."""
    extra = {name: field["schema"].get("default") for name, field in CONN_FIELDS.items()}
    extra.update(region="cn-north-4", project_id=PROJECT)
    extra.update(values)
    return {
        "connection_id": connection_id,
        "conn_type": CONN_TYPE,
        "login": AK,
        "password": SK,
        "host": "",
        "schema": "",
        "description": "",
        "extra": json.dumps(extra),
    }


# -- the form -------------------------------------------------------------------------------------


def test_the_form_has_one_endpoint_field_and_aksk_labels(api_server: ApiServer) -> None:
    meta = api_server.hook_meta()
    assert meta["hook_name"] == "Huawei Cloud IoTDA"
    standard = meta["standard_fields"]
    for hidden in ("host", "port", "url_schema"):
        assert standard[hidden]["hidden"] is True, hidden
    assert standard["login"] == {
        "hidden": False,
        "title": "Access Key (AK)",
        "placeholder": "your Access Key ID",
    }
    assert standard["password"]["title"] == "Secret Key (SK)"
    assert standard["password"]["hidden"] is False


def test_the_form_shows_every_extra(api_server: ApiServer) -> None:
    extras = api_server.hook_meta()["extra_fields"]
    assert list(extras) == list(EXTRA_FIELDS)
    assert "auth" not in extras  # the old name of signing is read, not shown
    for name, field in CONN_FIELDS.items():
        served = extras[name]
        assert served["schema"]["title"] == field["label"], name
        assert served["description"] == field["description"]
        assert served["value"] == field["schema"].get("default")
    assert extras["signing"]["schema"]["enum"] == ["standard", "derived", "automatic"]
    assert extras["security_token"]["schema"]["format"] == "password"
    assert "boolean" in extras["verify"]["schema"]["type"]


@pytest.mark.skipif(not READS_CONN_FIELDS, reason="3.1 builds the form from hook widgets")
def test_the_form_carries_what_the_ui_can_enforce(api_server: ApiServer) -> None:
    """3.2+ serves ``conn-fields`` as declared: required, drop-down, lengths, bounds."""
    extras = api_server.hook_meta()["extra_fields"]
    for name, field in CONN_FIELDS.items():
        assert extras[name]["schema"] == {**field["schema"], "title": field["label"]}, name
    assert extras["project_id"]["schema"]["type"] == "string"  # required
    assert extras["project_id"]["schema"]["maxLength"] == 64
    assert extras["instance_id"]["schema"]["maxLength"] == 36
    assert extras["max_retries"]["schema"]["maximum"] == 10
    assert "cn-north-4" in extras["region"]["schema"]["examples"]


# -- the Test button ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            {"region": "CN North 4"},
            "extra region must be a region name such as 'cn-north-4'; got 'CN North 4'",
        ),
        (
            {"project_id": "0123 bad!"},
            "extra project_id must be 1 to 64 characters of letters, digits, underscores and "
            "hyphens; got '0123 bad!'",
        ),
        (
            {"instance_id": "NOT-HEX-ZZ"},
            "extra instance_id must be 1 to 36 characters of lower-case letters a-f, digits and "
            "hyphens; got 'NOT-HEX-ZZ'",
        ),
    ],
)
def test_the_test_button_names_the_field_not_the_temporary_id(
    api_server: ApiServer, values: dict[str, Any], message: str
) -> None:
    """What the form cannot check (patterns), the Test button says first, without the random
    connection ID Airflow tests under."""
    response = api_server.test_connection(**_form_body(**values))
    assert response.status_code == 200, response.text
    assert response.json() == {"status": False, "message": message}


def test_the_test_button_succeeds_against_the_simulator(
    api_server: ApiServer, simulator: IoTDASimulator
) -> None:
    body = _form_body(endpoint=simulator.url)
    response = api_server.test_connection(**body)
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["status"] is True, result
    assert result["message"].startswith(f"Credentials accepted by {simulator.url}")
    assert "connection '" not in result["message"]
    assert SK not in response.text


UPSTREAM_PORT_BUG = airflow.__version__ in ("3.3.1", "3.3.2")


def test_testing_a_saved_connection_with_the_uis_port_0(
    api_server: ApiServer, simulator: IoTDASimulator
) -> None:
    """The connection list's Test button on 3.3.1/3.3.2 posts ``port: 0`` and the masked
    password: Airflow answers 400 (apache/airflow#73298).  The README's workaround, posting the
    connection with its real password, works."""
    body = _form_body("iotda_saved_form_test", endpoint=simulator.url)
    created = api_server.client.post("/api/v2/connections", json=body)
    assert created.status_code == 201, created.text
    try:
        as_the_list_sends_it = api_server.test_connection(**{**body, "password": "***", "port": 0})
        if UPSTREAM_PORT_BUG:
            assert as_the_list_sends_it.status_code == 400
            assert "differs from the stored connection" in as_the_list_sends_it.text
        workaround = api_server.test_connection(**body)
        assert workaround.status_code == 200, workaround.text
        assert workaround.json()["status"] is True
    finally:
        api_server.client.delete("/api/v2/connections/iotda_saved_form_test")


def test_cli_connections_test_workaround(airflow_db: Path, simulator: IoTDASimulator) -> None:
    """``airflow connections test`` (the README's other workaround) on a connection as the
    form saves it."""
    conn_id = "iotda_cli_test"
    body = _form_body(conn_id, endpoint=simulator.url)
    env = {
        **os.environ,
        "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",
        f"AIRFLOW_CONN_{conn_id.upper()}": json.dumps(
            {
                "conn_type": CONN_TYPE,
                "login": AK,
                "password": SK,
                "extra": json.loads(body["extra"]),
            }
        ),
    }
    result = subprocess.run(
        [sys.executable, "-m", "airflow", "connections", "test", conn_id],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Connection success!" in result.stdout
    assert SK not in result.stdout + result.stderr
