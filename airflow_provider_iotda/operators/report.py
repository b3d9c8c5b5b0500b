"""``IoTDAInstanceTaskReportOperator``: one self-contained HTML page about instance tasks.

The numbers and the page come from :mod:`airflow_provider_iotda.report`; this operator reads the
records (a dump written by ``IoTDAInstanceTaskListOperator``, or records from XCom), writes the
page through ``ObjectStoragePath`` (whole or not at all) and returns a small summary.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from airflow_provider_iotda import records as task_records
from airflow_provider_iotda import validation
from airflow_provider_iotda.compat import AirflowException
from airflow_provider_iotda.operators.iotda import check_format_library
from airflow_provider_iotda.storage import check_scheme

if TYPE_CHECKING:
    from airflow.sdk import Context, ObjectStoragePath

DEFAULT_TITLE = "IoTDA instance tasks"
HTML_SUFFIXES = (".html", ".htm")
MAX_TITLE_LENGTH = 200


def _is_xcom_arg(value: object) -> bool:
    """Whether ``value`` is resolved when the task runs (an ``XComArg``: Airflow's own test)."""
    return not isinstance(value, os.PathLike) and callable(getattr(value, "resolve", None))


def location(value: object, field: str) -> str:
    """A path or URL read or written through ``ObjectStoragePath``: an absolute path or
    ``scheme://...``, without ``.``/``..`` segments, ``?``, ``#``, encoded slashes or control
    characters (a rendered template cannot point somewhere its text does not say)."""
    if hasattr(value, "protocol") and hasattr(value, "path"):  # an ObjectStoragePath
        return str(value)
    if not isinstance(value, str) or not value.strip():
        raise ValueError(
            f"{field} must be an absolute path or a URL such as "
            f"file:///data/iotda/tasks.jsonl or s3://aws_default@bucket/iotda/tasks.csv; "
            f"got {value!r}"
        )
    return validation.destination(value, field)


def _html_destination(value: object) -> str:
    text = location(value, "destination")
    if not text.lower().endswith(HTML_SUFFIXES):
        raise ValueError(
            f"destination must name an .html (or .htm) file, e.g. "
            f"file:///data/iotda/{{{{ data_interval_start | ds }}}}/report.html; got {text!r}"
        )
    return text


def _source_format(source: str, source_format: object) -> str:
    """The format of ``source``: ``source_format`` if given, else inferred from its suffix."""
    if source_format is None or source_format == "":
        inferred = task_records.infer_format(source)
        if inferred is None:
            raise ValueError(
                f"source_format is not given and cannot be inferred from source {source!r}: "
                f"use a suffix {', '.join(task_records.SUFFIX_FORMATS)} or set source_format to "
                f"one of {', '.join(task_records.OUTPUT_FORMATS)}"
            )
        return inferred
    return validation.one_of(source_format, "source_format", task_records.OUTPUT_FORMATS)


def _title(value: object) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_TITLE_LENGTH:
        raise ValueError(
            f"title must be a non-empty string of at most {MAX_TITLE_LENGTH} characters; "
            f"got {value!r:.80}"
        )
    return value.strip()


def _record_list(value: object) -> list[Mapping[str, Any]]:
    """Records as XCom gives them: a list of mappings, or its JSON / Python text."""
    from airflow_provider_iotda.report import list_value

    value = list_value(
        value,
        "records",
        "a list of task records, the list operator's XCom output (e.g. \"{{ ti.xcom_pull("
        "'dump_tasks') }}\" with render_template_as_native_obj=True)",
    )
    for i, item in enumerate(value):
        if not isinstance(item, Mapping):
            raise ValueError(
                f"records item {i} must be a task record (a mapping); got {type(item).__name__}"
            )
    return list(value)


class IoTDAInstanceTaskReportOperator(BaseOperator):
    """Write one self-contained HTML report of IoTDA instance tasks.

    The page (inline CSS and SVG, no script, nothing fetched from the network, so it opens
    offline and as an e-mail attachment) shows counts by type and status, durations by type
    (median and slowest), the failed tasks with their ``status_detail``, the instances flagged
    incomplete and a timeline per instance.

    Give exactly one of ``source`` and ``records``:

    :param source: a file written by ``IoTDAInstanceTaskListOperator`` (path or URL read
        through ``ObjectStoragePath``, any of its formats; templated), e.g.
        ``"{{ ti.xcom_pull('dump_tasks')['destination'] }}"``.  The list operator's whole
        summary (a mapping, e.g. ``dump_tasks.output``) is accepted too: its ``destination``,
        ``format`` and ``incomplete_instances`` are used.
    :param records: the records themselves (templated), e.g. ``dump_tasks.output`` or
        ``"{{ ti.xcom_pull('dump_tasks') }}"`` with ``render_template_as_native_obj=True``.
    :param destination: where the page goes: a ``.html`` path or URL (templated).
    :param source_format: ``json``, ``jsonl``, ``csv`` (or any format ``records.parse``
        reads); default: inferred from the source's suffix.
    :param title: the page's title (templated).
    :param incomplete_instances: the list operator's ``summary["incomplete_instances"]``
        (templated): ``[{"instance_id", "oldest_listed"}]``; ``None``: the page says
        completeness was not checked.

    Returns ``{"destination", "bytes", "records", "instances", "by_type", "by_status",
    "failed", "incomplete_instances"}`` (counts only), never the page.
    """

    template_fields: Sequence[str] = (
        "source",
        "records",
        "destination",
        "source_format",
        "title",
        "incomplete_instances",
    )
    ui_color = "#fdf1dc"

    def __init__(
        self,
        *,
        destination: str | ObjectStoragePath,
        source: str | ObjectStoragePath | Mapping[str, Any] | None = None,
        records: Any = None,
        source_format: str | None = None,
        title: str = DEFAULT_TITLE,
        incomplete_instances: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if (source is None) == (records is None):
            raise ValueError(
                "give exactly one of source (a dump's path or URL) and records (the records, "
                f"e.g. from XCom); got source={source!r:.80} and records={records!r:.80}"
            )
        self.source = source
        self.records = records
        self.destination = destination
        self.source_format = source_format
        self.title = title
        self.incomplete_instances = incomplete_instances
        # Everything that is not a template (or an XComArg) is checked now, at DAG parse time;
        # so are a scheme no filesystem opens and a Parquet source without pyarrow.
        check_scheme(destination, "destination")
        check_scheme(source, "source")
        if isinstance(source, str) and not validation.is_template(source_format):
            check_format_library(source_format or task_records.infer_format(source), "source")
        self._check_fields(only_literal=True)

    def _check_fields(self, *, only_literal: bool) -> dict[str, Any]:
        """Validate the (rendered) fields; skip the ones still holding templates if asked."""

        def ready(*values: object) -> bool:
            return not (
                only_literal and any(validation.is_template(v) or _is_xcom_arg(v) for v in values)
            )

        checked: dict[str, Any] = {}
        if ready(self.destination):
            checked["destination"] = _html_destination(self.destination)
        if self.source is not None and ready(self.source, self.source_format):
            source = self.source
            source_format = self.source_format
            incomplete = None
            if isinstance(source, Mapping):  # the list operator's summary
                if "destination" not in source:
                    raise ValueError(
                        "source must be a path/URL or the list operator's summary (a mapping "
                        f"with 'destination'); got a mapping with keys {sorted(source)!r:.120}"
                    )
                source_format = source_format or source.get("format")
                incomplete = source.get("incomplete_instances")
                source = source["destination"]
            checked["source"] = location(source, "source")
            checked["source_format"] = _source_format(checked["source"], source_format)
            checked["summary_incomplete"] = incomplete
            if checked.get("destination") == checked["source"]:
                raise ValueError(
                    f"destination must differ from source (the report would replace the dump); "
                    f"both are {checked['source']!r}"
                )
        if self.records is not None and ready(self.records):
            checked["records"] = _record_list(self.records)
        if ready(self.title):
            checked["title"] = _title(self.title)
        if ready(self.incomplete_instances) and self.incomplete_instances is not None:
            from airflow_provider_iotda import report

            report.parse_incomplete(self.incomplete_instances)
        return checked

    def execute(self, context: Context) -> dict[str, Any]:
        """Read the records, write the page, return its summary."""
        from airflow_provider_iotda import report, storage

        checked = self._check_fields(only_literal=False)
        destination: str = checked["destination"]
        target = storage.open_or_fail(destination)  # before reading anything
        if "records" in checked:
            rows, origin = checked["records"], "XCom"
        else:
            rows = self._read(checked["source"], checked["source_format"])
            origin = checked["source"]
        incomplete = self.incomplete_instances
        if incomplete is None:
            incomplete = checked.get("summary_incomplete")
        data = report.build(rows, incomplete)
        page = report.render_html(
            data, title=checked["title"], generated_at=dt.datetime.now(dt.UTC), source=origin
        ).encode()
        storage.write_or_raise(target, destination, page, "text/html; charset=utf-8")
        summary = {"destination": destination, "bytes": len(page), **data.summary()}
        self.log.info(
            "Wrote the report of %d task(s) of %d instance(s) from %s to %s (%d bytes): "
            "%d failed, by status %s, incomplete instances: %s",
            summary["records"],
            summary["instances"],
            origin,
            destination,
            len(page),
            summary["failed"],
            summary["by_status"],
            "not checked"
            if summary["incomplete_instances"] is None
            else summary["incomplete_instances"],
        )
        return summary

    def _read(self, source: str, source_format: str) -> list[dict[str, Any]]:
        from airflow.sdk import ObjectStoragePath

        try:
            data = ObjectStoragePath(source).read_bytes()
        except Exception as exc:
            raise AirflowException(
                f"Could not read source {source}: {type(exc).__name__}: {exc}"
            ) from exc
        try:
            rows = task_records.parse(data, source_format)
        except ValueError as exc:
            raise ValueError(f"source {source} is not a valid {source_format} dump: {exc}") from exc
        self.log.info("Read %d record(s) from %s (%s)", len(rows), source, source_format)
        return rows
