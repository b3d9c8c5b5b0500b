"""The audit report: statistics of instance-task records and one self-contained HTML page.

Pure functions (no Airflow import), used by ``IoTDAInstanceTaskReportOperator``:
:func:`build` turns records into :class:`ReportData` (the numbers the page shows) and
:func:`render_html` turns that into one HTML document with inline CSS and SVG -- no script, no
font, image or style sheet from anywhere else, so it opens offline and as an e-mail attachment.
The page is laid out by the Jinja2 templates in ``airflow_provider_iotda/templates`` (package
data; Jinja2 comes with Airflow), with autoescaping on.

Records come in every shape the list operator writes: nested with native values (JSON, JSON
Lines, XCom) or flat with string values (CSV: ``target_config.flavor.type`` keys, an empty cell
for null); times may be API strings or datetimes.  Everything taken from the records is
HTML-escaped by the template engine.
"""

from __future__ import annotations

import ast
import datetime as dt
import functools
import json
import statistics
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import jinja2

#: Statuses in the order the page shows them; others follow, sorted.
STATUS_ORDER = ("SUCCESS", "FAILED", "RUNNING", "PENDING")
#: Bar and badge colours by status; any other status is drawn in ``OTHER_COLOUR``.
STATUS_COLOURS: Mapping[str, str] = {
    "SUCCESS": "#2f9e63",
    "FAILED": "#d64545",
    "RUNNING": "#3b7dd8",
    "PENDING": "#d99a1e",
}
OTHER_COLOUR = "#8a94a6"
UNKNOWN = "UNKNOWN"


# -- the numbers ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReportTask:
    """One task as the report sees it (times in UTC, ``None`` when absent)."""

    instance_id: str
    task_id: str
    type: str
    status: str
    status_detail: str | None
    create_time: dt.datetime | None
    start_time: dt.datetime | None
    end_time: dt.datetime | None
    target: str | None = None

    @property
    def began(self) -> dt.datetime | None:
        """When the task started, or was created if it has no start time."""
        return self.start_time or self.create_time

    @property
    def duration(self) -> float | None:
        """Seconds from :attr:`began` to ``end_time``; ``None`` if unfinished or inconsistent."""
        began = self.began
        if began is None or self.end_time is None or self.end_time < began:
            return None
        return (self.end_time - began).total_seconds()


@dataclass(frozen=True)
class DurationStats:
    """Durations of the finished tasks of one type."""

    type: str
    finished: int
    median: float
    slowest: ReportTask
    slowest_seconds: float


@dataclass(frozen=True)
class IncompleteInstance:
    """An instance whose task list may miss tasks of the audited period."""

    instance_id: str
    oldest_listed: dt.datetime | None


@dataclass(frozen=True)
class ReportData:
    """Everything the page shows."""

    tasks: tuple[ReportTask, ...]
    by_type: dict[str, int]
    by_status: dict[str, int]
    by_type_status: dict[str, dict[str, int]]
    statuses: tuple[str, ...]
    durations: tuple[DurationStats, ...]
    failed: tuple[ReportTask, ...]
    instances: dict[str, tuple[ReportTask, ...]]
    incomplete: tuple[IncompleteInstance, ...] | None
    first: dt.datetime | None
    last: dt.datetime | None

    def summary(self) -> dict[str, Any]:
        """The counts as JSON-able values (the operator's XCom)."""
        return {
            "records": len(self.tasks),
            "instances": len(self.instances),
            "by_type": dict(self.by_type),
            "by_status": dict(self.by_status),
            "failed": len(self.failed),
            "incomplete_instances": None if self.incomplete is None else len(self.incomplete),
        }


def _lookup(record: Mapping[str, Any], dotted: str) -> Any:
    """``record[dotted]`` (flat, as CSV gives it) or the nested value at that path."""
    if dotted in record:
        return record[dotted]
    value: Any = record
    for part in dotted.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = value if isinstance(value, str) else str(value)
    return text if text.strip() else None


def parse_time(value: Any, field: str) -> dt.datetime | None:
    """A time from a record: an ISO string (``...Z``) or a datetime (naive means UTC)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    moment: dt.datetime
    if isinstance(value, dt.datetime):
        moment = value
    elif isinstance(value, str):
        try:
            moment = dt.datetime.fromisoformat(value.strip())
        except ValueError as exc:
            raise ValueError(
                f"{field} must be an ISO-8601 time such as 2024-05-01T12:00:00.000Z; "
                f"got {value[:80]!r}"
            ) from exc
    else:
        raise ValueError(
            f"{field} must be an ISO-8601 time string or a datetime; got {type(value).__name__}"
        )
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC)


def report_task(record: Mapping[str, Any], index: int = 0) -> ReportTask:
    """One record (nested or flat, native or string values) as a :class:`ReportTask`."""
    if not isinstance(record, Mapping):
        raise ValueError(
            f"records item {index} must be a task record (a mapping); got {type(record).__name__}"
        )
    flavor_type = _text(_lookup(record, "target_config.flavor.type"))
    flavor_size = _text(_lookup(record, "target_config.flavor.size"))
    target = None
    if flavor_type is not None:
        target = flavor_type if flavor_size is None else f"{flavor_type} \u00d7 {flavor_size}"
    return ReportTask(
        instance_id=_text(record.get("instance_id")) or "",
        task_id=_text(record.get("task_id")) or "",
        type=_text(record.get("type")) or UNKNOWN,
        status=_text(record.get("status")) or UNKNOWN,
        status_detail=_text(record.get("status_detail")),
        create_time=parse_time(record.get("create_time"), f"create_time of records item {index}"),
        start_time=parse_time(record.get("start_time"), f"start_time of records item {index}"),
        end_time=parse_time(record.get("end_time"), f"end_time of records item {index}"),
        target=target,
    )


def list_value(value: Any, field: str, expected: str) -> list[Any]:
    """``value`` as a list: a list or tuple, or its JSON or Python text (what a template
    renders without ``render_template_as_native_obj``); ``expected`` says what it should be."""
    if isinstance(value, str):
        text = value.strip()
        try:
            value = json.loads(text)
        except ValueError:
            try:
                value = ast.literal_eval(text)
            except (ValueError, SyntaxError) as exc:
                raise ValueError(
                    f"{field} must be {expected}; got text that is neither JSON nor a Python "
                    f"list: {text[:80]!r}"
                ) from exc
    if not isinstance(value, list | tuple):
        raise ValueError(f"{field} must be {expected}; got {type(value).__name__}")
    return list(value)


def parse_incomplete(value: Any, field: str = "incomplete_instances") -> list[IncompleteInstance]:
    """The list operator's ``incomplete_instances``: ``[{"instance_id", "oldest_listed"}]``.

    Also accepted: JSON or Python list text (as a non-native template renders it), empty text
    and plain instance IDs.
    """
    if isinstance(value, str) and not value.strip():
        return []
    value = list_value(
        value,
        field,
        "a list of {'instance_id', 'oldest_listed'} mappings (the incomplete_instances of the "
        "list operator's summary)",
    )
    result = []
    for i, item in enumerate(value):
        if isinstance(item, str) and item.strip():
            result.append(IncompleteInstance(item.strip(), None))
        elif isinstance(item, Mapping) and _text(item.get("instance_id")):
            result.append(
                IncompleteInstance(
                    str(item["instance_id"]),
                    parse_time(item.get("oldest_listed"), f"oldest_listed of {field} item {i}"),
                )
            )
        else:
            raise ValueError(
                f"{field} item {i} must be a mapping with an 'instance_id' (and 'oldest_listed') "
                f"or an instance ID; got {str(item)[:80]!r}"
            )
    return result


def _status_key(status: str) -> tuple[int, str]:
    return (
        (STATUS_ORDER.index(status), "") if status in STATUS_ORDER else (len(STATUS_ORDER), status)
    )


def _newest_first(task: ReportTask) -> tuple[float, str]:
    moment = task.create_time or task.began
    return (-(moment.timestamp() if moment else float("-inf")), task.task_id)


def _oldest_first(task: ReportTask) -> tuple[float, str]:
    moment = task.began or task.create_time
    return (moment.timestamp() if moment else float("inf"), task.task_id)


def _by_status_key(counts: Mapping[str, int]) -> dict[str, int]:
    return dict(sorted(counts.items(), key=lambda kv: _status_key(kv[0])))


def _by_type_status(tasks: Iterable[ReportTask]) -> dict[str, dict[str, int]]:
    table: dict[str, Counter[str]] = {}
    for t in tasks:
        table.setdefault(t.type, Counter())[t.status] += 1
    return {k: _by_status_key(v) for k, v in sorted(table.items())}


def _durations(tasks: Sequence[ReportTask], types: Iterable[str]) -> tuple[DurationStats, ...]:
    durations = []
    for task_type in types:
        timed = [(t, d) for t in tasks if t.type == task_type and (d := t.duration) is not None]
        if not timed:
            continue
        slowest, slowest_seconds = max(timed, key=lambda item: item[1])
        durations.append(
            DurationStats(
                type=task_type,
                finished=len(timed),
                median=float(statistics.median(d for _, d in timed)),
                slowest=slowest,
                slowest_seconds=slowest_seconds,
            )
        )
    return tuple(durations)


def build(
    records: Iterable[Mapping[str, Any]],
    incomplete_instances: Any = None,
) -> ReportData:
    """The report's numbers.

    ``incomplete_instances`` is ``None`` (not checked: the page says so) or the list
    operator's ``summary["incomplete_instances"]`` (see :func:`parse_incomplete`).
    """
    tasks = tuple(report_task(r, i) for i, r in enumerate(records))
    incomplete = None if incomplete_instances is None else parse_incomplete(incomplete_instances)
    by_type = dict(sorted(Counter(t.type for t in tasks).items()))
    instances: dict[str, list[ReportTask]] = {}
    for t in tasks:
        instances.setdefault(t.instance_id, []).append(t)
    moments = [m for t in tasks for m in (t.create_time, t.start_time, t.end_time) if m]
    return ReportData(
        tasks=tasks,
        by_type=by_type,
        by_status=_by_status_key(Counter(t.status for t in tasks)),
        by_type_status=_by_type_status(tasks),
        statuses=tuple(sorted({t.status for t in tasks}, key=_status_key)),
        durations=_durations(tasks, by_type),
        failed=tuple(sorted((t for t in tasks if t.status == "FAILED"), key=_newest_first)),
        instances={i: tuple(sorted(ts, key=_oldest_first)) for i, ts in sorted(instances.items())},
        incomplete=None if incomplete is None else tuple(incomplete),
        first=min(moments) if moments else None,
        last=max(moments) if moments else None,
    )


# -- formatting -------------------------------------------------------------------------------


def format_duration(seconds: float) -> str:
    """``45 s``, ``3 min 20 s``, ``2 h 05 min``, ``3 d 4 h``."""
    total = round(seconds)
    if total < 60:
        return f"{seconds:.1f} s" if 0 < seconds < 10 and seconds != total else f"{total} s"
    minutes, secs = divmod(total, 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes:02d} min"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h"


def format_time(moment: dt.datetime | None) -> str:
    """``2024-05-01 12:00:05`` (UTC), or an em dash."""
    return "\u2014" if moment is None else moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def colour(status: str) -> str:
    """The colour a status is drawn in."""
    return STATUS_COLOURS.get(status, OTHER_COLOUR)


def _short(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "\u2026"


_TICK_STEPS = (
    60,
    300,
    600,
    900,
    1800,
    3600,
    2 * 3600,
    3 * 3600,
    6 * 3600,
    12 * 3600,
    86400,
    2 * 86400,
    7 * 86400,
    14 * 86400,
    30 * 86400,
    90 * 86400,
)


def time_ticks(start: dt.datetime, end: dt.datetime, most: int = 8) -> list[dt.datetime]:
    """Round times (multiples of a step from the epoch) inside ``[start, end]``."""
    span = (end - start).total_seconds()
    step = next((s for s in _TICK_STEPS if span / s <= most), _TICK_STEPS[-1])
    first = -(-int(start.timestamp()) // step) * step
    return [
        dt.datetime.fromtimestamp(t, dt.UTC) for t in range(first, int(end.timestamp()) + 1, step)
    ]


def _tick_label(moment: dt.datetime) -> str:
    """The date at midnight, else the time of day."""
    if moment.hour == 0 and moment.minute == 0:
        return moment.strftime("%b %d")
    return moment.strftime("%H:%M")


# -- what the templates draw ------------------------------------------------------------------
# The page is templates/report.html.j2 (with report.css and report_macros.html.j2), rendered by
# Jinja2 with autoescaping: every value from the records is escaped by the template engine.
# The geometry is computed here, so the templates only lay it out.

#: Timeline geometry (SVG user units; the SVG scales to the page width).
TIMELINE_WIDTH = 1060
TIMELINE_LABEL = 250
TIMELINE_RIGHT = 96
TIMELINE_ROW = 24
TIMELINE_AXIS = 26
#: Width of the stacked bars of the counts table (pixels).
STACKED_BAR_WIDTH = 180


@dataclass(frozen=True)
class Segment:
    """One status's part of a stacked bar."""

    status: str
    count: int
    x: float
    width: float


@dataclass(frozen=True)
class TimelineRow:
    """One task's row in an instance's timeline (SVG user units)."""

    task: ReportTask
    y: int
    mid: float
    tooltip: str
    waited: tuple[float, float] | None  # created -> started, drawn as a dashed line
    bar: tuple[float, float] | None  # x and width: start to end, or to the axis end if unfinished
    finished: bool
    label: str


@dataclass(frozen=True)
class Timeline:
    """One instance's timeline."""

    instance_id: str
    summary: str
    flagged: bool
    height: int
    ticks: tuple[tuple[float, str], ...]
    rows: tuple[TimelineRow, ...]


def stacked_bar(
    row: Mapping[str, int], total: int, width: int = STACKED_BAR_WIDTH
) -> list[Segment]:
    """The segments of a bar ``width`` wide split by the counts of ``row`` (none if empty)."""
    segments: list[Segment] = []
    if total <= 0:
        return segments
    x = 0.0
    for status, count in row.items():
        part = width * count / total
        segments.append(Segment(status, count, x, part))
        x += part
    return segments


def _timeline_domain(data: ReportData) -> tuple[dt.datetime, dt.datetime] | None:
    if data.first is None or data.last is None:
        return None
    start, end = data.first, data.last
    span = (end - start).total_seconds()
    pad = dt.timedelta(seconds=max(span * 0.02, 60))
    return start - pad, end + pad


def _tooltip(t: ReportTask) -> str:
    return (
        f"{t.type} {t.status} \u2022 task {t.task_id}\n"
        f"created {format_time(t.create_time)}, started {format_time(t.start_time)}, "
        f"ended {format_time(t.end_time)}" + (f"\n{t.status_detail}" if t.status_detail else "")
    )


def _timeline_row(
    t: ReportTask, row: int, x: Callable[[dt.datetime], float], end: dt.datetime
) -> TimelineRow:
    y = TIMELINE_AXIS + row * TIMELINE_ROW
    began = t.began
    waited = None
    if t.create_time is not None and began is not None and began > t.create_time:
        waited = (x(t.create_time), x(began))
    finished = began is not None and t.end_time is not None and t.end_time >= began
    bar = None
    if began is None:
        label = "no time"
    else:
        x0 = x(began)
        x1 = x(t.end_time if finished and t.end_time is not None else end)
        bar = (x0, max(x1 - x0, 3.0))
        if finished:
            label = format_duration(t.duration or 0.0)
        else:
            label = "running" if t.status == "RUNNING" else t.status.lower()
    return TimelineRow(
        task=t,
        y=y,
        mid=y + TIMELINE_ROW / 2,
        tooltip=_tooltip(t),
        waited=waited,
        bar=bar,
        finished=finished,
        label=_short(label, 14),
    )


def timelines(data: ReportData) -> list[Timeline]:
    """A timeline per instance, all on one time axis (none without any time)."""
    domain = _timeline_domain(data)
    if domain is None:
        return []
    start, end = domain
    span = (end - start).total_seconds()
    plot = TIMELINE_WIDTH - TIMELINE_LABEL - TIMELINE_RIGHT

    def x(moment: dt.datetime) -> float:
        return TIMELINE_LABEL + plot * (moment - start).total_seconds() / span

    flagged = {i.instance_id for i in data.incomplete or ()}
    result = []
    for instance_id, tasks in data.instances.items():
        counts = Counter(t.status for t in tasks)
        result.append(
            Timeline(
                instance_id=instance_id,
                summary=", ".join(
                    f"{counts[s]} {s.lower()}" for s in sorted(counts, key=_status_key)
                ),
                flagged=instance_id in flagged,
                height=TIMELINE_AXIS + TIMELINE_ROW * len(tasks) + 6,
                ticks=tuple((x(tick), _tick_label(tick)) for tick in time_ticks(start, end)),
                rows=tuple(_timeline_row(t, i, x, end) for i, t in enumerate(tasks)),
            )
        )
    return result


def legend_statuses(data: ReportData) -> list[str]:
    """The statuses the timeline legend names: the usual four, then any other seen."""
    return [*STATUS_ORDER, *(s for s in data.statuses if s not in STATUS_ORDER)]


@functools.cache
def _environment() -> jinja2.Environment:
    import jinja2

    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("airflow_provider_iotda", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    environment.globals.update(
        colour=colour,
        format_duration=format_duration,
        format_time=format_time,
        short=_short,
        stacked_bar=stacked_bar,
        geometry={
            "width": TIMELINE_WIDTH,
            "label": TIMELINE_LABEL,
            "plot": TIMELINE_WIDTH - TIMELINE_LABEL - TIMELINE_RIGHT,
            "row": TIMELINE_ROW,
            "axis": TIMELINE_AXIS,
            "bar": STACKED_BAR_WIDTH,
        },
    )
    environment.filters["fixed"] = lambda value, digits=1: f"{value:.{digits}f}"
    return environment


def render_html(
    data: ReportData,
    *,
    title: str,
    generated_at: dt.datetime,
    source: str | None = None,
) -> str:
    """The whole page as one HTML document (inline CSS and SVG only)."""
    template = _environment().get_template("report.html.j2")
    return template.render(
        data=data,
        title=title,
        generated_at=generated_at,
        source=source,
        unfinished=sum(1 for t in data.tasks if t.end_time is None),
        timelines=timelines(data),
        legend=legend_statuses(data),
    )
