"""Records: the Parquet format (typed flat columns, stable schema, read back) and the
completeness rule (IoTDA keeps at most 20 tasks per instance, for 180 days)."""

from __future__ import annotations

import datetime as dt
import io
import re
from typing import Any

import pytest
from iotda_test_values import TEST_INSTANCE, TEST_PROJECT, task_json

from airflow_provider_iotda import records
from airflow_provider_iotda.models import InstanceTask

pa = pytest.importorskip("pyarrow", reason="Parquet needs pyarrow (the parquet extra)")
pq = pytest.importorskip("pyarrow.parquet", reason="Parquet needs pyarrow (the parquet extra)")

UTC = dt.UTC


def record(task_id: str, **fields: Any) -> dict[str, Any]:
    task = InstanceTask.from_dict(task_json(task_id, "SUCCESS", **fields))
    return records.task_record(TEST_INSTANCE, TEST_PROJECT, task)


FULL = record(
    "f00d",
    type="MODIFY",
    create_time="2024-05-01T10:00:00.123Z",
    start_time="2024-05-01T10:00:01.500Z",
    end_time="2024-05-01T10:05:00.000Z",
    status_detail="done",
    progress=100,
    target_config={"flavor": {"type": "iotda.standard.s3", "size": 2}, "charge_mode": "postPaid"},
    operate_window={"start_time": "18:00", "end_time": "22:00"},
)
BARE = record("0bad", type="FREEZE", create_time="2024-05-02T00:00:00.000Z")


def schema_of(data: bytes) -> Any:
    return pq.read_table(io.BytesIO(data)).schema


class TestParquet:
    def test_columns_are_the_csv_columns_with_types(self) -> None:
        schema = schema_of(records.serialise([FULL, BARE], "parquet"))
        header, _ = records.to_csv_rows([FULL, BARE])
        assert schema.names == header
        for name in records.TIME_COLUMNS:
            assert schema.field(name).type == pa.timestamp("ms", tz="UTC"), name
        for name in records.INTEGER_COLUMNS:
            assert schema.field(name).type == pa.int64(), name
        others = set(header) - set(records.TIME_COLUMNS) - set(records.INTEGER_COLUMNS)
        assert {str(schema.field(name).type) for name in others} == {"string"}

    def test_empty_result_has_the_same_schema(self) -> None:
        empty = schema_of(records.serialise([], "parquet"))
        full = schema_of(records.serialise([FULL], "parquet"))
        assert empty == full
        assert records.parse(records.serialise([], "parquet"), "parquet") == []

    def test_values(self) -> None:
        table = pq.read_table(io.BytesIO(records.serialise([FULL, BARE], "parquet")))
        row, bare = table.to_pylist()
        assert row["create_time"] == dt.datetime(2024, 5, 1, 10, 0, 0, 123000, tzinfo=UTC)
        assert row["target_config.flavor.size"] == 2
        assert row["progress"] == 100
        assert row["operate_window.end_time"] == "22:00"  # a time of day: text
        assert bare["start_time"] is None
        assert bare["target_config.flavor.size"] is None

    def test_reads_back_flat_with_the_apis_time_strings(self) -> None:
        got = records.parse(records.serialise([FULL, BARE], "parquet"), "parquet")
        header, _ = records.to_csv_rows([FULL, BARE])
        want = [{name: records.flatten(r).get(name) for name in header} for r in (FULL, BARE)]
        assert got == want
        assert got[0]["create_time"] == "2024-05-01T10:00:00.123Z"

    def test_unknown_fields_become_text_columns(self) -> None:
        odd = {**BARE, "tags": ["a", "b"], "weight": 3}
        got = records.parse(records.serialise([odd], "parquet"), "parquet")
        assert got[0]["tags"] == '["a", "b"]'
        assert got[0]["weight"] == "3"

    def test_a_bad_time_names_the_column(self) -> None:
        with pytest.raises(ValueError, match="create_time must be an ISO-8601 time"):
            records.serialise([{**BARE, "create_time": "yesterday"}], "parquet")

    def test_parse_needs_bytes(self) -> None:
        with pytest.raises(ValueError, match="a parquet task file is binary"):
            records.parse("text", "parquet")

    def test_suffix_and_content_type(self) -> None:
        assert records.infer_format("s3://b/day/tasks.parquet") == "parquet"
        assert records.CONTENT_TYPES["parquet"] == "application/vnd.apache.parquet"
        records.require_format("parquet")  # installed here: no error


def test_require_format_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib

    real = importlib.import_module

    def no_pyarrow(name: str, *args: Any) -> Any:
        if name == "pyarrow":
            raise ModuleNotFoundError("No module named 'pyarrow'")
        return real(name, *args)

    monkeypatch.setattr(importlib, "import_module", no_pyarrow)
    with pytest.raises(ImportError, match=r"install airflow-provider-iotda with its parquet extra"):
        records.require_format("parquet")
    records.require_format("csv")  # the text formats need nothing


NOW = dt.datetime(2024, 6, 1, tzinfo=UTC)
DAY = dt.timedelta(days=1)


@pytest.mark.parametrize(
    ("listed", "oldest", "created_after", "reason"),
    [
        (20, NOW - 2 * DAY, NOW - 3 * DAY, "lists 20 tasks .* the oldest was created after"),
        (20, NOW - 3 * DAY, NOW - 3 * DAY, None),  # the oldest is the window's start
        (20, NOW - 4 * DAY, NOW - 3 * DAY, None),  # older than the window: nothing lost
        (19, NOW - 2 * DAY, NOW - 3 * DAY, None),  # under the cap: nothing was dropped
        (20, NOW - 2 * DAY, None, "no created_after"),
        (5, NOW - 2 * DAY, None, None),
        (0, None, None, None),
        (0, None, NOW - 181 * DAY, "more than 180 days ago"),
        (3, NOW - DAY, NOW - 180 * DAY, None),  # exactly at the retention limit
    ],
)
def test_completeness_gap(
    listed: int,
    oldest: dt.datetime | None,
    created_after: dt.datetime | None,
    reason: str | None,
) -> None:
    got = records.completeness_gap(listed, oldest, created_after, NOW)
    if reason is None:
        assert got is None
    else:
        assert got is not None
        assert re.search(reason, got), got
