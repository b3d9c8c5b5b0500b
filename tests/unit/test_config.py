"""The ``huaweicloud_iotda`` connection, read through Airflow's real connection lookup."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import pytest
from iotda_test_values import (
    TEST_AK,
    TEST_ENDPOINT,
    TEST_INSTANCE,
    TEST_PROJECT,
    TEST_SK,
    TEST_TOKEN,
    connection_json,
)

from airflow_provider_iotda.auth import SDK_ALGORITHM, V11_ALGORITHM
from airflow_provider_iotda.config import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_MAX_RETRIES,
    DEFAULT_TIMEOUT,
    IoTDAConnectionConfig,
)
from airflow_provider_iotda.hooks.iotda import IoTDAHook

from .unit_support import CapturedLogs


def _config_from_env(monkeypatch: pytest.MonkeyPatch, value: str, conn_id: str = "iotda_default"):  # type: ignore[no-untyped-def]
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", value)
    return IoTDAHook(conn_id).config


def _uri(login: str = TEST_AK, password: str = TEST_SK, host: str = "", **extra: str) -> str:
    query = "&".join(f"{k}={quote(str(v), safe='')}" for k, v in extra.items())
    return f"huaweicloud-iotda://{quote(login, safe='')}:{quote(password, safe='')}@{host}/?{query}"


def test_json_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    config = _config_from_env(monkeypatch, connection_json())
    assert config.credentials.access_key == TEST_AK
    assert config.credentials.secret_key == TEST_SK
    assert config.credentials.algorithm == SDK_ALGORITHM
    assert config.endpoint == TEST_ENDPOINT  # derived from the region
    assert config.project_id == TEST_PROJECT
    assert config.instance_id == TEST_INSTANCE
    assert config.region == "cn-north-4"
    assert config.verify is True
    assert config.timeout == DEFAULT_TIMEOUT
    assert config.connect_timeout == DEFAULT_CONNECT_TIMEOUT
    assert config.max_retries == 3
    assert config.conn_id == "iotda_default"


def test_uri_connection_with_string_extras(monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "s/k+with:odd@chars%"
    config = _config_from_env(
        monkeypatch,
        _uri(
            password=secret,
            region="ap-southeast-1",
            project_id=TEST_PROJECT,
            instance_id=TEST_INSTANCE,
            verify="false",
            timeout="12.5",
            max_retries="5",
            security_token=TEST_TOKEN,
        ),
    )
    assert config.credentials.secret_key == secret
    assert config.credentials.security_token == TEST_TOKEN
    assert config.endpoint == "https://iotda-mgmt.ap-southeast-1.myhuaweicloud.com"
    assert config.verify is False
    assert config.timeout == 12.5
    assert config.max_retries == 5
    assert config.instance_id == TEST_INSTANCE


def test_defaults_without_optional_extras(monkeypatch: pytest.MonkeyPatch) -> None:
    config = _config_from_env(monkeypatch, connection_json(instance_id=None, max_retries=None))
    assert config.instance_id is None
    assert config.max_retries == DEFAULT_MAX_RETRIES >= 3
    assert config.credentials.security_token is None


def test_endpoint_overrides_the_region(monkeypatch: pytest.MonkeyPatch) -> None:
    config = _config_from_env(monkeypatch, connection_json(endpoint="http://127.0.0.1:8787/"))
    assert config.endpoint == "http://127.0.0.1:8787"
    # aksk is the default signing, even for a non-regional host
    assert config.credentials.algorithm == SDK_ALGORITHM


def test_endpoint_without_region(monkeypatch: pytest.MonkeyPatch) -> None:
    config = _config_from_env(
        monkeypatch, connection_json(region=None, endpoint="iotda.example.com:8443")
    )
    assert config.endpoint == "https://iotda.example.com:8443"
    assert config.region is None


def test_connection_host_field_is_the_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    value = json.loads(connection_json(region=None))
    value.update(host="http://127.0.0.1", port=8787)
    config = _config_from_env(monkeypatch, json.dumps(value))
    assert config.endpoint == "http://127.0.0.1:8787"
    uri_config = _config_from_env(
        monkeypatch, _uri(host="iotda.example.com:9443", project_id=TEST_PROJECT)
    )
    assert uri_config.endpoint == "https://iotda.example.com:9443"


@pytest.mark.parametrize(
    ("auth", "endpoint", "algorithm"),
    [
        (None, None, SDK_ALGORITHM),
        ("aksk", "http://127.0.0.1:8787", SDK_ALGORITHM),
        ("derived", None, V11_ALGORITHM),
        ("auto", None, SDK_ALGORITHM),
        ("auto", "https://e447071c94.st1.iotda-app.cn-north-4.myhuaweicloud.com", V11_ALGORITHM),
        ("auto", "http://127.0.0.1:8787", V11_ALGORITHM),
    ],
)
def test_auth_modes(
    monkeypatch: pytest.MonkeyPatch, auth: str | None, endpoint: str | None, algorithm: str
) -> None:
    config = _config_from_env(monkeypatch, connection_json(auth=auth, endpoint=endpoint))
    assert config.credentials.algorithm == algorithm
    if algorithm == V11_ALGORITHM:
        assert config.credentials.region == "cn-north-4"
        assert config.credentials.service == "iotdm"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"login": ""}, "login \\(the Access Key, AK\\) is empty"),
        ({"password": ""}, "password \\(the Secret Key, SK\\) is empty"),
        ({"region": None}, "set extra 'region' \\(e.g. cn-north-4\\) or 'endpoint'"),
        ({"project_id": None}, "extra 'project_id' is required"),
        ({"project_id": "a/b"}, "extra project_id must be 1 to 64 characters"),
        ({"region": "North 4"}, "extra region must be a region name"),
        ({"instance_id": "INSTANCE"}, "extra instance_id must be 1 to 36 characters of"),
        ({"auth": "oauth"}, "extra auth must be one of aksk, auto, derived; got 'oauth'"),
        (
            {"auth": "derived", "region": None, "endpoint": "https://x.example.com"},
            "extra 'region' is required for derived",
        ),
        ({"endpoint": "ftp://host"}, "endpoint must be an http\\(s\\) URL"),
        ({"endpoint": "https://host/v5/iot"}, "endpoint must have no path, query or fragment"),
        ({"endpoint": "https://host:99999"}, "endpoint has an invalid port"),
        ({"timeout": 0}, "extra timeout must be a number of seconds greater than 0; got 0"),
        ({"timeout": "soon"}, "extra timeout must be a number of seconds"),
        ({"verify": "maybe"}, "extra verify must be true or false; got 'maybe'"),
        ({"max_retries": 11}, "extra max_retries must be an integer from 0 to 10; got 11"),
        ({"max_retries": -1}, "extra max_retries must be an integer from 0 to 10"),
        ({"sk": "x"}, "unknown extra field\\(s\\) sk; allowed: region, project_id"),
    ],
)
def test_errors_name_the_field(
    monkeypatch: pytest.MonkeyPatch, changes: dict[str, Any], message: str
) -> None:
    login = changes.pop("login", TEST_AK)
    password = changes.pop("password", TEST_SK)
    value = connection_json(login, password, **changes)
    with pytest.raises(ValueError, match=message) as caught:
        _config_from_env(monkeypatch, value, conn_id="iotda_bad")
    assert "connection 'iotda_bad'" in str(caught.value)
    assert TEST_SK not in str(caught.value)


def test_from_values_directly() -> None:
    config = IoTDAConnectionConfig.from_values(
        access_key="ak", secret_key="sk-12345", project_id="p", endpoint="http://localhost:1"
    )
    assert config.endpoint == "http://localhost:1"
    assert config.secrets() == ["sk-12345"]
    with_token = IoTDAConnectionConfig.from_values(
        access_key="ak",
        secret_key="sk-12345",
        project_id="p",
        region="cn-north-4",
        security_token="tok-12345",
    )
    assert with_token.secrets() == ["sk-12345", "tok-12345"]


def test_repr_of_config_and_hook_hide_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    hook_config = _config_from_env(monkeypatch, connection_json(security_token=TEST_TOKEN))
    hook = IoTDAHook()
    for text in (repr(hook_config), str(hook_config), repr(hook), repr(hook.get_conn().auth)):
        assert TEST_SK not in text
        assert TEST_TOKEN not in text
    assert TEST_AK in repr(hook_config)


def test_secrets_are_registered_with_the_masker(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.sdk.log import redact

    # Values of this test only: the masker is process-wide, so TEST_SK may be masked already.
    secret, token = "SK-only-in-test_config-8e1f", "TOKEN-only-in-test_config-5b2a"
    assert redact(secret) == secret
    _config_from_env(monkeypatch, connection_json(password=secret, security_token=token))
    assert redact(f"sk={secret} token={token}") == "sk=*** token=***"


def test_verify_false_warns_every_time_a_hook_is_built(
    monkeypatch: pytest.MonkeyPatch, logs: CapturedLogs
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_IOTDA_DEFAULT", connection_json(verify="false"))
    for _ in range(3):
        hook = IoTDAHook()
        assert hook.get_conn().verify is False
    warnings = [m for m in logs.messages("warning") if "verify=false" in m]
    assert len(warnings) == 3
    assert "TLS certificates" in warnings[0]
    assert TEST_ENDPOINT in warnings[0]


def test_verify_true_does_not_warn(monkeypatch: pytest.MonkeyPatch, logs: CapturedLogs) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_IOTDA_DEFAULT", connection_json(verify=True))
    assert IoTDAHook().get_conn().verify is True
    assert not [m for m in logs.messages("warning") if "verify" in m]
