"""The ``huaweicloud_iotda`` connection, read through Airflow's real connection lookup."""

from __future__ import annotations

import json
import warnings
from types import SimpleNamespace
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

from airflow_provider_iotda import compat
from airflow_provider_iotda.auth import SDK_ALGORITHM, V11_ALGORITHM
from airflow_provider_iotda.config import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_MAX_RETRIES,
    DEFAULT_TIMEOUT,
    EXTRA_FIELDS,
    ConnectionFieldError,
    IoTDAConnectionConfig,
)
from airflow_provider_iotda.get_provider_info import get_provider_info
from airflow_provider_iotda.hooks.iotda import IoTDAHook

from .unit_support import CapturedLogs

OTHER_SOURCES = (
    "set it, or set extra credentials to another source (environment, profile, ecs_metadata, "
    "pod_identity, oidc_federation or automatic), with which login and password stay empty"
)


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


def test_old_connections_with_the_host_field_still_work(monkeypatch: pytest.MonkeyPatch) -> None:
    """The host field is hidden in the form (deprecated) but still read without ``endpoint``."""
    value = json.loads(connection_json(region=None))
    value.update(host="http://127.0.0.1", port=8787)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning: the host is the only endpoint given
        config = _config_from_env(monkeypatch, json.dumps(value))
    assert config.endpoint == "http://127.0.0.1:8787"
    uri_config = _config_from_env(
        monkeypatch, _uri(host="iotda.example.com:9443", project_id=TEST_PROJECT)
    )
    assert uri_config.endpoint == "https://iotda.example.com:9443"


def test_a_bad_host_field_is_named_as_such(monkeypatch: pytest.MonkeyPatch) -> None:
    value = json.loads(connection_json(region=None))
    value.update(host="ftp://127.0.0.1")
    with pytest.raises(ConnectionFieldError, match=r"^host field must be an http\(s\) URL"):
        _config_from_env(monkeypatch, json.dumps(value))


def test_endpoint_extra_wins_over_the_host_field_with_a_warning(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    value = json.loads(connection_json(endpoint="http://127.0.0.1:8787"))
    value.update(host="iotda.example.com")
    with pytest.warns(UserWarning, match="host field") as caught:
        config = _config_from_env(monkeypatch, json.dumps(value), conn_id="iotda_both")
    assert config.endpoint == "http://127.0.0.1:8787"
    (warning,) = [w for w in caught if "host field" in str(w.message)]
    text = str(warning.message)
    assert "'iotda_both'" in text
    assert "'https://iotda.example.com'" in text
    assert "extra 'endpoint' is set ('http://127.0.0.1:8787')" in text
    assert "deprecated" in text


def test_same_endpoint_in_host_and_extra_does_not_warn(monkeypatch: pytest.MonkeyPatch) -> None:
    value = json.loads(connection_json(endpoint="http://127.0.0.1:8787/"))
    value.update(host="http://127.0.0.1", port=8787)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        config = _config_from_env(monkeypatch, json.dumps(value))
    assert config.endpoint == "http://127.0.0.1:8787"


@pytest.mark.parametrize(
    ("signing", "endpoint", "algorithm"),
    [
        (None, None, SDK_ALGORITHM),
        ("standard", "http://127.0.0.1:8787", SDK_ALGORITHM),
        ("derived", None, V11_ALGORITHM),
        ("automatic", None, SDK_ALGORITHM),
        (
            "automatic",
            "https://e447071c94.st1.iotda-app.cn-north-4.myhuaweicloud.com",
            V11_ALGORITHM,
        ),
        ("automatic", "http://127.0.0.1:8787", V11_ALGORITHM),
    ],
)
def test_signing_modes(
    monkeypatch: pytest.MonkeyPatch, signing: str | None, endpoint: str | None, algorithm: str
) -> None:
    config = _config_from_env(monkeypatch, connection_json(signing=signing, endpoint=endpoint))
    assert config.credentials.algorithm == algorithm
    if algorithm == V11_ALGORITHM:
        assert config.credentials.region == "cn-north-4"
        assert config.credentials.service == "iotdm"


@pytest.mark.parametrize(
    ("auth", "endpoint", "algorithm"),
    [
        ("aksk", "http://127.0.0.1:8787", SDK_ALGORITHM),
        ("derived", None, V11_ALGORITHM),
        ("auto", None, SDK_ALGORITHM),
        ("auto", "http://127.0.0.1:8787", V11_ALGORITHM),
        ("automatic", "http://127.0.0.1:8787", V11_ALGORITHM),  # new value, old name
        ("standard", None, SDK_ALGORITHM),
    ],
)
def test_old_auth_extra_still_works(
    monkeypatch: pytest.MonkeyPatch, auth: str, endpoint: str | None, algorithm: str
) -> None:
    """Connections saved before ``auth`` became ``signing`` keep their signing."""
    config = _config_from_env(monkeypatch, connection_json(auth=auth, endpoint=endpoint))
    assert config.credentials.algorithm == algorithm


def test_signing_and_old_auth_agreeing_is_fine(monkeypatch: pytest.MonkeyPatch) -> None:
    config = _config_from_env(monkeypatch, connection_json(signing="derived", auth="derived"))
    assert config.credentials.algorithm == V11_ALGORITHM
    config = _config_from_env(monkeypatch, connection_json(signing="standard", auth="aksk"))
    assert config.credentials.algorithm == SDK_ALGORITHM


def test_signing_and_old_auth_disagreeing_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    value = connection_json(signing="standard", auth="derived")
    with pytest.raises(ConnectionFieldError) as caught:
        _config_from_env(monkeypatch, value)
    assert caught.value.detail == (
        "extra signing ('standard') and its old name extra auth ('derived') disagree; "
        "keep only extra signing"
    )


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"login": ""}, f"login (the Access Key, AK) is empty; {OTHER_SOURCES}"),
        ({"password": ""}, f"password (the Secret Key, SK) is empty; {OTHER_SOURCES}"),
        (
            {"region": None},
            "set extra 'region' (e.g. cn-north-4) or extra 'endpoint' (a URL such as "
            "http://127.0.0.1:8787): one of the two is needed",
        ),
        ({"project_id": None}, "extra 'project_id' is required"),
        (
            {"project_id": "0123 bad!"},
            "extra project_id must be 1 to 64 characters of letters, digits, underscores and "
            "hyphens; got '0123 bad!'",
        ),
        (
            {"region": "cn-nort-4"},
            "extra region must be a Huawei Cloud region with IoTDA (cn-north-4, cn-south-1, "
            "cn-south-4, cn-east-3, ap-southeast-1, ap-southeast-2, ap-southeast-3, af-south-1, "
            "me-east-1, la-south-2, ru-moscow-1); got 'cn-nort-4'; did you mean 'cn-north-4'? "
            "For a region not in this list or a private endpoint, set extra endpoint to its "
            "URL, e.g. https://iotda-mgmt.REGION.myhuaweicloud.com",
        ),
        (
            {"region": "CN North 4", "endpoint": "https://iotda.example.com"},
            "extra region must be a region name of lower-case letters, digits and hyphens "
            "such as 'cn-north-4'; got 'CN North 4'",
        ),
        (
            {"instance_id": "NOT-HEX-ZZ"},
            "extra instance_id must be 1 to 36 characters of lower-case letters a-f, digits and "
            "hyphens; got 'NOT-HEX-ZZ'",
        ),
        (
            {"signing": "oauth"},
            "extra signing must be one of automatic, derived, standard; got 'oauth'",
        ),
        (
            {"auth": "oauth"},
            "extra auth must be one of aksk, auto, automatic, derived, standard; got 'oauth'",
        ),
        (
            {"signing": "derived", "region": None, "endpoint": "https://x.example.com"},
            "extra 'region' is required for derived (V11) signing",
        ),
        (
            {"endpoint": "ftp://host"},
            "extra endpoint must be an http(s) URL such as "
            "https://iotda-mgmt.cn-north-4.myhuaweicloud.com or http://127.0.0.1:8787; "
            "got 'ftp://host'",
        ),
        (
            {"endpoint": "https://host/v5/iot"},
            "extra endpoint must have no path, query or fragment; got 'https://host/v5/iot'",
        ),
        (
            {"endpoint": "https://host:99999"},
            "extra endpoint has an invalid port; got 'https://host:99999'",
        ),
        ({"timeout": 0}, "extra timeout must be a number of seconds greater than 0; got 0"),
        (
            {"timeout": "soon"},
            "extra timeout must be a number of seconds greater than 0; got 'soon'",
        ),
        ({"verify": "maybe"}, "extra verify must be true or false; got 'maybe'"),
        ({"max_retries": 11}, "extra max_retries must be an integer from 0 to 10; got 11"),
        ({"max_retries": -1}, "extra max_retries must be an integer from 0 to 10; got -1"),
        (
            {"sk": "x"},
            "unknown extra field(s) sk; allowed: region, project_id, endpoint, instance_id, "
            "security_token, signing, timeout, verify, max_retries",
        ),
    ],
)
def test_errors_name_the_field_first_then_the_connection(
    monkeypatch: pytest.MonkeyPatch, changes: dict[str, Any], message: str
) -> None:
    login = changes.pop("login", TEST_AK)
    password = changes.pop("password", TEST_SK)
    value = connection_json(login, password, **changes)
    with pytest.raises(ConnectionFieldError) as caught:
        _config_from_env(monkeypatch, value, conn_id="iotda_bad")
    if "unknown extra" in message:  # the list of allowed extras grows with the provider
        assert caught.value.detail.startswith(message.split("allowed:")[0])
        assert all(name in caught.value.detail for name in EXTRA_FIELDS)
    else:
        assert caught.value.detail == message
    assert str(caught.value) == f"{caught.value.detail} (connection 'iotda_bad')"
    assert isinstance(caught.value, ValueError)
    assert TEST_SK not in str(caught.value)


@pytest.mark.parametrize(
    ("extra", "detail"),
    [("not json", "extra is not valid JSON"), ("[1, 2]", "extra must be a JSON object")],
)
def test_broken_extra_json(extra: str, detail: str) -> None:
    # A stand-in: Airflow 3.1's Connection refuses such an extra itself.
    conn = SimpleNamespace(
        conn_id="iotda_bad", login="a", password="b", host=None, port=None, extra=extra
    )
    with pytest.raises(ConnectionFieldError) as caught:
        IoTDAConnectionConfig.from_connection(conn)  # type: ignore[arg-type]
    assert caught.value.detail == detail
    assert caught.value.conn_id == "iotda_bad"


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


# -- what the connection form saves ---------------------------------------------------------------


def form_saved_extra(**values: object) -> dict[str, object]:
    """The extra JSON Airflow's form saves: every form field, its default or null, plus
    what the user typed (the UI writes all of its fields, empty ones as null)."""
    fields = get_provider_info()["connection-types"][0]["conn-fields"]
    extra = {name: field["schema"].get("default") for name, field in fields.items()}
    extra.update(values)
    return extra


def _form_connection(**values: object) -> str:
    extra = form_saved_extra(**{"region": "cn-north-4", "project_id": TEST_PROJECT, **values})
    return json.dumps(
        {
            "conn_type": "huaweicloud_iotda",
            "login": TEST_AK,
            "password": TEST_SK,
            "host": "",
            "port": None,
            "extra": json.dumps(extra),
        }
    )


def test_a_connection_saved_by_the_form_with_its_defaults_is_valid(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = _config_from_env(monkeypatch, _form_connection())
    assert config.endpoint == TEST_ENDPOINT
    assert config.credentials.algorithm == SDK_ALGORITHM
    assert config.timeout == DEFAULT_TIMEOUT
    assert config.max_retries == DEFAULT_MAX_RETRIES
    assert config.verify is True
    assert config.instance_id is None


@pytest.fixture
def short_secret_warnings(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Warnings of Airflow's own secrets masker (the one task processes use)."""
    from airflow.sdk._shared.secrets_masker import secrets_masker

    warned: list[str] = []

    class Recorder:
        def warning(self, message: str, *args: object, **kwargs: object) -> None:
            warned.append(message % args)

        def __getattr__(self, name: str) -> Any:
            return lambda *args, **kwargs: None

    monkeypatch.setattr(secrets_masker, "log", Recorder())
    monkeypatch.setattr(secrets_masker.SecretsMasker, "_has_warned_short_secret", False)
    return warned


def test_a_form_saved_connection_does_not_make_the_masker_warn(
    monkeypatch: pytest.MonkeyPatch, short_secret_warnings: list[str]
) -> None:
    """Airflow masks every string of a connection's extra (``extra_dejson``; 3.3 does it each
    time it caches a connection) and warns "too short" for any under 5 characters, whatever
    its key: no value the form stores may be that short."""
    from airflow.sdk.log import mask_secret

    for signing in ("standard", "derived", "automatic"):
        connection = _form_connection(signing=signing)
        config = _config_from_env(monkeypatch, connection)
        assert config.credentials.access_key == TEST_AK
        mask_secret(json.loads(json.loads(connection)["extra"]))
    assert short_secret_warnings == []


def test_the_old_auth_value_is_what_made_the_masker_warn(
    short_secret_warnings: list[str],
) -> None:
    """The cause, shown: the 4-character value ``aksk`` (the key ``auth`` is not sensitive)."""
    from airflow.sdk.log import mask_secret

    mask_secret(json.loads(_form_connection(signing="standard"))["extra"])
    assert short_secret_warnings == []
    mask_secret({"auth": "aksk"})
    assert [m for m in short_secret_warnings if "too short" in m]


@pytest.mark.skipif(
    compat.airflow_version().startswith("3.1."), reason="3.1 does not cache the connection"
)
def test_reading_an_old_auth_connection_warned_through_airflows_cache(
    monkeypatch: pytest.MonkeyPatch, short_secret_warnings: list[str]
) -> None:
    """The path every task took: Airflow caches the connection's URI, masking its extras."""
    _config_from_env(monkeypatch, connection_json(auth="aksk"))
    assert [m for m in short_secret_warnings if "too short" in m]


# -- test_connection (the form's Test button) -----------------------------------------------------


def _airflow_like_test_id() -> str:
    """A temporary ID as the api-server's test route makes one (8 letters and digits)."""
    return "ItN6EkLy"


@pytest.mark.parametrize(
    ("values", "detail"),
    [
        ({"region": "CN North 4"}, "extra region must be a Huawei Cloud region with IoTDA"),
        ({"project_id": "0123 bad!"}, "extra project_id must be 1 to 64 characters"),
        ({"instance_id": "NOT-HEX-ZZ"}, "extra instance_id must be 1 to 36 characters"),
        ({"signing": "auto"}, "extra signing must be one of automatic, derived, standard"),
        ({"endpoint": "ftp://x"}, "extra endpoint must be an http(s) URL"),
    ],
)
def test_test_connection_names_the_field_and_not_the_temporary_id(
    monkeypatch: pytest.MonkeyPatch, values: dict[str, Any], detail: str
) -> None:
    conn_id = _airflow_like_test_id()
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", _form_connection(**values))
    ok, message = IoTDAHook(conn_id).test_connection()
    assert ok is False
    assert message.startswith(detail)
    assert conn_id not in message
    assert conn_id.upper() not in message
    assert "connection '" not in message
    (value,) = values.values()
    assert repr(value) in message  # the value, as given


def test_test_connection_names_an_empty_secret_key_without_showing_anything(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    conn_id = _airflow_like_test_id()
    value = json.loads(_form_connection())
    value["password"] = ""
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(value))
    assert IoTDAHook(conn_id).test_connection() == (
        False,
        f"password (the Secret Key, SK) is empty; {OTHER_SOURCES}",
    )
