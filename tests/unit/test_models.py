"""Models: parsing the API's JSON, writing it back, choosing a task; bad shapes are clear errors."""

from __future__ import annotations

import datetime as dt
import json
from types import MappingProxyType
from typing import Any

import pendulum
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from iotda_test_values import TASK_FIELDS, task_json

from airflow_provider_iotda import models
from airflow_provider_iotda.api import MAX_BODY_BYTES, parse_tasks_response
from airflow_provider_iotda.errors import IoTDAError, IoTDAInvalidResponseError
from airflow_provider_iotda.models import (
    Flavor,
    InstancePage,
    InstanceTask,
    InstanceTaskPage,
    OperateWindow,
    TargetConfig,
    format_api_time,
    select_task,
)

from .unit_support import API_EXAMPLE


def test_api_example_is_parsed() -> None:
    page = InstanceTaskPage.from_dict(json.loads(API_EXAMPLE))
    assert page.count == 1
    assert page.marker == "1805431584415871305"  # a JSON number, kept exactly as a string
    created, modify = page.tasks
    assert created.task_id == "075f413d-a3bb-4243-974d-8eb9221c2df8"
    assert (created.type, created.status) == ("CREATE", "SUCCESS")
    assert created.status_detail is None
    assert created.target_config is None
    assert created.operate_window is None
    assert created.create_time == pendulum.datetime(2020, 8, 19, 1, 52, 49, 493000, tz="UTC")
    assert created.end_time == pendulum.datetime(2020, 8, 19, 1, 52, 49, 492000, tz="UTC")
    assert modify.target_config == TargetConfig(flavor=Flavor(type="iotda.standard.s2", size=2))
    assert modify.operate_window == OperateWindow(start_time="18:00", end_time="22:00")
    assert modify.progress is None


def test_times_are_pendulum_utc() -> None:
    parsed = InstanceTask.from_dict(
        task_json(
            "a1",
            create_time="2024-03-01T09:30:00.250+08:00",
            start_time="2024-03-01T01:30:01.000Z",
        )
    )
    assert isinstance(parsed.create_time, pendulum.DateTime)
    assert parsed.create_time.timezone_name == "UTC"
    assert parsed.create_time == pendulum.datetime(2024, 3, 1, 1, 30, 0, 250000, tz="UTC")
    assert parsed.create_time.hour == 1
    assert parsed.start_time is not None
    assert parsed.start_time.timezone_name == "UTC"


@pytest.mark.parametrize("value", [None, ""])
def test_null_or_empty_times_are_none(value: str | None) -> None:
    parsed = InstanceTask.from_dict(task_json("a1", create_time=value, end_time=value))
    assert parsed.create_time is None
    assert parsed.end_time is None


def test_absent_fields_are_none() -> None:
    parsed = InstanceTask.from_dict({"task_id": "a1", "type": "CREATE", "status": "RUNNING"})
    assert parsed.create_time is None
    assert parsed.start_time is None
    assert parsed.end_time is None
    assert parsed.status_detail is None
    assert parsed.target_config is None
    assert parsed.progress is None


def test_unknown_types_statuses_and_fields_are_kept() -> None:
    raw = task_json(
        "b2",
        type="MIGRATE_STORAGE",
        status="ROLLING_BACK",
        shard="s-1",
        target_config={"flavor": {"type": "x", "size": 1, "tier": "gold"}, "billing": "new"},
        operate_window={"start_time": "01:00", "end_time": "02:00", "days": ["MON"]},
    )
    parsed = InstanceTask.from_dict(raw)
    assert (parsed.type, parsed.status) == ("MIGRATE_STORAGE", "ROLLING_BACK")
    assert parsed.extra == {"shard": "s-1"}
    assert parsed.target_config is not None
    assert parsed.target_config.extra == {"billing": "new"}
    assert parsed.target_config.flavor is not None
    assert parsed.target_config.flavor.extra == {"tier": "gold"}
    assert parsed.operate_window is not None
    assert parsed.operate_window.extra == {"days": ["MON"]}
    assert parsed.to_dict() == raw


@pytest.mark.parametrize(
    ("marker", "expected"), [("abc-123", "abc-123"), (42, "42"), (None, None), (2**63, str(2**63))]
)
def test_page_marker_string_or_number(marker: Any, expected: str | None) -> None:
    page = InstanceTaskPage.from_dict({"page": {"count": 0, "marker": marker}, "tasks": []})
    assert page.marker == expected


def test_page_without_page_object_or_with_null_tasks() -> None:
    assert InstanceTaskPage.from_dict({"tasks": []}) == InstanceTaskPage([], None, None)
    assert InstanceTaskPage.from_dict({"tasks": None, "page": None}).tasks == []


def test_api_example_round_trips_exactly() -> None:
    data = json.loads(API_EXAMPLE)
    assert InstanceTaskPage.from_dict(data).to_dict() == data
    # ...and the number marker stays a number, as the API wrote it.
    assert json.dumps(InstanceTaskPage.from_dict(data).to_dict()) == json.dumps(data)


def test_string_marker_round_trips_as_a_string() -> None:
    data = {"page": {"count": 2, "marker": "1805431584415871305"}, "tasks": []}
    assert InstanceTaskPage.from_dict(data).to_dict() == data


def test_task_round_trip_keeps_status_detail_and_progress() -> None:
    raw = task_json("c3", status="FAILED", status_detail="quota exceeded", progress=40)
    assert InstanceTask.from_dict(raw).to_dict() == raw
    assert "progress" not in InstanceTask.from_dict(task_json("c4")).to_dict()


def test_format_api_time() -> None:
    moment = dt.datetime(2024, 1, 2, 11, 4, 5, 678999, tzinfo=dt.timezone(dt.timedelta(hours=8)))
    assert format_api_time(moment) == "2024-01-02T03:04:05.678Z"


# -- malformed answers ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ([], "expected an object"),
        ("tasks", "expected an object"),
        (None, "expected an object"),
        ({}, "lacks 'tasks'"),
        ({"page": {"count": 1}}, "lacks 'tasks'"),
        ({"tasks": {"task_id": "a"}}, "expected a list"),
        ({"tasks": "a,b"}, "expected a list"),
        ({"tasks": [1]}, "tasks\\.0"),
        ({"tasks": [task_json("a"), None]}, "tasks\\.1"),
        ({"tasks": [{"type": "MODIFY", "status": "SUCCESS"}]}, "tasks\\.0.task_id"),
        ({"tasks": [{"task_id": "a", "status": "SUCCESS"}]}, "tasks\\.0.type"),
        ({"tasks": [{"task_id": "a", "type": "MODIFY"}]}, "tasks\\.0.status"),
        ({"tasks": [task_json("a", status=["SUCCESS"])]}, "tasks\\.0.status"),
        ({"tasks": [task_json("a", status=True)]}, "tasks\\.0.status"),
        ({"tasks": [task_json("a", create_time="yesterday")]}, "tasks\\.0.create_time"),
        ({"tasks": [task_json("a", create_time=1700000000)]}, "tasks\\.0.create_time"),
        ({"tasks": [task_json("a", target_config=[])]}, "tasks\\.0.target_config"),
        ({"tasks": [task_json("a", target_config={"flavor": 3})]}, "target_config.flavor"),
        ({"tasks": [task_json("a", target_config={"flavor": {"size": "2"}})]}, "flavor.size"),
        ({"tasks": [task_json("a", operate_window="18:00-22:00")]}, "operate_window"),
        ({"tasks": [task_json("a", progress="50")]}, "progress"),
        ({"tasks": [], "page": []}, "page"),
        ({"tasks": [], "page": {"count": "1"}}, "page.count"),
        ({"tasks": [], "page": {"marker": 1.5}}, "page.marker"),
        ({"tasks": [], "page": {"marker": {"id": 1}}}, "page.marker"),
    ],
)
def test_malformed_answers_are_clear_errors(body: Any, message: str) -> None:
    with pytest.raises(IoTDAInvalidResponseError, match=message) as caught:
        parse_tasks_response(200, {}, json.dumps(body).encode())
    assert not caught.value.retryable  # a wrong shape will not fix itself


@pytest.mark.parametrize(
    "body", [b"", b"<html>502 Bad Gateway</html>", b'{"tasks": [', b"\xff\xfe", b"nul"]
)
def test_non_json_success_body_is_a_retryable_clear_error(body: bytes) -> None:
    with pytest.raises(IoTDAInvalidResponseError, match="not JSON") as caught:
        parse_tasks_response(200, {}, body)
    assert caught.value.retryable
    assert caught.value.status == 200


def test_deeply_nested_json_is_a_clear_error() -> None:
    body = b"[" * 100_000 + b"]" * 100_000
    with pytest.raises(IoTDAInvalidResponseError):
        parse_tasks_response(200, {}, body)


def test_body_over_the_size_cap_is_rejected() -> None:
    body = b'{"tasks": [], "pad": "' + b"x" * MAX_BODY_BYTES + b'"}'
    with pytest.raises(IoTDAInvalidResponseError, match="exceeds"):
        parse_tasks_response(200, {}, body)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(max_size=30)
    | st.sampled_from(
        [
            "2020-08-19T01:52:49.493Z",
            "0001-01-01T00:00:00+01:00",
            "9999-12-31T23:59:59-01:00",
            "2020-02-30T00:00:00Z",
            "P1D",
            "12:00",
        ]
    ),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children)
    ),
    max_leaves=20,
)
task_like = st.fixed_dictionaries(
    {},
    optional={name: json_values for name in TASK_FIELDS},
)
page_like = st.fixed_dictionaries(
    {},
    optional={
        "tasks": st.lists(task_like, max_size=3) | json_values,
        "page": st.fixed_dictionaries({}, optional={"count": json_values, "marker": json_values})
        | json_values,
    },
)


@settings(max_examples=200, deadline=None)
@given(data=page_like | json_values)
def test_any_json_gives_a_page_or_a_clear_error(data: Any) -> None:
    """Never a KeyError, TypeError, AttributeError...: a page or IoTDAInvalidResponseError."""
    body = json.dumps(data).encode()
    try:
        result = parse_tasks_response(200, {}, body)
    except IoTDAInvalidResponseError as exc:
        error: IoTDAInvalidResponseError | None = exc
    else:
        error = None
    if error is not None:
        assert str(error).startswith("IoTDA answer")
        return
    assert isinstance(result, InstanceTaskPage)
    for item in result.tasks:
        for moment in (item.create_time, item.start_time, item.end_time):
            assert moment is None or moment.timezone_name == "UTC"
        json.dumps(item.to_dict())  # always serialisable


# -- select_task -------------------------------------------------------------------------------

TASKS = [
    InstanceTask.from_dict(t)
    for t in (
        task_json("f3", type="MODIFY", create_time="2024-01-03T00:00:00.000Z"),
        task_json("f2", type="CREATE", create_time="2024-01-02T00:00:00.000Z"),
        task_json("f1", type="MODIFY", create_time="2024-01-01T00:00:00.000Z"),
        task_json("f0", type="MODIFY", create_time=None),
    )
]


def test_select_by_id() -> None:
    chosen = select_task(TASKS, instance_task_id="f2")
    assert chosen is not None
    assert chosen.task_id == "f2"
    assert select_task(TASKS, instance_task_id="ffff") is None


def test_select_newest_of_a_type() -> None:
    chosen = select_task(TASKS, instance_task_type="MODIFY")
    assert chosen is not None
    assert chosen.task_id == "f3"
    # order of the input does not matter
    reverse_chosen = select_task(list(reversed(TASKS)), instance_task_type="MODIFY")
    assert reverse_chosen is not None
    assert reverse_chosen.task_id == "f3"


def test_select_created_after_is_inclusive() -> None:
    at = pendulum.datetime(2024, 1, 3, tz="UTC")
    chosen = select_task(TASKS, instance_task_type="MODIFY", created_after=at)
    assert chosen is not None
    assert chosen.task_id == "f3"
    just_after = at.add(microseconds=1000)
    assert select_task(TASKS, instance_task_type="MODIFY", created_after=just_after) is None
    # a timezone-aware datetime in another zone means the same instant
    beijing = dt.datetime(2024, 1, 2, 8, 0, tzinfo=dt.timezone(dt.timedelta(hours=8)))
    chosen = select_task(TASKS, instance_task_type="MODIFY", created_after=beijing)
    assert chosen is not None
    assert chosen.task_id == "f3"
    chosen = select_task(TASKS, instance_task_type="CREATE", created_after=beijing)
    assert chosen is not None
    assert chosen.task_id == "f2"


def test_select_created_after_skips_tasks_without_a_creation_time() -> None:
    only_undated = [TASKS[3]]
    assert select_task(only_undated, instance_task_type="MODIFY") is TASKS[3]
    assert (
        select_task(
            only_undated,
            instance_task_type="MODIFY",
            created_after=pendulum.datetime(2000, 1, 1, tz="UTC"),
        )
        is None
    )


def test_select_tie_on_time_prefers_the_larger_id() -> None:
    same = [
        InstanceTask.from_dict(task_json("0a", create_time="2024-01-01T00:00:00.000Z")),
        InstanceTask.from_dict(task_json("0b", create_time="2024-01-01T00:00:00.000Z")),
    ]
    chosen = select_task(same, instance_task_type="MODIFY")
    assert chosen is not None
    assert chosen.task_id == "0b"


@pytest.mark.parametrize("kwargs", [{}, {"instance_task_id": "f1", "instance_task_type": "MODIFY"}])
def test_select_needs_exactly_one_criterion(kwargs: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="exactly one"):
        select_task(TASKS, **kwargs)  # type: ignore[arg-type]


def test_invalid_response_error_is_an_iotda_error() -> None:
    assert issubclass(IoTDAInvalidResponseError, IoTDAError)


# -- the fast path for the API's own time format ---------------------------------------------------
# The API writes every time as yyyy-MM-dd'T'HH:mm:ss.SSS'Z'.  Those take a fast path (the standard
# library's fromisoformat); anything else goes through pendulum's general parser.  Both must give
# the same value, the same type (pendulum DateTime) and the same zone (pendulum's UTC).

API_MOMENTS = st.datetimes(
    min_value=dt.datetime(1, 1, 1), max_value=dt.datetime(9999, 12, 31, 23, 59, 59, 999999)
).map(lambda moment: moment.replace(microsecond=moment.microsecond // 1000 * 1000))


def _api_text(moment: dt.datetime) -> str:
    return moment.isoformat(timespec="milliseconds") + "Z"


def _same_moment(got: object, expected: object) -> None:
    assert type(got) is pendulum.DateTime
    assert type(expected) is pendulum.DateTime
    assert got == expected
    assert got.tzinfo is expected.tzinfo is pendulum.UTC
    assert got.timezone_name == "UTC"
    assert (got.year, got.month, got.day, got.hour, got.minute, got.second, got.microsecond) == (
        expected.year,
        expected.month,
        expected.day,
        expected.hour,
        expected.minute,
        expected.second,
        expected.microsecond,
    )


@settings(max_examples=500, deadline=None)
@given(moment=API_MOMENTS)
def test_fast_path_reads_every_api_time_as_the_general_parser_does(moment: dt.datetime) -> None:
    text = _api_text(moment)
    fast = models._fast_api_time(text)
    assert fast is not None  # the API's format is what the fast path is for
    _same_moment(fast, models._general_api_time(text, "create_time"))
    _same_moment(models.parse_api_time(text, "create_time"), fast)
    assert format_api_time(fast) == text  # and it writes back exactly


# The API's shape with any digits (month 13, February 30, hour 24...), and valid times.
API_SHAPED = st.from_regex(
    r"\A[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z\Z"
) | API_MOMENTS.map(lambda moment: _api_text(moment))


def _outcome(read: Any, text: str) -> Any:
    try:
        return read(text)
    except IoTDAInvalidResponseError as exc:
        return ("error", str(exc))


@settings(max_examples=500, deadline=None)
@given(text=API_SHAPED)
def test_any_string_of_the_api_shape_reads_as_the_general_parser_reads_it(text: str) -> None:
    """Month 13, February 30, hour 24...: the fast path steps aside, and the general parser's
    verdict (a value or an error naming the field) is the answer."""
    general = _outcome(lambda value: models._general_api_time(value, "tasks.0.end_time"), text)
    got = _outcome(lambda value: models.parse_api_time(value, "tasks.0.end_time"), text)
    if isinstance(general, tuple):
        assert got == general
        assert "tasks.0.end_time" in general[1]
    else:
        _same_moment(got, general)
    fast = models._fast_api_time(text)
    if fast is not None:
        _same_moment(fast, general)


@pytest.mark.parametrize(
    "text",
    [
        "2024-03-01T09:30:00.250+08:00",  # another offset
        "2024-03-01T01:30:01Z",  # no fraction
        "2024-03-01T01:30:01.123456Z",  # microseconds
        "2024-03-01T01:30:01.1Z",
        "2024-03-01 01:30:01.123Z",  # a space for the T
        "2024-03-01T01:30:01.123z",
        "2024-03-01T01:30:01.123+00:00",
        "2024-03-01T01:30:01",  # no zone: pendulum reads UTC
        "2024-03-01",
        "20240301T013001Z",
    ],
)
def test_other_time_forms_take_the_general_parser(text: str) -> None:
    assert models._fast_api_time(text) is None
    _same_moment(
        models.parse_api_time(text, "create_time"), models._general_api_time(text, "create_time")
    )


BAD_TIMES = [
    "yesterday",
    "2024-02-30T00:00:00.000Z",
    "2024-13-01T00:00:00.000Z",
    "2024-01-01T25:00:00.000Z",
    "2024-01-01T00:60:00.000Z",
    "0000-01-01T00:00:00.000Z",
    "P1D",
    1_700_000_000,
    1.5,
    True,
    ["2024-01-01T00:00:00.000Z"],
    {"time": "2024-01-01T00:00:00.000Z"},
]


@pytest.mark.parametrize("field", ["create_time", "start_time", "end_time"])
@pytest.mark.parametrize("value", BAD_TIMES, ids=repr)
def test_a_bad_time_is_rejected_naming_the_field_and_the_value(field: str, value: Any) -> None:
    body = json.dumps({"tasks": [task_json("a"), task_json("b", **{field: value})]}).encode()
    with pytest.raises(IoTDAInvalidResponseError) as caught:
        parse_tasks_response(200, {}, body)
    message = str(caught.value)
    assert f"tasks.1.{field}=" in message
    assert repr(value) in message
    assert "expected" in message or "not a datetime" in message


@pytest.mark.parametrize("field", ["create_time", "update_time"])
def test_a_bad_instance_time_is_rejected_naming_the_field(field: str) -> None:
    with pytest.raises(IoTDAInvalidResponseError, match=f"instances\\.0\\.{field}="):
        InstancePage.from_dict(
            {"instances": [{"instance_id": "i-1", field: "2024-02-30T00:00:00.000Z"}]}
        )


@settings(max_examples=200, deadline=None)
@given(
    moment=st.datetimes(
        min_value=dt.datetime(2, 1, 1),
        max_value=dt.datetime(9998, 12, 31),
        timezones=st.timezones() | st.just(dt.UTC),
    )
)
def test_format_api_time_writes_any_aware_time_in_utc(moment: dt.datetime) -> None:
    utc = moment.astimezone(dt.UTC)
    expected = utc.replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"
    assert format_api_time(moment) == expected
    # pendulum.instance() re-reads the zone from its own database, which can place an instant
    # of a historic offset (local mean time) elsewhere: compare with that object's own instant.
    as_pendulum = pendulum.instance(moment)
    expected_pendulum = (
        as_pendulum.astimezone(dt.UTC).replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"
    )
    assert format_api_time(as_pendulum) == expected_pendulum


def test_models_accept_any_mapping_not_only_dicts() -> None:
    """The parsers skip the ABC check for dicts only; other mappings still read alike."""
    raw = task_json(
        "m1",
        target_config={"flavor": {"type": "iotda.standard.s3", "size": 2}},
        operate_window={"start_time": "18:00", "end_time": "22:00"},
        extra_field=1,
    )
    frozen = MappingProxyType(
        {
            **raw,
            "target_config": MappingProxyType(
                {"flavor": MappingProxyType(raw["target_config"]["flavor"])}
            ),
            "operate_window": MappingProxyType(raw["operate_window"]),
        }
    )
    page = InstanceTaskPage.from_dict(MappingProxyType({"tasks": [frozen], "page": None}))
    assert page.tasks == [InstanceTask.from_dict(raw)]
    assert page.tasks[0].extra == {"extra_field": 1}
