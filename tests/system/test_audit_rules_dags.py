"""Each audit rule of IoTDAInstanceTaskListOperator in a real Airflow: ``dag.test()`` of the
DAGs in tests/system/dag_files/audit_rules_dags.py against the simulator on loopback."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk.io.store import _STORE_CACHE

from airflow_provider_iotda import records
from airflow_provider_iotda.simulator import IoTDASimulator

from .audit_support import COMPLETE, FLAGGED, LOGICAL_DATE, listed_records, load_dag_module

pytestmark = [pytest.mark.dag, pytest.mark.integration]


@pytest.fixture
def rules(
    airflow_db: Path,
    audit_simulator: IoTDASimulator,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> Any:
    """The rules' DAG module; files go to ``tmp_path``."""
    monkeypatch.setenv("IOTDA_RULES_BASE", str(tmp_path))
    return load_dag_module("audit_rules_dags")


def run(module: Any, dag_id: str) -> tuple[str, list[str]]:
    """Run one rule's DAG: the run's state and its task instances' states."""
    dag_run = module.DAGS[dag_id].test(logical_date=LOGICAL_DATE)
    states = sorted(str(ti.state) for ti in dag_run.get_task_instances())
    return str(dag_run.state), states


def test_incomplete_fail_writes_nothing(
    rules: Any, audit_simulator: IoTDASimulator, tmp_path: Path
) -> None:
    assert (rules.FLAGGED, rules.COMPLETE) == (FLAGGED, COMPLETE)  # one truth for both files
    assert run(rules, "audit_rule_incomplete_fail") == ("failed", ["failed"])
    assert list(tmp_path.iterdir()) == []
    assert audit_simulator.counters.requests == 2  # both listed; the flag refused the write


@pytest.mark.parametrize(("mode", "state"), [("fail", "failed"), ("skip", "skipped")])
def test_if_exists_is_checked_before_fetching(
    rules: Any, audit_simulator: IoTDASimulator, tmp_path: Path, mode: str, state: str
) -> None:
    existing = tmp_path / "existing.csv"
    existing.write_bytes(b"yesterday's audit\r\n")
    dag_state, states = run(rules, f"audit_rule_if_exists_{mode}")
    assert states == [state]
    assert dag_state == ("failed" if mode == "fail" else "success")
    assert existing.read_bytes() == b"yesterday's audit\r\n"
    assert audit_simulator.counters.requests == 0


def test_mapped_indexes_sharing_a_destination_fail_with_if_exists_fail(
    rules: Any, audit_simulator: IoTDASimulator, tmp_path: Path, capsys: Any
) -> None:
    """dag.test() runs one index, then the other: the first writes; the second finds the
    first's destination in XCom (rendered destinations compared) and fails before fetching."""
    assert run(rules, "audit_rule_mapped_fail") == ("failed", ["failed", "success"])
    assert re.search(
        r"Map index (0|1) of dump writes .*and so does map index (1|0) of this run",
        capsys.readouterr().out,
    )
    got = records.parse((tmp_path / "mapped.json").read_bytes(), "json")
    assert got == listed_records(audit_simulator, [COMPLETE])
    assert audit_simulator.counters.requests == 1  # the first index's listing only


def test_mapped_indexes_sharing_a_destination_warn_and_overwrite(
    rules: Any, audit_simulator: IoTDASimulator, tmp_path: Path
) -> None:
    assert run(rules, "audit_rule_mapped_overwrite") == ("success", ["success", "success"])
    got = records.parse((tmp_path / "mapped.json").read_bytes(), "json")
    assert got == listed_records(audit_simulator, [COMPLETE])  # the last index's: the same here


def test_s3_without_a_filesystem_fails_before_fetching(
    rules: Any, audit_simulator: IoTDASimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.sdk.io import fs

    monkeypatch.setattr(fs, "_register_filesystems", lambda: dict(fs._BUILTIN_SCHEME_TO_FS))
    for key in [k for k in _STORE_CACHE if "s3" in k]:
        monkeypatch.delitem(_STORE_CACHE, key)
    assert run(rules, "audit_rule_s3") == ("failed", ["failed"])
    assert audit_simulator.counters.requests == 0
