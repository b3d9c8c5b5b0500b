"""Unit tests of airflow_provider_iotda.waiting: the one decision shared by poke and trigger."""

from __future__ import annotations

import datetime as dt

import pytest
from iotda_test_values import TEST_INSTANCE as INSTANCE

from airflow_provider_iotda.models import InstanceTask
from airflow_provider_iotda.waiting import (
    TaskQuery,
    check_statuses,
    decide,
    failure_message,
    format_duration,
    timeout_message,
)

QUERY = TaskQuery.build(INSTANCE, instance_task_type="MODIFY")


def task(status: str, **extra: object) -> InstanceTask:
    return InstanceTask.from_dict({"task_id": "0a1b", "type": "MODIFY", "status": status, **extra})


def run(found: InstanceTask | None, waited: float = 10, not_found: float | None = 60) -> str:
    decision = decide(
        found,
        query=QUERY,
        success_statuses={"SUCCESS"},
        failure_statuses={"FAILED"},
        waited=waited,
        not_found_timeout=not_found,
    )
    assert decision.done == (decision.state != "waiting")
    return decision.state


@pytest.mark.parametrize(
    ("status", "state"),
    [
        ("SUCCESS", "success"),
        ("FAILED", "failed"),
        ("PENDING", "waiting"),
        ("RUNNING", "waiting"),
        ("SOMETHING_NEW", "waiting"),
    ],
)
def test_status_to_outcome(status: str, state: str) -> None:
    assert run(task(status)) == state


def test_not_found_is_tolerated_up_to_the_limit() -> None:
    assert run(None, waited=60, not_found=60) == "waiting"
    assert run(None, waited=60.5, not_found=60) == "not_found"
    assert run(None, waited=0.5, not_found=0) == "not_found"
    assert run(None, waited=10**7, not_found=None) == "waiting"


def test_messages() -> None:
    failed = task("FAILED", status_detail="no capacity")
    assert failure_message(failed, INSTANCE) == (
        f"IoTDA MODIFY task 0a1b of instance {INSTANCE} ended FAILED: no capacity"
    )
    waiting = decide(
        task("RUNNING", progress=45),
        query=QUERY,
        success_statuses={"SUCCESS"},
        failure_statuses={"FAILED"},
        waited=3725,
        not_found_timeout=None,
    )
    assert waiting.message == (
        f"MODIFY task 0a1b of instance {INSTANCE} is RUNNING, progress 45%; waited 1 h 02 min"
    )
    assert "timed out" in timeout_message(QUERY, 70, 60)
    assert format_duration(42.9) == "42 s"
    assert format_duration(185) == "3 min 05 s"


def test_query_validation_and_description() -> None:
    by_id = TaskQuery.build(INSTANCE, instance_task_id="0a1b")
    assert by_id.describe() == f"task 0a1b of instance {INSTANCE}"
    after = TaskQuery.build(
        INSTANCE, instance_task_type="MODIFY", created_after=dt.datetime(2024, 5, 1, 8, 30)
    )
    assert after.describe() == (
        "the newest MODIFY task created at or after 2024-05-01T08:30:00.000Z "
        f"of instance {INSTANCE}"
    )
    with pytest.raises(ValueError, match="exactly one"):
        TaskQuery.build(INSTANCE)
    with pytest.raises(ValueError, match="exactly one"):
        TaskQuery.build(INSTANCE, instance_task_id="0a1b", instance_task_type="MODIFY")
    with pytest.raises(ValueError, match="created_after applies only"):
        TaskQuery.build(INSTANCE, instance_task_id="0a1b", created_after="2024-01-01")
    with pytest.raises(ValueError, match="instance_id"):
        TaskQuery.build("", instance_task_type="MODIFY")


def test_status_sets() -> None:
    assert check_statuses("SUCCESS", ["FAILED", "CANCELLED"]) == (
        frozenset({"SUCCESS"}),
        frozenset({"FAILED", "CANCELLED"}),
    )
    with pytest.raises(ValueError, match="must not share a status"):
        check_statuses({"SUCCESS"}, {"SUCCESS"})
