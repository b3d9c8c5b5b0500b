"""The audit report's numbers and page (airflow_provider_iotda.report): counts, durations,
the failed list, incomplete instances, both record shapes (nested and CSV-flat), escaping,
empty input, and that the page needs nothing from the network."""

from __future__ import annotations

import datetime as dt
import fnmatch
import re
import tomllib
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_iotda import records, report

A = "aaaaaaaa-0000-4000-8000-00000000000a"
B = "bbbbbbbb-0000-4000-8000-00000000000b"
GENERATED = dt.datetime(2024, 5, 2, 0, 5, tzinfo=dt.UTC)
REPO = Path(__file__).resolve().parents[2]
TEMPLATES = Path(report.__file__).parent / "templates"


def task(
    task_id: str,
    type: str,
    status: str,
    create: str | None,
    start: str | None = None,
    end: str | None = None,
    instance: str = A,
    **fields: Any,
) -> dict[str, Any]:
    """A record as the list operator writes it (times as the API's strings)."""

    def api(hhmmss: str | None) -> str | None:
        return None if hhmmss is None else f"2024-05-01T{hhmmss}.000Z"

    return {
        "instance_id": instance,
        "project_id": "0123456789abcdef0123456789abcdef",
        "task_id": task_id,
        "type": type,
        "status": status,
        "status_detail": None,
        "create_time": api(create),
        "start_time": api(start),
        "end_time": api(end),
        "target_config": None,
        "operate_window": None,
        **fields,
    }


# MODIFY durations: 10 min, 30 min, 20 min (from create: no start), 2 h; one MODIFY unfinished.
RECORDS = [
    task("m1", "MODIFY", "SUCCESS", "01:00:00", "01:00:00", "01:10:00"),
    task("m2", "MODIFY", "SUCCESS", "02:00:00", "02:05:00", "02:35:00"),
    task("m3", "MODIFY", "FAILED", "03:00:00", None, "03:20:00", status_detail="no capacity"),
    task("m4", "MODIFY", "SUCCESS", "04:00:00", "04:00:00", "06:00:00", instance=B),
    task("m5", "MODIFY", "RUNNING", "07:00:00", "07:01:00", None, instance=B),
    task("c1", "CREATE", "SUCCESS", "00:00:00", "00:00:00", "00:00:45"),
    task("f1", "FREEZE", "PENDING", "08:00:00"),
    task(
        "f2",
        "FREEZE",
        "FAILED",
        "09:00:00",
        "09:00:00",
        "09:00:01",
        instance=B,
        status_detail="quota exceeded",
        target_config={"flavor": {"type": "iotda.standard.s3", "size": 2}},
    ),
]


def at(hhmmss: str) -> dt.datetime:
    return dt.datetime.fromisoformat(f"2024-05-01T{hhmmss}+00:00")


class TestNumbers:
    def test_counts_by_type_and_status(self) -> None:
        data = report.build(RECORDS)
        assert data.by_type == {"CREATE": 1, "FREEZE": 2, "MODIFY": 5}
        assert data.by_status == {"SUCCESS": 4, "FAILED": 2, "RUNNING": 1, "PENDING": 1}
        assert data.by_type_status == {
            "CREATE": {"SUCCESS": 1},
            "FREEZE": {"FAILED": 1, "PENDING": 1},
            "MODIFY": {"SUCCESS": 3, "FAILED": 1, "RUNNING": 1},
        }
        assert data.statuses == ("SUCCESS", "FAILED", "RUNNING", "PENDING")
        assert list(data.instances) == [A, B]
        assert [t.task_id for t in data.instances[A]] == ["c1", "m1", "m2", "m3", "f1"]

    def test_durations_median_and_slowest(self) -> None:
        durations = {d.type: d for d in report.build(RECORDS).durations}
        modify = durations["MODIFY"]
        assert modify.finished == 4  # m5 is still running
        # 600, 1200 (m3: from creation), 1800, 7200 -> median (1200 + 1800) / 2
        assert modify.median == 1500.0
        assert modify.slowest.task_id == "m4"
        assert modify.slowest_seconds == 7200.0
        assert (durations["CREATE"].median, durations["CREATE"].slowest_seconds) == (45.0, 45.0)
        assert durations["FREEZE"].finished == 1  # f1 is pending
        assert list(durations) == ["CREATE", "FREEZE", "MODIFY"]

    def test_median_of_an_odd_count(self) -> None:
        data = report.build(RECORDS[:3])  # 600, 1800, 1200
        assert data.durations[0].median == 1200.0

    def test_failed_newest_first_with_detail(self) -> None:
        failed = report.build(RECORDS).failed
        assert [(t.task_id, t.status_detail) for t in failed] == [
            ("f2", "quota exceeded"),
            ("m3", "no capacity"),
        ]
        assert failed[0].target == "iotda.standard.s3 \u00d7 2"

    def test_duration_rules(self) -> None:
        tasks = [report.report_task(r) for r in RECORDS]
        by_id = {t.task_id: t for t in tasks}
        assert by_id["m3"].duration == 1200.0  # no start: from creation
        assert by_id["m5"].duration is None  # not finished
        assert by_id["f1"].duration is None
        backwards = report.report_task(
            task("x", "MODIFY", "SUCCESS", "05:00:00", "05:00:00", "04:00:00")
        )
        assert backwards.duration is None  # inconsistent times are not a duration

    def test_period(self) -> None:
        data = report.build(RECORDS)
        assert (data.first, data.last) == (at("00:00:00"), at("09:00:01"))

    def test_summary(self) -> None:
        summary = report.build(RECORDS, [{"instance_id": B, "oldest_listed": None}]).summary()
        assert summary == {
            "records": 8,
            "instances": 2,
            "by_type": {"CREATE": 1, "FREEZE": 2, "MODIFY": 5},
            "by_status": {"SUCCESS": 4, "FAILED": 2, "RUNNING": 1, "PENDING": 1},
            "failed": 2,
            "incomplete_instances": 1,
        }
        assert report.build(RECORDS).summary()["incomplete_instances"] is None

    def test_empty(self) -> None:
        data = report.build([])
        assert (data.by_type, data.by_status, data.durations, data.failed) == ({}, {}, (), ())
        assert (data.first, data.last, data.instances) == (None, None, {})
        assert data.summary()["records"] == 0

    def test_unknown_type_and_status_are_counted(self) -> None:
        data = report.build([task("u", "", "ROLLING_BACK", "01:00:00"), {"task_id": "v"}])
        assert data.by_status == {"ROLLING_BACK": 1, "UNKNOWN": 1}
        assert data.by_type == {"UNKNOWN": 2}
        assert data.statuses == ("ROLLING_BACK", "UNKNOWN")


class TestShapes:
    def test_csv_records_give_the_same_numbers(self) -> None:
        """CSV reads back flat, every value a string (empty for null)."""
        flat = records.parse(records.serialise(RECORDS, "csv"), "csv")
        assert flat[7]["target_config.flavor.size"] == "2"
        assert flat[0]["status_detail"] == ""
        nested, from_csv = report.build(RECORDS), report.build(flat)
        assert from_csv.by_type_status == nested.by_type_status
        assert from_csv.durations == nested.durations
        assert from_csv.failed == nested.failed
        assert from_csv.failed[0].target == "iotda.standard.s3 \u00d7 2"

    @pytest.mark.parametrize("fmt", ["json", "jsonl"])
    def test_text_formats_round_trip(self, fmt: str) -> None:
        parsed = records.parse(records.serialise(RECORDS, fmt), fmt)
        assert report.build(parsed) == report.build(RECORDS)

    def test_datetime_values(self) -> None:
        """Formats with typed times (Parquet) give datetimes; naive ones mean UTC."""
        record = task("d", "MODIFY", "SUCCESS", None)
        record.update(
            create_time=dt.datetime(2024, 5, 1, 1, 0),
            start_time=dt.datetime(2024, 5, 1, 3, 0, tzinfo=dt.timezone(dt.timedelta(hours=2))),
            end_time=dt.datetime(2024, 5, 1, 1, 30, tzinfo=dt.UTC),
        )
        parsed = report.report_task(record)
        assert parsed.create_time == at("01:00:00")
        assert parsed.start_time == at("01:00:00")
        assert parsed.duration == 1800.0

    def test_bad_time_names_the_record_and_field(self) -> None:
        with pytest.raises(
            ValueError, match=r"end_time of records item 1 must be an ISO-8601 time"
        ):
            report.build([RECORDS[0], {**RECORDS[1], "end_time": "yesterday"}])
        with pytest.raises(ValueError, match=r"create_time of records item 0 .* got int"):
            report.build([{**RECORDS[1], "create_time": 1714521600}])

    def test_a_record_must_be_a_mapping(self) -> None:
        with pytest.raises(ValueError, match=r"records item 0 must be a task record"):
            report.build(["m1"])  # type: ignore[list-item]


class TestIncomplete:
    def test_forms(self) -> None:
        want = [
            report.IncompleteInstance(A, at("03:00:00")),
            report.IncompleteInstance(B, None),
        ]
        value = [{"instance_id": A, "oldest_listed": "2024-05-01T03:00:00.000Z"}, B]
        assert report.parse_incomplete(value) == want
        assert report.parse_incomplete(repr(value)) == want  # a non-native template's text
        assert report.parse_incomplete(f'[{{"instance_id": "{B}"}}]') == want[1:]
        assert report.parse_incomplete("") == []

    @pytest.mark.parametrize(
        ("value", "message"),
        [
            (42, r"incomplete_instances must be a list .* got int"),
            ("not a list", r"incomplete_instances must be a list"),
            ([{"oldest_listed": None}], r"incomplete_instances item 0 must be a mapping with"),
            (
                [{"instance_id": A, "oldest_listed": "soon"}],
                r"oldest_listed of incomplete_instances item 0 must be",
            ),
        ],
    )
    def test_bad(self, value: object, message: str) -> None:
        with pytest.raises(ValueError, match=message):
            report.parse_incomplete(value)


class TestFormatting:
    @pytest.mark.parametrize(
        ("seconds", "text"),
        [
            (0, "0 s"),
            (1.25, "1.2 s"),
            (45, "45 s"),
            (200, "3 min 20 s"),
            (7500, "2 h 05 min"),
            (3 * 86400 + 4 * 3600 + 59, "3 d 4 h"),
        ],
    )
    def test_durations(self, seconds: float, text: str) -> None:
        assert report.format_duration(seconds) == text

    def test_ticks_are_round_and_inside(self) -> None:
        ticks = report.time_ticks(at("00:07:00"), at("09:50:00"))
        assert ticks == [at("02:00:00"), at("04:00:00"), at("06:00:00"), at("08:00:00")]
        day = report.time_ticks(at("00:00:00"), at("00:00:00") + dt.timedelta(days=20))
        assert all(t.hour == 0 and t.minute == 0 for t in day)
        assert 2 <= len(day) <= 8


# -- the page ---------------------------------------------------------------------------------


class _Page(HTMLParser):
    """Collects tags, attributes and text of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.attrs: list[tuple[str, str | None]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attrs.extend(attrs)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse_page(page: str) -> _Page:
    parser = _Page()
    parser.feed(page)
    parser.close()
    return parser


def render(records_: list[dict[str, Any]], **kwargs: Any) -> str:
    incomplete = kwargs.pop("incomplete", None)
    return report.render_html(
        report.build(records_, incomplete),
        title="Audit 2024-05-01",
        generated_at=GENERATED,
        **kwargs,
    )


class TestPage:
    def test_shows_the_numbers(self) -> None:
        page = render(
            RECORDS, incomplete=[{"instance_id": B, "oldest_listed": "2024-05-01T04:00:00Z"}]
        )
        text = " ".join(parse_page(page).text)
        assert "<title>Audit 2024-05-01</title>" in page
        assert "Counts by type and status" in text
        assert "25 min 00 s" in text  # the MODIFY median
        assert "2 h 00 min" in text  # the slowest MODIFY
        assert "m4" in text
        assert "Failed tasks (2)" in text
        assert "quota exceeded" in text
        assert "no capacity" in text
        assert "Instances flagged incomplete" in text
        assert "2024-05-01 04:00:00" in text
        assert "flagged incomplete" in text
        assert text.count("Instance ") >= 2  # a timeline per instance
        assert page.count("<svg") >= 2

    def test_counts_table_cells(self) -> None:
        page = render(RECORDS)
        modify_row = re.search(r"<tr><td>MODIFY</td>(.*?)</tr>", page)
        assert modify_row is not None
        cells = re.findall(r'<td class="num[^"]*">(\d+)</td>', modify_row.group(1))
        assert cells == ["3", "1", "1", "0", "5"]  # SUCCESS FAILED RUNNING PENDING total

    def test_timeline_bars_are_coloured_by_status(self) -> None:
        page = render(RECORDS)
        bars = re.findall(
            r'<rect x="[\d.]+" y="[\d.]+" width="[\d.]+" height="14" rx="3" fill="(#\w+)"', page
        )
        assert len(bars) == len(RECORDS)
        assert bars.count(report.STATUS_COLOURS["FAILED"]) == 2

    def test_everything_from_the_records_is_escaped(self) -> None:
        hostile = "<script>alert('x')</script><img src=x onerror=alert(1)>"
        rows = [
            task("e1", "MODIFY", "FAILED", "01:00:00", None, "01:01:00", status_detail=hostile),
            task("e2", "<b>TYPE</b>", "<i>S</i>", "01:00:00", instance='"><svg onload=alert(2)>'),
        ]
        page = render(rows, source="file:///x/<script>.jsonl", incomplete=["<script>y</script>"])
        parsed = parse_page(page)
        assert "script" not in parsed.tags
        assert {"img", "b", "i"}.isdisjoint(parsed.tags)
        assert not [name for name, _ in parsed.attrs if name.startswith("on")]
        assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in page
        assert hostile in "".join(parsed.text)  # shown as text, intact

    def test_hostile_title_is_escaped(self) -> None:
        page = report.render_html(
            report.build([]), title="</title><script>1</script>", generated_at=GENERATED
        )
        assert "script" not in parse_page(page).tags

    def test_self_contained(self) -> None:
        page = render(RECORDS, incomplete=[])
        parsed = parse_page(page)
        assert "script" not in parsed.tags
        assert {"link", "img", "iframe", "object", "embed"}.isdisjoint(parsed.tags)
        referencing = [
            (n, v) for n, v in parsed.attrs if n in {"src", "href", "srcset", "xlink:href"}
        ]
        assert referencing == []
        for reference in ("url(", "@import", "@font-face"):
            assert reference not in page
        assert "://" not in page  # not even the SVG namespace: inline SVG needs none

    def test_empty_page(self) -> None:
        page = render([])
        text = " ".join(parse_page(page).text)
        assert "The records hold no task" in text
        assert "Failed tasks" not in text
        assert "<svg" not in page
        assert "incomplete: not checked" in text

    def test_no_failure_and_nothing_incomplete(self) -> None:
        page = render([RECORDS[0]], incomplete=[])
        text = " ".join(parse_page(page).text)
        assert "No task failed." in text
        assert "Instances flagged incomplete" not in text
        assert "incomplete instances" in text

    def test_tasks_without_any_time(self) -> None:
        page = render([task("n1", "MODIFY", "PENDING", None)])
        text = " ".join(parse_page(page).text)
        assert "No task with a time." in text
        assert "No finished task." in text


class TestTemplates:
    """The page is laid out by Jinja2 templates shipped as package data."""

    def test_the_style_sheet_is_inlined_from_the_shipped_file(self) -> None:
        css = (TEMPLATES / "report.css").read_text(encoding="utf-8")
        page = render(RECORDS)
        assert f"<style>\n{css}</style>" in page
        assert "{{" not in page  # every template tag was rendered
        assert "{%" not in page

    def test_every_template_is_package_data(self) -> None:
        """A wheel without them would fail only when a report is written."""
        pyproject = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
        globs = pyproject["tool"]["setuptools"]["package-data"]["airflow_provider_iotda"]
        shipped = sorted(p.name for p in TEMPLATES.iterdir() if p.is_file())
        assert {"report.html.j2", "report_macros.html.j2", "report.css"} <= set(shipped)
        for name in shipped:
            assert any(fnmatch.fnmatch(f"templates/{name}", g) for g in globs), name

    def test_autoescape_is_on_for_every_value(self) -> None:
        page = report.render_html(
            report.build([task("<t>", "<T>", "<S>", "01:00:00", instance="<i>")]),
            title="<title>",
            generated_at=GENERATED,
            source="<src>",
        )
        for raw in ("<t>", "<T>", "<S>", "<i>", "<src>"):
            assert raw not in page
        assert "&lt;title&gt;" in page
