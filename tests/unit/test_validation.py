"""Input checks: each names the field, the value and the allowed form; nothing can bend a path."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from typing import Any

import pendulum
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_provider_iotda import fields, validation
from airflow_provider_iotda.api import tasks_url

HEX = "lower-case letters a-f, digits and hyphens"
INJECTIONS = [
    "",
    "/",
    "..",
    "../other",
    "abc/def",
    "abc%2Fdef",
    "abc%2fdef",
    "abc?x=1",
    "abc#frag",
    "abc\n",
    "abc\r\nX-Evil: 1",
    "abc def",
    "ab\x00c",
    "ünïcode",
    "\uff41\uff42\uff43",  # full-width letters
    "abc\\def",
    "abc;x",
    "abc&marker=1",
]


@pytest.mark.parametrize(
    ("check", "field", "form"),
    [
        (validation.instance_id, "instance_id", f"1 to 36 characters of {HEX}"),
        (validation.instance_task_id, "instance_task_id", f"1 to 64 characters of {HEX}"),
        (
            validation.project_id,
            "project_id",
            "1 to 64 characters of letters, digits, underscores and hyphens",
        ),
    ],
)
@pytest.mark.parametrize("value", INJECTIONS)
def test_path_parameters_reject_anything_that_could_change_the_path(
    check: Callable[[object], str], field: str, form: str, value: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(form)) as caught:
        check(value)
    message = str(caught.value)
    assert message.startswith(f"{field} must be")
    assert repr(value)[:60] in message


@pytest.mark.parametrize("value", INJECTIONS[1:])  # "" is treated as "not given" elsewhere
def test_marker_rejects_separators_and_non_ascii(value: str) -> None:
    if value == "..":
        assert validation.marker(value) == ".."  # a query value: harmless, percent-encoded
        return
    with pytest.raises(ValueError, match="marker must be"):
        validation.marker(value)


def test_instance_id_limits() -> None:
    assert validation.instance_id("a" * 36) == "a" * 36
    assert validation.instance_id("6b6f5c3e-1f1a-4e55-9d5a-0123456789ab")
    for bad in ("a" * 37, "6B6F5C3E", "g", 123, None, b"abc"):
        with pytest.raises(ValueError, match="instance_id must be 1 to 36 characters"):
            validation.instance_id(bad)


def test_instance_task_id_limits() -> None:
    assert validation.instance_task_id("f" * 64) == "f" * 64
    for bad in ("f" * 65, "ABC", "z", 5):
        with pytest.raises(ValueError, match="instance_task_id must be 1 to 64 characters"):
            validation.instance_task_id(bad)


def test_project_id_limits() -> None:
    assert validation.project_id("Ab_0-" * 12 + "abcd") == "Ab_0-" * 12 + "abcd"
    with pytest.raises(ValueError, match="project_id must be"):
        validation.project_id("a" * 65)


def test_field_name_can_be_given() -> None:
    with pytest.raises(ValueError, match=r"^extra instance_id must be .*got 'X'$"):
        validation.instance_id("X", "extra instance_id")


def test_long_values_are_shortened_in_messages() -> None:
    with pytest.raises(ValueError) as caught:
        validation.instance_id("x" * 10_000)
    assert len(str(caught.value)) < 200
    assert "..." in str(caught.value)


@pytest.mark.parametrize(
    ("check", "field", "low", "high"),
    [(validation.offset, "offset", 0, 500), (validation.limit, "limit", 1, 500)],
)
def test_offset_and_limit_ranges(
    check: Callable[[object], int], field: str, low: int, high: int
) -> None:
    assert check(low) == low
    assert check(high) == high
    assert check(str(high)) == high  # as a rendered template gives it
    bad: object
    for bad in (low - 1, high + 1, "abc", 1.5, True, None, "1e2", [], "5 0"):
        with pytest.raises(
            ValueError, match=rf"^{field} must be an integer from {low} to {high}; got "
        ):
            check(bad)


def test_marker_string_or_number() -> None:
    assert validation.marker("abc_DEF-1.2") == "abc_DEF-1.2"
    assert validation.marker(1805431584415871305) == "1805431584415871305"
    for bad in (True, 1.5, "a" * 129, None):
        with pytest.raises(ValueError, match="marker must be 1 to 128 characters"):
            validation.marker(bad)


def test_positive_number() -> None:
    assert validation.positive_number("2.5", "timeout") == 2.5
    assert validation.positive_number(3, "timeout") == 3.0
    assert validation.positive_number(dt.timedelta(minutes=1), "timeout") == 60.0
    assert validation.positive_number(0, "poke_interval", allow_zero=True) == 0.0
    for bad in (0, -1, "x", float("inf"), float("nan"), True, None, "inf"):
        with pytest.raises(
            ValueError, match=r"^timeout must be a number of seconds greater than 0"
        ):
            validation.positive_number(bad, "timeout")
    with pytest.raises(ValueError, match="at least 0"):
        validation.positive_number(-1, "poke_interval", allow_zero=True)


def test_task_types_and_statuses() -> None:
    assert validation.task_types("MODIFY, CREATE") == frozenset({"MODIFY", "CREATE"})
    assert validation.task_types(["MODIFY"]) == frozenset({"MODIFY"})
    assert validation.task_types(("NEW_KIND",)) == frozenset({"NEW_KIND"})  # future types ok
    assert validation.task_statuses("SUCCESS FAILED") == frozenset({"SUCCESS", "FAILED"})
    with pytest.raises(ValueError, match="task_types must name at least one of CREATE"):
        validation.task_types([])
    with pytest.raises(ValueError, match="statuses must be upper-case names such as 'PENDING'"):
        validation.task_statuses(["done"])
    with pytest.raises(ValueError, match="task_types must be a name or a list of names"):
        validation.task_types(5)
    with pytest.raises(ValueError, match="task_types must be"):
        validation.task_types({"MODIFY": 1})


def test_task_type() -> None:
    assert validation.task_type("MODIFY") == "MODIFY"
    for bad in ("modify", "MODIFY/..", "", None):
        with pytest.raises(ValueError, match="instance_task_type must be an upper-case name"):
            validation.task_type(bad)


def test_timestamp() -> None:
    utc = pendulum.datetime(2024, 1, 2, 3, 4, 5, tz="UTC")
    assert validation.timestamp("2024-01-02T03:04:05Z", "created_after") == utc
    assert validation.timestamp("2024-01-02T11:04:05+08:00", "created_after") == utc
    assert validation.timestamp(dt.datetime(2024, 1, 2, 3, 4, 5), "created_after") == utc
    naive = validation.timestamp("2024-01-02T03:04:05", "created_after")
    assert naive == utc
    assert naive is not None
    assert naive.timezone_name == "UTC"
    assert validation.timestamp(None, "created_after") is None
    assert validation.timestamp("", "created_after") is None
    for bad in ("yesterday", 1700000000, "2024-13-01"):
        with pytest.raises(
            ValueError, match=r"^created_after must be a datetime or an ISO-8601 string"
        ):
            validation.timestamp(bad, "created_after")


def test_one_of_and_strict_bool() -> None:
    assert validation.one_of("auto", "auth", ("aksk", "auto")) == "auto"
    with pytest.raises(ValueError, match=r"^auth must be one of aksk, auto; got 'AUTO'$"):
        validation.one_of("AUTO", "auth", ("aksk", "auto"))
    for value, expected in [
        (True, True),
        ("false", False),
        ("False", False),
        (" 0 ", False),
        ("no", False),
        ("true", True),
        ("1", True),
        ("on", True),
    ]:
        assert validation.strict_bool(value, "verify", words=True) is expected
    for bad in ("maybe", 1, None, ""):
        with pytest.raises(ValueError, match=r"^verify must be true or false"):
            validation.strict_bool(bad, "verify", words=True)
    # Without words (operator arguments), only a real bool: "no" is a truthy string.
    assert validation.strict_bool(False, "delay") is False
    for bad in ("no", "false", "true", 0, 1, None):
        with pytest.raises(ValueError, match=r"^delay must be True or False; got "):
            validation.strict_bool(bad, "delay")


def test_region() -> None:
    for known in fields.REGIONS:
        assert validation.region(known) == known
    for bad in ("CN-NORTH-4", "cn", "cn-north-4/..", "cn north 4", "cn-nort-4", None):
        with pytest.raises(ValueError, match=r"^region must be a Huawei Cloud region with IoTDA"):
            validation.region(bad)


@pytest.mark.parametrize(
    ("typo", "closest"),
    [
        ("cn-nort-4", "cn-north-4"),
        ("CN-NORTH-4", "cn-north-4"),
        ("cn-north4", "cn-north-4"),
        ("ru-moscow", "ru-moscow-1"),
        ("la-south-1", "la-south-2"),
    ],
)
def test_a_misspelt_region_names_the_closest_real_one_and_the_endpoint_extra(
    typo: str, closest: str
) -> None:
    with pytest.raises(ValueError) as caught:
        validation.region(typo, "extra region")
    message = str(caught.value)
    assert f"got {typo!r}; did you mean {closest!r}?" in message
    assert "set extra endpoint to its URL" in message
    assert "https://iotda-mgmt.REGION.myhuaweicloud.com" in message
    for known in fields.REGIONS:
        assert known in message


def test_a_region_far_from_every_real_one_suggests_none() -> None:
    with pytest.raises(ValueError) as caught:
        validation.region("xx-yyyyy-9")
    assert "did you mean" not in str(caught.value)
    assert "set extra endpoint" in str(caught.value)


def test_an_unlisted_region_is_accepted_where_an_endpoint_names_the_host() -> None:
    """With extra endpoint set, the region only signs (V11): any well-formed one will do."""
    assert validation.region("eu-west-101", known=False) == "eu-west-101"
    with pytest.raises(ValueError, match=r"^region must be a region name of lower-case letters"):
        validation.region("EU West", known=False)


@settings(max_examples=200, deadline=None)
@given(value=st.text(max_size=40))
def test_accepted_path_parameters_never_contain_path_syntax(value: str) -> None:
    """Whatever is accepted is plain [a-f0-9-] text, so the URL path cannot be bent."""
    checks: list[Callable[[Any], str]] = [
        validation.instance_id,
        validation.instance_task_id,
        validation.project_id,
    ]
    for check in checks:
        try:
            accepted = check(value)
        except ValueError:
            continue
        assert re.fullmatch(r"[A-Za-z0-9_-]+", accepted)
        url = tasks_url("https://h", "p", accepted) if check is validation.instance_id else None
        if url is not None:
            assert url == f"https://h/v5/iot/p/iotda-instances/{accepted}/tasks"


def test_tasks_url() -> None:
    assert (
        tasks_url("https://h/", "p1", "ab-12") == "https://h/v5/iot/p1/iotda-instances/ab-12/tasks"
    )
    assert (
        tasks_url("https://h", "p1", "ab", offset=0, limit=10, marker=123)
        == "https://h/v5/iot/p1/iotda-instances/ab/tasks?offset=0&limit=10&marker=123"
    )
    with pytest.raises(ValueError, match="limit must be an integer from 1 to 500"):
        tasks_url("https://h", "p1", "ab", limit=501)
    with pytest.raises(ValueError, match="project_id must be"):
        tasks_url("https://h", "p/../x", "ab")


@pytest.mark.parametrize(
    ("value", "templated"),
    [
        ("{{ ds }}", True),
        ("{% if x %}a{% endif %}", True),
        (["a", "{{ params.b }}"], True),
        (("{{ x }}",), True),
        ("plain", False),
        (["a", "b"], False),
        (None, False),
        (5, False),
        ("{ not jinja }", False),
    ],
)
def test_is_template(value: object, templated: bool) -> None:
    assert validation.is_template(value) is templated


@pytest.mark.parametrize(
    ("value", "ids"),
    [
        ("aa, bb cc,aa", ["aa", "bb", "cc"]),
        ('["bb", "aa"]', ["bb", "aa"]),
        ("['aa', 'bb']", ["aa", "bb"]),  # a Python list rendered into a string template
        (("aa",), ["aa"]),
        (None, None),
    ],
)
def test_instance_ids(value: object, ids: list[str] | None) -> None:
    assert validation.instance_ids(value) == ids


def test_instance_ids_name_the_bad_item() -> None:
    with pytest.raises(ValueError, match=r"^instance_ids item 1 must be 1 to 36 characters"):
        validation.instance_ids(["aa", "ZZ"])
    with pytest.raises(ValueError, match="instance_ids must be a name, a comma-separated string"):
        validation.instance_ids("[unclosed")


@pytest.mark.parametrize(
    "bad",
    [
        "file:///data/../etc/tasks.json",
        "file:///data/./tasks.json",
        "s3://bucket/tasks.json?versionId=1",
        "s3://bucket/a%2Fb.json",
        "/data/tasks\n.json",
    ],
)
def test_destination_cannot_be_bent(bad: str) -> None:
    with pytest.raises(ValueError, match=r"destination must not contain '\.' or '\.\.' segments"):
        validation.destination(bad)
