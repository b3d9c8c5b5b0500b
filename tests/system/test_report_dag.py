"""The report operator in a real Airflow (``dag.test()``) against the simulator: every way a
user feeds it (summary XComArg, templated path, templated records, records XComArg) gives the
same numbers."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pendulum
import pytest
from iotda_test_values import return_values

from airflow_provider_iotda import records, report
from airflow_provider_iotda.simulator import IoTDASimulator

from .audit_support import load_dag_module, run_states
from .conftest import start_demo_simulator

pytestmark = [pytest.mark.dag, pytest.mark.integration]

AK = "REPORTTESTACCESSKEY1"
SK = "REPORT-TEST-SECRET-do-not-leak-7c3a"
PROJECT = "0123456789abcdef0123456789abcdef"
SIM_NOW = dt.datetime(2024, 5, 3, 6, 0, tzinfo=dt.UTC)
LOGICAL_DATE = pendulum.datetime(2024, 5, 3, 6, 0, tz="UTC")
REPORTS = ("from_summary", "from_template", "from_records", "from_xcom_arg")


@pytest.fixture
def simulator(monkeypatch: pytest.MonkeyPatch) -> Iterator[IoTDASimulator]:
    with start_demo_simulator(
        monkeypatch, SIM_NOW, ak=AK, sk=SK, project_id=PROJECT, seed=11, max_retries=1
    ) as sim:
        yield sim


def test_every_form_of_input_gives_the_same_report(
    airflow_db: Path,
    simulator: IoTDASimulator,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    module = load_dag_module("report_forms")
    monkeypatch.setenv("IOTDA_REPORT_TEST_BASE", str(tmp_path))

    dag_run = module.dag.test(logical_date=LOGICAL_DATE)

    assert set(run_states(dag_run).values()) == {"success"}, run_states(dag_run)
    day = tmp_path / "2024-05-02"
    dumped = records.parse((day / "tasks.csv").read_bytes(), "csv")
    assert dumped, "the demo scenario has tasks on 2024-05-02"
    want = report.build(dumped).summary()
    xcoms: dict[str, Any] = return_values(dag_run)
    for task_id in REPORTS:
        page = day / f"{task_id}.html"
        summary = xcoms[task_id]
        assert summary["destination"] == f"file://{page}"
        assert summary["bytes"] == page.stat().st_size
        got = {k: v for k, v in summary.items() if k not in {"destination", "bytes"}}
        # The reports given the list operator's summary (or its incomplete_instances) show
        # the instances it flagged; the others were not told and say "not checked".
        flagged = len(xcoms["dump_file"]["incomplete_instances"])
        checked = task_id in {"from_template", "from_summary"}
        assert got == {**want, "incomplete_instances": flagged if checked else None}, task_id
        text = page.read_text()
        assert text.startswith("<!DOCTYPE html>")
        assert SK not in text
    assert "<title>IoTDA tasks on 2024-05-02</title>" in (day / "from_summary.html").read_text()
