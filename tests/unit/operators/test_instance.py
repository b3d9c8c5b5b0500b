"""The resize and retry operators through ``execute`` (requests-mock, no DAG run): each
exactly-once rule with a fault on the POST.

The rules (operators/instance.py docstrings; README "Resizing an instance and retrying a task"):
a POST that IoTDA may have acted on (a timeout after sending, a dropped connection, a 5xx) is
never sent again, the try fails, and the next try looks before it orders; a POST that certainly
did not arrive (429, a refused connection) is sent again by the hook.  Either way IoTDA gets at
most one order that it acted on.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
import requests
import requests_mock
from iotda_test_values import TASKS_URL, TEST_ENDPOINT, TEST_INSTANCE, TEST_PROJECT, page_json
from iotda_test_values import task_json as task
from urllib3.exceptions import MaxRetryError, NewConnectionError

from airflow_provider_iotda import clock
from airflow_provider_iotda.compat import AirflowException, AirflowFailException
from airflow_provider_iotda.models import format_api_time
from airflow_provider_iotda.operators.instance import (
    IoTDAResizeInstanceOperator,
    IoTDARetryInstanceTaskOperator,
)

INSTANCE_URL = f"{TEST_ENDPOINT}/v5/iot/{TEST_PROJECT}/iotda-instances/{TEST_INSTANCE}"
RESIZE_URL = f"{INSTANCE_URL}/resize"
MODIFY_ID = "0a1b2c3d-0000-4000-8000-00000000aaaa"
OTHER_ID = "0a1b2c3d-0000-4000-8000-00000000bbbb"
RETRY_URL = f"{INSTANCE_URL}/tasks/{MODIFY_ID}/retry"
TASK_URL = f"{INSTANCE_URL}/tasks/{MODIFY_ID}"
S3 = {"type": "iotda.standard.s3", "size": 2}
ORDER = {"order_id": "CS2401011200ABCDEF"}


def _refused(url: str) -> requests.exceptions.ConnectionError:
    """What requests raises when the TCP connection cannot be opened."""
    reason = NewConnectionError(None, "Connection refused")  # type: ignore[arg-type]
    return requests.exceptions.ConnectionError(MaxRetryError(None, url, reason))  # type: ignore[arg-type]


#: Faults on the POST: (name, requests-mock answers, POSTs IoTDA receives, the try's outcome).
#: ``sent`` faults reached IoTDA (it may have acted): sent once, the try fails.
#: ``not sent`` faults are retried by the hook: the second POST works, the try succeeds.
LOST = [
    ("timeout after sending", {"exc": requests.exceptions.ReadTimeout("no answer")}),
    ("5xx", {"status_code": 503, "json": {"error_code": "IOTDA.000500", "error_msg": "busy"}}),
]
NOT_ARRIVED = [
    ("429", {"status_code": 429, "headers": {"Retry-After": "0"}, "json": {"error_msg": "slow"}}),
    ("refused connection", None),  # built per URL
]


def _answers(fault: dict[str, Any] | None, url: str, then: dict[str, Any]) -> list[Any]:
    first = fault if fault is not None else {"exc": _refused(url)}
    return [first, {"json": then}]


def _now_api() -> str:
    return format_api_time(dt.datetime.now(dt.UTC))


def modify(status: str, *, created: str | None = None, flavor: dict[str, Any] = S3) -> Any:
    return task(
        MODIFY_ID,
        status,
        create_time=created or _now_api(),
        target_config={"flavor": flavor},
        status_detail="no quota" if status == "FAILED" else None,
    )


def tasks_answer(*tasks: Any) -> dict[str, Any]:
    return {"json": page_json(list(tasks))}


def context(try_number: int = 1) -> Any:
    """Enough of the task context: the try, the DAG run's start (the adoption window)."""
    started = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    return {
        "ti": SimpleNamespace(try_number=try_number, xcom_push=lambda **kw: None),
        "dag_run": SimpleNamespace(start_date=started, run_after=started),
    }


@pytest.fixture
def mock(iotda_conn: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[requests_mock.Mocker]:
    """requests-mock on the regional endpoint; the poke-mode waits do not sleep."""
    monkeypatch.setattr(clock, "sleep_sync", lambda seconds: None)
    with requests_mock.Mocker() as mocker:
        mocker.get(
            INSTANCE_URL,
            json={
                "instance_id": TEST_INSTANCE,
                "status": "ACTIVE",
                "flavor": {"type": "iotda.standard.s1", "size": 1},
            },
        )
        yield mocker


def posts(mock: requests_mock.Mocker) -> list[str]:
    return [r.url for r in mock.request_history if r.method == "POST"]


def resize(**kwargs: Any) -> IoTDAResizeInstanceOperator:
    return IoTDAResizeInstanceOperator(
        task_id="resize", flavor_type=S3["type"], flavor_size=S3["size"], poke_interval=5, **kwargs
    )


def retry(**kwargs: Any) -> IoTDARetryInstanceTaskOperator:
    return IoTDARetryInstanceTaskOperator(
        task_id="retry", instance_task_id=MODIFY_ID, poke_interval=5, **kwargs
    )


# -- resize ---------------------------------------------------------------------------------


def test_resize_orders_once_then_waits_for_its_modify_task(mock: requests_mock.Mocker) -> None:
    mock.get(
        TASKS_URL,
        [
            tasks_answer(),
            tasks_answer(modify("RUNNING")),
            tasks_answer(modify("RUNNING")),
            tasks_answer(modify("SUCCESS")),
        ],
    )
    mock.post(RESIZE_URL, json=ORDER)
    result = resize().execute(context())
    assert result["order_id"] == ORDER["order_id"]
    assert result["task"]["status"] == "SUCCESS"
    assert posts(mock) == [RESIZE_URL]


@pytest.mark.parametrize(("name", "fault"), LOST, ids=[n for n, _ in LOST])
def test_resize_whose_answer_was_lost_is_not_sent_again(
    mock: requests_mock.Mocker, retry_sleeps: list[float], name: str, fault: dict[str, Any]
) -> None:
    """The try fails after one POST; the next try finds the MODIFY IoTDA started and adopts it,
    ordering nothing."""
    mock.get(TASKS_URL, [tasks_answer()])
    mock.post(RESIZE_URL, [fault, {"json": ORDER}])
    with pytest.raises(AirflowException, match="is not sent again"):
        resize().execute(context(try_number=1))
    assert posts(mock) == [RESIZE_URL]
    assert retry_sleeps == []  # the hook did not send it again either

    mock.get(TASKS_URL, [tasks_answer(modify("RUNNING")), tasks_answer(modify("SUCCESS"))])
    result = resize().execute(context(try_number=2))
    assert posts(mock) == [RESIZE_URL]  # still one order
    assert result["task"]["task_id"] == MODIFY_ID
    assert result["task"]["status"] == "SUCCESS"
    assert result["order_id"] is None  # this try ordered nothing


@pytest.mark.parametrize(("name", "fault"), LOST, ids=[n for n, _ in LOST])
def test_next_try_fails_with_the_adopted_modify_failure_without_ordering(
    mock: requests_mock.Mocker, name: str, fault: dict[str, Any]
) -> None:
    mock.get(TASKS_URL, [tasks_answer()])
    mock.post(RESIZE_URL, [fault, {"json": ORDER}])
    with pytest.raises(AirflowException):
        resize().execute(context(try_number=1))
    mock.get(TASKS_URL, [tasks_answer(modify("FAILED"))])
    with pytest.raises(AirflowFailException, match=r"no quota.*not ordering a second resize"):
        resize().execute(context(try_number=2))
    assert posts(mock) == [RESIZE_URL]


@pytest.mark.parametrize(("name", "fault"), NOT_ARRIVED, ids=[n for n, _ in NOT_ARRIVED])
def test_resize_that_did_not_arrive_is_sent_again_by_the_hook(
    mock: requests_mock.Mocker, retry_sleeps: list[float], name: str, fault: dict[str, Any] | None
) -> None:
    mock.get(TASKS_URL, [tasks_answer(), tasks_answer(modify("SUCCESS"))])
    mock.post(RESIZE_URL, _answers(fault, RESIZE_URL, ORDER))
    result = resize().execute(context())
    assert posts(mock) == [RESIZE_URL, RESIZE_URL]  # the first never reached IoTDA
    assert len(retry_sleeps) == 1
    assert result["order_id"] == ORDER["order_id"]
    assert result["task"]["status"] == "SUCCESS"


def test_resize_waits_for_a_running_modify_to_the_same_flavor(
    mock: requests_mock.Mocker,
) -> None:
    mock.get(TASKS_URL, [tasks_answer(modify("PENDING")), tasks_answer(modify("SUCCESS"))])
    result = resize().execute(context())
    assert posts(mock) == []
    assert result == {"instance_id": TEST_INSTANCE, "order_id": None, "task": result["task"]}
    assert result["task"]["status"] == "SUCCESS"


def test_resize_refuses_next_to_a_modify_to_another_flavor(mock: requests_mock.Mocker) -> None:
    other = modify("RUNNING", flavor={"type": "iotda.standard.s4", "size": 1})
    mock.get(TASKS_URL, [tasks_answer(other)])
    with pytest.raises(AirflowFailException, match=f"{MODIFY_ID} RUNNING"):
        resize().execute(context())
    assert posts(mock) == []


def test_resize_of_an_instance_that_has_the_flavor_orders_nothing(
    mock: requests_mock.Mocker,
) -> None:
    mock.get(INSTANCE_URL, json={"instance_id": TEST_INSTANCE, "status": "ACTIVE", "flavor": S3})
    mock.get(TASKS_URL, [tasks_answer()])
    assert resize().execute(context()) == {
        "instance_id": TEST_INSTANCE,
        "order_id": None,
        "task": None,
    }
    assert posts(mock) == []


def test_resize_poke_mode_times_out_with_the_last_task_seen(
    mock: requests_mock.Mocker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The wait in the worker is the engine's: one look per interval up to the deadline, then
    the timeout outcome (a real clock would take the timeout; this one jumps)."""
    now = [1_700_000_000.0]
    monkeypatch.setattr(clock, "now", lambda: now[0])

    def sleep(seconds: float) -> None:
        now[0] += seconds

    monkeypatch.setattr(clock, "sleep_sync", sleep)
    mock.get(TASKS_URL, [tasks_answer(modify("PENDING"))])
    with pytest.raises(AirflowException, match=r"resize timed out: .*waited 20 s"):
        resize(timeout=20).execute(context())
    looks = [r for r in mock.request_history if r.url.startswith(TASKS_URL)]
    assert len(looks) == 1 + 5  # the first look, then one at 0, 5, 10, 15 and 20 s of waiting


# -- retry ----------------------------------------------------------------------------------


def test_retry_sends_one_retry_then_waits(mock: requests_mock.Mocker) -> None:
    mock.get(TASK_URL, json=modify("FAILED"))
    mock.post(RETRY_URL, json=modify("PENDING"))
    mock.get(TASKS_URL, [tasks_answer(modify("RUNNING")), tasks_answer(modify("SUCCESS"))])
    result = retry().execute(context())
    assert posts(mock) == [RETRY_URL]
    assert result["instance_task_id"] == MODIFY_ID
    assert result["task"]["status"] == "SUCCESS"


@pytest.mark.parametrize(("name", "fault"), LOST, ids=[n for n, _ in LOST])
def test_retry_whose_answer_was_lost_is_not_sent_again(
    mock: requests_mock.Mocker, retry_sleeps: list[float], name: str, fault: dict[str, Any]
) -> None:
    """The try fails after one POST; IoTDA did act (the task is RUNNING again): the next try
    waits for it without a second retry request."""
    mock.get(TASK_URL, json=modify("FAILED"))
    mock.post(RETRY_URL, [fault, {"json": modify("PENDING")}])
    with pytest.raises(AirflowException, match="IoTDA call failed"):
        retry().execute(context(try_number=1))
    assert posts(mock) == [RETRY_URL]
    assert retry_sleeps == []

    mock.get(TASK_URL, json=modify("RUNNING"))
    mock.get(TASKS_URL, [tasks_answer(modify("SUCCESS"))])
    result = retry().execute(context(try_number=2))
    assert posts(mock) == [RETRY_URL]
    assert result["task"]["status"] == "SUCCESS"


@pytest.mark.parametrize(("name", "fault"), NOT_ARRIVED, ids=[n for n, _ in NOT_ARRIVED])
def test_retry_that_did_not_arrive_is_sent_again_by_the_hook(
    mock: requests_mock.Mocker, retry_sleeps: list[float], name: str, fault: dict[str, Any] | None
) -> None:
    mock.get(TASK_URL, json=modify("FAILED"))
    mock.post(RETRY_URL, _answers(fault, RETRY_URL, modify("PENDING")))
    mock.get(TASKS_URL, [tasks_answer(modify("SUCCESS"))])
    result = retry().execute(context())
    assert posts(mock) == [RETRY_URL, RETRY_URL]
    assert len(retry_sleeps) == 1
    assert result["task"]["status"] == "SUCCESS"


def test_retry_of_a_succeeded_task_is_done_on_a_later_try_only(
    mock: requests_mock.Mocker,
) -> None:
    mock.get(TASK_URL, json=modify("SUCCESS"))
    with pytest.raises(AirflowFailException, match="nothing to retry"):
        retry().execute(context(try_number=1))
    assert retry().execute(context(try_number=2))["task"]["status"] == "SUCCESS"
    assert posts(mock) == []


def test_retried_task_that_fails_again_fails_the_operator(mock: requests_mock.Mocker) -> None:
    mock.get(TASK_URL, json=modify("FAILED"))
    mock.post(RETRY_URL, json=modify("PENDING"))
    mock.get(TASKS_URL, [tasks_answer(modify("FAILED"))])
    with pytest.raises(AirflowFailException, match="ended FAILED: no quota"):
        retry().execute(context())
    assert posts(mock) == [RETRY_URL]
