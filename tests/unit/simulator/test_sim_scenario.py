"""Scenario loading and validation, and the bundled demo scenario."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_iotda.simulator import (
    DEMO_SCENARIO_PATH,
    Scenario,
    ScenarioError,
    SimulatorState,
)

DAY = 86400


def test_demo_scenario_shape() -> None:
    scenario = Scenario.demo()
    assert len(scenario.instances) == 3
    for instance in scenario.instances:
        assert len(instance.instance_id) == 36
        assert set(instance.instance_id) <= set("0123456789abcdef-")
        history = [t for t in instance.tasks if t.created < 0]
        assert 4 <= len(history) <= 8
    first = scenario.instances[0]
    live = [t for t in first.tasks if t.created == 0]
    assert len(live) == 1
    modify = live[0]
    assert modify.type == "MODIFY"
    assert [(e.status, e.at) for e in modify.timeline] == [
        ("PENDING", 0),
        ("RUNNING", 5),
        ("SUCCESS", 20),
    ]
    assert modify.target_config is not None
    assert modify.operate_window is not None
    assert modify.target_config["charge_mode"] == "postPaid"
    everything = [t for i in scenario.instances for t in i.tasks]
    types = {t.type for t in everything}
    assert {"CREATE", "MODIFY", "UPDATE_ALLOW_LISTS", "FREEZE", "UNFREEZE"} <= types
    assert any(t.timeline[-1].status == "FAILED" and t.status_detail for t in everything)
    recent = [t.created for t in everything if -180 * DAY <= t.created < 0]
    assert min(recent) >= -3 * DAY
    assert any(t.created < -180 * DAY for t in everything)


def test_load_from_path_text_dict_and_none() -> None:
    text = DEMO_SCENARIO_PATH.read_text()
    from_path = Scenario.load(DEMO_SCENARIO_PATH)
    assert Scenario.load(str(DEMO_SCENARIO_PATH)) == from_path
    assert Scenario.load(text) == from_path
    assert Scenario.load(json.loads(text)) == from_path
    assert Scenario.load(from_path) is from_path
    assert Scenario.load(None).instances == ()


def test_task_ids_grow_with_creation_time_and_are_seeded() -> None:
    first = SimulatorState(Scenario.demo(), seed=3, time_factor=0)
    again = SimulatorState(Scenario.demo(), seed=3, time_factor=0, start=first.clock.start)
    instance = Scenario.demo().instances[0].instance_id
    tasks = first.all_tasks(instance)
    assert [t["task_id"] for t in tasks] == [t["task_id"] for t in again.all_tasks(instance)]
    by_creation = sorted(tasks, key=lambda t: t["create_time"], reverse=True)
    assert by_creation == tasks  # newest first == largest ID first
    assert all(len(t["task_id"]) == 36 for t in tasks)


def _scenario(**task: Any) -> dict[str, Any]:
    return {"instances": [{"instance_id": "abc-123", "tasks": [{"type": "MODIFY", **task}]}]}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"instances": [{"instance_id": "ABC"}]}, "instance_id"),
        ({"instances": [{"instance_id": "a" * 37}]}, "instance_id"),
        ({"instances": [{"instance_id": "abc"}, {"instance_id": "abc"}]}, "twice"),
        ({"instances": {}}, "list"),
        ({"tenants": []}, "unknown"),
        (_scenario(type="RESIZE"), "type"),
        (_scenario(timeline=[["DONE", 0]]), "status"),
        (_scenario(timeline=[["PENDING", -1]]), ">= 0"),
        (_scenario(timeline=[]), "empty"),
        (_scenario(timeline=[["SUCCESS", 0], ["RUNNING", 1]]), "follow"),
        (_scenario(timeline="PENDING"), "list"),
        (_scenario(created="yesterday"), "number"),
        (_scenario(task_id="Not_Hex"), "task_id"),
        (_scenario(target_config="s3"), "target_config"),
        (_scenario(colour="red"), "unknown"),
    ],
)
def test_invalid_scenarios(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ScenarioError, match=message):
        Scenario.from_dict(data)


def test_timeline_entry_forms() -> None:
    scenario = Scenario.from_dict(
        _scenario(
            timeline=[
                ["PENDING", 0],
                {"status": "RUNNING", "at": 3, "status_detail": "copying"},
                ["FAILED", 9.5, "disk full"],
            ]
        )
    )
    timeline = scenario.instances[0].tasks[0].timeline
    assert [(e.status, e.at, e.status_detail) for e in timeline] == [
        ("PENDING", 0, None),
        ("RUNNING", 3, "copying"),
        ("FAILED", 9.5, "disk full"),
    ]
    default = Scenario.from_dict(_scenario()).instances[0].tasks[0]
    assert [(e.status, e.at) for e in default.timeline] == [("SUCCESS", 0)]


def test_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="cannot read"):
        Scenario.load(tmp_path / "missing.json")
    broken = tmp_path / "broken.json"
    broken.write_text("{nope")
    with pytest.raises(ScenarioError, match="not valid JSON"):
        Scenario.load(broken)
