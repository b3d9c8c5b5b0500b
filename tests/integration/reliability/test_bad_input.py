"""Bad input, table-driven, over every parameter of the hook (and its connection), the sensor,
the trigger and the operator: out of range, wrong type, empty, ``../``, ``%2F``, ``?``, ``#``,
newline, non-ASCII.  Each gets a ``ValueError`` naming the field, and the simulator, which the
connection points at, sees no request at all.

Deliberate exceptions (documented in docs/reliability.md): an empty ``instance_id`` means "the
connection's instance"; an empty ``created_after`` means "no bound"; a connection ID may hold
any character Airflow allows in one (``../x`` and ``é`` are valid IDs of missing connections).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from iotda_test_values import TEST_AK, TEST_INSTANCE, TEST_PROJECT, TEST_SK

from airflow_provider_iotda.hooks.iotda import IoTDAHook
from airflow_provider_iotda.simulator import IoTDASimulator

from .support import TASK_ID, connection_json

pytestmark = pytest.mark.integration

#: What a path or query parameter must never let through.
HOSTILE = ["../x", "a/../b", "a%2Fb", "a?b=1", "a#b", "a\nb", "ab\r\n", "é", "a b", "\x00"]
WRONG_TYPES: list[Any] = [5, 1.5, True, ["0a"], {"id": "0a"}, b"0a"]


@pytest.fixture(scope="module")
def quiet_simulator() -> Iterator[IoTDASimulator]:
    with IoTDASimulator(ak=TEST_AK, sk=TEST_SK, project_id=TEST_PROJECT, time_factor=0) as sim:
        sim.add_task(TEST_INSTANCE, "MODIFY", [("SUCCESS", 0)], task_id=TASK_ID)
        yield sim


@pytest.fixture
def sim(
    quiet_simulator: IoTDASimulator, monkeypatch: pytest.MonkeyPatch
) -> Iterator[IoTDASimulator]:
    """The simulator, with ``iotda_default`` pointing at it; it must see no request."""
    quiet_simulator.reset()
    quiet_simulator.add_task(TEST_INSTANCE, "MODIFY", [("SUCCESS", 0)], task_id=TASK_ID)
    monkeypatch.setenv("AIRFLOW_CONN_IOTDA_DEFAULT", connection_json(endpoint=quiet_simulator.url))
    yield quiet_simulator
    counters = quiet_simulator.counters
    assert counters.requests == 0, counters
    assert counters.connections == 0, counters


def _cases(field: str, values: list[Any]) -> list[Any]:
    return [pytest.param(field, v, id=f"{field}={v!r}"[:60]) for v in values]


def _rejects(call: Callable[[], Any], field: str) -> None:
    with pytest.raises(ValueError, match=field.replace("(", r"\(")) as caught:
        call()
    text = str(caught.value)
    assert TEST_SK not in text


# -- the hook -------------------------------------------------------------------------------------

BAD_INSTANCE = [*HOSTILE, "x" * 37, "ABCDEF", "6B6F5C3E", *WRONG_TYPES]
BAD_TASK_ID = [*HOSTILE, "0" * 65, "ABC", *WRONG_TYPES, ""]
HOOK_CALLS: dict[str, Callable[[IoTDAHook, Any], Any]] = {
    "instance_id": lambda hook, v: hook.list_instance_tasks(v),
    "offset": lambda hook, v: hook.list_instance_tasks(offset=v),
    "limit": lambda hook, v: hook.list_instance_tasks(limit=v),
    "marker": lambda hook, v: hook.list_instance_tasks(marker=v),
    "page_size": lambda hook, v: list(hook.iter_instance_tasks(page_size=v)),
    "instance_task_id": lambda hook, v: hook.get_instance_task(v),
    "instance_task_type": lambda hook, v: hook.find_instance_task(instance_task_type=v),
    "created_after": lambda hook, v: hook.find_instance_task(
        instance_task_type="MODIFY", created_after=v
    ),
}
HOOK_CASES = [
    *_cases("instance_id", BAD_INSTANCE),
    *_cases("offset", [-1, 501, 10**9, 1.5, "1.5", "x", "../x", True, [0]]),
    *_cases("limit", [0, -1, 501, 2.0, "x", "%2F", True, [1]]),
    *_cases("marker", [*HOSTILE, "", "x" * 129, 1.5, True, ["a"]]),
    *_cases("page_size", [0, 501, "x", 1.5, True]),
    *_cases("instance_task_id", BAD_TASK_ID),
    *_cases("instance_task_type", [*HOSTILE, "modify", "MODIFY\n", " MODIFY", 5, ["MODIFY"]]),
    *_cases("created_after", ["yesterday", "2024-13-01", "../x", "2024-01-01\n#", 5, [2024]]),
]


@pytest.mark.parametrize(("field", "value"), HOOK_CASES)
def test_hook_rejects_bad_call_arguments(sim: IoTDASimulator, field: str, value: Any) -> None:
    hook = IoTDAHook()
    _rejects(lambda: HOOK_CALLS[field](hook, value), field)


@pytest.mark.parametrize("value", ["", " ", "a\nb", "a b", 5, None, ["iotda_default"]], ids=repr)
def test_hook_rejects_a_bad_connection_id(sim: IoTDASimulator, value: Any) -> None:
    _rejects(lambda: IoTDAHook(value), "iotda_conn_id")


def test_hook_rejects_a_retry_policy_of_the_wrong_type(sim: IoTDASimulator) -> None:
    _rejects(lambda: IoTDAHook(retry_policy=3), "retry_policy")  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [{"endpoint": "http://x"}, "iotda_default", 3], ids=repr)
def test_hook_rejects_a_config_of_the_wrong_type(sim: IoTDASimulator, value: Any) -> None:
    _rejects(lambda: IoTDAHook(config=value), "config")


def test_exactly_one_of_task_id_and_type(sim: IoTDASimulator) -> None:
    hook = IoTDAHook()
    _rejects(
        lambda: hook.find_instance_task(instance_task_id=TASK_ID, instance_task_type="MODIFY"),
        "exactly one",
    )


def test_no_instance_anywhere_is_named(
    sim: IoTDASimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_IOTDA_DEFAULT", connection_json(endpoint=sim.url, instance_id=None)
    )
    _rejects(lambda: IoTDAHook().list_instance_tasks(""), "instance_id is required")


CONNECTION_CASES = [
    *[pytest.param({"region": v}, "extra region", id=f"region={v!r}") for v in HOSTILE[:8]],
    *[
        pytest.param({"project_id": v}, "extra project_id", id=f"project_id={v!r}")
        for v in [*HOSTILE, "x" * 65, 5]
    ],
    *[
        pytest.param({"endpoint": v}, "endpoint", id=f"endpoint={v!r}")
        for v in [
            "ftp://127.0.0.1",
            "http://127.0.0.1/../x",
            "http://127.0.0.1/a%2Fb",
            "http://127.0.0.1?x=1",
            "http://127.0.0.1#f",
            "http://127.0.0.1:99999",
            "http://",
        ]
    ],
    *[
        pytest.param({"instance_id": v}, "extra instance_id", id=f"instance_id={v!r}")
        for v in [*HOSTILE, "x" * 37, 5]
    ],
    *[pytest.param({"auth": v}, "extra auth", id=f"auth={v!r}") for v in ["basic", "AKSK", 5]],
    *[
        pytest.param({"timeout": v}, "extra timeout", id=f"timeout={v!r}")
        for v in [0, -1, "x", "nan", "inf", True, [1]]
    ],
    *[
        pytest.param({"verify": v}, "extra verify", id=f"verify={v!r}")
        for v in ["maybe", 2, "../x", [True]]
    ],
    *[
        pytest.param({"max_retries": v}, "extra max_retries", id=f"max_retries={v!r}")
        for v in [-1, 11, 1.5, "x", True]
    ],
    pytest.param({"sk": "x"}, "unknown extra", id="unknown extra"),
    pytest.param({"login": ""}, "login", id="empty login"),
    pytest.param({"password": ""}, "password", id="empty password"),
    pytest.param({"project_id": ""}, "project_id", id="empty project_id"),
]


@pytest.mark.parametrize(("changes", "field"), CONNECTION_CASES)
def test_hook_rejects_bad_connection_fields(
    sim: IoTDASimulator, monkeypatch: pytest.MonkeyPatch, changes: dict[str, Any], field: str
) -> None:
    extra = {"endpoint": sim.url, **changes}
    login = extra.pop("login", TEST_AK)
    password = extra.pop("password", TEST_SK)
    if "region" in changes:
        extra["endpoint"] = None  # the region makes the endpoint
    monkeypatch.setenv(
        "AIRFLOW_CONN_IOTDA_DEFAULT", connection_json(login=login, password=password, **extra)
    )
    _rejects(lambda: IoTDAHook().list_instance_tasks(), field)


# -- the sensor -----------------------------------------------------------------------------------


def _sensor(**kwargs: Any) -> Any:
    from airflow_provider_iotda.sensors.iotda import IoTDAInstanceTaskSensor

    kwargs.setdefault("task_id", "wait")
    if "instance_task_type" not in kwargs:
        kwargs.setdefault("instance_task_id", TASK_ID)
    return IoTDAInstanceTaskSensor(**kwargs)


SENSOR_CASES = [
    *_cases("instance_id", [*HOSTILE, "x" * 37, "ABC"]),
    *_cases("instance_task_id", [*HOSTILE, "0" * 65, "ABC"]),
    *_cases("instance_task_type", [*HOSTILE, "modify", "MODIFY\n"]),
    *_cases("created_after", ["yesterday", "2024-13-01", "../x", "a\nb"]),
    *_cases("success_statuses", [[], ["done"], ["SUCCESS", "a\nb"], "../x", 5]),
    *_cases("failure_statuses", [[], ["failed"], ["FAILED", "é"], "a?b", 5]),
    *_cases("not_found_timeout", [-1, "x", float("nan"), float("inf"), "../x"]),
    *_cases("poke_interval", [-1, "x"]),
    *_cases("timeout", [-1, "x"]),
    *_cases("mode", ["sometimes", "../x", "POKE"]),
]


@pytest.mark.parametrize(("field", "value"), SENSOR_CASES)
def test_sensor_rejects_bad_literal_arguments_at_parse_time(
    sim: IoTDASimulator, field: str, value: Any
) -> None:
    kwargs: dict[str, Any] = {field: value}
    if field in ("instance_task_type", "created_after"):
        kwargs.setdefault("instance_task_type", "MODIFY")
    _rejects(lambda: _sensor(**kwargs), field)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"instance_task_id": TASK_ID, "instance_task_type": "MODIFY"},
        {"instance_task_id": None},
        {"instance_task_id": TASK_ID, "created_after": "2024-01-01"},
        {"success_statuses": ["SUCCESS"], "failure_statuses": ["SUCCESS"]},
    ],
    ids=["id-and-type", "neither", "id-with-created_after", "overlapping-statuses"],
)
def test_sensor_rejects_contradictory_arguments(
    sim: IoTDASimulator, kwargs: dict[str, Any]
) -> None:
    with pytest.raises(ValueError):
        _sensor(**kwargs)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        pytest.param(
            "deferrable",
            "yes",
        ),
        pytest.param(
            "retry_on_failed_task",
            "no",
        ),
        pytest.param(
            "instance_id",
            5,
        ),
    ],
)
def test_sensor_rejects_wrong_types_at_parse_time(
    sim: IoTDASimulator, field: str, value: Any
) -> None:
    _rejects(lambda: _sensor(**{field: value}), field)


RENDERED = [
    *_cases("instance_id", [*HOSTILE, "x" * 37, 5]),
    *_cases("instance_task_id", [*HOSTILE, "0" * 65, 5]),
    *_cases("instance_task_type", [*HOSTILE, "modify", 5]),
    *_cases("created_after", ["yesterday", "../x", "2024-01-01\nx", 5]),
    *_cases("iotda_conn_id", ["", "a\nb", " ", 5]),
]


@pytest.mark.parametrize("deferrable", [False, True], ids=["poke", "deferrable"])
@pytest.mark.parametrize(("field", "value"), RENDERED)
def test_sensor_rejects_bad_rendered_values_before_any_request(
    sim: IoTDASimulator, field: str, value: Any, deferrable: bool
) -> None:
    """A template renders to something bad: ValueError when the sensor runs, no request."""
    kwargs: dict[str, Any] = {"deferrable": deferrable, "poke_interval": 1, "timeout": 5}
    if field in ("instance_task_type", "created_after"):
        kwargs["instance_task_type"] = "{{ params.type }}"
        if field == "created_after":
            kwargs["created_after"] = "{{ params.after }}"
    elif field != "iotda_conn_id":
        kwargs[field] = "{{ params.value }}"
    sensor = _sensor(**kwargs)
    if field == "created_after":
        sensor.instance_task_type = "MODIFY"
    setattr(sensor, field, value)  # what rendering would have produced
    _rejects(lambda: sensor.execute({}), field)


# -- the trigger ----------------------------------------------------------------------------------


def _trigger(**kwargs: Any) -> Any:
    from airflow_provider_iotda.triggers.iotda import IoTDAInstanceTaskTrigger

    kwargs.setdefault("iotda_conn_id", "iotda_default")
    if "instance_task_type" not in kwargs:
        kwargs.setdefault("instance_task_id", TASK_ID)
    return IoTDAInstanceTaskTrigger(**kwargs)


TRIGGER_CASES = [
    *_cases("success_statuses", [[], ["done"], "../x", 5, None]),
    *_cases("failure_statuses", [[], ["é"], "a\nb", 5, None]),
    *_cases("poll_interval", [0, -1, "x", "../x", None, float("nan"), float("inf")]),
    *_cases("not_found_timeout", [-1, "x", "a%2Fb", float("nan")]),
    *_cases("started_at", ["x", -1, float("nan")]),
    *_cases("deadline", ["x", -1, float("inf")]),
]


@pytest.mark.parametrize(("field", "value"), TRIGGER_CASES)
def test_trigger_rejects_bad_arguments(sim: IoTDASimulator, field: str, value: Any) -> None:
    _rejects(lambda: _trigger(**{field: value}), field)


TRIGGER_RUN_CASES = [
    *_cases("instance_id", [*HOSTILE, "x" * 37, 5]),
    *_cases("instance_task_id", [*HOSTILE, "0" * 65, 5]),
    *_cases("instance_task_type", [*HOSTILE, "modify", 5]),
    *_cases("created_after", ["yesterday", "../x", 5]),
    *_cases("iotda_conn_id", ["", "a\nb", 5]),
]


@pytest.mark.parametrize(("field", "value"), TRIGGER_RUN_CASES)
def test_trigger_reports_bad_values_as_an_invalid_event_without_a_request(
    sim: IoTDASimulator, field: str, value: Any
) -> None:
    """Values the trigger cannot check at construction end in an ``invalid`` error event."""
    kwargs: dict[str, Any] = {field: value, "poll_interval": 0.1, "deadline": None}
    if field in ("instance_task_type", "created_after"):
        kwargs.setdefault("instance_task_type", "MODIFY")
        kwargs["instance_task_id"] = None
    trigger = _trigger(**kwargs)

    async def first() -> Any:
        async for event in trigger.run():
            return event.payload
        return None

    payload = asyncio.run(asyncio.wait_for(first(), timeout=30))
    assert payload["status"] == "error", payload
    assert payload["reason"] == "invalid", payload
    assert field in payload["message"]


# -- the operator ---------------------------------------------------------------------------------


def _operator(**kwargs: Any) -> Any:
    from airflow_provider_iotda.operators.iotda import IoTDAInstanceTaskListOperator

    kwargs.setdefault("task_id", "dump")
    return IoTDAInstanceTaskListOperator(**kwargs)


OPERATOR_CASES = [
    *_cases("instance_ids", [h for h in HOSTILE if h not in ("a\nb", "ab\r\n", "a b")]),
    *_cases("instance_ids", ["", [], ["x" * 37], [5], 5, {"a": 1}, ["ABC"]]),
    *_cases("task_types", [*HOSTILE, "modify", [5], [], ""]),
    *_cases("statuses", [*HOSTILE, "success", [5], []]),
    *_cases("created_after", ["yesterday", "../x", "2024-13-01", 5]),
    *_cases("created_before", ["tomorrow", "a%2Fb", "a\nb", 5]),
    *_cases("destination", ["", "relative/tasks.jsonl", "../tasks.jsonl", 5, ["/tmp/x.csv"]]),
    *_cases("output_format", ["xml", "JSON", "json\n", "../json", "é", 5]),
    *_cases("max_concurrency", [0, 65, -1, 1.5, "x", True, None]),
    *_cases("on_instance_error", ["ignore", "FAIL", "skip\n", 5, None]),
    *_cases("page_size", [0, 501, -1, "x", 1.5, True]),
    *_cases("if_exists", ["append", "FAIL", "skip\n", 5, None]),
    *_cases("on_incomplete", ["ignore", "WARN", "fail\n", 5, None]),
]


@pytest.mark.parametrize(("field", "value"), OPERATOR_CASES)
def test_operator_rejects_bad_literal_arguments_at_parse_time(
    sim: IoTDASimulator, field: str, value: Any
) -> None:
    kwargs: dict[str, Any] = {field: value}
    if field == "output_format":
        kwargs["destination"] = "/tmp/iotda/tasks"
    _rejects(lambda: _operator(**kwargs), field)


def test_operator_rejects_an_empty_or_reversed_window(sim: IoTDASimulator) -> None:
    _rejects(
        lambda: _operator(created_after="2024-05-02", created_before="2024-05-01"),
        "created_after must be earlier",
    )


@pytest.mark.parametrize(
    "value",
    [
        "file:///tmp/iotda/../etc/tasks.jsonl",
        "/tmp/iotda/a%2Fb/tasks.jsonl",
        "file:///tmp/iotda/tasks.jsonl?x=1",
        "file:///tmp/iotda/tasks.jsonl#frag",
        "file:///tmp/iotda/ta\nsks.jsonl",
    ],
    ids=["dotdot", "%2F", "?", "#", "newline"],
)
def test_operator_rejects_path_tricks_in_the_destination(sim: IoTDASimulator, value: str) -> None:
    _rejects(lambda: _operator(destination=value), "destination")


OPERATOR_RENDERED = [
    *_cases("instance_ids", ["../x", "a%2Fb", "é", '["ok", 5]', "[1, 2"]),
    *_cases("task_types", ["modify", "a?b", "[5]"]),
    *_cases("statuses", ["../x", "success"]),
    *_cases("created_after", ["yesterday", "a#b"]),
    *_cases("destination", ["", "relative.jsonl", "file:///tmp/x.txt"]),
    *_cases("output_format", ["xml"]),
]


@pytest.mark.parametrize(("field", "value"), OPERATOR_RENDERED)
def test_operator_rejects_bad_rendered_values_before_any_request(
    sim: IoTDASimulator, tmp_path: Path, field: str, value: Any
) -> None:
    operator = _operator(
        **{field: "{{ params.value }}"}, **({} if field == "destination" else {"destination": None})
    )
    setattr(operator, field, value)  # what rendering would have produced
    with pytest.raises(ValueError) as caught:
        operator.execute({})
    message = str(caught.value)
    assert field in message or (field == "destination" and "output_format" in message), message
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("value", ["", "a\nb", 5], ids=repr)
def test_operator_rejects_a_bad_connection_id_before_any_request(
    sim: IoTDASimulator, value: Any
) -> None:
    _rejects(lambda: _operator(iotda_conn_id=value).execute({}), "iotda_conn_id")


def test_the_table_covers_every_parameter() -> None:
    """A new parameter must get rows here: compare the signatures with the tables."""
    import inspect

    from airflow_provider_iotda.operators.iotda import IoTDAInstanceTaskListOperator
    from airflow_provider_iotda.sensors.iotda import IoTDAInstanceTaskSensor
    from airflow_provider_iotda.triggers.iotda import IoTDAInstanceTaskTrigger

    def params(callable_: Any) -> set[str]:
        names = set(inspect.signature(callable_).parameters) - {"self", "kwargs"}
        return names

    covered_sensor = {c.values[0] for c in SENSOR_CASES + RENDERED} | {
        "deferrable",
        "retry_on_failed_task",
    }
    assert params(IoTDAInstanceTaskSensor.__init__) <= covered_sensor
    covered_trigger = {c.values[0] for c in TRIGGER_CASES + TRIGGER_RUN_CASES}
    assert params(IoTDAInstanceTaskTrigger.__init__) <= covered_trigger
    covered_operator = {c.values[0] for c in OPERATOR_CASES} | {"iotda_conn_id"}
    assert params(IoTDAInstanceTaskListOperator.__init__) <= covered_operator
    covered_hook = set(HOOK_CALLS) | {
        "iotda_conn_id",
        "retry_policy",
        "config",
        "instance_task_type",
        "query",
    }
    for method in (
        IoTDAHook.__init__,
        IoTDAHook.list_instance_tasks,
        IoTDAHook.iter_instance_tasks,
        IoTDAHook.get_instance_task,
        IoTDAHook.find_instance_task,
        IoTDAHook.find_task,
    ):
        assert params(method) <= covered_hook, method
    assert json.dumps(sorted(covered_hook))  # the table is plain data
