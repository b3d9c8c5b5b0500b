"""The connection form in a real browser: headless Chromium on Airflow's own UI, filled in as a
person would (clicks, key presses, a paste), then what Airflow stored and what Test says.

Needs Debian's ``chromium`` (``apt-get install -y chromium``); skipped, saying so, without it
(CI installs it and sets IOTDA_REQUIRE_CHROMIUM=1, where a missing browser fails instead).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import pytest

from airflow_provider_iotda import compat
from airflow_provider_iotda.config import CONN_TYPE, IoTDAConnectionConfig
from airflow_provider_iotda.simulator import IoTDASimulator

from .api_server import AK, PROJECT, SK, ApiServer
from .browser import CHROMIUM, Page, chromium_page

if CHROMIUM is None and os.environ.get("IOTDA_REQUIRE_CHROMIUM") == "1":
    raise RuntimeError("IOTDA_REQUIRE_CHROMIUM=1 but no chromium is on PATH")

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        CHROMIUM is None,
        reason="headless Chromium is not installed (Debian/Ubuntu: apt-get install -y chromium)",
    ),
]

#: The rendered form, field by field: label, help text, input and its placeholder.
FORM_ROWS_JS = """
[...document.querySelectorAll('[role=dialog] [data-scope=field][data-part=root]')].map(root => {
  const named = root.querySelector('input[name], textarea[name]');
  const label = root.querySelector('label');
  return {
    label: label ? label.innerText.replace('*', '').trim() : '',
    text: root.innerText,
    name: named ? named.name : '',
    placeholder: named ? (named.getAttribute('placeholder') || '') : '',
    value: named ? named.value : '',
  };
})
"""


#: The Extra Fields JSON editor: Monaco on Airflow 3.2+, CodeMirror on 3.1.
EDITOR = "[role=dialog] .view-lines, [role=dialog] .cm-content"

#: The labels of the fields before the extras.
STANDARD = {"Connection ID", "Connection Type", "Description", "Access Key (AK)", "Secret Key (SK)"}


@pytest.fixture
def page() -> Iterator[Page]:
    with chromium_page() as opened:
        yield opened


def _button(page: Page, text: str) -> None:
    """Click the (first visible) button that says ``text``."""
    page.evaluate(
        "(() => { const b = [...document.querySelectorAll('button')]"
        f".find(b => b.innerText.trim() === {json.dumps(text)} && b.offsetParent !== null);"
        " b.setAttribute('data-iotda-target', '1'); })()"
    )
    page.click("button[data-iotda-target='1']")
    page.evaluate(
        "document.querySelector('[data-iotda-target]').removeAttribute('data-iotda-target')"
    )


def _open_section(page: Page, suffix: str) -> None:
    page.click(f"[role=dialog] button[id$='trigger:{suffix}']")
    page.wait_for(
        f"document.querySelector(\"[role=dialog] button[id$='trigger:{suffix}']\")"
        ".getAttribute('aria-expanded') === 'true'"
    )


def _rows(page: Page) -> list[dict[str, str]]:
    return page.evaluate(FORM_ROWS_JS)  # type: ignore[no-any-return]


def _connections_page(page: Page, server: ApiServer) -> None:
    """The connection list.  The first visit logs in (the simple auth manager), which lands on
    the home page on Airflow 3.1: then go again."""
    has_add = "[...document.querySelectorAll('button')].some(b => b.innerText.includes('Add'))"
    page.goto(f"{server.url}/connections")
    try:
        page.wait_for(has_add, timeout=15)
    except TimeoutError:
        page.goto(f"{server.url}/connections")
        page.wait_for(has_add)


def _add_connection(page: Page, server: ApiServer, connection_id: str) -> None:
    _connections_page(page, server)
    _button(page, "Add Connection")
    page.wait_for("!!document.querySelector('[role=dialog] input[name=connection_id]')")
    page.type_into("[role=dialog] input[name=connection_id]", connection_id)
    page.click("[role=dialog] input[role=combobox]")
    page.send("Input.insertText", text="Huawei")
    page.wait_for(
        "[...document.querySelectorAll('[role=option]')].some(o => o.innerText.includes('IoTDA'))"
    )
    page.evaluate(
        "[...document.querySelectorAll('[role=option]')]"
        ".find(o => o.innerText.includes('IoTDA')).click()"
    )
    page.wait_for("!!document.querySelector('[role=dialog] input[name=login]')")


def _save(page: Page) -> None:
    _button(page, "Save")
    page.wait_for("!document.querySelector('[role=dialog]')")


def _test(server: ApiServer, stored: dict[str, Any]) -> dict[str, Any]:
    """What Test says of a saved connection (with its real password: the list's Test button
    posts the masked one and port 0, which 3.3.1/3.3.2 refuse, apache/airflow#73298)."""
    body = {
        **{k: stored[k] for k in ("connection_id", "conn_type", "host", "login", "extra")},
        "password": SK,
    }
    response = server.test_connection(**body)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def test_a_new_connection_keeps_what_was_typed_and_test_says_what_is_wrong(
    page: Page, api_server: ApiServer, simulator: IoTDASimulator
) -> None:
    connection_id = "iotda_browser_new"
    _add_connection(page, api_server, connection_id)

    # Beside the keys: they may stay empty with another credentials source.
    standard = {row["name"]: row for row in _rows(page)}
    for key in ("login", "password"):
        assert (
            "empty when Credentials source is not this connection" in (standard[key]["placeholder"])
        )
    page.type_into("[role=dialog] input[name=login]", AK)
    page.type_into("[role=dialog] input[name=password]", SK)

    _open_section(page, "Extra Fields")
    rows = [row for row in _rows(page) if row["label"] and row["label"] not in STANDARD]
    labels = [row["label"] for row in rows]
    assert labels[0] == "Credentials source", rows
    if compat.has_conn_fields_form():  # 3.2+: a drop-down labelled by values_display
        assert "This connection (Access Key and Secret Key fields)" in rows[0]["text"]
    else:  # 3.1 builds the form from wtforms fields: the default shown as it is stored
        assert "\nconnection\n" in rows[0]["text"]
    texts = {row["label"]: row["text"] for row in rows}
    for label in ("Region", "Endpoint URL"):
        assert "One of Region and Endpoint URL is needed" in texts[label]
    for name, text in texts.items():
        assert "above" not in text, name
        assert "AK/SK" not in text, name
        assert "[" not in text, name

    too_long = "a" * 70
    page.type_into("[role=dialog] input[name=element_project_id]", too_long)
    page.type_into("[role=dialog] input[name=element_endpoint]", simulator.url)
    page.type_into("[role=dialog] input[name=element_max_retries]", "99")
    page.press_tab()  # a number box that clamped would do it now, on losing focus
    typed = {row["name"]: row["value"] for row in _rows(page)}
    assert typed["element_project_id"] == too_long
    assert typed["element_max_retries"] == "99"
    _save(page)

    stored = api_server.stored(connection_id)
    try:
        extra = json.loads(stored["extra"])
        assert extra["project_id"] == too_long  # not cut at 64
        assert extra["max_retries"] == 99  # not clamped to 10
        result = _test(api_server, stored)
        assert result["status"] is False
        assert result["message"] == (
            "extra project_id must be 1 to 64 characters of letters, digits, underscores and "
            f"hyphens; got {too_long!r}"
        )
        with pytest.raises(ValueError, match="extra max_retries must be an integer from 0 to 10"):
            IoTDAConnectionConfig.from_values(
                access_key=AK, secret_key=SK, **{**extra, "project_id": PROJECT}
            )
    finally:
        api_server.client.delete(f"/api/v2/connections/{connection_id}")


def test_an_old_connection_moves_its_host_to_endpoint_in_the_extra_fields_json(
    page: Page, api_server: ApiServer, simulator: IoTDASimulator
) -> None:
    """Airflow's edit form shows only the extras a connection stored: an old connection (its
    endpoint in the hidden host field) has no Endpoint URL field to fill, so the Project ID
    field says where to put it, and a paste into the Extra Fields JSON does it."""
    connection_id = "iotda_browser_old"
    old_extra = {"region": "cn-north-4", "project_id": PROJECT}
    created = api_server.client.post(
        "/api/v2/connections",
        json={
            "connection_id": connection_id,
            "conn_type": CONN_TYPE,
            "host": simulator.url,
            "login": AK,
            "password": SK,
            "extra": json.dumps(old_extra),
        },
    )
    assert created.status_code == 201, created.text
    try:
        _connections_page(page, api_server)
        page.wait_for(f"document.body.innerText.includes({json.dumps(connection_id)})")
        page.evaluate(
            "[...document.querySelectorAll('tr')]"
            f".find(row => row.innerText.includes({json.dumps(connection_id)}))"
            ".querySelector(\"button[aria-label='Edit Connection']\")"
            ".setAttribute('data-iotda-edit', '1')"
        )
        page.click("button[data-iotda-edit='1']")
        page.wait_for("!!document.querySelector('[role=dialog]')")
        _open_section(page, "Extra Fields")
        rows = {row["name"]: row for row in _rows(page) if row["name"].startswith("element_")}
        assert set(rows) == {"element_region", "element_project_id"}  # no Endpoint URL field
        assert (
            '"endpoint": "its URL" to the Extra Fields JSON' in (rows["element_project_id"]["text"])
        )

        _open_section(page, "extraJson")
        page.wait_for(f"document.querySelector({EDITOR!r})?.innerText.includes('project_id')")
        page.click(EDITOR)
        page.wait_for("!!document.activeElement.closest('.monaco-editor, .cm-editor')")
        new_extra = {**old_extra, "endpoint": simulator.url}
        page.select_all()
        page.paste(json.dumps(new_extra))
        page.wait_for(f"document.querySelector({EDITOR!r}).innerText.includes('endpoint')")
        _save(page)

        stored = api_server.stored(connection_id)
        assert json.loads(stored["extra"]) == new_extra
        result = _test(api_server, stored)
        assert result["status"] is True, result
        assert result["message"].startswith(f"Credentials accepted by {simulator.url}")
    finally:
        api_server.client.delete(f"/api/v2/connections/{connection_id}")
