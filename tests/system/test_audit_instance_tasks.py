"""The ``audit_instance_tasks`` example DAG end to end: ``dag.test()`` in a real Airflow against
the simulator on loopback; and the operator writing through a non-``file`` ObjectStoragePath."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pendulum
import pytest
from airflow.sdk.io.store import _STORE_CACHE, ObjectStore
from fsspec.implementations.memory import MemoryFileSystem
from iotda_test_values import return_values

from airflow_provider_iotda import records
from airflow_provider_iotda.simulator import DEMO_SCENARIO_PATH, IoTDASimulator

from .audit_support import (
    AUDIT_SK,
    COMPLETE,
    FLAGGED,
    LOGICAL_DATE,
    WINDOW,
    listed_records,
    load_dag_module,
    run_states,
)

pytestmark = [pytest.mark.dag, pytest.mark.integration]
needs_pyarrow = pytest.mark.skipif(
    importlib.util.find_spec("pyarrow") is None,
    reason="the example writes Parquet: needs pyarrow (the parquet extra)",
)


def test_dag_shape() -> None:
    dag = load_dag_module("audit_instance_tasks").dag
    assert dag.dag_id == "audit_instance_tasks"
    assert not dag.catchup
    assert set(dag.task_ids) == {"dump_tasks", "report", "html_report"}
    assert dag.get_task("report").upstream_task_ids == {"dump_tasks"}
    assert dag.get_task("html_report").upstream_task_ids == {"dump_tasks"}
    timetable = dag.timetable
    if not hasattr(timetable, "infer_manual_data_interval"):
        # 3.2+: the SDK's timetable is a definition; dag.test() turns it into the core one.
        from airflow.serialization.encoders import coerce_to_core_timetable

        timetable = coerce_to_core_timetable(timetable)
    interval = timetable.infer_manual_data_interval(run_after=LOGICAL_DATE)
    assert (interval.start, interval.end) == WINDOW


@needs_pyarrow
def test_audit_dag_writes_the_previous_days_tasks_of_every_instance(
    airflow_db: Path,
    audit_simulator: IoTDASimulator,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    module = load_dag_module("audit_instance_tasks")
    monkeypatch.setenv("IOTDA_AUDIT_BASE", str(tmp_path))
    every = audit_simulator.state.instance_ids()
    scenario = json.loads(DEMO_SCENARIO_PATH.read_text())
    assert set(every) == {i["instance_id"] for i in scenario["instances"]} | {FLAGGED, COMPLETE}

    dag_run = module.dag.test(logical_date=LOGICAL_DATE)

    assert run_states(dag_run) == {
        "dump_tasks": "success",
        "report": "success",
        "html_report": "success",
    }
    assert str(dag_run.state) == "success"
    written = tmp_path / "2024-05-02" / "tasks.parquet"
    assert sorted(p.name for p in written.parent.iterdir()) == ["report.html", "tasks.parquet"]
    xcoms = return_values(dag_run)
    summary = xcoms["dump_tasks"]
    # "all": every instance of the project, each audited once
    assert sorted(summary["instances_found"]) == sorted(every)
    assert summary["instances"] == summary["instances_found"]
    want = listed_records(audit_simulator, summary["instances"])
    assert {r["instance_id"] for r in want} == set(every)  # each has tasks on 2024-05-02
    header, _ = records.to_csv_rows(want)
    got = records.parse(written.read_bytes(), "parquet")
    assert got == [{name: records.flatten(r).get(name) for name in header} for r in want]
    assert all(WINDOW[0] <= pendulum.parse(r["create_time"]) < WINDOW[1] for r in got)
    # 20 tasks listed, all on the audited day: flagged; 20 reaching back before it: not.
    (flagged,) = summary["incomplete_instances"]
    assert flagged["instance_id"] == FLAGGED
    assert flagged["oldest_listed"] == "2024-05-02T13:30:00.000Z"
    assert summary["by_instance"][COMPLETE] == 8  # 23:00, 20:00, ... 02:00 on 2024-05-02
    assert AUDIT_SK.encode() not in written.read_bytes()
    counters = audit_simulator.counters
    assert counters.statuses == {"200": counters.requests}, counters
    assert summary["format"] == "parquet"
    assert "task_id" not in json.dumps(summary)  # a summary, not the data
    assert xcoms["report"] == {
        "destination": summary["destination"],
        "records": len(want),
        "by_instance": records.count_by(want, "instance_id"),
        "by_type": records.count_by(want, "type"),
        "by_status": records.count_by(want, "status"),
        "incomplete_instances": summary["incomplete_instances"],
    }
    page = written.parent / "report.html"
    html_summary = xcoms["html_report"]
    assert html_summary["destination"] == f"file://{page}"
    assert html_summary["records"] == len(want)
    assert html_summary["incomplete_instances"] == 1  # FLAGGED, taken from the summary
    text = page.read_text()
    assert "<title>IoTDA instance tasks on 2024-05-02</title>" in text
    assert FLAGGED in text
    assert AUDIT_SK not in text


@needs_pyarrow
def test_audit_dag_fails_whole_when_an_instance_fails(
    airflow_db: Path,
    audit_simulator: IoTDASimulator,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    module = load_dag_module("audit_instance_tasks")
    monkeypatch.setenv("IOTDA_AUDIT_BASE", str(tmp_path))
    unknown = "0000dead-0000-4000-8000-000000000000"
    monkeypatch.setenv("AIRFLOW_VAR_IOTDA_AUDIT_INSTANCE_IDS", json.dumps([COMPLETE, unknown]))

    dag_run = module.dag.test(logical_date=LOGICAL_DATE)

    assert run_states(dag_run)["dump_tasks"] == "failed"
    assert str(dag_run.state) == "failed"
    assert list(tmp_path.iterdir()) == []  # no file, no directory, no temporary file


def test_operator_writes_through_a_non_file_scheme_in_a_dag(
    airflow_db: Path,
    audit_simulator: IoTDASimulator,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fs = MemoryFileSystem()
    monkeypatch.setitem(_STORE_CACHE, "memory", ObjectStore("memory", None, fs=fs))
    module = load_dag_module("audit_memory_store")

    dag_run = module.dag.test(logical_date=LOGICAL_DATE)

    assert run_states(dag_run) == {"dump_csv": "success", "check_csv": "success"}
    key = "/iotda-audit-test/2024-05-02/tasks.csv"
    try:
        rows = records.parse(fs.cat_file(key), "csv")
        want = listed_records(audit_simulator, module.INSTANCE_IDS)
        assert want
        header, want_rows = records.to_csv_rows(want)
        assert rows == [dict(zip(header, row, strict=True)) for row in want_rows]
    finally:
        if fs.exists("/iotda-audit-test"):
            fs.rm("/iotda-audit-test", recursive=True)
