"""Instance-task records: filtering, completeness, flattening and the file formats (JSON,
JSON Lines, CSV, Parquet).

Pure functions shared by ``IoTDAInstanceTaskListOperator``, the example DAGs, tests and
benchmarks.  A *record* is one task in the API's JSON shape (field names as the API spells
them, times as the API's ISO strings) prefixed with the ``instance_id`` and ``project_id`` it
belongs to::

    {"instance_id": "...", "project_id": "...", "task_id": "...", "type": "MODIFY", ...}

Parquet needs pyarrow (the ``parquet`` extra), imported only when a Parquet file is written or
read.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections import Counter
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow_provider_iotda import validation
from airflow_provider_iotda.models import format_api_time

if TYPE_CHECKING:
    import pyarrow as pa

    from airflow_provider_iotda.models import InstanceTask

Record = dict[str, Any]

OUTPUT_FORMATS = ("json", "jsonl", "csv", "parquet")
#: File suffixes from which the output format is inferred.
SUFFIX_FORMATS: Mapping[str, str] = {
    ".json": "json",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".csv": "csv",
    ".parquet": "parquet",
}
#: What a format needs beyond the standard library: the module, and the extra of this package
#: that installs it.
FORMAT_EXTRAS: Mapping[str, tuple[str, str]] = {
    "parquet": ("pyarrow", "parquet"),
}
#: CSV columns always present, in this order; other (nested) fields follow, sorted by name.
CSV_COLUMNS = (
    "instance_id",
    "project_id",
    "task_id",
    "type",
    "status",
    "status_detail",
    "create_time",
    "start_time",
    "end_time",
    "progress",
    "target_config.flavor.type",
    "target_config.flavor.size",
    "target_config.charge_mode",
    "operate_window.start_time",
    "operate_window.end_time",
)
#: Parquet column types other than text (every other column is a nullable string).
TIME_COLUMNS = ("create_time", "start_time", "end_time")
INTEGER_COLUMNS = ("progress", "target_config.flavor.size")
#: The object's content type, by format.
CONTENT_TYPES: Mapping[str, str] = {
    "json": "application/json",
    "jsonl": "application/x-ndjson",
    "csv": "text/csv",
    "parquet": "application/vnd.apache.parquet",
}

#: IoTDA keeps at most this many tasks per instance, and none older than RETENTION_DAYS.
KEPT_TASKS = 20
RETENTION_DAYS = 180


def matches(
    task: InstanceTask,
    *,
    task_types: Collection[str] | None = None,
    statuses: Collection[str] | None = None,
    created_after: dt.datetime | None = None,
    created_before: dt.datetime | None = None,
) -> bool:
    """Whether ``task`` passes the filters (``None`` means no filter on that field).

    The creation-time window is half-open: ``created_after <= create_time < created_before``,
    so consecutive daily windows never count a task twice.  A task without ``create_time`` is
    dropped whenever a time bound is given.
    """
    if task_types is not None and task.type not in task_types:
        return False
    if statuses is not None and task.status not in statuses:
        return False
    if created_after is None and created_before is None:
        return True
    created = task.create_time
    if created is None:
        return False
    if created_after is not None and created < created_after:
        return False
    return not (created_before is not None and created >= created_before)


def completeness_gap(
    listed: int,
    oldest: dt.datetime | None,
    created_after: dt.datetime | None,
    now: dt.datetime,
) -> str | None:
    """Why tasks of an audited window may already be gone from IoTDA, or ``None``.

    ``listed``: how many tasks the instance listed (before any filter); ``oldest``: the
    creation time of the oldest of them.  IoTDA keeps at most :data:`KEPT_TASKS` tasks for
    :data:`RETENTION_DAYS` days, so a window that starts before ``now`` minus the retention,
    or an instance listing :data:`KEPT_TASKS` tasks whose oldest was created after the window's
    start (or with no start given), may have lost tasks.
    """
    if created_after is not None and created_after < now - dt.timedelta(days=RETENTION_DAYS):
        return (
            f"created_after {created_after.isoformat()} is more than {RETENTION_DAYS} days "
            "ago: IoTDA no longer lists tasks that old"
        )
    if listed >= KEPT_TASKS and oldest is not None:
        if created_after is None:
            return (
                f"IoTDA lists {listed} tasks (it keeps at most {KEPT_TASKS}) and the audit has "
                "no created_after: older tasks may be gone"
            )
        if oldest > created_after:
            return (
                f"IoTDA lists {listed} tasks (it keeps at most {KEPT_TASKS}) and the oldest "
                f"was created after created_after {created_after.isoformat()}"
            )
    return None


def task_record(instance_id: str, project_id: str, task: InstanceTask) -> Record:
    """One record: ``instance_id`` and ``project_id`` followed by the task's API fields."""
    return {"instance_id": instance_id, "project_id": project_id, **task.to_dict()}


def resolve_format(destination: str | None, output_format: object) -> str | None:
    """The output format: ``output_format`` if given (it must agree with a known suffix of
    ``destination``), else inferred from the suffix; ``None`` for XCom output."""
    if destination is None:
        if output_format is not None:
            raise ValueError(
                "output_format applies only when destination is set; XCom output is always a "
                f"list of records (got output_format={output_format!r} and destination=None)"
            )
        return None
    inferred = infer_format(destination)
    if output_format is None or output_format == "":
        if inferred is None:
            raise ValueError(
                f"output_format is not given and cannot be inferred from destination "
                f"{destination!r}: use a suffix {', '.join(SUFFIX_FORMATS)} or set "
                f"output_format to one of {', '.join(OUTPUT_FORMATS)}"
            )
        return inferred
    fmt = validation.one_of(output_format, "output_format", OUTPUT_FORMATS)
    if inferred is not None and inferred != fmt:
        raise ValueError(
            f"output_format={fmt!r} contradicts the suffix of destination {destination!r} "
            f"(which means {inferred!r}); change one of them"
        )
    return fmt


def infer_format(path: str) -> str | None:
    """The output format named by the suffix of ``path`` (a path or URL), or ``None``."""
    name = path.split("?", 1)[0].split("#", 1)[0].rstrip("/").rsplit("/", 1)[-1].lower()
    dot = name.rfind(".")
    if dot <= 0:
        return None
    return SUFFIX_FORMATS.get(name[dot:])


#: Object fields of the API that may be null; a null one yields no keys when flattened.
_NULLABLE_OBJECTS = frozenset({"target_config", "target_config.flavor", "operate_window"})


#: JSON's scalar types: told apart from objects without the (slower) ``Mapping`` ABC check.
_SCALARS = frozenset({str, int, float, bool, type(None)})


def _flatten_into(out: Record, prefix: str, value: Any) -> None:
    kind = type(value)
    if (kind is dict or (kind not in _SCALARS and isinstance(value, Mapping))) and value:
        for key, item in value.items():
            _flatten_into(out, f"{prefix}.{key}", item)
    elif not (value is None and prefix in _NULLABLE_OBJECTS):
        out[prefix] = value


def flatten(record: Mapping[str, Any]) -> Record:
    """Nested objects become dotted keys (``target_config.flavor.type``).

    A null ``target_config``, ``target_config.flavor`` or ``operate_window`` yields no keys;
    empty objects and lists are kept as values under their own key.
    """
    out: Record = {}
    for key, value in record.items():
        _flatten_into(out, str(key), value)
    return out


def csv_header(rows: Iterable[Mapping[str, Any]]) -> list[str]:
    """:data:`CSV_COLUMNS`, then every other key of the flattened ``rows``, sorted."""
    fixed = set(CSV_COLUMNS)
    others = sorted({key for row in rows for key in row if key not in fixed})
    return [*CSV_COLUMNS, *others]


def _csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def to_csv_rows(records: Iterable[Mapping[str, Any]]) -> tuple[list[str], list[list[str]]]:
    """The CSV header and the rows as strings (null -> empty cell, lists -> JSON)."""
    flat = [flatten(r) for r in records]
    header = csv_header(flat)
    return header, [[_csv_cell(row.get(column)) for column in header] for row in flat]


# Line breaks other than "\n" that JSON leaves raw in strings; escaped in JSONL so that
# line-splitting readers (str.splitlines, many log tools) see one record a line.
_LINE_BREAKS = str.maketrans({"\x85": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029"})


def _json_line(record: Mapping[str, Any]) -> str:
    return json.dumps(record, ensure_ascii=False).translate(_LINE_BREAKS)


def serialise(records: Sequence[Mapping[str, Any]], output_format: str) -> bytes:
    """The whole file as bytes (UTF-8 for the text formats).

    ``json``: one array (``[]`` when empty); ``jsonl``: one record a line (empty when there is
    none); ``csv``: a header line (always) and one row a record, RFC 4180 ``\\r\\n`` line
    ends (so a field holding a lone ``\\r`` or ``\\n`` is quoted and reads back intact);
    ``parquet``: the columns of :func:`parquet_table`.
    """
    if output_format == "json":
        return (json.dumps(list(records), ensure_ascii=False) + "\n").encode()
    if output_format == "jsonl":
        return "".join(_json_line(r) + "\n" for r in records).encode()
    if output_format == "csv":
        header, rows = to_csv_rows(records)
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\r\n")
        writer.writerow(header)
        writer.writerows(rows)
        return buffer.getvalue().encode()
    if output_format == "parquet":
        import pyarrow.parquet as pq

        out = io.BytesIO()
        pq.write_table(parquet_table(records), out)
        return out.getvalue()
    raise ValueError(
        f"output_format must be one of {', '.join(OUTPUT_FORMATS)}; got {output_format!r}"
    )


def parse(data: bytes | str, output_format: str) -> list[Record]:
    """Read a file written by :func:`serialise` back.

    CSV rows come back flat, as strings; Parquet rows flat, with every column (null as
    ``None``), times as the API's strings and integers as ``int``.
    """
    if output_format == "parquet":
        return _parse_parquet(data)
    text = data.decode() if isinstance(data, bytes) else data
    if output_format == "json":
        loaded = json.loads(text)
        if not isinstance(loaded, list):
            raise ValueError("a json task file must hold one array")
        return loaded
    if output_format == "jsonl":
        return [json.loads(line) for line in text.split("\n") if line.strip()]
    if output_format == "csv":
        return [dict(row) for row in csv.DictReader(io.StringIO(text))]
    raise ValueError(
        f"output_format must be one of {', '.join(OUTPUT_FORMATS)}; got {output_format!r}"
    )


def require_format(output_format: str) -> None:
    """Raise ``ImportError`` naming what to install if ``output_format`` cannot be written."""
    extra = FORMAT_EXTRAS.get(output_format)
    if extra is None:
        return
    module, extra_name = extra
    import importlib

    try:
        importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(
            f"output_format {output_format!r} needs {module}, which is not installed: install "
            f"airflow-provider-iotda with its {extra_name} extra"
        ) from exc


def parquet_table(records: Sequence[Mapping[str, Any]]) -> pa.Table:
    """The flat CSV columns (:func:`csv_header`) as an Arrow table: :data:`TIME_COLUMNS` as
    ``timestamp[ms, tz=UTC]``, :data:`INTEGER_COLUMNS` as ``int64``, the rest as strings
    (lists and objects as JSON).  The schema is the same for an empty result."""
    import pyarrow as pa

    flat = [flatten(r) for r in records]
    columns: dict[str, pa.Array] = {}
    for name in csv_header(flat):
        values = [row.get(name) for row in flat]
        if name in TIME_COLUMNS:
            times = [_utc_time(v, name) for v in values]
            columns[name] = pa.array(times, type=pa.timestamp("ms", tz="UTC"))
        elif name in INTEGER_COLUMNS:
            columns[name] = pa.array([_integer(v, name) for v in values], type=pa.int64())
        else:
            text = [None if v is None else _csv_cell(v) for v in values]
            columns[name] = pa.array(text, type=pa.string())
    return pa.table(columns)


def _utc_time(value: Any, column: str) -> dt.datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            moment = dt.datetime.fromisoformat(value)
        except ValueError:
            moment = None
        if moment is not None:
            moment = moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
            return moment.astimezone(dt.UTC)
    raise ValueError(f"{column} must be an ISO-8601 time such as the API gives; got {value!r}")


def _integer(value: Any, column: str) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    raise ValueError(f"{column} must be an integer; got {value!r}")


#: A time as the API writes it: ``yyyy-MM-ddTHH:mm:ss.SSSZ`` (UTC).
api_time = format_api_time


def _parse_parquet(data: bytes | str) -> list[Record]:
    if not isinstance(data, bytes):
        raise ValueError("a parquet task file is binary: pass its bytes")
    import pyarrow.parquet as pq

    rows: list[Record] = pq.read_table(io.BytesIO(data)).to_pylist()
    for row in rows:
        for name in TIME_COLUMNS:
            value = row.get(name)
            if isinstance(value, dt.datetime):
                row[name] = api_time(value)
    return rows


def count_by(records: Iterable[Mapping[str, Any]], field: str) -> dict[str, int]:
    """How many records have each value of ``field``, sorted by value."""
    counts = Counter(str(r.get(field)) for r in records)
    return dict(sorted(counts.items()))


def summary_table(records: Sequence[Mapping[str, Any]]) -> str:
    """A plain-text table of record counts by instance, type and status."""
    counts = Counter(
        (str(r.get("instance_id")), str(r.get("type")), str(r.get("status"))) for r in records
    )
    header = ("instance_id", "type", "status", "tasks")
    rows = [(*key, str(n)) for key, n in sorted(counts.items())]
    rows.append(("TOTAL", "", "", str(len(records))))
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def line(row: Sequence[str]) -> str:
        return "  ".join(
            cell.rjust(width) if i == len(row) - 1 else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(header), rule, *(line(r) for r in rows)])
