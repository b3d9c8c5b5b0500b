"""Fidelity: Huawei's own SDK (huaweicloudsdkiotdm) talks to the simulator as to IoTDA.

Needs the ``sdk-check`` extra; skipped (with the reason shown) when the SDK is absent.
"""

from __future__ import annotations

from typing import Any

import pytest
import requests

from airflow_provider_iotda.simulator import IoTDASimulator

from .sim_helpers import (
    AK,
    INSTANCE_1,
    INSTANCE_1_TYPES,
    INSTANCE_2,
    PROJECT,
    REGION,
    SK,
    tasks_url,
)

pytestmark = pytest.mark.sdk

iotdm = pytest.importorskip(
    "huaweicloudsdkiotdm.v5", reason="Huawei's SDK is not installed (pip install '.[sdk-check]')"
)
from huaweicloudsdkcore.auth.credentials import BasicCredentials  # noqa: E402
from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException  # noqa: E402
from huaweicloudsdkcore.http.http_config import HttpConfig  # noqa: E402


def _client(sim: IoTDASimulator, sk: str = SK, *, derived: bool = False) -> Any:
    credentials = BasicCredentials(AK, sk, PROJECT)
    if derived:
        # What the SDK does for instance-specific endpoints: V11-HMAC-SHA256 (derived AK/SK).
        credentials.with_derived_predicate(lambda request: True)
        credentials._process_derived_auth_params("iotdm", REGION)
    config = HttpConfig.get_default_config()
    config.timeout = (5, 5)
    return (
        iotdm.IoTDMClient.new_builder()
        .with_http_config(config)
        .with_credentials(credentials)
        .with_endpoints([sim.url])
        .build()
    )


def _sdk_list_all(client: Any, instance_id: str, limit: int) -> list[dict[str, Any]]:
    tasks: list[dict[str, Any]] = []
    marker = None
    while True:
        response = client.list_instance_tasks(
            iotdm.ListInstanceTasksRequest(instance_id=instance_id, limit=limit, marker=marker)
        )
        if not response.tasks:
            return tasks
        tasks.extend(task.to_dict() for task in response.tasks)
        marker = response.page.marker


def _raw(sim: IoTDASimulator, client: requests.Session, instance_id: str) -> list[dict[str, Any]]:
    tasks = client.get(tasks_url(sim, instance_id), timeout=5).json()["tasks"]
    return [{"status_detail": None, **task} for task in tasks]  # the SDK fills absent fields


@pytest.mark.parametrize("derived", [False, True], ids=["SDK-HMAC-SHA256", "V11-HMAC-SHA256"])
def test_sdk_lists_exactly_the_scenario(
    sim: IoTDASimulator, client: requests.Session, derived: bool
) -> None:
    sdk = _client(sim, derived=derived)
    for instance_id in (INSTANCE_1, INSTANCE_2):
        response = sdk.list_instance_tasks(iotdm.ListInstanceTasksRequest(instance_id=instance_id))
        assert response.page.count == len(response.tasks)
        listed = [task.to_dict() for task in response.tasks]
        assert listed == _raw(sim, client, instance_id)
        assert _sdk_list_all(sdk, instance_id, limit=2) == listed
    first = sdk.list_instance_tasks(iotdm.ListInstanceTasksRequest(instance_id=INSTANCE_1)).tasks
    assert [t.type for t in first] == INSTANCE_1_TYPES
    assert first[0].target_config.flavor.type == "iotda.standard.s3"
    assert first[0].target_config.flavor.size == 2
    assert first[0].target_config.charge_mode == "postPaid"
    assert first[0].operate_window.start_time == "18:00"
    assert first[4].status == "FAILED"
    assert first[4].status_detail
    method = "V11-HMAC-SHA256" if derived else "SDK-HMAC-SHA256"
    assert sim.counters.auth.get(method, 0) >= 4  # our own requests client signs SDK-HMAC


def test_sdk_shows_a_task_as_it_progresses(sim: IoTDASimulator) -> None:
    sdk = _client(sim)
    newest = sdk.list_instance_tasks(iotdm.ListInstanceTasksRequest(instance_id=INSTANCE_1)).tasks[
        0
    ]
    request = iotdm.ShowInstanceTaskRequest(instance_id=INSTANCE_1, task_id=newest.task_id)
    shown = sdk.show_instance_task(request)
    assert (shown.status, shown.progress, shown.start_time) == ("PENDING", 0, None)
    sim.advance(5)
    assert sdk.show_instance_task(request).status == "RUNNING"
    sim.advance(15)
    done = sdk.show_instance_task(request)
    assert (done.status, done.progress, done.type) == ("SUCCESS", 100, "MODIFY")
    assert done.end_time
    assert done.create_time == newest.create_time


def test_sdk_wrong_secret_key_is_a_401(sim: IoTDASimulator) -> None:
    with pytest.raises(ClientRequestException) as caught:
        _client(sim, SK + "-wrong").list_instance_tasks(
            iotdm.ListInstanceTasksRequest(instance_id=INSTANCE_1)
        )
    error = caught.value
    assert error.status_code == 401
    assert error.error_code == "APIG.0301"
    assert "signature" in error.error_msg
    assert error.request_id  # the SDK read X-Request-Id


def test_sdk_sees_iotda_errors(sim: IoTDASimulator) -> None:
    sdk = _client(sim)
    with pytest.raises(ClientRequestException) as caught:
        sdk.list_instance_tasks(iotdm.ListInstanceTasksRequest(instance_id=INSTANCE_1, limit=501))
    assert (caught.value.status_code, caught.value.error_code) == (400, "IOTDA.000017")
    with pytest.raises(ClientRequestException) as caught:
        sdk.show_instance_task(iotdm.ShowInstanceTaskRequest(instance_id=INSTANCE_1, task_id="abc"))
    assert caught.value.status_code == 404
