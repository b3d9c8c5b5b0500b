"""The ``/_sim`` control endpoint over HTTP."""

from __future__ import annotations

import requests

from airflow_provider_iotda.simulator import IoTDASimulator

from .sim_helpers import INSTANCE_1, INSTANCE_2, INSTANCE_3, NEW_INSTANCE, tasks_url


def test_health_and_instances(sim: IoTDASimulator) -> None:
    assert requests.get(f"{sim.control_url}/health", timeout=5).json() == {"status": "ok"}
    listed = requests.get(f"{sim.control_url}/instances", timeout=5).json()["instances"]
    assert sorted(listed) == sorted([INSTANCE_1, INSTANCE_2, INSTANCE_3])
    created = requests.post(
        f"{sim.control_url}/instances", json={"instance_id": NEW_INSTANCE}, timeout=5
    )
    assert created.status_code == 201
    assert sim.state.has_instance(NEW_INSTANCE)


def test_add_task_then_advance(sim: IoTDASimulator, client: requests.Session) -> None:
    response = requests.post(
        f"{sim.control_url}/tasks",
        json={
            "instance_id": NEW_INSTANCE,
            "type": "MODIFY",
            "timeline": [["PENDING", 0], ["RUNNING", 5], ["SUCCESS", 20]],
            "target_config": {"flavor": {"type": "iotda.standard.s3", "size": 2}},
            "operate_window": {"start_time": "18:00", "end_time": "22:00"},
        },
        timeout=5,
    )
    assert response.status_code == 201
    task_id = response.json()["task_id"]
    listed = client.get(tasks_url(sim, NEW_INSTANCE), timeout=5).json()["tasks"]
    assert [(t["task_id"], t["status"]) for t in listed] == [(task_id, "PENDING")]
    advanced = requests.post(f"{sim.control_url}/advance", json={"seconds": 20}, timeout=5)
    assert advanced.status_code == 200
    assert advanced.json()["elapsed"] == 20
    shown = client.get(f"{tasks_url(sim, NEW_INSTANCE)}/{task_id}", timeout=5).json()
    assert (shown["status"], shown["progress"]) == ("SUCCESS", 100)
    every = requests.get(f"{sim.control_url}/instances/{NEW_INSTANCE}/tasks", timeout=5).json()
    assert [t["task_id"] for t in every["tasks"]] == [task_id]


def test_bad_control_requests_are_400(sim: IoTDASimulator) -> None:
    for path, body in [
        ("tasks", {"type": "MODIFY"}),
        ("tasks", {"instance_id": NEW_INSTANCE, "type": "NOPE"}),
        ("tasks", {"instance_id": "NOT VALID", "type": "MODIFY"}),
        ("advance", {"seconds": -5}),
        ("advance", {}),
        ("faults", {"rates": {"418": 1}}),
        ("instances", {}),
    ]:
        response = requests.post(f"{sim.control_url}/{path}", json=body, timeout=5)
        assert response.status_code == 400, (path, body)
        assert response.json()["error"]
    response = requests.post(f"{sim.control_url}/tasks", data=b"{not json", timeout=5)
    assert response.status_code == 400


def test_faults_and_stats_and_reset(sim: IoTDASimulator, client: requests.Session) -> None:
    settings = {"rates": {"503": 1.0}, "retry_after": 4}
    response = requests.post(f"{sim.control_url}/faults", json=settings, timeout=5)
    assert response.json()["rates"] == {"503": 1.0}
    assert requests.get(f"{sim.control_url}/faults", timeout=5).json()["retry_after"] == 4
    assert client.get(tasks_url(sim), timeout=5).status_code == 503
    stats = requests.get(f"{sim.control_url}/stats", timeout=5).json()
    assert stats["faults"] == {"503": 1}
    assert stats["statuses"] == {"503": 1}
    assert stats["control_requests"] == 3
    assert set(stats) >= {"requests", "connections", "paths", "clock", "fault_config"}
    assert requests.post(f"{sim.control_url}/reset", timeout=5).status_code == 200
    assert client.get(tasks_url(sim), timeout=5).status_code == 200
    assert sim.counters.faults == {}


def test_unknown_control_path(sim: IoTDASimulator) -> None:
    assert requests.get(f"{sim.control_url}/nothing", timeout=5).status_code == 404
    assert sim.counters.requests == 0  # control traffic is not API traffic
