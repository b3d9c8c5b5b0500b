"""The example DAG example_dags/on_instance_task_finished.py: it parses, is scheduled on an asset
watched by IoTDAInstanceTaskEventTrigger, and reads and branches on the events' tasks.  Running
it in a real Airflow (scheduler, triggerer...) is tests/system/e2e/test_event_scheduling.py."""

from __future__ import annotations

import importlib.util
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest

from airflow_provider_iotda.triggers.iotda import IoTDAInstanceTaskEventTrigger

pytestmark = pytest.mark.dag

FILE = "on_instance_task_finished.py"


def example_module() -> ModuleType:
    from airflow import settings

    spec = importlib.util.spec_from_file_location(
        "on_instance_task_finished", f"{settings.DAGS_FOLDER}/{FILE}"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_example_dag_is_scheduled_on_the_watched_asset() -> None:
    module = example_module()
    dag = module.dag
    assert dag.dag_id == "on_instance_task_finished"
    assert type(dag.timetable).__name__ == "AssetTriggeredTimetable"
    assert list(dag.timetable.asset_condition.objects) == [module.TASKS_FINISHED]
    (watcher,) = module.TASKS_FINISHED.watchers
    assert isinstance(watcher.trigger, IoTDAInstanceTaskEventTrigger)
    assert watcher.trigger.serialize()[1]["statuses"] == ["FAILED", "SUCCESS"]
    assert watcher.trigger.instance_id == module.INSTANCE_ID
    assert dag.get_task("by_outcome").downstream_task_ids == {"on_success", "on_failure"}
    assert dag.get_task("report_finished_tasks").downstream_task_ids == {
        "by_outcome",
        "on_success",
        "on_failure",
    }


def event(payload: Any) -> SimpleNamespace:
    return SimpleNamespace(extra={"from_trigger": True, "payload": payload})


def test_finished_tasks_and_branches() -> None:
    module = example_module()
    events = [
        event({"instance_id": "i-1", "task": {"task_id": "t1", "status": "FAILED"}}),
        SimpleNamespace(extra={}),  # an event of someone else (a manual asset event)
        event({"instance_id": "i-1", "task": {"task_id": "t2", "status": "SUCCESS"}}),
    ]
    tasks = module.finished_tasks(events)
    assert tasks == [
        {"task_id": "t1", "status": "FAILED", "instance_id": "i-1"},
        {"task_id": "t2", "status": "SUCCESS", "instance_id": "i-1"},
    ]
    assert module.branches_for(tasks) == ["on_success", "on_failure"]
    assert module.branches_for(tasks[:1]) == ["on_failure"]
    assert module.branches_for(tasks[1:]) == ["on_success"]
    assert module.branches_for([]) == []
