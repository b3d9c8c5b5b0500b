"""Credential sources and clock-skew correction against the simulator (real HTTP, loopback)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from iotda_test_values import endpoint_connection_json

from airflow_provider_iotda import clock
from airflow_provider_iotda.hooks.iotda import IoTDAHook
from airflow_provider_iotda.hooks.iotda_async import IoTDAAsyncHook
from airflow_provider_iotda.simulator import IoTDASimulator

pytestmark = pytest.mark.integration

AK = "SIMCREDENTIALSAK0001"
SK = "SIM-CRED-SECRET-do-not-leak-a11b"
PROJECT = "0123456789abcdef0123456789abcdef"
INSTANCE = "7c1d2e3f-0000-4000-8000-0000000000c1"
ID_TOKEN = "SIM-OIDC-ID-TOKEN-do-not-leak-e5"
POD_TOKEN = "SIM-POD-TOKEN-do-not-leak-f6"
SDK_VARIABLES = (
    "HUAWEICLOUD_SDK_AK",
    "HUAWEICLOUD_SDK_SK",
    "HUAWEICLOUD_SDK_SECURITY_TOKEN",
    "HUAWEICLOUD_SDK_CREDENTIALS_FILE",
    "HUAWEICLOUD_OIDC_PROVIDER_URN",
    "HUAWEICLOUD_OIDC_AGENCY_URN",
    "HUAWEICLOUD_OIDC_ID_TOKEN",
    "HUAWEICLOUD_OIDC_TOKEN_FILE",
    "HC_CONTAINER_CREDENTIALS_FULL_URI",
    "HC_CONTAINER_AUTHORIZATION_TOKEN_FILE",
)


@pytest.fixture(scope="module")
def server() -> Iterator[IoTDASimulator]:
    with IoTDASimulator(
        ak=AK,
        sk=SK,
        project_id=PROJECT,
        time_factor=0,
        seed=5,
        oidc_tokens=[ID_TOKEN],
        pod_token=POD_TOKEN,
    ) as simulator:
        yield simulator


@pytest.fixture
def sim(server: IoTDASimulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> IoTDASimulator:
    server.reset()
    server.add_task(INSTANCE, "MODIFY")
    for name in SDK_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # no ~/.huaweicloud/credentials
    return server


def use_connection(monkeypatch: pytest.MonkeyPatch, sim: IoTDASimulator, **extra: object) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_IOTDA_DEFAULT",
        endpoint_connection_json(
            sim.url, login="", password="", project_id=PROJECT, instance_id=INSTANCE, **extra
        ),
    )


def statuses(sim: IoTDASimulator) -> dict[str, int]:
    return dict(sim.counters.statuses)


def test_ecs_metadata_short_expiry_is_refreshed(
    sim: IoTDASimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    sim.set_credential_ttl(2.0)
    use_connection(monkeypatch, sim, credentials="ecs_metadata", metadata_endpoint=sim.url)
    with IoTDAHook() as hook:
        assert hook.list_instance_tasks().count == 1
        first = hook.credential_cache.current
        time.sleep(1.2)  # past half the 2 s life: due for refresh
        assert hook.list_instance_tasks().count == 1
        second = hook.credential_cache.current
    assert first is not None
    assert second is not None
    assert first.access_key != second.access_key
    assert sim.identity.counts["ecs_metadata"] == 2
    assert sim.identity.counts["metadata_token"] == 2
    assert statuses(sim) == {"200": 2}


def test_ecs_metadata_credentials_fetched_once_per_loop(
    sim: IoTDASimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_connection(monkeypatch, sim, credentials="ecs_metadata", metadata_endpoint=sim.url)

    async def poll() -> int:
        async with IoTDAAsyncHook() as hook:
            return (await hook.list_instance_tasks()).count

    async def main() -> list[int]:
        return list(await asyncio.gather(*(poll() for _ in range(20))))

    assert asyncio.run(main()) == [1] * 20
    assert sim.identity.counts["ecs_metadata"] == 1
    assert statuses(sim) == {"200": 20}


def test_env_source(sim: IoTDASimulator, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUAWEICLOUD_SDK_AK", AK)
    monkeypatch.setenv("HUAWEICLOUD_SDK_SK", SK)
    use_connection(monkeypatch, sim, credentials="env")
    ok, message = IoTDAHook().test_connection()
    assert ok, message
    assert message.endswith("(credentials from env)")
    assert SK not in message


def test_profile_source(
    sim: IoTDASimulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    profile = tmp_path / "credentials"
    profile.write_text(f"[basic]\nak = {AK}\nsk = {SK}\n")
    monkeypatch.setenv("HUAWEICLOUD_SDK_CREDENTIALS_FILE", str(profile))
    use_connection(monkeypatch, sim, credentials="profile")
    ok, message = IoTDAHook().test_connection()
    assert ok, message
    assert message.endswith("(credentials from profile)")


def test_oidc_and_pod_identity_sources(
    sim: IoTDASimulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    token_file = tmp_path / "id_token"
    token_file.write_text(ID_TOKEN)
    monkeypatch.setenv("HUAWEICLOUD_OIDC_PROVIDER_URN", "iam::1:identityProvider:ci")
    monkeypatch.setenv("HUAWEICLOUD_OIDC_AGENCY_URN", "iam::1:agency:airflow")
    monkeypatch.setenv("HUAWEICLOUD_OIDC_TOKEN_FILE", str(token_file))
    use_connection(monkeypatch, sim, credentials="oidc", sts_endpoint=sim.url)
    ok, message = IoTDAHook().test_connection()
    assert ok, message
    assert message.endswith("(credentials from oidc)")

    pod_file = tmp_path / "pod_token"
    pod_file.write_text(POD_TOKEN)
    monkeypatch.setenv("HC_CONTAINER_AUTHORIZATION_TOKEN_FILE", str(pod_file))
    use_connection(
        monkeypatch,
        sim,
        credentials="pod_identity",
        pod_identity_endpoint=sim.url + "/cce/pod-identity/credentials",
    )
    ok, message = IoTDAHook().test_connection()
    assert ok, message
    assert message.endswith("(credentials from pod_identity)")
    assert sim.identity.counts["oidc"] == sim.identity.counts["pod_identity"] == 1


def test_auto_finds_the_metadata_service(
    sim: IoTDASimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_connection(monkeypatch, sim, credentials="auto", metadata_endpoint=sim.url)
    ok, message = IoTDAHook().test_connection()
    assert ok, message
    assert message.endswith("(credentials from ecs_metadata)")


def test_twenty_minutes_of_skew_sync(
    sim: IoTDASimulator, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    sim.set_clock_offset(20 * 60)
    monkeypatch.setenv("HUAWEICLOUD_SDK_AK", AK)
    monkeypatch.setenv("HUAWEICLOUD_SDK_SK", SK)
    use_connection(monkeypatch, sim, credentials="env")
    with IoTDAHook() as hook:
        assert hook.list_instance_tasks().count == 1
        assert statuses(sim) == {"401": 1, "200": 1}
        assert hook.list_instance_tasks().count == 1  # the offset is used at once
        assert abs(hook.clock.seconds - 1200) < 5
    assert statuses(sim) == {"401": 1, "200": 2}
    out = capsys.readouterr()
    assert (out.out + out.err).count("Fix the clock (NTP)") <= 1


def test_twenty_minutes_of_skew_async_with_metadata_credentials(
    sim: IoTDASimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    sim.set_clock_offset(-20 * 60)
    sim.set_credential_ttl(3600)
    use_connection(monkeypatch, sim, credentials="ecs_metadata", metadata_endpoint=sim.url)

    async def main() -> tuple[int, int, float]:
        async with IoTDAAsyncHook() as first:
            one = (await first.list_instance_tasks()).count
        async with IoTDAAsyncHook() as second:
            two = (await second.list_instance_tasks()).count
        return one, two, clock.shared_offset("iotda_default").seconds

    one, two, offset = asyncio.run(main())
    assert (one, two) == (1, 1)
    assert abs(offset + 1200) < 5
    assert statuses(sim) == {"401": 1, "200": 2}
    assert sim.identity.counts["ecs_metadata"] == 1


def test_trigger_with_metadata_credentials_leaks_no_secret(
    sim: IoTDASimulator,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from airflow_provider_iotda.triggers.iotda import IoTDAInstanceTaskTrigger

    caplog.set_level("DEBUG")
    task_id = sim.add_task(INSTANCE, "MODIFY", [("RUNNING", 0), ("SUCCESS", 0)])
    use_connection(monkeypatch, sim, credentials="ecs_metadata", metadata_endpoint=sim.url)
    trigger = IoTDAInstanceTaskTrigger(
        iotda_conn_id="iotda_default", instance_task_id=task_id, poll_interval=1
    )

    async def first_event() -> object:
        async for event in trigger.run():
            return event
        return None

    event = asyncio.run(first_event())
    assert event is not None
    assert "success" in repr(event)
    (issued,) = sim.identity.issued()
    out = capsys.readouterr()
    seen = "\n".join([caplog.text, out.out, out.err, repr(event), repr(trigger.serialize())])
    for secret in (issued.secret_key, issued.security_token):
        assert secret not in seen
