"""Unit tests of IoTDAAsyncHook: signing, parsing, sharing one client and bounding requests in
flight per event loop (scripted IoTDA behind httpx.MockTransport)."""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

import httpx
import pytest
from iotda_async_fakes import ScriptedIoTDA, shared_state
from iotda_test_values import (
    MODIFY_ID,
    TASKS_URL,
    TEST_ENDPOINT,
    TEST_INSTANCE,
    TEST_SK,
    endpoint_connection_json,
    history,
    page,
)
from iotda_test_values import pending_task as task_json

from airflow_provider_iotda.errors import IoTDAAuthError, IoTDATransportError
from airflow_provider_iotda.hooks import iotda_async
from airflow_provider_iotda.hooks.iotda_async import IoTDAAsyncHook


def test_list_sends_a_signed_request_and_parses_the_page(iotda_api: ScriptedIoTDA) -> None:
    iotda_api.script = [history("RUNNING")]

    async def call() -> Any:
        async with IoTDAAsyncHook() as hook:
            return await hook.list_instance_tasks(offset=0, limit=10, marker="ffff")

    result = asyncio.run(call())
    assert result.tasks[0].task_id == MODIFY_ID
    (request,) = iotda_api.requests
    assert str(request.url) == f"{TASKS_URL}?offset=0&limit=10&marker=ffff"
    assert request.headers["X-Project-Id"]
    assert request.headers["Authorization"].startswith("SDK-HMAC-SHA256 Access=")
    assert iotda_api.bad_signatures == 0
    assert TEST_SK not in json.dumps(dict(request.headers))


def test_find_selects_like_the_sync_hook(iotda_api: ScriptedIoTDA) -> None:
    iotda_api.script = [history("SUCCESS")]

    async def call(**kwargs: Any) -> Any:
        async with IoTDAAsyncHook() as hook:
            return await hook.find_instance_task(TEST_INSTANCE, **kwargs)

    assert asyncio.run(call(instance_task_type="MODIFY")).task_id == MODIFY_ID
    assert asyncio.run(call(instance_task_type="MODIFY", created_after="2030-01-01")) is None
    with pytest.raises(ValueError, match="instance_task_type"):
        asyncio.run(call(instance_task_type="modify"))


def test_find_follows_a_full_page(iotda_api: ScriptedIoTDA) -> None:
    first = page(
        *[task_json(f"{i:08x}-0000-4000-8000-{i:012x}", "SUCCESS") for i in range(500, 0, -1)]
    )
    first["page"]["marker"] = "00000001-0000-4000-8000-000000000001"
    iotda_api.script = [first, page(task_json("00000000-0000-4000-8000-000000000000", "FAILED"))]

    async def call() -> Any:
        async with IoTDAAsyncHook() as hook:
            return await hook.find_instance_task(
                instance_task_id="00000000-0000-4000-8000-000000000000"
            )

    assert asyncio.run(call()).status == "FAILED"
    assert "marker=00000001-0000-4000-8000-000000000001" in str(iotda_api.requests[1].url)


def test_errors_map_to_iotda_errors(iotda_api: ScriptedIoTDA, retry_sleeps: list[float]) -> None:
    async def call() -> Any:
        async with IoTDAAsyncHook() as hook:
            return await hook.list_instance_tasks()

    iotda_api.script = [httpx.Response(401, json={"error_code": "APIGW.0301", "error_msg": "x"})]
    with pytest.raises(IoTDAAuthError, match=r"APIGW\.0301"):
        asyncio.run(call())
    assert len(iotda_api.requests) == 1
    iotda_api.requests.clear()
    iotda_api.script = [httpx.ReadTimeout("slow")]
    with pytest.raises(IoTDATransportError, match="did not answer within 30 s"):
        asyncio.run(call())
    assert len(iotda_api.requests) == 4  # 1 + the connection's max_retries
    assert len(retry_sleeps) == 3


def test_secrets_are_masked_on_every_airflow_line(monkeypatch: pytest.MonkeyPatch) -> None:
    """3.3 masks through ``amask_secret``, 3.1/3.2 through the sync masker (compat)."""
    from airflow.sdk.log import redact

    # A value of this test only: the masker is process-wide, so TEST_SK may be masked already.
    secret = "SK-only-in-the-async-masking-test-4c9d"
    monkeypatch.setenv(
        "AIRFLOW_CONN_IOTDA_DEFAULT", endpoint_connection_json(TEST_ENDPOINT, password=secret)
    )
    assert redact(f"the key is {secret}") == f"the key is {secret}"
    asyncio.run(IoTDAAsyncHook().get_config())
    assert redact(f"the key is {secret}") == "the key is ***"


def test_one_client_per_loop_built_off_the_loop_and_closed_by_the_last_hook(
    iotda_api: ScriptedIoTDA,
) -> None:
    iotda_api.script = [history("PENDING")]

    async def scenario() -> list[dict[str, int]]:
        states = []
        async with IoTDAAsyncHook() as first, IoTDAAsyncHook() as second:
            await first.list_instance_tasks()
            await second.list_instance_tasks()
            states.append(shared_state())
        states.append(shared_state())
        # A later hook in the same loop gets a fresh client.
        await IoTDAAsyncHook().list_instance_tasks()
        states.append(shared_state())
        return states

    during, after, later = asyncio.run(scenario())
    assert during == {"users": 2, "clients": 1, "free_permits": iotda_async.MAX_IN_FLIGHT}
    assert after["users"] == 0
    assert later["users"] == 0
    assert len(iotda_api.clients) == 2  # one for the two hooks together, one for the later call
    assert all(client.is_closed for client in iotda_api.clients)
    main = threading.current_thread().name
    assert iotda_api.client_threads
    assert main not in iotda_api.client_threads


def test_building_the_client_imports_what_its_first_request_needs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The client is built in a worker thread; anyio's asyncio backend, which httpcore's first
    request would otherwise import on the event loop, is imported there too."""
    imported: list[str] = []
    real_import = iotda_async.importlib.import_module

    def spy(name: str, package: str | None = None) -> Any:
        imported.append(name)
        return real_import(name, package)

    monkeypatch.setattr(iotda_async.importlib, "import_module", spy)
    client = iotda_async._new_client(True)
    asyncio.run(client.aclose())
    assert "anyio._backends._asyncio" in imported


def test_clients_are_keyed_by_tls_verification(
    iotda_api: ScriptedIoTDA, monkeypatch: pytest.MonkeyPatch
) -> None:
    iotda_api.script = [history("PENDING")]
    monkeypatch.setenv(
        "AIRFLOW_CONN_IOTDA_NOVERIFY",
        endpoint_connection_json(TEST_ENDPOINT, instance_id=TEST_INSTANCE, verify=False),
    )

    async def scenario() -> dict[str, int]:
        async with IoTDAAsyncHook() as a, IoTDAAsyncHook("iotda_noverify") as b:
            await a.list_instance_tasks()
            await b.list_instance_tasks()
            await a.list_instance_tasks()
            return shared_state()

    assert asyncio.run(scenario())["clients"] == 2
    assert len(iotda_api.clients) == 2


def test_requests_in_flight_are_bounded_per_loop(
    iotda_api: ScriptedIoTDA, monkeypatch: pytest.MonkeyPatch
) -> None:
    """200 hooks polling at once: at most MAX_IN_FLIGHT requests reach httpx at a time."""
    body = json.dumps(history("PENDING")).encode()
    in_flight = 0
    peak = 0
    gate = asyncio.Event()

    async def slow_handler(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await gate.wait()  # hold every request until the controller opens the gate
        in_flight -= 1
        return httpx.Response(200, content=body)

    async def controller() -> None:
        while in_flight < iotda_async.MAX_IN_FLIGHT:
            await asyncio.sleep(0.001)
        await asyncio.sleep(0.05)  # the other 136 requests had every chance to get in
        gate.set()

    def new_client(verify: bool) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.MockTransport(slow_handler))

    monkeypatch.setattr(iotda_async, "_new_client", new_client)

    async def poll(hook: IoTDAAsyncHook) -> str:
        page = await hook.list_instance_tasks()
        return page.tasks[0].status

    async def scenario() -> list[str]:
        hooks = [IoTDAAsyncHook() for _ in range(200)]
        for hook in hooks:
            await hook.__aenter__()
        try:
            opener = asyncio.ensure_future(controller())
            statuses = await asyncio.gather(*(poll(hook) for hook in hooks))
            await opener
            return statuses
        finally:
            for hook in hooks:
                await hook.aclose()

    statuses = asyncio.run(scenario())
    assert statuses == ["PENDING"] * 200
    assert peak == iotda_async.MAX_IN_FLIGHT
    assert iotda_async.MAX_IN_FLIGHT < iotda_async.MAX_CONNECTIONS
