"""Hostile or broken answers: each gives a clear ``IoTDAError`` or a bounded number of retries,
never a hang, an endless loop or a bare ``KeyError``/``TypeError``.

Sync hook: requests-mock.  Async hook: httpx.MockTransport.  "Never answers": a real loopback
socket that accepts connections and stays silent.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
import requests_mock as requests_mock_module
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from iotda_test_values import TASK_FIELDS, TASKS_URL, page_json, task_json

from airflow_provider_iotda import api
from airflow_provider_iotda.errors import (
    IoTDAError,
    IoTDAInvalidResponseError,
    IoTDAPaginationError,
    IoTDATransportError,
)
from airflow_provider_iotda.hooks import iotda_async
from airflow_provider_iotda.hooks.iotda import IoTDAHook
from airflow_provider_iotda.hooks.iotda_async import IoTDAAsyncHook

from .support import SECRETS, TASK_ID, CountingStream, connection_json, silent_server

MAX_RETRIES = 3
ATTEMPTS = MAX_RETRIES + 1
HUGE = 30 * 1024 * 1024
HTML_PAGE = b"<!DOCTYPE html><html><body><h1>502 Bad Gateway</h1>nginx</body></html>"


@pytest.fixture
def conn(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_IOTDA_DEFAULT", connection_json(max_retries=MAX_RETRIES))


@pytest.fixture
def mock(conn: None) -> Any:
    with requests_mock_module.Mocker() as mocker:
        yield mocker


def _no_secret(error: BaseException) -> None:
    import traceback

    text = str(error) + repr(error) + "".join(traceback.format_exception(error))
    for secret in SECRETS:
        assert secret not in text


# -- bodies that are not what they should be ------------------------------------------------------

RETRIED_BODIES = {
    "not JSON": (b"this is not json", "text/plain"),
    "HTML error page with status 200": (HTML_PAGE, "text/html"),
    "empty body": (b"", "application/json"),
    "truncated JSON": (json.dumps(page_json([task_json()])).encode()[:40], "application/json"),
    "invalid UTF-8": (b'\xff\xfe\x00{"tasks": []}', "application/json"),
    "nested 100k deep": (b"[" * 100_000, "application/json"),
    "number with 5,000 digits": (b'{"tasks": [], "page": {"count": 1' + b"0" * 5000 + b"}}", None),
}


@pytest.mark.parametrize(
    ("body", "content_type"), RETRIED_BODIES.values(), ids=list(RETRIED_BODIES)
)
def test_unreadable_200_is_retried_a_bounded_number_of_times(
    mock: Any, body: bytes, content_type: str | None
) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    mock.get(TASKS_URL, content=body, headers=headers)
    with pytest.raises(IoTDAInvalidResponseError, match="not JSON") as caught:
        IoTDAHook().list_instance_tasks()
    assert caught.value.retryable
    assert caught.value.status == 200
    assert mock.call_count == ATTEMPTS
    _no_secret(caught.value)


WRONG_SHAPES: dict[str, Any] = {
    "top-level list": [],
    "top-level string": "tasks",
    "top-level number": 42,
    "null": None,
    "no tasks": {"page": {"count": 0, "marker": None}},
    "tasks is a string": {"tasks": "abc"},
    "tasks is an object": {"tasks": {"task_id": TASK_ID}},
    "task is a number": {"tasks": [1]},
    "task is null": {"tasks": [None]},
    "task is a list": {"tasks": [[TASK_ID]]},
    "task without task_id": {"tasks": [{k: v for k, v in task_json().items() if k != "task_id"}]},
    "task without type": {"tasks": [{k: v for k, v in task_json().items() if k != "type"}]},
    "task without status": {"tasks": [{k: v for k, v in task_json().items() if k != "status"}]},
    "task_id is null": {"tasks": [task_json(task_id=None)]},  # type: ignore[arg-type]
    "task_id is an object": {"tasks": [task_json(task_id={"id": 1})]},  # type: ignore[arg-type]
    "status is a list": {"tasks": [task_json(status=["SUCCESS"])]},  # type: ignore[arg-type]
    "status is a bool": {"tasks": [task_json(status=True)]},  # type: ignore[arg-type]
    "create_time is a number": {"tasks": [task_json(create_time=1714557600)]},
    "create_time is not a time": {"tasks": [task_json(create_time="yesterday")]},
    "create_time is Feb 30": {"tasks": [task_json(create_time="2024-02-30T00:00:00.000Z")]},
    "create_time is a duration": {"tasks": [task_json(create_time="P1D")]},
    "target_config is a string": {"tasks": [task_json(target_config="big")]},
    "flavor is a list": {"tasks": [task_json(target_config={"flavor": ["s3"]})]},
    "flavor size is a string": {"tasks": [task_json(target_config={"flavor": {"size": "2"}})]},
    "operate_window is a number": {"tasks": [task_json(operate_window=1800)]},
    "progress is a string": {"tasks": [task_json(progress="50%")]},
    "status_detail is an object": {"tasks": [task_json(status_detail={"why": "x"})]},
    "page is a list": {"tasks": [], "page": [1, 2]},
    "page.count is a string": {"tasks": [], "page": {"count": "3"}},
    "page.marker is an object": {"tasks": [task_json()], "page": {"marker": {"id": 1}}},
}


@pytest.mark.parametrize("body", WRONG_SHAPES.values(), ids=list(WRONG_SHAPES))
def test_json_of_the_wrong_shape_is_a_clear_final_error(mock: Any, body: Any) -> None:
    mock.get(TASKS_URL, text=json.dumps(body), headers={"Content-Type": "application/json"})
    with pytest.raises(IoTDAInvalidResponseError, match="IoTDA answer") as caught:
        IoTDAHook().list_instance_tasks()
    assert not caught.value.retryable  # repeating the request would give the same answer
    assert mock.call_count == 1
    _no_secret(caught.value)


# Any JSON value at all: the parser gives a page or IoTDAInvalidResponseError, nothing else.
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner),
    max_leaves=20,
)
FIELDS = st.sampled_from(TASK_FIELDS)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=JSON)
def test_any_json_gives_a_page_or_a_clear_error(body: Any) -> None:
    with contextlib.suppress(IoTDAInvalidResponseError):
        api.parse_tasks_response(200, {}, json.dumps(body).encode())


@settings(max_examples=300, deadline=None)
@given(changes=st.dictionaries(FIELDS, JSON, min_size=1, max_size=3), drop=st.sets(FIELDS))
def test_a_task_with_any_field_changed_or_missing_gives_a_page_or_a_clear_error(
    changes: dict[str, Any], drop: set[str]
) -> None:
    task = {k: v for k, v in {**task_json(), **changes}.items() if k not in drop}
    body = json.dumps(page_json([task])).encode()
    try:
        page = api.parse_tasks_response(200, {}, body)
    except IoTDAInvalidResponseError:
        return
    (parsed,) = page.tasks
    # What was accepted is what was sent: the ID, type and status are never made up.
    assert parsed.task_id == str(task["task_id"])
    assert parsed.type == str(task["type"])
    assert parsed.status == str(task["status"])


def test_error_status_with_an_html_body_keeps_the_status(mock: Any) -> None:
    mock.get(TASKS_URL, status_code=403, content=HTML_PAGE, headers={"Content-Type": "text/html"})
    with pytest.raises(IoTDAError, match="IoTDA 403") as caught:
        IoTDAHook().list_instance_tasks()
    assert caught.value.status == 403
    assert mock.call_count == 1


# -- a marker that never ends ---------------------------------------------------------------------


def test_a_new_marker_on_every_full_page_stops_at_the_task_cap(mock: Any) -> None:
    """A service inventing new tasks and markers for ever: bounded, then a clear error."""
    calls = {"n": 0}

    def endless(request: Any, context: Any) -> Any:
        calls["n"] += 1
        base = calls["n"] * 1000
        tasks = [task_json(f"{base + i:08x}") for i in range(500)]
        return page_json(tasks, marker=f"{base:08x}")

    mock.get(TASKS_URL, json=endless)
    with pytest.raises(IoTDAPaginationError, match="stopping at the limit"):
        list(IoTDAHook().iter_instance_tasks())
    assert mock.call_count == api.MAX_TASKS // 500


def test_the_same_tasks_under_new_markers_stop_at_the_page_cap(mock: Any) -> None:
    """Repeated tasks are returned once; the pages stop at MAX_PAGES."""
    calls = {"n": 0}

    def endless(request: Any, context: Any) -> Any:
        calls["n"] += 1
        return page_json([task_json("0a"), task_json("09")], marker=f"m{calls['n']}")

    mock.get(TASKS_URL, json=endless)
    seen: list[str] = []
    with pytest.raises(IoTDAPaginationError, match="stopping at the limit"):
        seen.extend(t.task_id for t in IoTDAHook().iter_instance_tasks(page_size=2))
    assert seen == ["0a", "09"]  # never the same task twice
    assert mock.call_count == api.MAX_PAGES


def test_a_repeated_marker_stops_at_once(mock: Any) -> None:
    mock.get(TASKS_URL, json=page_json([task_json("0b"), task_json("0a")], marker="0a"))
    with pytest.raises(IoTDAPaginationError, match="repeated page marker"):
        list(IoTDAHook().iter_instance_tasks(page_size=2))
    assert mock.call_count == 2


def test_operator_and_sensor_paths_do_not_return_duplicates(mock: Any) -> None:
    """find_instance_task (sensor) sees a listed-twice task once, so the answer stays right."""
    mock.get(
        TASKS_URL,
        [
            {"json": page_json([task_json("0c", "RUNNING"), task_json("0b")], marker="0b")},
            {"json": page_json([task_json("0b"), task_json("0a")], marker="0a")},
            {"json": page_json([])},
        ],
    )
    ids = [t.task_id for t in IoTDAHook().iter_instance_tasks(page_size=2)]
    assert ids == ["0c", "0b", "0a"]


# -- bodies of tens of MB -------------------------------------------------------------------------


def test_a_30_mb_body_is_cut_at_the_cap(mock: Any) -> None:
    stream = CountingStream(HUGE)
    mock.get(TASKS_URL, body=stream, headers={"Content-Type": "application/json"})
    with pytest.raises(IoTDAInvalidResponseError, match="exceeds the 4194304-byte limit"):
        IoTDAHook().list_instance_tasks()
    assert mock.call_count == 1  # not retried: the same request would get the same body
    assert stream.produced <= api.MAX_BODY_BYTES + 2 * 65536  # stopped reading at the cap


def test_a_declared_30_mb_body_is_refused_before_reading(mock: Any) -> None:
    stream = CountingStream(HUGE)
    mock.get(TASKS_URL, body=stream, headers={"Content-Length": str(HUGE)})
    with pytest.raises(IoTDAInvalidResponseError, match=f"answer of {HUGE} bytes"):
        IoTDAHook().list_instance_tasks()
    assert stream.produced == 0


# -- a server that accepts the connection and never answers ---------------------------------------


def _list_with_sync_hook() -> None:
    IoTDAHook().list_instance_tasks()


def _list_with_async_hook() -> None:
    async def call() -> None:
        async with IoTDAAsyncHook() as hook:
            await hook.list_instance_tasks()

    asyncio.run(asyncio.wait_for(call(), timeout=30))


@pytest.mark.parametrize(
    "list_tasks", [_list_with_sync_hook, _list_with_async_hook], ids=["sync", "async"]
)
@pytest.mark.parametrize("headers_only", [False, True], ids=["silent", "headers-then-silence"])
def test_hook_read_timeout_bounds_a_silent_server(
    monkeypatch: pytest.MonkeyPatch, headers_only: bool, list_tasks: Callable[[], None]
) -> None:
    with silent_server(headers_only=headers_only) as server:
        monkeypatch.setenv(
            "AIRFLOW_CONN_IOTDA_DEFAULT",
            connection_json(endpoint=server.url, timeout=0.3, max_retries=1),
        )
        started = time.monotonic()
        with pytest.raises(IoTDATransportError, match=r"did not answer within 0\.3 s") as caught:
            list_tasks()
        elapsed = time.monotonic() - started
    assert server.accepted >= 1
    # Two attempts of 0.3 s each (retry waits are instant in tests); a hang would hit the
    # test's timeout instead.  The bound is loose on purpose: it only tells "bounded" from "hung".
    assert elapsed < 10
    _no_secret(caught.value)


def test_trigger_against_a_silent_server_ends_with_a_timeout_event(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The trigger keeps polling through timeouts and still ends at its deadline."""
    from airflow_provider_iotda.triggers.iotda import IoTDAInstanceTaskTrigger

    with silent_server() as server:
        monkeypatch.setenv(
            "AIRFLOW_CONN_IOTDA_DEFAULT",
            connection_json(endpoint=server.url, timeout=0.2, max_retries=0),
        )
        trigger = IoTDAInstanceTaskTrigger(
            iotda_conn_id="iotda_default",
            instance_task_id=TASK_ID,
            poll_interval=0.1,
            # Room for several 0.2 s timeouts even on a loaded machine.
            deadline=time.time() + 3.0,
        )

        async def first_event() -> Any:
            async for event in trigger.run():
                return event.payload
            return None

        payload = asyncio.run(asyncio.wait_for(first_event(), timeout=30))
    assert payload["status"] == "timeout"
    assert server.accepted >= 2  # it did poll again after the first timeout


# -- the async client: same rules -----------------------------------------------------------------


def _async_transport(monkeypatch: pytest.MonkeyPatch, handler: Any) -> None:
    def new_client(verify: bool) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.MockTransport(handler), verify=verify)

    monkeypatch.setattr(iotda_async, "_new_client", new_client)


def _run_async(coro_factory: Any) -> Any:
    async def main() -> Any:
        async with IoTDAAsyncHook() as hook:
            return await coro_factory(hook)

    return asyncio.run(asyncio.wait_for(main(), timeout=30))


def test_async_hook_cuts_a_30_mb_stream_at_the_cap(
    monkeypatch: pytest.MonkeyPatch, conn: None
) -> None:
    produced = {"bytes": 0}

    async def body() -> AsyncIterator[bytes]:
        chunk = b" " * 65536
        while produced["bytes"] < HUGE:
            produced["bytes"] += len(chunk)
            yield chunk

    _async_transport(monkeypatch, lambda request: httpx.Response(200, content=body()))
    with pytest.raises(IoTDAInvalidResponseError, match="exceeds the 4194304-byte limit"):
        _run_async(lambda hook: hook.list_instance_tasks())
    assert produced["bytes"] <= api.MAX_BODY_BYTES + 2 * 65536


@pytest.mark.parametrize(
    "body", [RETRIED_BODIES["HTML error page with status 200"][0], b"not json"], ids=str
)
def test_async_hook_retries_an_unreadable_200_a_bounded_number_of_times(
    monkeypatch: pytest.MonkeyPatch, conn: None, body: bytes
) -> None:
    calls = {"n": 0}

    def handler(request: httpx.Request) -> httpx.Response:
        calls["n"] += 1
        return httpx.Response(200, content=body)

    _async_transport(monkeypatch, handler)
    with pytest.raises(IoTDAInvalidResponseError, match="not JSON"):
        _run_async(lambda hook: hook.list_instance_tasks())
    assert calls["n"] == ATTEMPTS


@pytest.mark.parametrize("body", list(WRONG_SHAPES.values())[:12], ids=list(WRONG_SHAPES)[:12])
def test_async_hook_gives_the_same_clear_error_for_wrong_shapes(
    monkeypatch: pytest.MonkeyPatch, conn: None, body: Any
) -> None:
    _async_transport(
        monkeypatch, lambda request: httpx.Response(200, content=json.dumps(body).encode())
    )
    with pytest.raises(IoTDAInvalidResponseError, match="IoTDA answer"):
        _run_async(lambda hook: hook.list_instance_tasks())


def test_async_hook_stops_following_a_marker_that_never_ends(
    monkeypatch: pytest.MonkeyPatch, conn: None
) -> None:
    calls = {"n": 0}

    def handler(request: httpx.Request) -> httpx.Response:
        calls["n"] += 1
        base = calls["n"] * 1000
        tasks = [task_json(f"{base + i:08x}") for i in range(500)]
        return httpx.Response(200, json=page_json(tasks, marker=f"{base:08x}"))

    _async_transport(monkeypatch, handler)
    with pytest.raises(IoTDAPaginationError, match="still had more"):
        _run_async(lambda hook: hook.find_instance_task(instance_task_id="0a"))
    assert calls["n"] == api.MAX_TASKS // 500  # stops at the task cap


# -- a server that trickles a byte at a time -----------------------------------------------------


def test_async_hook_bounds_a_trickling_server(monkeypatch: pytest.MonkeyPatch) -> None:
    """One byte every 0.1 s never trips a 0.3 s read timeout; the body deadline (2 x 0.3 s) does."""

    async def call() -> None:
        async with IoTDAAsyncHook() as hook:
            await hook.list_instance_tasks()

    with silent_server(trickle=0.1) as server:
        monkeypatch.setenv(
            "AIRFLOW_CONN_IOTDA_DEFAULT",
            connection_json(endpoint=server.url, timeout=0.3, max_retries=0),
        )
        started = time.monotonic()
        with pytest.raises(IoTDATransportError, match=r"whole answer within 0\.6 s"):
            asyncio.run(asyncio.wait_for(call(), timeout=30))
        elapsed = time.monotonic() - started
    assert elapsed < 5


def test_sync_hook_bounds_a_trickling_server(monkeypatch: pytest.MonkeyPatch) -> None:
    outcome: list[BaseException] = []

    def call() -> None:
        try:
            IoTDAHook().list_instance_tasks()
        except BaseException as exc:  # recorded for the assertion below
            outcome.append(exc)

    with silent_server(trickle=0.1) as server:
        monkeypatch.setenv(
            "AIRFLOW_CONN_IOTDA_DEFAULT",
            connection_json(endpoint=server.url, timeout=0.3, max_retries=0),
        )
        worker = threading.Thread(target=call, daemon=True)
        worker.start()
        # The body deadline is 0.6 s; a trickle of 0.1 s a byte would go on for minutes.
        worker.join(8)
        finished = not worker.is_alive()
    worker.join(10)  # the server is gone: the call ends now, one way or another
    assert finished, "the call was still reading after 8 s"
    assert isinstance(outcome[0], IoTDATransportError)
    assert "whole answer within 0.6 s" in str(outcome[0])
