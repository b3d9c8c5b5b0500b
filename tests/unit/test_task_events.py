"""task_events: the pure rules of what a watcher reports and remembers."""

from __future__ import annotations

from typing import Any

import pytest
from iotda_test_values import TEST_INSTANCE, task_json

from airflow_provider_iotda.models import InstanceTask
from airflow_provider_iotda.task_events import (
    Memory,
    News,
    WatchSpec,
    event_payload,
    look,
    memory_key,
)

A = "0a1b2c3d-0000-4000-8000-00000000000a"
B = "0a1b2c3d-0000-4000-8000-00000000000b"
SPEC = WatchSpec(frozenset({"SUCCESS", "FAILED"}), frozenset({"MODIFY"}))


def task(task_id: str, status: str, type: str = "MODIFY") -> InstanceTask:
    return InstanceTask.from_dict(task_json(task_id, status, type=type))


def test_first_look_is_history_and_remembers_only_watched_types() -> None:
    result = look(None, [task(A, "SUCCESS"), task(B, "RUNNING", type="FREEZE")], SPEC)
    assert result.news == ()
    assert result.memory == Memory({A: "SUCCESS"})


def test_news_is_a_change_into_a_watched_status_and_forgotten_tasks_leave_memory() -> None:
    memory = Memory({A: "RUNNING", B: "SUCCESS"})
    result = look(memory, [task(A, "FAILED")], SPEC)
    assert result.news == (News(task(A, "FAILED"), "RUNNING"),)
    assert result.memory == Memory({A: "FAILED"})  # B is no longer listed
    assert look(result.memory, [task(A, "FAILED")], SPEC).news == ()


def test_memory_json_round_trip_and_unknown_shapes() -> None:
    memory = Memory({B: "FAILED", A: "SUCCESS"})
    assert memory.to_json() == {"version": 1, "statuses": {A: "SUCCESS", B: "FAILED"}}
    assert Memory.from_json(memory.to_json()) == memory


@pytest.mark.parametrize(
    "value",
    [
        None,
        "x",
        [],
        {"version": 2, "statuses": {}},
        {"version": 1},
        {"version": 1, "statuses": {A: 1}},
    ],
)
def test_unreadable_memory_is_none(value: Any) -> None:
    assert Memory.from_json(value) is None


def test_memory_key_names_the_watch_and_stays_within_the_column() -> None:
    assert memory_key("iotda_default", TEST_INSTANCE, SPEC) == (
        f"iotda_instance_tasks/iotda_default/{TEST_INSTANCE}/MODIFY/FAILED,SUCCESS"
    )
    everything = WatchSpec(frozenset({"SUCCESS"}))
    assert memory_key("c", TEST_INSTANCE, everything).endswith("/*/SUCCESS")
    many = WatchSpec(frozenset(f"STATUS_{i}" for i in range(60)))
    key = memory_key("c", TEST_INSTANCE, many)
    assert len(key) <= 512
    assert key != memory_key(
        "c", TEST_INSTANCE, WatchSpec(frozenset(f"STATUS_{i}" for i in range(61)))
    )


def test_payload_is_json_of_the_task_and_instance() -> None:
    news = News(task(A, "SUCCESS"), None)
    assert event_payload(TEST_INSTANCE, news) == {
        "instance_id": TEST_INSTANCE,
        "task": task(A, "SUCCESS").to_dict(),
        "previous_status": None,
    }
