"""Test code that talks to IoTDA against the simulator: a pytest module to copy into your suite.

``docs/testing.md`` includes it; ``tests/system/test_docs_examples.py`` runs it in a fresh
pytest, as a user's suite would.
"""

# [START pytest_simulator]
from __future__ import annotations

import json
from typing import Any

import pytest

from airflow_provider_iotda.hooks.iotda import IoTDAHook

pytest_plugins = ["airflow_provider_iotda.simulator.pytest_plugin"]

FACTORY_EAST = "3f9a2c1e-7b4d-4e8a-9c2f-5d6e7a8b9c01"  # an instance of the demo scenario


@pytest.fixture
def sim(
    iotda_simulator: Any, iotda_simulator_config: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> Any:
    """The simulator (running, reset before each test); ``iotda_default`` points at it."""
    config = iotda_simulator_config  # the simulator's AK, SK and project ID
    connection = {
        "conn_type": "huaweicloud_iotda",
        "login": config["ak"],
        "password": config["sk"],
        "extra": {"endpoint": iotda_simulator.url, "project_id": config["project_id"]},
    }
    monkeypatch.setenv("AIRFLOW_CONN_IOTDA_DEFAULT", json.dumps(connection))
    return iotda_simulator


def test_a_resize_that_finished(sim: Any) -> None:
    task_id = sim.add_task(
        FACTORY_EAST, "MODIFY", timeline=[("PENDING", 0), ("RUNNING", 5), ("SUCCESS", 20)]
    )
    sim.advance(20)  # move simulated time on: the task is SUCCESS
    sim.set_faults(next_faults=["503"])  # the next API call fails; the hook retries
    with IoTDAHook("iotda_default") as hook:
        task = hook.find_instance_task(FACTORY_EAST, instance_task_type="MODIFY")
    assert task is not None
    assert (task.task_id, task.status) == (task_id, "SUCCESS")
    assert sim.counters.requests == 2  # the 503, then the answer


# [END pytest_simulator]
