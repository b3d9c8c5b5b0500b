"""The simulator's instance API: show/list instances, resize (MODIFY task, flavor, statuses,
operate window), retry of FAILED tasks, run plans and their controls."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import requests

from airflow_provider_iotda.simulator import IoTDASimulator, Scenario, ScenarioError, SimulatorState
from airflow_provider_iotda.simulator.state import seconds_until_window

from .sim_helpers import INSTANCE_1, INSTANCE_3, NEW_INSTANCE, PROJECT, tasks_url

S2_2 = {"type": "iotda.standard.s2", "size": 2}


def _base(sim: IoTDASimulator) -> str:
    return f"{sim.url}/v5/iot/{PROJECT}/iotda-instances"


def _resize(
    client: requests.Session, sim: IoTDASimulator, instance_id: str, **body: Any
) -> requests.Response:
    payload = {"flavor": S2_2, **body}
    return client.post(f"{_base(sim)}/{instance_id}/resize", json=payload, timeout=5)


def _newest_modify(sim: IoTDASimulator, instance_id: str) -> dict[str, Any]:
    return next(t for t in sim.tasks(instance_id) if t["type"] == "MODIFY")


def test_show_instance_of_the_demo(sim: IoTDASimulator, client: requests.Session) -> None:
    body = client.get(f"{_base(sim)}/{INSTANCE_3}", timeout=5).json()
    assert body["instance_id"] == INSTANCE_3
    assert body["name"] == "lab-west"
    assert body["flavor"] == {"type": "iotda.standard.s2", "size": 1}
    assert body["status"] == "ACTIVE"
    assert body["operate_window"] == {"start_time": "01:00", "end_time": "03:00"}
    assert body["create_time"].endswith("Z")
    assert len(body["create_time"]) == 20
    assert client.get(f"{_base(sim)}/{NEW_INSTANCE}", timeout=5).status_code == 404


def test_a_scenario_modify_changes_status_then_flavor(
    sim: IoTDASimulator, client: requests.Session
) -> None:
    # INSTANCE_1's demo MODIFY (s2 x 2 -> s3 x 2) runs from 0 to 20 s.
    assert sim.instance(INSTANCE_1)["status"] == "MODIFYING"  # type: ignore[index]
    assert sim.instance(INSTANCE_1)["flavor"] == S2_2  # type: ignore[index]
    sim.advance(20)
    shown = client.get(f"{_base(sim)}/{INSTANCE_1}", timeout=5).json()
    assert shown["status"] == "ACTIVE"
    assert shown["flavor"] == {"type": "iotda.standard.s3", "size": 2}


def test_list_instances_pages_newest_first(sim: IoTDASimulator, client: requests.Session) -> None:
    first = client.get(_base(sim), params={"limit": 2}, timeout=5).json()
    assert first["count"] == 3
    ids = [i["instance_id"] for i in first["instances"]]
    assert ids == sorted(ids, reverse=True)
    assert first["marker"] == ids[-1]
    assert "operate_window" not in first["instances"][0]  # the list's short form
    rest = client.get(_base(sim), params={"limit": 2, "marker": first["marker"]}, timeout=5)
    assert [i["instance_id"] for i in rest.json()["instances"]] == [INSTANCE_1]
    assert client.get(_base(sim), params={"name": "lab"}, timeout=5).json()["count"] == 1
    assert client.get(_base(sim), params={"limit": 0}, timeout=5).status_code == 400


def test_resize_runs_a_modify_task(sim: IoTDASimulator, client: requests.Session) -> None:
    response = _resize(client, sim, INSTANCE_3)
    assert response.status_code == 200
    assert response.json()["order_id"].startswith("CS")
    task = _newest_modify(sim, INSTANCE_3)
    assert task["status"] == "PENDING"
    assert task["target_config"]["flavor"] == S2_2
    assert sim.instance(INSTANCE_3)["status"] == "MODIFYING"  # type: ignore[index]
    assert sim.instance(INSTANCE_3)["order_id"] == response.json()["order_id"]  # type: ignore[index]
    sim.advance(2)
    assert _newest_modify(sim, INSTANCE_3)["status"] == "RUNNING"
    # A resize is refused while the instance is not ACTIVE (the simulator's own code).
    again = _resize(client, sim, INSTANCE_3, flavor={"type": "iotda.standard.s3", "size": 1})
    assert again.status_code == 400
    assert again.json()["error_code"] == "IOTDA.014002"
    assert "MODIFYING" in again.json()["error_msg"]
    sim.advance(10)
    shown = sim.instance(INSTANCE_3)
    assert shown is not None
    assert (shown["status"], shown["flavor"]) == ("ACTIVE", S2_2)
    same = _resize(client, sim, INSTANCE_3)
    assert (same.status_code, same.json()["error_code"]) == (400, "IOTDA.014004")
    assert sim.counters.methods["POST"] == 3


def test_a_failed_resize_leaves_modify_failed_and_a_retry_fixes_it(
    sim: IoTDASimulator, client: requests.Session
) -> None:
    sim.plan_resize(
        INSTANCE_3, "FAILED", pending_seconds=1, running_seconds=4, status_detail="no quota"
    )
    assert _resize(client, sim, INSTANCE_3).status_code == 200
    sim.advance(5)
    task = _newest_modify(sim, INSTANCE_3)
    assert (task["status"], task["status_detail"], task["progress"]) == ("FAILED", "no quota", 100)
    shown = sim.instance(INSTANCE_3)
    assert shown is not None
    assert (shown["status"], shown["flavor"]["size"]) == ("MODIFY_FAILED", 1)
    retry_url = f"{tasks_url(sim, INSTANCE_3)}/{task['task_id']}/retry"
    retried = client.post(retry_url, timeout=5)
    assert retried.status_code == 200
    assert (retried.json()["status"], retried.json()["progress"]) == ("PENDING", 0)
    assert "status_detail" not in retried.json()
    assert sim.instance(INSTANCE_3)["status"] == "MODIFYING"  # type: ignore[index]
    not_failed = client.post(retry_url, timeout=5)
    assert (not_failed.status_code, not_failed.json()["error_code"]) == (400, "IOTDA.014003")
    sim.advance(25)  # the instance's default retry plan: 5 s PENDING, 20 s RUNNING, SUCCESS
    assert (
        client.get(f"{tasks_url(sim, INSTANCE_3)}/{task['task_id']}", timeout=5).json()["status"]
        == "SUCCESS"
    )
    assert sim.instance(INSTANCE_3)["flavor"] == S2_2  # type: ignore[index]
    unknown = client.post(f"{tasks_url(sim, INSTANCE_3)}/0a0a/retry", timeout=5)
    assert unknown.status_code == 404


def test_retry_plans_queue(sim: IoTDASimulator, client: requests.Session) -> None:
    task_id = sim.add_task(INSTANCE_3, "UPDATE_ALLOW_LISTS", [("PENDING", 0), ("FAILED", 1)])
    sim.advance(1)
    sim.plan_retry(
        INSTANCE_3, "FAILED", pending_seconds=0, running_seconds=3, status_detail="again"
    )
    assert client.post(f"{tasks_url(sim, INSTANCE_3)}/{task_id}/retry", timeout=5).ok
    sim.advance(3)
    shown = client.get(f"{tasks_url(sim, INSTANCE_3)}/{task_id}", timeout=5).json()
    assert (shown["status"], shown["status_detail"]) == ("FAILED", "again")


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"flavor": {"type": "a b", "size": 1}}, "IOTDA.000006"),
        ({"flavor": {"type": "iotda.standard.s3", "size": 0}}, "IOTDA.000006"),
        ({"flavor": {"type": "iotda.standard.s3", "size": True}}, "IOTDA.000006"),
        ({"flavor": None}, "IOTDA.000006"),
        ({"delay": "yes"}, "IOTDA.000006"),
    ],
)
def test_resize_checks_its_body(
    sim: IoTDASimulator, client: requests.Session, body: dict[str, Any], code: str
) -> None:
    response = _resize(client, sim, INSTANCE_3, **body)
    assert (response.status_code, response.json()["error_code"]) == (400, code)
    assert sim.instance(INSTANCE_3)["status"] == "ACTIVE"  # type: ignore[index]


def test_resize_of_an_unknown_instance(sim: IoTDASimulator, client: requests.Session) -> None:
    assert _resize(client, sim, NEW_INSTANCE).status_code == 404


def test_delay_without_window_is_refused(sim: IoTDASimulator, client: requests.Session) -> None:
    sim.add_instance(NEW_INSTANCE, flavor={"type": "iotda.standard.s1", "size": 1})
    response = _resize(client, sim, NEW_INSTANCE, delay=True)
    assert (response.status_code, response.json()["error_code"]) == (400, "IOTDA.014005")


def test_delay_waits_for_the_operate_window() -> None:
    start = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
    scenario = Scenario.from_dict(
        {
            "instances": [
                {
                    "instance_id": NEW_INSTANCE,
                    "operate_window": {"start_time": "18:00", "end_time": "22:00"},
                    "resize": {"pending_seconds": 10, "running_seconds": 60},
                }
            ]
        }
    )
    state = SimulatorState(scenario, time_factor=0, start=start)
    assert state.resize(NEW_INSTANCE, S2_2, delay=True) == {"order_id": state._orders[NEW_INSTANCE]}
    six_hours = 6 * 3600
    state.advance(six_hours + 9)
    task = state.all_tasks(NEW_INSTANCE)[0]
    assert (task["status"], task["start_time"]) == ("PENDING", None)
    assert task["operate_window"] == {"start_time": "18:00", "end_time": "22:00"}
    state.advance(1)
    assert state.all_tasks(NEW_INSTANCE)[0]["status"] == "RUNNING"
    assert state.all_tasks(NEW_INSTANCE)[0]["start_time"] == "2026-03-01T18:00:10.000Z"
    state.advance(60)
    assert state.show_instance(NEW_INSTANCE)["flavor"] == S2_2  # type: ignore[index]


@pytest.mark.parametrize(
    ("now", "window", "seconds"),
    [
        ("12:00", ("18:00", "22:00"), 6 * 3600),
        ("19:30", ("18:00", "22:00"), 0),
        ("22:00", ("18:00", "22:00"), 20 * 3600),
        ("23:30", ("23:00", "01:00"), 0),
        ("00:30", ("23:00", "01:00"), 0),
        ("01:00", ("23:00", "01:00"), 22 * 3600),
    ],
)
def test_seconds_until_window(now: str, window: tuple[str, str], seconds: float) -> None:
    hour, minute = (int(p) for p in now.split(":"))
    moment = dt.datetime(2026, 3, 1, hour, minute, tzinfo=dt.UTC)
    assert seconds_until_window(moment, {"start_time": window[0], "end_time": window[1]}) == seconds


def test_control_endpoint_sets_instances_and_plans(
    sim: IoTDASimulator, client: requests.Session
) -> None:
    created = requests.post(
        f"{sim.control_url}/instances",
        json={"instance_id": NEW_INSTANCE, "flavor": {"type": "iotda.standard.s1", "size": 4}},
        timeout=5,
    )
    assert created.status_code == 201
    assert sim.instance(NEW_INSTANCE)["flavor"]["size"] == 4  # type: ignore[index]
    plan = {"outcome": "FAILED", "pending_seconds": 0, "running_seconds": 1}
    assert (
        requests.post(
            f"{sim.control_url}/instances/{NEW_INSTANCE}/next-resize", json=plan, timeout=5
        ).status_code
        == 201
    )
    assert _resize(client, sim, NEW_INSTANCE).ok
    sim.advance(1)
    assert sim.instance(NEW_INSTANCE)["status"] == "MODIFY_FAILED"  # type: ignore[index]
    bad = requests.post(
        f"{sim.control_url}/instances/{NEW_INSTANCE}/next-retry",
        json={"outcome": "MAYBE"},
        timeout=5,
    )
    assert bad.status_code == 400
    missing = requests.post(
        f"{sim.control_url}/instances/{INSTANCE_1[:-1]}0/next-resize", json={}, timeout=5
    )
    assert missing.status_code == 404


@pytest.mark.parametrize(
    ("instance", "message"),
    [
        ({"flavor": {"type": "s 2", "size": 1}}, "flavor.type"),
        ({"flavor": {"type": "s2", "size": 0}}, "flavor.size"),
        ({"operate_window": {"start_time": "25:00", "end_time": "01:00"}}, "start_time"),
        ({"status": "MODIFYING"}, "status"),
        ({"resize": {"outcome": "RUNNING"}}, "resize.outcome"),
        ({"retry": {"pending_seconds": -1}}, "retry"),
        ({"colour": "red"}, "unknown keys"),
    ],
)
def test_scenario_instances_are_checked(instance: dict[str, Any], message: str) -> None:
    with pytest.raises(ScenarioError, match=message):
        Scenario.from_dict({"instances": [{"instance_id": NEW_INSTANCE, **instance}]})
