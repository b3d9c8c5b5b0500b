"""Fidelity: Huawei's SDK (huaweicloudsdkiotdm) resizes, retries, shows tasks and instances on
the simulator as on IoTDA.  Needs the ``sdk-check`` extra; skipped when the SDK is absent."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from airflow_provider_iotda.simulator import IoTDASimulator

from .sim_helpers import AK, INSTANCE_3, PROJECT, SK, tasks_url

pytestmark = pytest.mark.sdk

iotdm = pytest.importorskip(
    "huaweicloudsdkiotdm.v5", reason="Huawei's SDK is not installed (pip install '.[sdk-check]')"
)
from huaweicloudsdkcore.auth.credentials import BasicCredentials  # noqa: E402
from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException  # noqa: E402
from huaweicloudsdkcore.http.http_config import HttpConfig  # noqa: E402


def _client(sim: IoTDASimulator) -> Any:
    config = HttpConfig.get_default_config()
    config.timeout = (5, 5)
    return (
        iotdm.IoTDMClient.new_builder()
        .with_http_config(config)
        .with_credentials(BasicCredentials(AK, SK, PROJECT))
        .with_endpoints([sim.url])
        .build()
    )


def _resize(sdk: Any, size: int) -> Any:
    body = iotdm.ResizeInstance(
        flavor=iotdm.Flavor(type="iotda.standard.s2", size=size), is_auto_pay=False, delay=False
    )
    return sdk.resize_instance(iotdm.ResizeInstanceRequest(instance_id=INSTANCE_3, body=body))


def test_sdk_resizes_and_follows_the_task(sim: IoTDASimulator, client: requests.Session) -> None:
    sdk = _client(sim)
    order = _resize(sdk, 3)
    assert order.order_id
    assert order.order_id.startswith("CS")
    shown = sdk.show_instance(iotdm.ShowInstanceRequest(instance_id=INSTANCE_3))
    assert (shown.status, shown.flavor.size, shown.order_id) == ("MODIFYING", 1, order.order_id)
    task_id = next(t["task_id"] for t in sim.tasks(INSTANCE_3) if t["type"] == "MODIFY")
    sim.advance(7)
    task = sdk.show_instance_task(
        iotdm.ShowInstanceTaskRequest(instance_id=INSTANCE_3, task_id=task_id)
    )
    raw = client.get(f"{tasks_url(sim, INSTANCE_3)}/{task_id}", timeout=5).json()
    assert task.to_dict() == {"status_detail": None, **raw}
    assert (task.status, task.progress) == ("RUNNING", 50)
    sim.advance(5)
    shown = sdk.show_instance(iotdm.ShowInstanceRequest(instance_id=INSTANCE_3))
    assert (shown.status, shown.flavor.type, shown.flavor.size) == (
        "ACTIVE",
        "iotda.standard.s2",
        3,
    )
    assert shown.operate_window.start_time == "01:00"


def test_sdk_sees_the_simulators_errors(sim: IoTDASimulator) -> None:
    sdk = _client(sim)
    _resize(sdk, 3)
    with pytest.raises(ClientRequestException) as caught:
        _resize(sdk, 4)
    assert (caught.value.status_code, caught.value.error_code) == (400, "IOTDA.014002")
    task_id = next(t["task_id"] for t in sim.tasks(INSTANCE_3) if t["type"] == "MODIFY")
    with pytest.raises(ClientRequestException) as caught:
        sdk.retry_instance_task(
            iotdm.RetryInstanceTaskRequest(instance_id=INSTANCE_3, task_id=task_id)
        )
    assert (caught.value.status_code, caught.value.error_code) == (400, "IOTDA.014003")


def test_sdk_retries_a_failed_task(sim: IoTDASimulator) -> None:
    sdk = _client(sim)
    sim.plan_resize(INSTANCE_3, "FAILED", pending_seconds=0, running_seconds=1)
    _resize(sdk, 2)
    sim.advance(1)
    task_id = next(t["task_id"] for t in sim.tasks(INSTANCE_3) if t["type"] == "MODIFY")
    retried = sdk.retry_instance_task(
        iotdm.RetryInstanceTaskRequest(instance_id=INSTANCE_3, task_id=task_id)
    )
    assert (retried.task_id, retried.status, retried.progress) == (task_id, "PENDING", 0)
    assert sim.counters.methods["POST"] == 2


def test_sdk_lists_instances_with_paging(sim: IoTDASimulator, client: requests.Session) -> None:
    sdk = _client(sim)
    first = sdk.list_instances(iotdm.ListInstancesRequest(limit=2))
    assert first.count == 3
    assert len(first.instances) == 2
    rest = sdk.list_instances(iotdm.ListInstancesRequest(limit=2, marker=first.marker))
    listed = [i.to_dict() for i in first.instances + rest.instances]
    raw = client.get(f"{sim.url}/v5/iot/{PROJECT}/iotda-instances", timeout=5).json()["instances"]
    assert listed == raw
