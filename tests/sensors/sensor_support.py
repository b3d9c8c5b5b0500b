"""Values and helpers of the sensor unit tests (a uniquely named module: see unit_support)."""

from __future__ import annotations

from typing import Any

TEST_SK = "TESTSECRETKEY-do-not-leak-9f3a1c"
TEST_PROJECT = "0123456789abcdef0123456789abcdef"
TEST_INSTANCE = "6b6f5c3e-1f1a-4e55-9d5a-0123456789ab"
TEST_ENDPOINT = "https://iotda-mgmt.cn-north-4.myhuaweicloud.com"
TASKS_URL = f"{TEST_ENDPOINT}/v5/iot/{TEST_PROJECT}/iotda-instances/{TEST_INSTANCE}/tasks"

MODIFY_ID = "0a1b2c3d-0000-4000-8000-00000000aaaa"
OLD_MODIFY_ID = "0a1b2c3d-0000-4000-8000-000000000001"
CREATE_ID = "0a1b2c3d-0000-4000-8000-000000000000"


def task_json(
    task_id: str = MODIFY_ID,
    status: str = "PENDING",
    *,
    type: str = "MODIFY",
    create_time: str = "2024-05-01T10:00:00.000Z",
    **extra: Any,
) -> dict[str, Any]:
    """One task as the API lists it."""
    return {
        "task_id": task_id,
        "type": type,
        "status": status,
        "create_time": create_time,
        "start_time": None,
        "end_time": None,
        "target_config": {"flavor": {"type": "iotda.standard.s3", "size": 2}},
        "operate_window": {"start_time": "18:00", "end_time": "22:00"},
        **extra,
    }


def page(*tasks: dict[str, Any]) -> dict[str, Any]:
    """A whole ``ListInstanceTasks`` answer."""
    return {
        "page": {"count": len(tasks), "marker": tasks[-1]["task_id"] if tasks else None},
        "tasks": list(tasks),
    }


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
