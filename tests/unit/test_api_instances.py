"""Instances and single tasks: models, URL builders, parsers and ``IoTDAHook``'s read calls
(requests-mock)."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests_mock
from iotda_test_values import TEST_ENDPOINT, TEST_INSTANCE, TEST_PROJECT, verify_signature
from iotda_test_values import task_json as task

from airflow_provider_iotda import api
from airflow_provider_iotda.errors import (
    IoTDAInvalidResponseError,
    IoTDANotFoundError,
    IoTDAPaginationError,
)
from airflow_provider_iotda.hooks.iotda import IoTDAHook
from airflow_provider_iotda.models import Instance, InstancePage

BASE = f"{TEST_ENDPOINT}/v5/iot/{TEST_PROJECT}/iotda-instances"
INSTANCE_URL = f"{BASE}/{TEST_INSTANCE}"
TASK_ID = "0a1b2c3d-0000-4000-8000-00000000aaaa"


def instance_json(instance_id: str = TEST_INSTANCE, **fields: Any) -> dict[str, Any]:
    """One instance as ShowInstance answers (the SDK's fields)."""
    return {
        "instance_type": "standard",
        "instance_id": instance_id,
        "name": "factory-east",
        "charge_mode": "postPaid",
        "flavor": {"type": "iotda.standard.s2", "size": 2},
        "status": "ACTIVE",
        "region_id": "cn-north-4",
        "description": "line 1",
        "access_infos": [{"type": "MQTT", "address": "x.example"}],
        "create_time": "2023-01-28T06:57:52Z",
        "update_time": "2024-02-01T10:00:00Z",
        "enterprise_project_id": "0",
        "tags": [{"key": "env", "value": "prod"}],
        "order_id": "CS2401011200ABCDEF",
        "operate_window": {"start_time": "18:00", "end_time": "22:00"},
        "additional_params": None,
        **fields,
    }


# -- models --------------------------------------------------------------------------------------


def test_instance_parses_every_field_and_keeps_the_rest() -> None:
    instance = Instance.from_dict(instance_json())
    assert instance.status == "ACTIVE"
    assert instance.flavor is not None
    assert instance.flavor.same_as("iotda.standard.s2", 2)
    assert not instance.flavor.same_as("iotda.standard.s2", 3)
    assert instance.flavor.describe() == "iotda.standard.s2 x 2"
    assert instance.operate_window is not None
    assert instance.operate_window.end_time == "22:00"
    assert instance.create_time is not None
    assert instance.create_time.isoformat() == ("2023-01-28T06:57:52+00:00")
    assert instance.extra["tags"] == [{"key": "env", "value": "prod"}]
    assert instance.extra["access_infos"][0]["type"] == "MQTT"
    assert instance.to_dict()["order_id"] == "CS2401011200ABCDEF"
    assert Instance.from_dict(instance.to_dict()) == instance


@pytest.mark.parametrize("status", ["MODIFY_FAILED", "MIGRATING"])
def test_instance_keeps_known_and_unknown_statuses(status: str) -> None:
    assert Instance.from_dict(instance_json(status=status)).status == status


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"instance_id": None}, "lacks instance_id"),
        ({"status": ["ACTIVE"]}, "status="),
        ({"flavor": "s2"}, "flavor="),
        ({"flavor": {"type": "s2", "size": "2"}}, "flavor.size="),
        ({"create_time": "yesterday"}, "create_time="),
        ({"operate_window": 5}, "operate_window="),
    ],
)
def test_instance_of_a_wrong_shape_names_the_field(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(IoTDAInvalidResponseError, match=message):
        Instance.from_dict(instance_json(**fields))


def test_instance_page_parses_and_rejects_wrong_shapes() -> None:
    page = InstancePage.from_dict(
        {"count": 2, "marker": "bb", "instances": [instance_json("bb"), instance_json("aa")]}
    )
    assert [i.instance_id for i in page.records] == ["bb", "aa"]
    assert (page.count, page.marker) == (2, "bb")
    assert InstancePage.from_dict({"count": 0, "marker": None, "instances": None}).instances == []
    with pytest.raises(IoTDAInvalidResponseError, match="instances of type dict"):
        InstancePage.from_dict({"instances": {}})
    with pytest.raises(IoTDAInvalidResponseError, match="count="):
        InstancePage.from_dict({"count": "2", "instances": []})
    with pytest.raises(IoTDAInvalidResponseError, match=r"instances\.0=7"):
        InstancePage.from_dict({"instances": [7]})


# -- URLs and parsers ------------------------------------------------------------------------------


def test_urls_are_built_from_validated_parts() -> None:
    assert api.instance_url(TEST_ENDPOINT, TEST_PROJECT, TEST_INSTANCE) == INSTANCE_URL
    assert api.instances_url(TEST_ENDPOINT, TEST_PROJECT, limit=2, marker="ab") == (
        f"{BASE}?limit=2&marker=ab"
    )
    assert api.task_url(TEST_ENDPOINT, TEST_PROJECT, TEST_INSTANCE, TASK_ID) == (
        f"{INSTANCE_URL}/tasks/{TASK_ID}"
    )
    assert api.retry_task_url(TEST_ENDPOINT, TEST_PROJECT, TEST_INSTANCE, TASK_ID).endswith(
        f"/tasks/{TASK_ID}/retry"
    )
    assert api.resize_url(TEST_ENDPOINT, TEST_PROJECT, TEST_INSTANCE) == f"{INSTANCE_URL}/resize"
    with pytest.raises(ValueError, match="instance_task_id"):
        api.task_url(TEST_ENDPOINT, TEST_PROJECT, TEST_INSTANCE, "../x")
    with pytest.raises(ValueError, match="limit"):
        api.instances_url(TEST_ENDPOINT, TEST_PROJECT, limit=501)


def test_parse_task_reads_progress_and_errors() -> None:
    body = json.dumps(task(TASK_ID, status="RUNNING", progress=40)).encode()
    parsed = api.parse_task(api.Answer(200, {}, body))
    assert (parsed.task_id, parsed.progress) == (TASK_ID, 40)
    with pytest.raises(IoTDANotFoundError):
        api.parse_task(api.Answer(404, {}, b'{"error_code": "IOTDA.014001", "error_msg": "x"}'))
    with pytest.raises(IoTDAInvalidResponseError, match="not JSON") as caught:
        api.parse_instance(api.Answer(200, {}, b"<html>"))
    assert caught.value.retryable


# -- hook reads ------------------------------------------------------------------------------------


def test_show_instance_is_one_signed_get(mock: requests_mock.Mocker, hook: IoTDAHook) -> None:
    mock.get(INSTANCE_URL, json=instance_json())
    instance = hook.show_instance()
    assert instance.name == "factory-east"
    assert mock.call_count == 1
    request = mock.request_history[0]
    assert request.method == "GET"
    assert verify_signature(request)


def test_show_instance_task_gets_one_task(mock: requests_mock.Mocker, hook: IoTDAHook) -> None:
    mock.get(f"{INSTANCE_URL}/tasks/{TASK_ID}", json=task(TASK_ID, status="PENDING", progress=0))
    shown = hook.show_instance_task(TASK_ID)
    assert (shown.status, shown.progress) == ("PENDING", 0)
    with pytest.raises(ValueError, match="instance_task_id"):
        hook.show_instance_task("not/a/task")
    assert mock.call_count == 1


def test_reads_retry_a_5xx(mock: requests_mock.Mocker, hook: IoTDAHook) -> None:
    mock.get(INSTANCE_URL, [{"status_code": 503, "json": {}}, {"json": instance_json()}])
    assert hook.show_instance().instance_id == TEST_INSTANCE
    assert mock.call_count == 2


def _instances_page(ids: list[str], marker: Any = "") -> dict[str, Any]:
    return {
        "count": 5,
        "marker": (ids[-1] if ids else None) if marker == "" else marker,
        "instances": [instance_json(i) for i in ids],
    }


def test_iter_instances_follows_markers(mock: requests_mock.Mocker, hook: IoTDAHook) -> None:
    mock.get(
        BASE,
        [
            {"json": _instances_page(["ee", "dd"])},
            {"json": _instances_page(["cc", "bb"])},
            {"json": _instances_page(["aa"])},
        ],
    )
    assert [i.instance_id for i in hook.iter_instances(page_size=2)] == [
        "ee",
        "dd",
        "cc",
        "bb",
        "aa",
    ]
    queries = [r.qs for r in mock.request_history]
    assert queries == [
        {"limit": ["2"]},
        {"limit": ["2"], "marker": ["dd"]},
        {"limit": ["2"], "marker": ["bb"]},
    ]


def test_iter_instances_stops_on_a_repeated_marker(
    mock: requests_mock.Mocker, hook: IoTDAHook
) -> None:
    mock.get(BASE, json=_instances_page(["ee", "dd"]))
    with pytest.raises(IoTDAPaginationError, match="repeated page marker 'dd' for instances"):
        list(hook.iter_instances(page_size=2))
    assert mock.call_count == 2


def test_iter_instances_yields_an_instance_once(
    mock: requests_mock.Mocker, hook: IoTDAHook
) -> None:
    mock.get(
        BASE,
        [
            {"json": _instances_page(["ee", "dd"])},
            {"json": _instances_page(["dd", "cc"], "zz")},
            {"json": _instances_page([])},
        ],
    )
    assert [i.instance_id for i in hook.iter_instances(page_size=2)] == ["ee", "dd", "cc"]


def test_list_instances_passes_paging(mock: requests_mock.Mocker, hook: IoTDAHook) -> None:
    mock.get(BASE, json=_instances_page(["aa"]))
    page = hook.list_instances(offset=1, limit=10, marker="bb")
    assert page.instances[0].instance_id == "aa"
    assert mock.request_history[0].qs == {"offset": ["1"], "limit": ["10"], "marker": ["bb"]}
