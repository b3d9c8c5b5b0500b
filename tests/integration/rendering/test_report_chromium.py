"""The audit report as a person sees it: headless Chromium renders the page the operator wrote
to a PNG, and the screenshot must show the page's colours (not a blank or error page).

Needs Debian's ``chromium`` (``apt-get install -y chromium``); skipped, saying so, without it.
Set ``IOTDA_REPORT_SCREENSHOTS=<dir>`` to keep the screenshots.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_iotda import report
from airflow_provider_iotda.operators.report import IoTDAInstanceTaskReportOperator

from .png_pixels import colour_counts, read_rgb

CHROMIUM = next(
    (path for name in ("chromium", "chromium-browser") if (path := shutil.which(name))), None
)
# CI installs Chromium and sets IOTDA_REQUIRE_CHROMIUM=1: there a missing browser fails the
# test instead of skipping it.
if CHROMIUM is None and os.environ.get("IOTDA_REQUIRE_CHROMIUM") == "1":
    raise RuntimeError("IOTDA_REQUIRE_CHROMIUM=1 but no chromium is on PATH")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="headless Chromium is not installed (Debian/Ubuntu: apt-get install -y chromium)",
)
WIDTH, HEIGHT = 1200, 1600
INSTANCES = (
    "3f9a2c1e-7b4d-4e8a-9c2f-5d6e7a8b9c01",
    "a8d1e6b2-4c3f-4a9e-8b7d-2f1c0e9d8a76",
    "c5e4b3a2-9d8c-4f7e-a6b5-1c2d3e4f5a60",
)
TYPES = ("MODIFY", "CREATE", "FREEZE", "UNFREEZE", "UPDATE_ALLOW_LISTS")
STATUSES = ("SUCCESS", "SUCCESS", "FAILED", "SUCCESS", "RUNNING", "SUCCESS", "PENDING")


def _rgb(colour: str) -> bytes:
    return bytes.fromhex(colour.lstrip("#"))


def day_of_tasks() -> list[dict[str, Any]]:
    """Twenty tasks over one day on three instances, every status, deterministic."""
    base = dt.datetime(2024, 5, 1, tzinfo=dt.UTC)
    rows = []
    for n in range(20):
        created = base + dt.timedelta(minutes=67 * n + 13)
        started = created + dt.timedelta(minutes=n % 4)
        status = STATUSES[n % len(STATUSES)]
        ended = (
            started + dt.timedelta(minutes=10 + 9 * (n % 5))
            if status in {"SUCCESS", "FAILED"}
            else None
        )

        def api(moment: dt.datetime | None) -> str | None:
            return None if moment is None else moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")

        rows.append(
            {
                "instance_id": INSTANCES[n % 3],
                "project_id": "0123456789abcdef0123456789abcdef",
                "task_id": f"{n:04x}d0c1e2f3a4b5c6d7e8f90a1b",
                "type": TYPES[n % len(TYPES)],
                "status": status,
                "status_detail": "<script>alert(1)</script> no capacity"
                if status == "FAILED"
                else None,
                "create_time": api(created),
                "start_time": None if status == "PENDING" else api(started),
                "end_time": api(ended),
                "target_config": {"flavor": {"type": "iotda.standard.s3", "size": 2}},
            }
        )
    return rows


def screenshot(page: Path, png: Path, profile: Path) -> None:
    assert CHROMIUM is not None
    command = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--host-resolver-rules=MAP * ~NOTFOUND",  # offline: the page must need nothing else
        f"--user-data-dir={profile}",
        f"--screenshot={png}",
        f"--window-size={WIDTH},{HEIGHT}",
        page.as_uri(),
    ]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=90, check=False)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"chromium did not finish in 90 s: {exc}")
    assert png.exists(), (
        f"chromium wrote no screenshot (exit {done.returncode}):\n{done.stderr[-2000:]}"
    )
    keep = os.environ.get("IOTDA_REPORT_SCREENSHOTS")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(png, Path(keep) / png.name)


@pytest.mark.parametrize("case", ["day", "empty"])
def test_report_renders_in_headless_chromium(tmp_path: Path, case: str) -> None:
    rows = day_of_tasks() if case == "day" else []
    page = tmp_path / f"report-{case}.html"
    summary = IoTDAInstanceTaskReportOperator(
        task_id="report",
        records=rows,
        destination=str(page),
        title="IoTDA instance tasks, 2024-05-01",
        incomplete_instances=[
            {"instance_id": INSTANCES[1], "oldest_listed": "2024-05-01T01:20:00Z"}
        ],
    ).execute({})
    assert summary["records"] == len(rows)

    png = tmp_path / f"report-{case}.png"
    screenshot(page, png, tmp_path / "profile")
    width, height, pixels = read_rgb(png.read_bytes())
    assert (width, height) == (WIDTH, HEIGHT)
    counts = colour_counts(pixels)
    total = width * height
    white = counts[b"\xff\xff\xff"]
    background = counts[_rgb("#eef1f6")]
    # Not blank: the page's own background, cards and text are there, and it is not all white.
    assert white < 0.9 * total, f"{white / total:.0%} of the screenshot is white"
    assert background > 0.05 * total, "the page's background colour is missing: CSS not applied?"
    assert len(counts) > 200, f"only {len(counts)} distinct colours: text did not render?"
    dark = sum(n for rgb, n in counts.items() if max(rgb) < 90)
    assert dark > 2000, "hardly any dark pixels: no text?"
    if case == "day":
        # Badges, stacked bars and the timeline draw the status colours as solid areas.
        for status in ("SUCCESS", "FAILED", "RUNNING", "PENDING"):
            area = counts[_rgb(report.STATUS_COLOURS[status])]
            assert area > 150, f"{status} ({report.STATUS_COLOURS[status]}) covers {area} px"
        assert counts[_rgb("#fffaf0")] > 10_000, "the incomplete-instances alert is missing"
