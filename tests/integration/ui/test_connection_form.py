"""The connection form as a real ``airflow api-server`` serves it, and its Test button's route.

One api-server (simple auth manager, every user an admin, connection tests enabled) runs on a
free loopback port for this module, on the test session's temporary AIRFLOW_HOME.  The form's
metadata is ``GET /ui/connections/hook_meta``; its Test button posts the form's values to
``POST /api/v2/connections/test``, which runs ``IoTDAHook.test_connection`` on a random
temporary connection ID.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import airflow
import pytest

from airflow_provider_iotda.config import CONN_TYPE, EXTRA_FIELDS
from airflow_provider_iotda.get_provider_info import CONN_FIELDS
from airflow_provider_iotda.simulator import IoTDASimulator

from .api_server import AK, PROJECT, SK, ApiServer

pytestmark = pytest.mark.integration

AIRFLOW_VERSION = tuple(int(part) for part in airflow.__version__.split(".")[:2])
#: Airflow 3.2 builds the form from ``conn-fields``; 3.1 only from hook methods.
READS_CONN_FIELDS = AIRFLOW_VERSION >= (3, 2)


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
        "placeholder": "Access Key ID; empty when Credentials source is not this connection",
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
    """3.2+ serves ``conn-fields`` as declared: required, drop-downs, suggestions; no length
    or bound the UI would enforce by correcting the value without a word."""
    extras = api_server.hook_meta()["extra_fields"]
    for name, field in CONN_FIELDS.items():
        assert extras[name]["schema"] == {**field["schema"], "title": field["label"]}, name
    assert extras["project_id"]["schema"]["type"] == "string"  # required
    for name in ("project_id", "instance_id", "max_retries", "timeout"):
        for corrector in ("maxLength", "maximum", "minimum"):
            assert corrector not in extras[name]["schema"], (name, corrector)
    assert "cn-north-4" in extras["region"]["schema"]["examples"]


# -- the Test button ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            {"region": "cn-nort-4"},
            "extra region must be a Huawei Cloud region with IoTDA (cn-north-4, ",
        ),
        (
            {"project_id": "a" * 70},
            "extra project_id must be 1 to 64 characters of letters, digits, underscores and "
            f"hyphens; got {'a' * 70!r}",
        ),
        ({"max_retries": 99}, "extra max_retries must be an integer from 0 to 10; got 99"),
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
    result = response.json()
    assert result["status"] is False
    assert result["message"].startswith(message)
    assert "connection '" not in result["message"]


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
