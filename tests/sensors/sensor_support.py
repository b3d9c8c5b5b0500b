"""Helpers of the sensor unit tests; the shared values are in ``tests/iotda_test_values.py``."""

from __future__ import annotations

from typing import Any

from iotda_test_values import CREATE_ID, MODIFY_ID, OLD_MODIFY_ID, last_task_id, page_json
from iotda_test_values import task_json as shared_task_json


def task_json(task_id: str = MODIFY_ID, status: str = "PENDING", **fields: Any) -> dict[str, Any]:
    """One task as the API lists it: :func:`iotda_test_values.task_json`, PENDING, with a
    target flavor and a maintenance window."""
    fields = {
        "target_config": {"flavor": {"type": "iotda.standard.s3", "size": 2}},
        "operate_window": {"start_time": "18:00", "end_time": "22:00"},
        **fields,
    }
    return shared_task_json(task_id, status, **fields)


def page(*tasks: dict[str, Any]) -> dict[str, Any]:
    """A whole ``ListInstanceTasks`` answer (the marker is the last task's ID)."""
    return page_json(list(tasks), last_task_id(list(tasks)))


def history(status: str = "PENDING", **extra: Any) -> dict[str, Any]:
    """The instance's list: an old CREATE, an old FAILED MODIFY and the MODIFY we wait for."""
    return page(
        task_json(MODIFY_ID, status, create_time="2024-05-01T10:00:00.000Z", **extra),
        task_json(
            OLD_MODIFY_ID,
            "FAILED",
            create_time="2024-04-01T10:00:00.000Z",
            status_detail="old failure",
        ),
        task_json(CREATE_ID, "SUCCESS", type="CREATE", create_time="2024-01-01T00:00:00.000Z"),
    )


class FakeTI:
    """Just enough of a task instance for reschedule mode."""

    def __init__(self, first_reschedule_date: Any = None) -> None:
        self.first_reschedule_date = first_reschedule_date
        self.calls = 0

    def get_first_reschedule_date(self, context: Any) -> Any:
        self.calls += 1
        return self.first_reschedule_date
