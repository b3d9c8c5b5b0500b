"""Pure record functions: filters, flattening, the three formats and their round trips."""

from __future__ import annotations

import csv
import io
import json
from types import MappingProxyType

import pendulum
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from iotda_test_values import TEST_INSTANCE as INSTANCE
from iotda_test_values import TEST_PROJECT as PROJECT

from airflow_provider_iotda import records
from airflow_provider_iotda.models import InstanceTask


def task(task_id: str = "a1", **fields: object) -> InstanceTask:
    data: dict[str, object] = {
        "task_id": task_id,
        "type": "MODIFY",
        "status": "SUCCESS",
        "create_time": "2024-05-01T10:00:00.000Z",
    }
    data.update(fields)
    return InstanceTask.from_dict(data)


FULL = task(
    "f00d",
    status="FAILED",
    status_detail='Insufficient resources, "s3"',
    start_time="2024-05-01T10:00:01.500Z",
    end_time="2024-05-01T10:05:00.000Z",
    target_config={"flavor": {"type": "iotda.standard.s3", "size": 2}, "charge_mode": "postPaid"},
    operate_window={"start_time": "18:00", "end_time": "22:00"},
)
BARE = task("0bad", type="FREEZE", status="RUNNING", create_time="2024-05-02T00:00:00.000Z")


class TestMatches:
    @pytest.mark.parametrize(
        ("kwargs", "expected"),
        [
            ({}, True),
            ({"task_types": {"MODIFY"}}, True),
            ({"task_types": {"CREATE", "FREEZE"}}, False),
            ({"statuses": {"SUCCESS", "FAILED"}}, True),
            ({"statuses": {"PENDING"}}, False),
            ({"task_types": {"MODIFY"}, "statuses": {"PENDING"}}, False),
        ],
    )
    def test_types_and_statuses(self, kwargs: dict[str, object], expected: bool) -> None:
        assert records.matches(task(), **kwargs) is expected  # type: ignore[arg-type]

    def test_window_is_half_open(self) -> None:
        t = task(create_time="2024-05-01T00:00:00.000Z")
        day = pendulum.datetime(2024, 5, 1)
        assert records.matches(t, created_after=day, created_before=day.add(days=1))
        # The same instant is the end of the previous day's window: excluded there.
        assert not records.matches(t, created_after=day.subtract(days=1), created_before=day)
        assert not records.matches(t, created_after=day.add(microseconds=1000))
        assert records.matches(t, created_before=day.add(microseconds=1000))

    def test_task_without_create_time_is_dropped_only_by_a_time_filter(self) -> None:
        t = task(create_time=None)
        assert records.matches(t)
        assert records.matches(t, task_types={"MODIFY"})
        assert not records.matches(t, created_after=pendulum.datetime(2000, 1, 1))
        assert not records.matches(t, created_before=pendulum.datetime(2100, 1, 1))


def test_task_record_keeps_api_names_and_time_strings() -> None:
    record = records.task_record(INSTANCE, PROJECT, FULL)
    assert list(record)[:2] == ["instance_id", "project_id"]
    assert record == {
        "instance_id": INSTANCE,
        "project_id": PROJECT,
        "task_id": "f00d",
        "type": "MODIFY",
        "status": "FAILED",
        "status_detail": 'Insufficient resources, "s3"',
        "create_time": "2024-05-01T10:00:00.000Z",
        "start_time": "2024-05-01T10:00:01.500Z",
        "end_time": "2024-05-01T10:05:00.000Z",
        "target_config": {
            "flavor": {"type": "iotda.standard.s3", "size": 2},
            "charge_mode": "postPaid",
        },
        "operate_window": {"start_time": "18:00", "end_time": "22:00"},
    }


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("file:///data/iotda/2024-05-01/tasks.jsonl", "jsonl"),
        ("/data/x.ndjson", "jsonl"),
        ("s3://aws_default@bucket/iotda/2024-05-01.csv", "csv"),
        ("memory://b/TASKS.JSON", "json"),
        ("file:///data/tasks.csv?version=1", "csv"),
        ("file:///data/tasks.txt", None),
        ("file:///data/tasks", None),
        ("file:///data/.csv", None),
        ("file:///data.csv/tasks", None),
    ],
)
def test_infer_format(path: str, expected: str | None) -> None:
    assert records.infer_format(path) == expected


class TestFlatten:
    def test_nested_fields_become_dotted_keys(self) -> None:
        flat = records.flatten(records.task_record(INSTANCE, PROJECT, FULL))
        assert flat["target_config.flavor.type"] == "iotda.standard.s3"
        assert flat["target_config.flavor.size"] == 2
        assert flat["target_config.charge_mode"] == "postPaid"
        assert flat["operate_window.start_time"] == "18:00"
        assert flat["operate_window.end_time"] == "22:00"
        assert "target_config" not in flat

    def test_null_objects_give_no_keys(self) -> None:
        flat = records.flatten(
            {"task_id": "a", "target_config": {"flavor": None, "charge_mode": "x"}, "x": None}
        )
        assert flat == {"task_id": "a", "target_config.charge_mode": "x", "x": None}
        assert records.flatten({"target_config": None, "operate_window": None}) == {}

    def test_unknown_nested_fields_are_kept(self) -> None:
        flat = records.flatten({"a": {"b": {"c": 1}, "l": [1, 2]}, "e": {}})
        assert flat == {"a.b.c": 1, "a.l": [1, 2], "e": {}}

    def test_any_mapping_is_flattened_like_a_dict(self) -> None:
        """Dicts and scalars skip the Mapping ABC check; other mappings still nest."""
        nested = MappingProxyType({"b": MappingProxyType({"c": 1}), "s": "x", "e": {}})
        flat = records.flatten({"a": nested, "t": True, "f": 1.5, "n": None})
        assert flat == {"a.b.c": 1, "a.s": "x", "a.e": {}, "t": True, "f": 1.5, "n": None}


class TestSerialise:
    def recs(self) -> list[records.Record]:
        return [
            records.task_record(INSTANCE, PROJECT, FULL),
            records.task_record(INSTANCE, PROJECT, BARE),
        ]

    def test_json_is_one_array(self) -> None:
        data = records.serialise(self.recs(), "json")
        assert json.loads(data) == self.recs()
        assert records.parse(data, "json") == self.recs()

    def test_jsonl_is_one_record_a_line(self) -> None:
        data = records.serialise(self.recs(), "jsonl")
        lines = data.decode().splitlines()
        assert len(lines) == 2
        assert [json.loads(line) for line in lines] == self.recs()
        assert data.endswith(b"\n")
        assert records.parse(data, "jsonl") == self.recs()

    def test_csv_has_a_stable_header_and_flat_rows(self) -> None:
        data = records.serialise(self.recs(), "csv")
        rows = list(csv.reader(io.StringIO(data.decode())))
        assert tuple(rows[0]) == records.CSV_COLUMNS
        full = dict(zip(rows[0], rows[1], strict=True))
        assert full["target_config.flavor.type"] == "iotda.standard.s3"
        assert full["target_config.flavor.size"] == "2"
        assert full["target_config.charge_mode"] == "postPaid"
        assert full["operate_window.start_time"] == "18:00"
        assert full["status_detail"] == 'Insufficient resources, "s3"'  # quoted, round-trips
        bare = dict(zip(rows[0], rows[2], strict=True))
        assert bare["target_config.flavor.type"] == ""
        assert bare["end_time"] == ""
        assert bare["create_time"] == "2024-05-02T00:00:00.000Z"
        parsed = records.parse(data, "csv")
        assert parsed[0]["task_id"] == "f00d"
        assert parsed[1] == bare

    def test_csv_header_does_not_depend_on_record_order(self) -> None:
        odd = task("beef", progress=40, extra_field={"z": 1, "a": True})
        recs = [records.task_record(INSTANCE, PROJECT, t) for t in (FULL, odd, BARE)]
        header = records.serialise(recs, "csv").decode().splitlines()[0].split(",")
        reversed_header = records.serialise(recs[::-1], "csv").decode().splitlines()[0].split(",")
        assert header == reversed_header
        assert header == [*records.CSV_COLUMNS, "extra_field.a", "extra_field.z"]
        row = records.parse(records.serialise(recs, "csv"), "csv")[1]
        assert row["progress"] == "40"
        assert row["extra_field.a"] == "true"

    def test_csv_cells_for_lists_and_numbers(self) -> None:
        data = records.serialise([{"task_id": "a", "tags": ["x", "y"], "ratio": 0.5}], "csv")
        row = records.parse(data, "csv")[0]
        assert json.loads(row["tags"]) == ["x", "y"]
        assert row["ratio"] == "0.5"

    @pytest.mark.parametrize(
        ("fmt", "expected"),
        [
            ("json", b"[]\n"),
            ("jsonl", b""),
            ("csv", (",".join(records.CSV_COLUMNS) + "\r\n").encode()),
        ],
    )
    def test_empty_files_are_valid(self, fmt: str, expected: bytes) -> None:
        data = records.serialise([], fmt)
        assert data == expected
        assert records.parse(data, fmt) == []

    def test_non_ascii_is_written_as_utf8(self) -> None:
        rec = {"task_id": "a", "status_detail": "资源不足"}
        for fmt in records.OUTPUT_FORMATS:
            data = records.serialise([rec], fmt)
            assert "资源不足".encode() in data
            assert records.parse(data, fmt)[0]["status_detail"] == "资源不足"

    def test_jsonl_escapes_unicode_line_breaks(self) -> None:
        rec = {"task_id": "a", "status_detail": "one\u2028two\x85three\nfour"}
        data = records.serialise([rec, rec], "jsonl")
        assert len(data.decode().splitlines()) == 2
        assert records.parse(data, "jsonl") == [rec, rec]

    def test_unknown_format(self) -> None:
        with pytest.raises(ValueError, match=r"output_format must be one of json, jsonl, csv"):
            records.serialise([], "xml")
        with pytest.raises(ValueError, match=r"output_format must be one of"):
            records.parse(b"", "xml")


def test_count_by_and_summary_table() -> None:
    recs = [
        {"instance_id": "b", "type": "MODIFY", "status": "FAILED"},
        {"instance_id": "a", "type": "MODIFY", "status": "SUCCESS"},
        {"instance_id": "a", "type": "MODIFY", "status": "SUCCESS"},
        {"instance_id": "a", "type": "FREEZE", "status": "SUCCESS"},
    ]
    assert records.count_by(recs, "status") == {"FAILED": 1, "SUCCESS": 3}
    assert list(records.count_by(recs, "type")) == ["FREEZE", "MODIFY"]
    table = records.summary_table(recs).splitlines()
    assert table[0].split() == ["instance_id", "type", "status", "tasks"]
    assert [line.split() for line in table[2:]] == [
        ["a", "FREEZE", "SUCCESS", "1"],
        ["a", "MODIFY", "SUCCESS", "2"],
        ["b", "MODIFY", "FAILED", "1"],
        ["TOTAL", "4"],
    ]


text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)
record_strategy = st.fixed_dictionaries(
    {
        "instance_id": st.just(INSTANCE),
        "project_id": st.just(PROJECT),
        "task_id": st.text("0123456789abcdef-", min_size=1, max_size=64),
        "type": st.sampled_from(["MODIFY", "CREATE", "NEW_TYPE"]),
        "status": st.sampled_from(["PENDING", "SUCCESS"]),
        "status_detail": st.none() | text,
        "target_config": st.none()
        | st.fixed_dictionaries(
            {
                "flavor": st.none()
                | st.fixed_dictionaries(
                    {"type": st.none() | text, "size": st.none() | st.integers(0, 10**6)}
                ),
                "charge_mode": st.none() | text,
            }
        ),
    }
)


@settings(max_examples=60, deadline=None)
@given(st.lists(record_strategy, max_size=5))
def test_every_format_round_trips(recs: list[records.Record]) -> None:
    """Commas, quotes, newlines and non-ASCII survive; CSV comes back flat as strings."""
    for fmt in ("json", "jsonl"):
        assert records.parse(records.serialise(recs, fmt), fmt) == recs
    # one record a line, even for readers that split on every Unicode line break
    assert len(records.serialise(recs, "jsonl").decode().splitlines()) == len(recs)
    rows = records.parse(records.serialise(recs, "csv"), "csv")
    header, want = records.to_csv_rows(recs)
    assert rows == [dict(zip(header, row, strict=True)) for row in want]
    for row, rec in zip(rows, recs, strict=True):
        assert row["status_detail"] == (rec["status_detail"] or "")
        flavor = (rec["target_config"] or {}).get("flavor") or {}
        size = flavor.get("size")
        assert row["target_config.flavor.size"] == ("" if size is None else str(size))
