"""The transport seam (airflow_provider_iotda/transport.py): the conversation of one call without
I/O, and the same behaviour from the sync and the async hook, which only send differently.

Tests taking ``either_hook`` run twice: on ``IoTDAHook`` (requests) and on ``IoTDAAsyncHook``
(httpx), against the same script of answers and faults.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import inspect
import json
from typing import Any

import pytest
from iotda_test_values import (
    TASKS_URL,
    TEST_ENDPOINT,
    TEST_INSTANCE,
    TEST_PROJECT,
    TEST_SK,
    page,
    task_json,
)

from airflow_provider_iotda import api, transport
from airflow_provider_iotda.auth import parse_sdk_date
from airflow_provider_iotda.clock import ClockOffset
from airflow_provider_iotda.errors import (
    IoTDAAuthError,
    IoTDABadRequestError,
    IoTDAError,
    IoTDAServerError,
    IoTDATransportError,
)
from airflow_provider_iotda.hooks.iotda import IoTDAHook
from airflow_provider_iotda.hooks.iotda_async import IoTDAAsyncHook
from airflow_provider_iotda.retry import RetryPolicy

from .hook_doubles import HookDouble, Reply
from .unit_support import CapturedLogs

INSTANCES_URL = f"{TEST_ENDPOINT}/v5/iot/{TEST_PROJECT}/iotda-instances"
INSTANCE_URL = f"{INSTANCES_URL}/{TEST_INSTANCE}"
TASK_ID = "0a1b2c3d-0000-4000-8000-00000000aaaa"
HOST = "iotda-mgmt.cn-north-4.myhuaweicloud.com"
RESIZE = {"flavor_type": "iotda.standard.s3", "flavor_size": 2}


def _instance(instance_id: str = TEST_INSTANCE, **fields: Any) -> dict[str, Any]:
    return {"instance_id": instance_id, "status": "ACTIVE", "name": "east", **fields}


def _error(status: int, code: str = "IOTDA.000006", **headers: str) -> Reply:
    return Reply(status, {"error_code": code, "error_msg": "refused by the test"}, headers=headers)


# -- the same calls --------------------------------------------------------------------------

#: Public methods of the sync hook that are about its own client or the connection form.
_SYNC_ONLY = {
    "get_conn",
    "close",
    "test_connection",
    "get_ui_field_behaviour",
    "get_connection_form_widgets",
}


def _api_methods(cls: type) -> dict[str, inspect.Signature]:
    return {
        name: inspect.signature(member)
        for name, member in vars(cls).items()
        if inspect.isfunction(member) and not name.startswith("_") and name not in _SYNC_ONLY
    }


def test_the_async_hook_offers_every_call_of_the_sync_hook_with_the_same_parameters() -> None:
    sync_calls = _api_methods(IoTDAHook)
    async_calls = _api_methods(IoTDAAsyncHook)
    assert {"resize_instance", "retry_instance_task", "list_instances"} <= set(sync_calls)
    missing = sorted(set(sync_calls) - set(async_calls))
    assert missing == []
    for name, signature in sync_calls.items():
        assert list(async_calls[name].parameters.values()) == list(signature.parameters.values()), (
            name
        )


CALLS: list[tuple[str, tuple[Any, ...], dict[str, Any], Reply, str, str, Any]] = [
    # (method, args, kwargs, answer, HTTP method, URL, what the call returns, summarised)
    (
        "list_instance_tasks",
        (),
        {"offset": 0, "limit": 10, "marker": "ff"},
        Reply(body=page(task_json("aa01"))),
        "GET",
        f"{TASKS_URL}?offset=0&limit=10&marker=ff",
        ["aa01"],
    ),
    (
        "iter_instance_tasks",
        (),
        {},
        Reply(body=page(task_json("aa02"), task_json("aa01"))),
        "GET",
        TASKS_URL,
        ["aa02", "aa01"],
    ),
    (
        "get_instance_task",
        ("aa01",),
        {},
        Reply(body=page(task_json("aa02"), task_json("aa01"))),
        "GET",
        TASKS_URL,
        "aa01",
    ),
    (
        "find_instance_task",
        (),
        {"instance_task_type": "CREATE"},
        Reply(body=page(task_json("aa02"), task_json("aa01", type="CREATE"))),
        "GET",
        TASKS_URL,
        "aa01",
    ),
    (
        "show_instance_task",
        (TASK_ID,),
        {},
        Reply(body=task_json(TASK_ID, "RUNNING", progress=40)),
        "GET",
        f"{INSTANCE_URL}/tasks/{TASK_ID}",
        TASK_ID,
    ),
    (
        "retry_instance_task",
        (TASK_ID,),
        {},
        Reply(body=task_json(TASK_ID, "PENDING", progress=0)),
        "POST",
        f"{INSTANCE_URL}/tasks/{TASK_ID}/retry",
        TASK_ID,
    ),
    (
        "resize_instance",
        (),
        {**RESIZE, "delay": True},
        Reply(body={"order_id": "CS2401"}),
        "POST",
        f"{INSTANCE_URL}/resize",
        "CS2401",
    ),
    ("show_instance", (), {}, Reply(body=_instance()), "GET", INSTANCE_URL, TEST_INSTANCE),
    (
        "list_instances",
        (),
        {"limit": 10},
        Reply(body={"count": 1, "marker": None, "instances": [_instance("aa")]}),
        "GET",
        f"{INSTANCES_URL}?limit=10",
        ["aa"],
    ),
    (
        "iter_instances",
        (),
        {},
        Reply(body={"count": 2, "instances": [_instance("bb"), _instance("aa")]}),
        "GET",
        INSTANCES_URL,
        ["bb", "aa"],
    ),
]


def _summary(result: Any) -> Any:
    """IDs of what a call returned (tasks, instances, pages, lists of them), or the value."""
    if isinstance(result, list):
        return [_summary(item) for item in result]
    for attribute in ("tasks", "instances"):
        if hasattr(result, attribute):
            return _summary(list(getattr(result, attribute)))
    for attribute in ("task_id", "instance_id"):
        if hasattr(result, attribute):
            return getattr(result, attribute)
    return result


@pytest.mark.parametrize(
    ("name", "args", "kwargs", "answer", "method", "url", "expected"),
    CALLS,
    ids=[c[0] for c in CALLS],
)
def test_each_call_sends_the_same_signed_request_on_both_hooks(
    either_hook: HookDouble,
    name: str,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    answer: Reply,
    method: str,
    url: str,
    expected: Any,
) -> None:
    either_hook.script = [answer]
    assert _summary(either_hook.call(name, *args, **kwargs)) == expected
    (sent,) = either_hook.sent
    assert (sent.method, sent.url, sent.signed) == (method, url, True)
    if name == "resize_instance":
        assert json.loads(sent.body) == {
            "flavor": {"type": "iotda.standard.s3", "size": 2},
            "delay": True,
            "is_auto_pay": False,
        }
    else:
        assert sent.body == b""


@pytest.mark.parametrize(
    ("name", "args", "kwargs", "field"),
    [
        ("resize_instance", (), {**RESIZE, "flavor_size": 0}, "flavor_size"),
        ("resize_instance", ("ABC",), RESIZE, "instance_id"),
        ("retry_instance_task", ("0a/../b",), {}, "instance_task_id"),
        ("list_instances", (), {"limit": 501}, "limit"),
        ("get_instance_task", ("0a", "not an id"), {}, "instance_id"),
    ],
)
def test_bad_input_is_refused_before_sending_on_both_hooks(
    either_hook: HookDouble, name: str, args: tuple[Any, ...], kwargs: dict[str, Any], field: str
) -> None:
    either_hook.script = [Reply(body={})]
    with pytest.raises(ValueError, match=field):
        either_hook.call(name, *args, **kwargs)
    assert either_hook.sent == []


# -- the same errors ---------------------------------------------------------------------------

NOT_SENT = "(no connection: the request was not sent)"
FAULT_MESSAGES = {
    "refused": (
        f"Could not talk to IoTDA at {TEST_ENDPOINT}: {HOST} refused the connection {NOT_SENT}"
    ),
    "dns": (
        f"Could not talk to IoTDA at {TEST_ENDPOINT}: the host name {HOST} does not resolve (DNS);"
        f" check the region or endpoint of the connection {NOT_SENT}"
    ),
    "unreachable": (
        f"Could not talk to IoTDA at {TEST_ENDPOINT}: Network is unreachable {NOT_SENT}"
    ),
    "connect_timeout": (
        f"Could not talk to IoTDA at {TEST_ENDPOINT}: no connection within 10 s {NOT_SENT}"
    ),
    "read_timeout": f"IoTDA did not answer within 30 s ({TEST_ENDPOINT})",
    "dropped": f"Could not talk to IoTDA at {TEST_ENDPOINT}: Connection reset by peer",
}


@pytest.mark.parametrize(
    ("fault", "request_sent"),
    [
        ("refused", False),
        ("dns", False),
        ("unreachable", False),
        ("connect_timeout", False),
        ("read_timeout", True),
        ("dropped", True),
    ],
)
def test_a_fault_is_the_same_error_with_the_same_message_on_both_hooks(
    either_hook: HookDouble, retry_sleeps: list[float], fault: str, request_sent: bool
) -> None:
    either_hook.script = [fault]
    with pytest.raises(IoTDATransportError) as caught:
        either_hook.call("show_instance")
    assert str(caught.value) == FAULT_MESSAGES[fault]
    assert caught.value.request_sent is request_sent
    assert len(either_hook.sent) == 4  # a GET: 1 + the connection's max_retries (3)
    assert len(retry_sleeps) == 3
    assert "[" not in str(caught.value)  # Airflow's CLI would eat it as markup


@pytest.mark.parametrize(
    ("first", "sends", "error"),
    [
        ("refused", 2, None),  # never left: sent again
        ("dns", 2, None),
        ("unreachable", 2, None),
        ("connect_timeout", 2, None),
        (_error(429, "APIG.0308"), 2, None),  # refused by the gateway: sent again
        ("read_timeout", 1, IoTDATransportError),  # IoTDA may have acted: never twice
        ("dropped", 1, IoTDATransportError),
        (_error(500), 1, IoTDAServerError),
        (Reply(200, text='{"order_id": "CS'), 1, IoTDAError),
        (_error(400), 1, IoTDABadRequestError),
    ],
)
@pytest.mark.parametrize("call", ["resize_instance", "retry_instance_task"])
def test_a_post_is_sent_again_only_when_it_never_reached_iotda_on_both_hooks(
    either_hook: HookDouble,
    call: str,
    first: Reply | str,
    sends: int,
    error: type[IoTDAError] | None,
) -> None:
    answer = {"order_id": "CS1"} if call == "resize_instance" else task_json(TASK_ID)
    either_hook.script = [first, Reply(body=answer)]
    args: tuple[Any, ...] = () if call == "resize_instance" else (TASK_ID,)
    kwargs = RESIZE if call == "resize_instance" else {}
    if error is None:
        assert _summary(either_hook.call(call, *args, **kwargs)) in ("CS1", TASK_ID)
    else:
        with pytest.raises(error):
            either_hook.call(call, *args, **kwargs)
    assert len(either_hook.sent) == sends
    assert all(sent.method == "POST" and sent.signed for sent in either_hook.sent)


def test_retry_after_is_honoured_and_each_retry_logged_once_on_both_hooks(
    either_hook: HookDouble, retry_sleeps: list[float], logs: CapturedLogs
) -> None:
    either_hook.script = [
        _error(429, "APIG.0308", **{"Retry-After": "7"}),
        _error(503, "IOTDA.000500"),
        Reply(body=_instance()),
    ]
    assert either_hook.call("show_instance").instance_id == TEST_INSTANCE
    assert len(retry_sleeps) == 2
    assert retry_sleeps[0] == 7.0
    assert 0 <= retry_sleeps[1] <= 1.0  # the second retry's backoff ceiling: 0.5 * 2
    warnings = [m for m in logs.messages("warning") if "retrying" in m]
    assert [w.split(":")[0] for w in warnings] == [
        "IoTDA call failed (attempt 1)",
        "IoTDA call failed (attempt 2)",
    ]
    assert "IoTDA 503 IOTDA.000500" in warnings[1]
    assert TEST_SK not in logs.text()


def test_a_clock_far_off_is_learnt_from_a_401_on_both_hooks(
    either_hook: HookDouble, retry_sleeps: list[float], logs: CapturedLogs
) -> None:
    server_now = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=40)
    date = email.utils.format_datetime(server_now, usegmt=True)
    either_hook.script = [
        _error(401, "APIG.0301", Date=date),
        Reply(body=_instance()),
    ]
    assert either_hook.call("show_instance").instance_id == TEST_INSTANCE
    assert len(either_hook.sent) == 2
    assert retry_sleeps == []  # signed again at once, within the same attempt
    assert any("clock of this machine" in m for m in logs.messages("warning"))


def test_a_401_without_a_clock_hint_is_final_on_both_hooks(either_hook: HookDouble) -> None:
    either_hook.script = [_error(401, "APIG.0301"), Reply(body=_instance())]
    with pytest.raises(IoTDAAuthError, match="clock"):
        either_hook.call("show_instance")
    assert len(either_hook.sent) == 1


# -- the conversation itself (no hook, no I/O) --------------------------------------------------


def _answer(status: int, body: Any, **headers: str) -> api.Answer:
    return api.Answer(status, headers, json.dumps(body).encode())


def _show_call() -> api.Call[Any]:
    return api.show_instance_call(TEST_ENDPOINT, TEST_PROJECT, TEST_INSTANCE)


def _resize_call() -> api.Call[Any]:
    return api.resize_call(TEST_ENDPOINT, TEST_PROJECT, TEST_INSTANCE, **RESIZE)


def test_the_conversation_of_a_get_that_fails_once() -> None:
    steps = transport.conversation(_show_call(), RetryPolicy(max_retries=2), ClockOffset())
    assert next(steps) is transport.SEND
    note = steps.send(_answer(503, {"error_code": "X.1", "error_msg": "busy"}))
    assert isinstance(note, transport.Note)
    assert (note.message % note.args).startswith("IoTDA call failed (attempt 1): IoTDA 503 X.1")
    wait = next(steps)
    assert isinstance(wait, transport.Wait)
    assert 0 <= wait.seconds <= 0.5
    assert next(steps) is transport.SEND
    with pytest.raises(StopIteration) as done:
        steps.send(_answer(200, _instance()))
    assert done.value.value.instance_id == TEST_INSTANCE


def test_the_conversation_stops_after_max_retries() -> None:
    steps = transport.conversation(_show_call(), RetryPolicy(max_retries=1), ClockOffset())
    kinds = [type(next(steps)).__name__]
    failure = IoTDATransportError("no answer")
    kinds += [type(steps.throw(failure)).__name__, type(next(steps)).__name__]
    kinds.append(type(next(steps)).__name__)
    assert kinds == ["NoneType", "Note", "Wait", "NoneType"]
    with pytest.raises(IoTDATransportError, match="no answer"):
        steps.throw(failure)


def test_the_conversation_never_repeats_a_post_that_may_have_arrived() -> None:
    steps = transport.conversation(_resize_call(), RetryPolicy(max_retries=5), ClockOffset())
    assert next(steps) is transport.SEND
    with pytest.raises(IoTDATransportError):
        steps.throw(IoTDATransportError("timeout", request_sent=True))


def test_the_conversation_signs_again_after_learning_the_clock() -> None:
    clock = ClockOffset(lambda: dt.datetime(2024, 1, 1, 12, 0, tzinfo=dt.UTC))
    steps = transport.conversation(_show_call(), RetryPolicy(max_retries=0), clock, "iotda_x")
    assert next(steps) is transport.SEND
    rejected = _answer(401, {"error_code": "APIG.0301"}, Date="Mon, 01 Jan 2024 12:30:00 GMT")
    note = steps.send(rejected)
    assert isinstance(note, transport.Note)
    assert "30 min 0 s behind" in note.message % note.args
    assert "'iotda_x'" in note.message % note.args
    assert next(steps) is transport.SEND  # no wait: the same attempt, signed with the new time
    assert clock.signing_time() == dt.datetime(2024, 1, 1, 12, 30, tzinfo=dt.UTC)
    with pytest.raises(StopIteration):
        steps.send(_answer(200, _instance()))


def test_the_corrected_time_is_what_both_hooks_sign_with(either_hook: HookDouble) -> None:
    """After a 401 teaching a clock 2 hours ahead, X-Sdk-Date is the service's time."""
    server_now = dt.datetime.now(dt.UTC) + dt.timedelta(hours=2)
    either_hook.script = [
        _error(401, "APIG.0301", Date=email.utils.format_datetime(server_now, usegmt=True)),
        Reply(body=_instance()),
    ]
    either_hook.call("show_instance")
    first, second = (parse_sdk_date(s.sdk_date) for s in either_hook.sent)
    assert abs((second - first).total_seconds() - 7200) < 60
