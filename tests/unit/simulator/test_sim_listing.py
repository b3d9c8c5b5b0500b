"""The list/show task API: pagination, ranges, the 20 and 180-day rules, formats, errors."""

from __future__ import annotations

import re

import pytest
import requests

from airflow_provider_iotda.simulator import IoTDASimulator

from .sim_helpers import (
    INSTANCE_1,
    INSTANCE_1_TYPES,
    INSTANCE_2,
    INSTANCE_3,
    NEW_INSTANCE,
    PROJECT,
    list_all,
    tasks_url,
)

TIME_FORMAT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
TASK_ID = re.compile(r"^[a-f0-9-]{1,64}$")
DAY = 86400


def test_default_listing_is_newest_first_with_all_fields(
    sim: IoTDASimulator, client: requests.Session
) -> None:
    response = client.get(tasks_url(sim), timeout=5)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    assert re.fullmatch(r"[0-9a-f]{32}", response.headers["X-Request-Id"])
    body = response.json()
    tasks = body["tasks"]
    # Six tasks in the 180-day window (the CREATE of 200 days ago is hidden).
    assert body["page"] == {"count": 6, "marker": tasks[-1]["task_id"]}
    assert [t["type"] for t in tasks] == INSTANCE_1_TYPES
    ids = [t["task_id"] for t in tasks]
    assert ids == sorted(ids, reverse=True)
    assert all(TASK_ID.match(i) for i in ids)
    newest = tasks[0]
    assert newest["status"] == "PENDING"
    assert newest["start_time"] is None
    assert newest["end_time"] is None
    assert TIME_FORMAT.match(newest["create_time"])
    assert newest["target_config"] == {
        "flavor": {"type": "iotda.standard.s3", "size": 2},
        "charge_mode": "postPaid",
    }
    assert newest["operate_window"] == {"start_time": "18:00", "end_time": "22:00"}
    freeze = tasks[2]
    assert freeze["target_config"] is None
    assert freeze["operate_window"] is None
    assert all(TIME_FORMAT.match(freeze[k]) for k in ("create_time", "start_time", "end_time"))
    failed = tasks[4]
    assert failed["status"] == "FAILED"
    assert "Insufficient resources" in failed["status_detail"]
    assert "status_detail" not in freeze


def test_marker_pages_through_everything_once(
    sim: IoTDASimulator, client: requests.Session
) -> None:
    everything = client.get(tasks_url(sim), timeout=5).json()["tasks"]
    for limit in (1, 2, 4, 6):
        assert list_all(client, sim, INSTANCE_1, limit) == everything


def test_marker_returns_only_smaller_ids_and_offset_skips_after_it(
    sim: IoTDASimulator, client: requests.Session
) -> None:
    ids = [t["task_id"] for t in client.get(tasks_url(sim), timeout=5).json()["tasks"]]
    body = client.get(tasks_url(sim), params={"marker": ids[1], "limit": 2}, timeout=5).json()
    assert [t["task_id"] for t in body["tasks"]] == ids[2:4]
    assert body["page"] == {"count": 6, "marker": ids[3]}
    body = client.get(
        tasks_url(sim), params={"marker": ids[1], "offset": 1, "limit": 2}, timeout=5
    ).json()
    assert [t["task_id"] for t in body["tasks"]] == ids[3:5]
    # offset alone jumps pages from the newest record
    body = client.get(tasks_url(sim), params={"offset": 4}, timeout=5).json()
    assert [t["task_id"] for t in body["tasks"]] == ids[4:]
    # a marker that is not an existing ID still works as a bound
    body = client.get(tasks_url(sim), params={"marker": "0"}, timeout=5).json()
    assert body["tasks"] == []
    assert body["page"] == {"count": 6, "marker": None}


def test_offset_past_the_end_gives_an_empty_page(
    sim: IoTDASimulator, client: requests.Session
) -> None:
    body = client.get(tasks_url(sim), params={"offset": 500}, timeout=5).json()
    assert body == {"page": {"count": 6, "marker": None}, "tasks": []}


@pytest.mark.parametrize(
    ("params", "code", "fragment"),
    [
        ({"offset": "-1"}, "IOTDA.000006", "offset"),
        ({"offset": "501"}, "IOTDA.000006", "offset"),
        ({"offset": "abc"}, "IOTDA.000006", "offset"),
        ({"offset": "1.5"}, "IOTDA.000006", "offset"),
        ({"limit": "0"}, "IOTDA.000017", "limit"),
        ({"limit": "501"}, "IOTDA.000017", "limit"),
        ({"limit": "ten"}, "IOTDA.000006", "limit"),
        ({"limit": ""}, "IOTDA.000006", "limit"),
        ({"marker": "XYZ"}, "IOTDA.000006", "marker"),
        ({"marker": "a" * 65}, "IOTDA.000006", "marker"),
    ],
)
def test_out_of_range_or_malformed_parameters_are_400(
    sim: IoTDASimulator,
    client: requests.Session,
    params: dict[str, str],
    code: str,
    fragment: str,
) -> None:
    response = client.get(tasks_url(sim), params=params, timeout=5)
    assert response.status_code == 400
    assert response.json()["error_code"] == code
    assert fragment in response.json()["error_msg"]
    assert response.headers["X-Request-Id"]


def test_boundary_values_are_accepted(sim: IoTDASimulator, client: requests.Session) -> None:
    for params in ({"offset": 0, "limit": 1}, {"offset": 500, "limit": 500}):
        assert client.get(tasks_url(sim), params=params, timeout=5).status_code == 200
    assert len(client.get(tasks_url(sim), params={"limit": 1}, timeout=5).json()["tasks"]) == 1


def test_only_the_20_newest_tasks_are_listed(sim: IoTDASimulator, client: requests.Session) -> None:
    ids = [sim.add_task(NEW_INSTANCE, "FREEZE", created=-100 * (30 - i)) for i in range(30)]
    body = client.get(tasks_url(sim, NEW_INSTANCE), timeout=5).json()
    assert body["page"]["count"] == 20
    assert [t["task_id"] for t in body["tasks"]] == sorted(ids, reverse=True)[:20]
    assert len(list_all(client, sim, NEW_INSTANCE, 7)) == 20


def test_tasks_older_than_180_days_are_not_listed(
    sim: IoTDASimulator, client: requests.Session
) -> None:
    keep = sim.add_task(NEW_INSTANCE, "CREATE", created=-179 * DAY)
    drop = sim.add_task(NEW_INSTANCE, "MODIFY", created=-181 * DAY)
    listed = [
        t["task_id"] for t in client.get(tasks_url(sim, NEW_INSTANCE), timeout=5).json()["tasks"]
    ]
    assert listed == [keep]
    assert client.get(f"{tasks_url(sim, NEW_INSTANCE)}/{drop}", timeout=5).status_code == 404
    sim.advance(2 * DAY)  # now the first one ages out too
    assert client.get(tasks_url(sim, NEW_INSTANCE), timeout=5).json()["tasks"] == []
    # The demo's instance 3 has a CREATE of 190 days ago: hidden from the start.
    types = [t["type"] for t in client.get(tasks_url(sim, INSTANCE_3), timeout=5).json()["tasks"]]
    assert "CREATE" not in types
    assert len(types) == 4


def test_future_tasks_appear_when_their_creation_time_comes(
    sim: IoTDASimulator, client: requests.Session
) -> None:
    task_id = sim.add_task(NEW_INSTANCE, "MODIFY", created=60)
    assert client.get(tasks_url(sim, NEW_INSTANCE), timeout=5).json()["tasks"] == []
    sim.advance(60)
    listed = client.get(tasks_url(sim, NEW_INSTANCE), timeout=5).json()["tasks"]
    assert [t["task_id"] for t in listed] == [task_id]


def test_show_task_adds_progress(sim: IoTDASimulator, client: requests.Session) -> None:
    listed = client.get(tasks_url(sim, INSTANCE_2), timeout=5).json()["tasks"]
    response = client.get(f"{tasks_url(sim, INSTANCE_2)}/{listed[0]['task_id']}", timeout=5)
    assert response.status_code == 200
    shown = response.json()
    assert shown.pop("progress") == 100
    assert shown == listed[0]


def test_unknown_task_and_instance_and_bad_ids(
    sim: IoTDASimulator, client: requests.Session
) -> None:
    missing_task = client.get(f"{tasks_url(sim)}/abcdef", timeout=5)
    assert missing_task.status_code == 404
    assert missing_task.json()["error_code"].startswith("IOTDA.")
    missing_instance = client.get(tasks_url(sim, NEW_INSTANCE), timeout=5)
    assert missing_instance.status_code == 404
    assert missing_instance.json()["error_code"].startswith("IOTDA.")
    assert "instance not found" in missing_instance.json()["error_msg"]
    for bad in ("NOT-HEX", "a" * 37):
        response = client.get(tasks_url(sim, bad), timeout=5)
        assert response.status_code == 400
        assert response.json()["error_code"] == "IOTDA.000006"
    bad_task = client.get(f"{tasks_url(sim)}/Task_1", timeout=5)
    assert bad_task.status_code == 400


def test_unknown_api_path_is_an_apig_404(sim: IoTDASimulator, client: requests.Session) -> None:
    for response in (
        client.get(f"{sim.url}/v5/iot/{PROJECT}/iotda-devices", timeout=5),
        client.post(tasks_url(sim), json={}, timeout=5),
    ):
        assert response.status_code == 404
        assert response.json()["error_code"] == "APIG.0101"
        assert response.headers["X-Request-Id"]


def test_empty_instance_lists_nothing(sim: IoTDASimulator, client: requests.Session) -> None:
    sim.add_instance(NEW_INSTANCE)
    body = client.get(tasks_url(sim, NEW_INSTANCE), timeout=5).json()
    assert body == {"page": {"count": 0, "marker": None}, "tasks": []}
