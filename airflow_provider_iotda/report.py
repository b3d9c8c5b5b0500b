"""The audit report: statistics of instance-task records and one self-contained HTML page.

Pure functions (no Airflow import), used by ``IoTDAInstanceTaskReportOperator``:
:func:`build` turns records into :class:`ReportData` (the numbers the page shows) and
:func:`render_html` turns that into one HTML document with inline CSS and SVG -- no script, no
font, image or style sheet from anywhere else, so it opens offline and as an e-mail attachment.

Records come in every shape the list operator writes: nested with native values (JSON, JSON
Lines, XCom) or flat with string values (CSV: ``target_config.flavor.type`` keys, an empty cell
for null); times may be API strings or datetimes.  Everything taken from the records is
HTML-escaped.
"""

from __future__ import annotations

import ast
import datetime as dt
import html
import json
import statistics
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

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


def parse_incomplete(value: Any, field: str = "incomplete_instances") -> list[IncompleteInstance]:
    """The list operator's ``incomplete_instances``: ``[{"instance_id", "oldest_listed"}]``.

    Also accepted: JSON or Python list text (as a non-native template renders it) and plain
    instance IDs.
    """
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return []
        try:
            value = json.loads(text)
        except ValueError:
            try:
                value = ast.literal_eval(text)
            except (ValueError, SyntaxError) as exc:
                raise ValueError(
                    f"{field} must be a list of {{'instance_id', 'oldest_listed'}} mappings "
                    f"(the list operator's summary key incomplete_instances); got {text[:80]!r}"
                ) from exc
    if not isinstance(value, list | tuple):
        raise ValueError(
            f"{field} must be a list of {{'instance_id', 'oldest_listed'}} mappings; "
            f"got {type(value).__name__}"
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

    statuses = tuple(sorted({t.status for t in tasks}, key=_status_key))
    by_type = dict(sorted(Counter(t.type for t in tasks).items()))
    by_status = {
        s: n
        for s, n in sorted(
            Counter(t.status for t in tasks).items(), key=lambda kv: _status_key(kv[0])
        )
    }
    by_type_status: dict[str, dict[str, int]] = {}
    for t in tasks:
        row = by_type_status.setdefault(t.type, {})
        row[t.status] = row.get(t.status, 0) + 1
    by_type_status = {
        k: dict(sorted(v.items(), key=lambda kv: _status_key(kv[0])))
        for k, v in sorted(by_type_status.items())
    }

    durations = []
    for task_type in by_type:
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

    instances: dict[str, list[ReportTask]] = {}
    for t in tasks:
        instances.setdefault(t.instance_id, []).append(t)
    moments = [m for t in tasks for m in (t.create_time, t.start_time, t.end_time) if m]
    return ReportData(
        tasks=tasks,
        by_type=by_type,
        by_status=by_status,
        by_type_status=by_type_status,
        statuses=statuses,
        durations=tuple(durations),
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


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _colour(status: str) -> str:
    return STATUS_COLOURS.get(status, OTHER_COLOUR)


def _short(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "\u2026"


def _badge(status: str) -> str:
    return f'<span class="badge" style="background:{_colour(status)}">{_e(status)}</span>'


# -- the page ---------------------------------------------------------------------------------

_CSS = """
:root{color-scheme:light}
*{box-sizing:border-box}
body{margin:0;background:#eef1f6;color:#1d2433;
font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
main{max-width:1120px;margin:0 auto;padding:28px 24px 40px}
h1{font-size:26px;margin:0 0 4px;letter-spacing:-.01em}
h2{font-size:17px;margin:0 0 12px}
h3{font-size:14px;margin:18px 0 6px;font-weight:600}
.meta{color:#5b6478;margin:0}
.cards{display:flex;flex-wrap:wrap;gap:12px;margin:20px 0 8px}
.card{flex:1 1 150px;background:#fff;border-radius:10px;padding:12px 16px;
border-top:4px solid #3b7dd8;box-shadow:0 1px 3px rgba(16,24,40,.08)}
.card .n{font-size:28px;font-weight:700;line-height:1.2}
.card .l{color:#5b6478;font-size:12px;text-transform:uppercase;letter-spacing:.04em}
.card.ok{border-top-color:#2f9e63}.card.bad{border-top-color:#d64545}
.card.warn{border-top-color:#d99a1e}.card.none{border-top-color:#b8bfcc}
section{background:#fff;border-radius:10px;padding:18px 20px;margin:16px 0;
box-shadow:0 1px 3px rgba(16,24,40,.08)}
section.alert{border-left:5px solid #d99a1e;background:#fffaf0}
table{border-collapse:collapse;width:100%}
th,td{padding:6px 10px;border-bottom:1px solid #e6e9f0;text-align:left;vertical-align:top}
th{font-size:12px;color:#5b6478;text-transform:uppercase;letter-spacing:.04em;font-weight:600}
tr:last-child td{border-bottom:none}
tfoot td{font-weight:600;border-top:2px solid #d5dae3}
.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.zero{color:#b8bfcc}
.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12.5px;
word-break:break-all}
.detail{white-space:pre-wrap;word-break:break-word;color:#9b1c1c}
.badge{display:inline-block;padding:1px 8px;border-radius:999px;color:#fff;font-size:11.5px;
font-weight:600;letter-spacing:.02em}
.legend{display:flex;flex-wrap:wrap;gap:14px;color:#5b6478;font-size:12.5px;margin:0 0 4px}
.legend .sw{display:inline-block;width:12px;height:12px;border-radius:3px;margin-right:5px;
vertical-align:-1px}
.muted{color:#5b6478}
.flag{color:#a86b00}
.empty{color:#5b6478;font-style:italic;margin:0}
svg{display:block;width:100%;height:auto}
svg text{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif}
footer{color:#8a94a6;font-size:12px;text-align:center;margin-top:24px}
@media print{body{background:#fff}section,.card{box-shadow:none;border:1px solid #d5dae3}}
"""


def _cards(data: ReportData) -> str:
    failed = len(data.failed)
    unfinished = sum(1 for t in data.tasks if t.end_time is None)
    if data.incomplete is None:
        incomplete = ("none", "\u2014", "incomplete: not checked")
    else:
        n = len(data.incomplete)
        incomplete = ("warn" if n else "ok", str(n), "incomplete instances")
    cards = [
        ("", str(len(data.tasks)), "tasks"),
        ("", str(len(data.instances)), "instances"),
        ("bad" if failed else "ok", str(failed), "failed"),
        ("", str(unfinished), "not finished"),
        incomplete,
    ]
    items = "".join(
        f'<div class="card {kind}"><div class="n">{_e(n)}</div><div class="l">{_e(label)}</div>'
        "</div>"
        for kind, n, label in cards
    )
    return f'<div class="cards">{items}</div>'


def _incomplete_section(data: ReportData) -> str:
    if not data.incomplete:
        return ""
    rows = "".join(
        f'<tr><td class="mono">{_e(i.instance_id)}</td><td>{_e(format_time(i.oldest_listed))}'
        "</td></tr>"
        for i in data.incomplete
    )
    return (
        '<section class="alert"><h2>Instances flagged incomplete</h2>'
        '<p class="muted">IoTDA keeps at most 20 tasks per instance, for 180 days. These '
        "instances listed the maximum and their oldest listed task is newer than the start of "
        "the audited period, so some of its tasks may already be gone. Run the audit more often "
        "to close the gap.</p>"
        "<table><thead><tr><th>Instance</th><th>Oldest listed task created (UTC)</th></tr>"
        f"</thead><tbody>{rows}</tbody></table></section>"
    )


def _stacked_bar(row: Mapping[str, int], total: int, width: int = 180) -> str:
    if total <= 0:
        return ""
    parts = []
    x = 0.0
    for status, n in row.items():
        w = width * n / total
        parts.append(
            f'<rect x="{x:.2f}" y="0" width="{w:.2f}" height="12" fill="{_colour(status)}">'
            f"<title>{_e(status)}: {n}</title></rect>"
        )
        x += w
    return (
        f'<svg width="{width}" height="12" viewBox="0 0 {width} 12" role="img" '
        f'style="width:{width}px;border-radius:3px;overflow:hidden">{"".join(parts)}</svg>'
    )


def _counts_section(data: ReportData) -> str:
    if not data.tasks:
        return '<section><h2>Counts by type and status</h2><p class="empty">No task.</p></section>'
    head = "".join(f'<th class="num">{_badge(s)}</th>' for s in data.statuses)
    body = []
    for task_type, row in data.by_type_status.items():
        cells = "".join(
            f'<td class="num">{row[s]}</td>' if row.get(s) else '<td class="num zero">0</td>'
            for s in data.statuses
        )
        total = data.by_type[task_type]
        body.append(
            f'<tr><td>{_e(task_type)}</td>{cells}<td class="num">{total}</td>'
            f"<td>{_stacked_bar(row, total)}</td></tr>"
        )
    foot = "".join(f'<td class="num">{data.by_status.get(s, 0)}</td>' for s in data.statuses)
    return (
        "<section><h2>Counts by type and status</h2><table>"
        f'<thead><tr><th>Type</th>{head}<th class="num">Total</th><th></th></tr></thead>'
        f"<tbody>{''.join(body)}</tbody>"
        f'<tfoot><tr><td>All types</td>{foot}<td class="num">{len(data.tasks)}</td>'
        f"<td>{_stacked_bar(data.by_status, len(data.tasks))}</td></tr></tfoot></table></section>"
    )


def _durations_section(data: ReportData) -> str:
    title = "<h2>Durations by type</h2>"
    note = (
        '<p class="muted">Finished tasks only: from start (or creation, when a task has no start '
        "time) to end.</p>"
    )
    if not data.durations:
        return f'<section>{title}<p class="empty">No finished task.</p></section>'
    rows = "".join(
        f'<tr><td>{_e(d.type)}</td><td class="num">{d.finished}</td>'
        f'<td class="num">{_e(format_duration(d.median))}</td>'
        f'<td class="num">{_e(format_duration(d.slowest_seconds))}</td>'
        f'<td><span class="mono">{_e(d.slowest.task_id)}</span> {_badge(d.slowest.status)}<br>'
        f'<span class="muted">instance <span class="mono">{_e(d.slowest.instance_id)}</span>'
        f"</span></td></tr>"
        for d in data.durations
    )
    return (
        f'<section>{title}{note}<table><thead><tr><th>Type</th><th class="num">Finished</th>'
        '<th class="num">Median</th><th class="num">Slowest</th><th>Slowest task</th></tr>'
        f"</thead><tbody>{rows}</tbody></table></section>"
    )


def _failed_section(data: ReportData) -> str:
    title = f"<h2>Failed tasks ({len(data.failed)})</h2>"
    if not data.failed:
        return f'<section>{title}<p class="empty">No task failed.</p></section>'
    rows = "".join(
        f'<tr><td class="num">{_e(format_time(t.create_time))}</td>'
        f'<td class="mono">{_e(t.instance_id)}</td><td class="mono">{_e(t.task_id)}</td>'
        f"<td>{_e(t.type)}"
        + (f'<br><span class="muted">{_e(t.target)}</span>' if t.target else "")
        + f'</td><td class="detail">{_e(t.status_detail or "(no status_detail)")}</td></tr>'
        for t in data.failed
    )
    return (
        f"<section>{title}<table><thead><tr><th>Created (UTC)</th><th>Instance</th>"
        "<th>Task</th><th>Type</th><th>Status detail</th></tr></thead>"
        f"<tbody>{rows}</tbody></table></section>"
    )


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


# Timeline geometry (SVG user units; the SVG scales to the page width).
_W = 1060
_LABEL = 250
_RIGHT = 96
_ROW = 24
_AXIS = 26


def _timeline_domain(data: ReportData) -> tuple[dt.datetime, dt.datetime] | None:
    if data.first is None or data.last is None:
        return None
    start, end = data.first, data.last
    span = (end - start).total_seconds()
    pad = dt.timedelta(seconds=max(span * 0.02, 60))
    return start - pad, end + pad


def _timeline_svg(tasks: Sequence[ReportTask], start: dt.datetime, end: dt.datetime) -> str:
    span = (end - start).total_seconds()
    plot = _W - _LABEL - _RIGHT

    def x(moment: dt.datetime) -> float:
        return _LABEL + plot * (moment - start).total_seconds() / span

    height = _AXIS + _ROW * len(tasks) + 6
    out = [
        f'<svg viewBox="0 0 {_W} {height}" width="{_W}" height="{height}" role="img" '
        'aria-label="timeline of the tasks of this instance">',
        f'<rect x="{_LABEL}" y="{_AXIS - 4}" width="{plot}" height="{height - _AXIS + 4}" '
        'fill="#f7f8fb"/>',
    ]
    for tick in time_ticks(start, end):
        tx = x(tick)
        out.append(
            f'<line x1="{tx:.1f}" y1="{_AXIS - 4}" x2="{tx:.1f}" y2="{height}" stroke="#dfe3ea"/>'
            f'<text x="{tx:.1f}" y="{_AXIS - 9}" font-size="11" fill="#5b6478" '
            f'text-anchor="middle">{_e(_tick_label(tick))}</text>'
        )
    for row, t in enumerate(tasks):
        y = _AXIS + row * _ROW
        mid = y + _ROW / 2
        colour = _colour(t.status)
        if row % 2:
            out.append(f'<rect x="0" y="{y}" width="{_LABEL - 8}" height="{_ROW}" fill="#f7f8fb"/>')
        tooltip = (
            f"{t.type} {t.status} \u2022 task {t.task_id}\n"
            f"created {format_time(t.create_time)}, started {format_time(t.start_time)}, "
            f"ended {format_time(t.end_time)}" + (f"\n{t.status_detail}" if t.status_detail else "")
        )
        out.append(f"<g><title>{_e(tooltip)}</title>")
        out.append(
            f'<text x="8" y="{mid + 4:.1f}" font-size="12" fill="#1d2433">'
            f'<tspan font-weight="600">{_e(_short(t.type, 22))}</tspan>'
            f'<tspan fill="#5b6478" font-size="11"> {_e(_short(t.task_id, 9))}</tspan></text>'
        )
        began = t.began
        if t.create_time is not None and began is not None and began > t.create_time:
            # waited between creation and start: a thin line
            out.append(
                f'<line x1="{x(t.create_time):.1f}" y1="{mid}" x2="{x(began):.1f}" y2="{mid}" '
                f'stroke="{colour}" stroke-width="2" stroke-dasharray="3 3"/>'
            )
        if began is not None:
            finished = t.end_time is not None and t.end_time >= began
            stop = t.end_time if finished and t.end_time is not None else end
            x0, x1 = x(began), x(stop)
            width = max(x1 - x0, 3.0)
            opacity = "" if finished else ' fill-opacity="0.35" stroke-dasharray="4 2"'
            out.append(
                f'<rect x="{x0:.1f}" y="{mid - 7:.1f}" width="{width:.1f}" height="14" rx="3" '
                f'fill="{colour}" stroke="{colour}"{opacity}/>'
            )
            label = (
                format_duration(t.duration or 0.0)
                if finished
                else ("running" if t.status == "RUNNING" else t.status.lower())
            )
        else:
            label = "no time"
        out.append(
            f'<text x="{_W - 6}" y="{mid + 4:.1f}" font-size="11.5" fill="{colour}" '
            f'text-anchor="end" font-weight="600">{_e(_short(label, 14))}</text></g>'
        )
    out.append("</svg>")
    return "".join(out)


def _timeline_section(data: ReportData) -> str:
    title = "<h2>Timeline per instance</h2>"
    domain = _timeline_domain(data)
    if not data.tasks or domain is None:
        return f'<section>{title}<p class="empty">No task with a time.</p></section>'
    start, end = domain
    shown = [*STATUS_ORDER, *(s for s in data.statuses if s not in STATUS_ORDER)]
    legend = "".join(
        f'<span><span class="sw" style="background:{_colour(s)}"></span>{_e(s)}</span>'
        for s in shown
        if s in data.statuses or s in STATUS_ORDER
    )
    legend += (
        "<span>dashed line: created, waiting to start</span><span>pale bar: not finished</span>"
        "<span>times in UTC</span>"
    )
    flagged = {i.instance_id for i in data.incomplete or ()}
    parts = [f'<section>{title}<div class="legend">{legend}</div>']
    for instance_id, tasks in data.instances.items():
        counts = Counter(t.status for t in tasks)
        summary = ", ".join(f"{counts[s]} {s.lower()}" for s in sorted(counts, key=_status_key))
        flag = (
            ' \u2022 <strong class="flag">flagged incomplete</strong>'
            if instance_id in flagged
            else ""
        )
        parts.append(
            f'<h3>Instance <span class="mono">{_e(instance_id or "(no instance_id)")}</span> '
            f'<span class="muted">\u2022 {len(tasks)} task(s): {_e(summary)}{flag}</span></h3>'
        )
        parts.append(_timeline_svg(tasks, start, end))
    parts.append("</section>")
    return "".join(parts)


def render_html(
    data: ReportData,
    *,
    title: str,
    generated_at: dt.datetime,
    source: str | None = None,
) -> str:
    """The whole page as one HTML document (inline CSS and SVG only)."""
    period = (
        f"tasks from {_e(format_time(data.first))} to {_e(format_time(data.last))} UTC"
        if data.first is not None
        else "no task"
    )
    origin = f' \u2022 source <span class="mono">{_e(source)}</span>' if source else ""
    body = [
        f"<header><h1>{_e(title)}</h1>",
        f'<p class="meta">{period}{origin}</p>',
        f'<p class="meta">generated {_e(format_time(generated_at))} UTC</p></header>',
        _cards(data),
        _incomplete_section(data),
    ]
    if not data.tasks:
        body.append(
            '<section><h2>No task</h2><p class="empty">The records hold no task: nothing was '
            "created in the audited period, or every task was filtered out.</p></section>"
        )
    else:
        body += [
            _counts_section(data),
            _durations_section(data),
            _failed_section(data),
            _timeline_section(data),
        ]
    body.append("<footer>airflow-provider-iotda \u2022 IoTDA instance task report</footer>")
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{_CSS}</style></head>"
        f"<body><main>{''.join(body)}</main></body></html>\n"
    )
