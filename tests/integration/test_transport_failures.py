"""Failures without an answer, through the real HTTP libraries (requests and httpx) on loopback:
both hooks raise the same error with the same message (errors.error_from_transport).

No network: a host that does not resolve is a name under the reserved ``.invalid`` TLD with the
resolver replaced (``socket.getaddrinfo`` raises for it, as the system resolver does); the
other faults are sockets on 127.0.0.1 that refuse, stay silent or hang up.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from iotda_test_values import TEST_INSTANCE, endpoint_connection_json

from airflow_provider_iotda.errors import IoTDATransportError
from airflow_provider_iotda.hooks.iotda import IoTDAHook
from airflow_provider_iotda.hooks.iotda_async import IoTDAAsyncHook

pytestmark = pytest.mark.integration

UNRESOLVED_HOST = "iotda-mgmt.cn-nort-4.invalid"
FLAVORS = ["sync", "async"]


def _connect(monkeypatch: pytest.MonkeyPatch, endpoint: str, **extra: Any) -> None:
    extra = {"max_retries": 0, **extra}
    value = endpoint_connection_json(endpoint, instance_id=TEST_INSTANCE, **extra)
    monkeypatch.setenv("AIRFLOW_CONN_IOTDA_DEFAULT", value)


def _call(flavor: str, method: str = "show_instance", **kwargs: Any) -> Any:
    if flavor == "sync":
        with IoTDAHook() as hook:
            return getattr(hook, method)(**kwargs)

    async def run() -> Any:
        async with IoTDAAsyncHook() as hook:
            return await getattr(hook, method)(**kwargs)

    return asyncio.run(run())


def _failure(flavor: str, method: str = "show_instance", **kwargs: Any) -> IoTDATransportError:
    with pytest.raises(IoTDATransportError) as caught:
        _call(flavor, method, **kwargs)
    return caught.value


@pytest.fixture
def no_such_host(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The resolver fails for names under ``.invalid``; returns the names looked up."""
    real = socket.getaddrinfo
    asked: list[str] = []

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else str(host)
        if name.endswith(".invalid"):
            asked.append(name)
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return asked


@pytest.mark.parametrize("flavor", FLAVORS)
def test_a_host_that_does_not_resolve_is_named(
    monkeypatch: pytest.MonkeyPatch, no_such_host: list[str], flavor: str
) -> None:
    endpoint = f"https://{UNRESOLVED_HOST}"
    _connect(monkeypatch, endpoint)
    error = _failure(flavor)
    assert str(error) == (
        f"Could not talk to IoTDA at {endpoint}: the host name {UNRESOLVED_HOST} does not "
        "resolve (DNS); check the region or endpoint of the connection "
        "(no connection: the request was not sent)"
    )
    assert error.request_sent is False
    assert no_such_host  # the real library asked the (replaced) resolver


@pytest.mark.parametrize("flavor", FLAVORS)
def test_a_post_to_a_host_that_does_not_resolve_is_retried(
    monkeypatch: pytest.MonkeyPatch, no_such_host: list[str], flavor: str
) -> None:
    """Nothing was sent, so even a resize may be tried again (max_retries=2: 3 look-ups)."""
    _connect(monkeypatch, f"https://{UNRESOLVED_HOST}", max_retries=2)
    error = _failure(flavor, "resize_instance", flavor_type="iotda.standard.s3", flavor_size=2)
    assert "does not resolve (DNS)" in str(error)
    assert len(no_such_host) >= 3


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@pytest.mark.parametrize("flavor", FLAVORS)
def test_a_refused_connection(monkeypatch: pytest.MonkeyPatch, flavor: str) -> None:
    endpoint = f"http://127.0.0.1:{_free_port()}"
    _connect(monkeypatch, endpoint)
    error = _failure(flavor)
    assert str(error) == (
        f"Could not talk to IoTDA at {endpoint}: 127.0.0.1 refused the connection "
        "(no connection: the request was not sent)"
    )
    assert error.request_sent is False


@contextlib.contextmanager
def _server(behaviour: str) -> Iterator[str]:
    """A TCP server on loopback that reads a request, then stays ``silent`` or ``hangs_up``."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    stop = threading.Event()
    held: list[socket.socket] = []

    def serve() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.recv(65536)
            if behaviour == "hangs_up":
                conn.close()
            else:
                held.append(conn)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(5)
        listener.close()
        for conn in held:
            conn.close()


@pytest.mark.parametrize("flavor", FLAVORS)
def test_no_answer_in_time_after_sending(monkeypatch: pytest.MonkeyPatch, flavor: str) -> None:
    with _server("silent") as endpoint:
        _connect(monkeypatch, endpoint, timeout=0.3)
        error = _failure(flavor)
    assert str(error) == f"IoTDA did not answer within 0.3 s ({endpoint})"
    assert error.request_sent is True


@pytest.mark.parametrize("flavor", FLAVORS)
def test_a_connection_closed_without_an_answer(
    monkeypatch: pytest.MonkeyPatch, flavor: str
) -> None:
    with _server("hangs_up") as endpoint:
        _connect(monkeypatch, endpoint)
        error = _failure(flavor)
    assert str(error) == (
        f"Could not talk to IoTDA at {endpoint}: the connection broke before the whole answer "
        "arrived"
    )
    assert error.request_sent is True  # IoTDA may have acted on it: a POST is not repeated


def test_the_sensor_log_names_the_host_that_does_not_resolve(
    monkeypatch: pytest.MonkeyPatch, no_such_host: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    """Issue 21 item 6: a misspelt endpoint or region is visible in every poke's warning."""
    import structlog.testing

    from airflow_provider_iotda.sensors.iotda import IoTDAInstanceTaskSensor

    _connect(monkeypatch, f"https://{UNRESOLVED_HOST}")
    sensor = IoTDAInstanceTaskSensor(task_id="wait", instance_task_type="MODIFY")
    with structlog.testing.capture_logs() as events:
        assert sensor.poke({}) is False  # a poke that got no answer waits for the next one
    logged = [str(e["event"]) % tuple(e.get("positional_args", ())) for e in events]
    logged += [record.getMessage() for record in caplog.records]
    warnings = [line for line in logged if "did not answer this poke" in line]
    assert len(warnings) == 1
    assert f"the host name {UNRESOLVED_HOST} does not resolve (DNS)" in warnings[0]
