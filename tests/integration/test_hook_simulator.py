"""``IoTDAHook`` against the local IoTDA simulator on loopback: real HTTP, real signatures."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from typing import Any

import pytest
import structlog
import structlog.testing
from iotda_test_values import endpoint_connection_json

from airflow_provider_iotda.errors import (
    IoTDAAuthError,
    IoTDAForbiddenError,
    IoTDANotFoundError,
    IoTDAServerError,
    IoTDATransportError,
)
from airflow_provider_iotda.hooks.iotda import IoTDAHook
from airflow_provider_iotda.simulator import IoTDASimulator
from airflow_provider_iotda.simulator.pytest_plugin import iotda_simulator_server  # noqa: F401

pytestmark = pytest.mark.integration

AK = "SIMINTEGRATIONAK0001"
SK = "SIM-SECRET-do-not-leak-5e1d0c"
TOKEN = "SIM-SECURITY-TOKEN-do-not-leak-c0ffee"
PROJECT = "0123456789abcdef0123456789abcdef"
INSTANCE = "3f9a2c1e-7b4d-4e8a-9c2f-5d6e7a8b9c01"
EMPTY_INSTANCE = "00aa00aa-0000-4000-8000-000000000000"
CONN_ID = "iotda_sim"


@pytest.fixture(scope="session")
def iotda_simulator_config() -> dict[str, Any]:
    """Frozen simulated clock (tests move it), fixed seed, no scenario: tests add their tasks."""
    return {"ak": AK, "sk": SK, "project_id": PROJECT, "time_factor": 0, "seed": 11}


@pytest.fixture
def sim(iotda_simulator_server: IoTDASimulator) -> IoTDASimulator:  # noqa: F811
    """The session's simulator, reset for this test (clock, tasks, faults, counters)."""
    iotda_simulator_server.reset()
    return iotda_simulator_server


def _connect(monkeypatch: pytest.MonkeyPatch, sim: IoTDASimulator, **changes: Any) -> IoTDAHook:
    """A hook on connection ``iotda_sim`` pointing at the simulator."""
    extra: dict[str, Any] = {
        "region": "cn-north-4",
        "project_id": PROJECT,
        "endpoint": sim.url,
        "instance_id": INSTANCE,
        "timeout": 5,
    }
    login = changes.pop("login", AK)
    password = changes.pop("password", SK)
    extra.update(changes)
    value = {
        "conn_type": "huaweicloud_iotda",
        "login": login,
        "password": password,
        "extra": {k: v for k, v in extra.items() if v is not None},
    }
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", json.dumps(value))
    return IoTDAHook(CONN_ID)


@pytest.fixture
def hook(monkeypatch: pytest.MonkeyPatch, sim: IoTDASimulator) -> Iterator[IoTDAHook]:
    with _connect(monkeypatch, sim) as created:
        yield created


def _add_history(sim: IoTDASimulator, count: int) -> list[str]:
    """``count`` finished tasks, one an hour apart; returns their IDs newest first."""
    ids = [
        sim.add_task(INSTANCE, "MODIFY" if i % 2 else "CREATE", created=-3600.0 * (count - i))
        for i in range(count)
    ]
    return list(reversed(ids))


# -- listing ---------------------------------------------------------------------------------------


def test_list_one_page(sim: IoTDASimulator, hook: IoTDAHook) -> None:
    ids = _add_history(sim, 3)
    running = sim.add_task(
        INSTANCE,
        "MODIFY",
        [("PENDING", 0), ("RUNNING", 5), ("SUCCESS", 20)],
        target_config={"flavor": {"type": "iotda.standard.s3", "size": 2}},
        operate_window={"start_time": "18:00", "end_time": "22:00"},
    )
    sim.advance(6)
    page = hook.list_instance_tasks()
    assert [t.task_id for t in page.tasks] == [running, *ids]
    assert page.count == 4
    assert page.marker == ids[-1]
    newest = page.tasks[0]
    assert newest.status == "RUNNING"
    assert newest.start_time is not None
    assert newest.end_time is None
    assert newest.target_config is not None
    assert newest.target_config.flavor is not None
    assert newest.target_config.flavor.type == "iotda.standard.s3"
    assert newest.operate_window is not None
    assert newest.operate_window.start_time == "18:00"
    counters = sim.counters
    assert counters.requests == 1
    assert counters.auth == {"SDK-HMAC-SHA256": 1}


def test_iterate_across_pages(sim: IoTDASimulator, hook: IoTDAHook) -> None:
    ids = _add_history(sim, 7)
    assert [t.task_id for t in hook.iter_instance_tasks(page_size=3)] == ids
    # pages of 3, 3 and a short page of 1: three requests, no page fetched twice
    assert sim.counters.requests == 3


def test_iterate_ending_on_an_empty_page(sim: IoTDASimulator, hook: IoTDAHook) -> None:
    ids = _add_history(sim, 4)
    assert [t.task_id for t in hook.iter_instance_tasks(page_size=2)] == ids
    assert sim.counters.requests == 3  # 2, 2, then an empty page


def test_list_with_offset_limit_marker(sim: IoTDASimulator, hook: IoTDAHook) -> None:
    ids = _add_history(sim, 6)
    first = hook.list_instance_tasks(limit=2)
    assert [t.task_id for t in first.tasks] == ids[:2]
    following = hook.list_instance_tasks(limit=2, marker=first.marker, offset=1)
    assert [t.task_id for t in following.tasks] == ids[3:5]


def test_get_and_find(sim: IoTDASimulator, hook: IoTDAHook) -> None:
    old_modify = sim.add_task(INSTANCE, "MODIFY", created=-7200)
    create = sim.add_task(INSTANCE, "CREATE", created=-1800)
    new_modify = sim.add_task(INSTANCE, "MODIFY", [("PENDING", 0)], created=-60)
    found = hook.get_instance_task(create)
    assert found is not None
    assert found.type == "CREATE"
    assert hook.get_instance_task("ffffffff-ffff-4fff-8fff-ffffffffffff") is None

    by_id = hook.find_instance_task(instance_task_id=old_modify)
    assert by_id is not None
    assert by_id.task_id == old_modify

    newest = hook.find_instance_task(instance_task_type="MODIFY")
    assert newest is not None
    assert newest.task_id == new_modify
    assert newest.status == "PENDING"

    # created_after is inclusive: the exact creation time of the task still finds it
    assert newest.create_time is not None
    at = hook.find_instance_task(instance_task_type="MODIFY", created_after=newest.create_time)
    assert at is not None
    assert at.task_id == new_modify
    later = newest.create_time.add(seconds=1)
    assert hook.find_instance_task(instance_task_type="MODIFY", created_after=later) is None
    window = newest.create_time.subtract(hours=1)
    assert hook.find_instance_task(instance_task_type="CREATE", created_after=window) is not None
    assert (
        hook.find_instance_task(instance_task_type="CREATE", created_after=window.add(hours=1))
        is None
    )


def test_instance_with_no_tasks(sim: IoTDASimulator, hook: IoTDAHook) -> None:
    sim.add_instance(EMPTY_INSTANCE)
    page = hook.list_instance_tasks(EMPTY_INSTANCE)
    assert page.tasks == []
    assert page.count == 0
    assert list(hook.iter_instance_tasks(EMPTY_INSTANCE)) == []


def test_one_connection_reused_for_every_call(sim: IoTDASimulator, hook: IoTDAHook) -> None:
    _add_history(sim, 5)
    hook.list_instance_tasks()
    list(hook.iter_instance_tasks(page_size=2))
    hook.find_instance_task(instance_task_type="MODIFY")
    counters = sim.counters
    assert counters.requests == 5
    assert counters.connections == 1


# -- authentication --------------------------------------------------------------------------------


def test_v11_signing_is_accepted(monkeypatch: pytest.MonkeyPatch, sim: IoTDASimulator) -> None:
    _add_history(sim, 2)
    # a loopback host is not a Huawei regional host: "auto" signs with derived credentials
    hook = _connect(monkeypatch, sim, auth="auto")
    assert hook.config.credentials.algorithm == "V11-HMAC-SHA256"
    assert len(hook.list_instance_tasks().tasks) == 2
    assert sim.counters.auth == {"V11-HMAC-SHA256": 1}


def test_security_token_is_signed_and_accepted(
    monkeypatch: pytest.MonkeyPatch, sim: IoTDASimulator
) -> None:
    sim.add_instance(INSTANCE)
    hook = _connect(monkeypatch, sim, security_token=TOKEN)
    assert hook.list_instance_tasks().tasks == []
    assert sim.counters.statuses == {"200": 1}


def test_wrong_secret_key_is_an_auth_error(
    monkeypatch: pytest.MonkeyPatch, sim: IoTDASimulator, retry_sleeps: list[float]
) -> None:
    hook = _connect(monkeypatch, sim, password="not-the-secret-key")
    with pytest.raises(IoTDAAuthError) as caught:
        hook.list_instance_tasks()
    error = caught.value
    assert error.status == 401
    assert error.error_code == "APIG.0301"
    assert error.request_id
    assert "clock" in str(error)
    assert sim.counters.requests == 1  # never retried
    assert retry_sleeps == []


def test_wrong_project_is_forbidden(monkeypatch: pytest.MonkeyPatch, sim: IoTDASimulator) -> None:
    hook = _connect(monkeypatch, sim, project_id="fedcba9876543210fedcba9876543210")
    with pytest.raises(IoTDAForbiddenError) as caught:
        hook.list_instance_tasks()
    assert caught.value.status == 403
    assert "project_id" in str(caught.value)
    assert sim.counters.requests == 1


def test_unknown_instance_is_not_found(sim: IoTDASimulator, hook: IoTDAHook) -> None:
    with pytest.raises(IoTDANotFoundError) as caught:
        hook.list_instance_tasks("0badbad0-0000-4000-8000-000000000000")
    assert caught.value.status == 404
    assert caught.value.request_id
    assert f"(request id {caught.value.request_id})" in str(caught.value)
    assert sim.counters.requests == 1


# -- retries ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "faults",
    [
        ["429"],
        ["503", "503", "503"],
        ["500"],
        ["drop", "drop"],
        ["truncated", "truncated"],
        ["malformed"],
        ["429", "drop", "truncated"],
    ],
)
def test_retries_under_injected_faults(
    sim: IoTDASimulator, hook: IoTDAHook, retry_sleeps: list[float], faults: list[str]
) -> None:
    ids = _add_history(sim, 3)
    sim.set_faults(next_faults=faults, retry_after=2)
    assert [t.task_id for t in hook.list_instance_tasks().tasks] == ids
    counters = sim.counters
    assert counters.requests == len(faults) + 1  # each fault cost exactly one retried request
    expected: dict[str, int] = {}
    for kind in faults:
        expected[kind] = expected.get(kind, 0) + 1
    assert counters.faults == expected
    assert counters.statuses.get("200", 0) == 1 + faults.count("truncated") + faults.count(
        "malformed"
    )
    assert len(retry_sleeps) == len(faults)
    for kind, wait in zip(faults, retry_sleeps, strict=True):
        if kind == "429":
            assert wait == 2.0  # Retry-After honoured
        else:
            assert 0 <= wait <= 30


def test_gives_up_after_the_retries(
    sim: IoTDASimulator, hook: IoTDAHook, retry_sleeps: list[float]
) -> None:
    sim.set_faults(next_faults=["503"] * 10)
    with pytest.raises(IoTDAServerError) as caught:
        hook.list_instance_tasks()
    assert caught.value.status == 503
    assert sim.counters.requests == 4  # 1 + 3 retries (the connection's max_retries default)
    assert len(retry_sleeps) == 3


def test_read_timeout_is_retried(
    monkeypatch: pytest.MonkeyPatch, sim: IoTDASimulator, retry_sleeps: list[float]
) -> None:
    _add_history(sim, 1)
    hook = _connect(monkeypatch, sim, timeout=0.3)
    sim.set_faults(next_faults=["slow"], slow_seconds=1)
    assert len(hook.list_instance_tasks().tasks) == 1
    assert sim.counters.requests == 2
    assert len(retry_sleeps) == 1


def test_read_timeout_without_retries(monkeypatch: pytest.MonkeyPatch, sim: IoTDASimulator) -> None:
    hook = _connect(monkeypatch, sim, timeout=0.3, max_retries=0)
    sim.set_faults(next_faults=["slow"], slow_seconds=1)
    with pytest.raises(IoTDATransportError, match=r"did not answer within 0\.3 s"):
        hook.list_instance_tasks()


# -- test_connection -------------------------------------------------------------------------------


def test_connection_ok(sim: IoTDASimulator, hook: IoTDAHook) -> None:
    _add_history(sim, 2)
    ok, message = hook.test_connection()
    assert ok is True
    assert INSTANCE in message
    assert sim.counters.requests == 1


def test_connection_without_instance(monkeypatch: pytest.MonkeyPatch, sim: IoTDASimulator) -> None:
    ok, message = _connect(monkeypatch, sim, instance_id=None).test_connection()
    assert ok is True
    assert "Credentials accepted" in message


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"password": "wrong-secret-key"}, "Credentials rejected"),
        ({"project_id": "fedcba9876543210fedcba9876543210"}, "Access denied"),
        ({"instance_id": "0badbad0-0000-4000-8000-000000000000"}, "IoTDA 404"),
        ({"instance_id": None, "password": "wrong-secret-key"}, "Credentials rejected"),
    ],
)
def test_connection_fails_clearly(
    monkeypatch: pytest.MonkeyPatch, sim: IoTDASimulator, changes: dict[str, Any], reason: str
) -> None:
    ok, message = _connect(monkeypatch, sim, **changes).test_connection()
    assert ok is False
    assert reason in message
    assert sim.counters.requests == 1


def test_connection_to_a_closed_port(monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv(
        f"AIRFLOW_CONN_{CONN_ID.upper()}",
        endpoint_connection_json(
            f"http://127.0.0.1:{port}",
            login=AK,
            password=SK,
            project_id=PROJECT,
            instance_id=INSTANCE,
        ),
    )
    ok, message = IoTDAHook(CONN_ID).test_connection()
    assert ok is False
    assert "Could not talk to IoTDA" in message


# -- secrets ---------------------------------------------------------------------------------------


def test_no_secret_in_logs_over_real_http(
    monkeypatch: pytest.MonkeyPatch,
    sim: IoTDASimulator,
    caplog: pytest.LogCaptureFixture,
    retry_sleeps: list[float],
) -> None:
    """urllib3, requests and the hook log at DEBUG; the SK, token and headers never show."""
    caplog.set_level(logging.DEBUG)
    previous = structlog.get_config()
    _add_history(sim, 2)
    errors: list[str] = []
    try:
        with structlog.testing.capture_logs() as events:
            structlog.configure(
                processors=structlog.get_config()["processors"],
                wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG),
            )
            hook = _connect(monkeypatch, sim, security_token=TOKEN)
            sim.set_faults(next_faults=["429", "drop", "truncated"])
            hook.list_instance_tasks()
            bad = _connect(monkeypatch, sim, password=SK + "x", security_token=TOKEN)
            try:
                bad.list_instance_tasks()
            except IoTDAAuthError as exc:
                errors.append(repr(exc) + str(exc))
            errors.append(str(bad.test_connection()))
    finally:
        structlog.configure(**previous)
    text = caplog.text + "\n".join(repr(e) for e in events) + "\n".join(errors)
    assert "IoTDA call failed" in text  # retries were logged
    assert "GET /v5/iot/" in caplog.text  # urllib3 logged its requests at DEBUG
    for secret in (SK, TOKEN, "SDK-HMAC-SHA256 Access=", "Signature=", "Authorization':"):
        assert secret not in text
    assert re.search(r"\d{8}T\d{6}Z", text) is None  # no X-Sdk-Date value either
