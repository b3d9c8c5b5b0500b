"""Constants and helpers shared by the simulator tests."""

from __future__ import annotations

from typing import Any

import requests

from airflow_provider_iotda.simulator import IoTDASimulator

AK = "SIMTESTACCESSKEY0001"
SK = "SIMTESTSECRET-do-not-leak-4b1d"
TOKEN = "SIMTESTTOKEN-do-not-leak-91cc"
ID_TOKEN = "SIMTEST-OIDC-do-not-leak-02ab"
POD_TOKEN = "SIMTEST-POD-do-not-leak-03cd"
PROJECT = "0123456789abcdef0123456789abcdef"
REGION = "cn-north-4"
# The demo scenario's instances.
INSTANCE_1 = "3f9a2c1e-7b4d-4e8a-9c2f-5d6e7a8b9c01"
INSTANCE_2 = "a8d1e6b2-4c3f-4a9e-8b7d-2f1c0e9d8a76"
INSTANCE_3 = "c5e4b3a2-9d8c-4f7e-a6b5-1c2d3e4f5a60"
#: The types of INSTANCE_1's tasks in the 180-day window, newest first.
INSTANCE_1_TYPES = [
    "MODIFY",
    "UNFREEZE",
    "FREEZE",
    "UPDATE_ACCESS_CONFIG",
    "MODIFY",
    "UPDATE_ALLOW_LISTS",
]
NEW_INSTANCE = "0f0e0d0c-0b0a-4999-8888-777766665555"


def tasks_url(sim: IoTDASimulator, instance_id: str = INSTANCE_1, project: str = PROJECT) -> str:
    """URL of the list-tasks API."""
    return f"{sim.url}/v5/iot/{project}/iotda-instances/{instance_id}/tasks"


def list_all(
    client: requests.Session, sim: IoTDASimulator, instance_id: str, limit: int
) -> list[dict[str, Any]]:
    """Follow page.marker until an empty page."""
    tasks: list[dict[str, Any]] = []
    params: dict[str, Any] = {"limit": limit}
    for _ in range(100):
        body = client.get(tasks_url(sim, instance_id), params=params, timeout=5).json()
        if not body["tasks"]:
            assert body["page"]["marker"] is None
            return tasks
        tasks.extend(body["tasks"])
        params["marker"] = body["page"]["marker"]
    raise AssertionError("pagination did not end")
