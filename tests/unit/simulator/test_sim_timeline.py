"""Task timelines on the simulated clock: advance(), time_factor, live tasks, progress, reset."""

from __future__ import annotations

import datetime as dt
import time

import pytest
import requests

from airflow_provider_iotda.auth import Credentials
from airflow_provider_iotda.hooks.iotda import SigningAuth
from airflow_provider_iotda.simulator import IoTDASimulator, ScenarioError
from airflow_provider_iotda.simulator.state import SimClock, format_time

from .sim_helpers import AK, INSTANCE_1, NEW_INSTANCE, PROJECT, SK, tasks_url


def _show(client: requests.Session, sim: IoTDASimulator, instance: str, task_id: str) -> dict:
    response = client.get(f"{tasks_url(sim, instance)}/{task_id}", timeout=5)
    assert response.status_code == 200, response.text
    return response.json()


def test_demo_modify_follows_its_timeline(sim: IoTDASimulator, client: requests.Session) -> None:
    modify = client.get(tasks_url(sim), timeout=5).json()["tasks"][0]
    task_id = modify["task_id"]
    created = dt.datetime.strptime(modify["create_time"], "%Y-%m-%dT%H:%M:%S.%f%z")
    assert (modify["status"], _show(client, sim, INSTANCE_1, task_id)["progress"]) == ("PENDING", 0)

    sim.advance(4.9)
    assert _show(client, sim, INSTANCE_1, task_id)["status"] == "PENDING"
    sim.advance(0.2)  # 5.1 s
    running = _show(client, sim, INSTANCE_1, task_id)
    assert running["status"] == "RUNNING"
    assert running["start_time"] == format_time(created + dt.timedelta(seconds=5))
    assert running["end_time"] is None
    sim.advance(7.4)  # 12.5 s: half way from 5 to 20
    assert _show(client, sim, INSTANCE_1, task_id)["progress"] == 50
    sim.advance(7.5)  # 20 s
    done = _show(client, sim, INSTANCE_1, task_id)
    assert (done["status"], done["progress"]) == ("SUCCESS", 100)
    assert done["start_time"] == format_time(created + dt.timedelta(seconds=5))
    assert done["end_time"] == format_time(created + dt.timedelta(seconds=20))
    sim.advance(3600)
    assert _show(client, sim, INSTANCE_1, task_id)["status"] == "SUCCESS"


def test_failed_timeline_with_details(sim: IoTDASimulator, client: requests.Session) -> None:
    task_id = sim.add_task(
        NEW_INSTANCE,
        "MODIFY",
        [("PENDING", 0), ("RUNNING", 10, "Resizing nodes"), ("FAILED", 30)],
        status_detail="Quota exceeded",
        target_config={"flavor": {"type": "iotda.standard.s2", "size": 4}},
    )
    assert "status_detail" not in _show(client, sim, NEW_INSTANCE, task_id)
    sim.advance(10)
    assert _show(client, sim, NEW_INSTANCE, task_id)["status_detail"] == "Resizing nodes"
    sim.advance(20)
    failed = _show(client, sim, NEW_INSTANCE, task_id)
    assert (failed["status"], failed["status_detail"], failed["progress"]) == (
        "FAILED",
        "Quota exceeded",
        100,
    )
    assert failed["target_config"] == {"flavor": {"type": "iotda.standard.s2", "size": 4}}
    assert failed["operate_window"] is None


def test_task_added_live_is_newest_and_listed(
    sim: IoTDASimulator, client: requests.Session
) -> None:
    before = client.get(tasks_url(sim), timeout=5).json()
    sim.advance(30)
    task_id = sim.add_task(INSTANCE_1, "UPDATE_ALLOW_LISTS", [("PENDING", 0), ("SUCCESS", 2)])
    after = client.get(tasks_url(sim), timeout=5).json()
    assert after["page"]["count"] == before["page"]["count"] + 1
    assert after["tasks"][0]["task_id"] == task_id > before["tasks"][0]["task_id"]
    assert after["tasks"][0]["create_time"] == format_time(sim.now())


def test_explicit_task_id_and_duplicates(sim: IoTDASimulator, client: requests.Session) -> None:
    assert sim.add_task(NEW_INSTANCE, "OPEN_SNAT", task_id="ffff-0001") == "ffff-0001"
    assert _show(client, sim, NEW_INSTANCE, "ffff-0001")["type"] == "OPEN_SNAT"
    with pytest.raises(ScenarioError, match="twice"):
        sim.add_task(NEW_INSTANCE, "OPEN_SNAT", task_id="ffff-0001")
    with pytest.raises(ScenarioError, match="type"):
        sim.add_task(NEW_INSTANCE, "RESIZE")
    with pytest.raises(ScenarioError, match="decrease"):
        sim.add_task(NEW_INSTANCE, "MODIFY", [("RUNNING", 5), ("SUCCESS", 1)])


def test_reset_restores_the_scenario(sim: IoTDASimulator, client: requests.Session) -> None:
    sim.add_task(INSTANCE_1, "FREEZE")
    sim.advance(100)
    sim.reset()
    tasks = client.get(tasks_url(sim), timeout=5).json()["tasks"]
    assert len(tasks) == 6
    assert tasks[0]["status"] == "PENDING"
    assert sim.counters.requests == 1


def test_clock_runs_time_factor_times_faster() -> None:
    ticks = iter([100.0, 101.0, 103.0])
    start = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    clock = SimClock(time_factor=60, start=start, monotonic=lambda: next(ticks))
    assert clock.elapsed() == 60  # one real second
    clock.advance(5)
    assert clock.now() == start + dt.timedelta(seconds=185)
    with pytest.raises(ValueError, match="backwards"):
        clock.advance(-1)


def test_time_factor_moves_tasks_on_the_real_clock() -> None:
    """With 1 real second = 1 simulated hour, the 20 s demo task ends within milliseconds."""
    with (
        IoTDASimulator(ak=AK, sk=SK, project_id=PROJECT, time_factor=3600) as sim,
        requests.Session() as session,
    ):
        session.auth = SigningAuth(Credentials(AK, SK))
        task_id = sim.add_task(
            NEW_INSTANCE, "MODIFY", [("PENDING", 0), ("RUNNING", 5), ("SUCCESS", 20)]
        )
        deadline = time.monotonic() + 5
        status = "PENDING"
        while status != "SUCCESS" and time.monotonic() < deadline:
            time.sleep(0.01)
            status = _show(session, sim, NEW_INSTANCE, task_id)["status"]
        assert status == "SUCCESS"
        assert sim.stats()["clock"]["time_factor"] == 3600
