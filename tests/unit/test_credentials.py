"""Credential sources, the refreshing caches and the connection extras (no network)."""

from __future__ import annotations

import asyncio
import builtins
import datetime as dt
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import requests
import requests_mock
from iotda_test_values import TEST_PROJECT, connection_json

from airflow_provider_iotda import credentials
from airflow_provider_iotda.config import IoTDAConnectionConfig
from airflow_provider_iotda.credentials import (
    AUTO_ORDER,
    AsyncCredentialCache,
    CredentialCache,
    CredentialSettings,
    SourcedCredentials,
    afetch,
    fetch,
    parse_credential_answer,
)
from airflow_provider_iotda.errors import IoTDACredentialsError

from .unit_support import CapturedLogs

T0 = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)
META = "http://169.254.169.254"
TMP_AK = "TMPACCESSKEY00000042"
TMP_SK = "TMP-SECRET-do-not-leak-4b2a"
TMP_TOKEN = "TMP-TOKEN-do-not-leak-" + "z" * 40
ENV_SK = "ENV-SECRET-do-not-leak-88c1"
PROFILE_SK = "PROFILE-SECRET-do-not-leak-7d0e"
ID_TOKEN = "OIDC-ID-TOKEN-do-not-leak-eyJhbGciOi"
POD_TOKEN = "POD-TOKEN-do-not-leak-31f"
SECRETS = (TMP_SK, TMP_TOKEN, ENV_SK, PROFILE_SK, ID_TOKEN, POD_TOKEN)


def _expiry(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def metadata_answer(expires: dt.datetime = T0 + dt.timedelta(hours=1), n: int = 0) -> str:
    return json.dumps(
        {
            "credential": {
                "access": f"{TMP_AK[:-1]}{n}",
                "secret": TMP_SK + str(n),
                "securitytoken": TMP_TOKEN + str(n),
                "expires_at": _expiry(expires),
            }
        }
    )


@pytest.fixture
def no_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, str]:
    """An environment with none of the SDK's variables, and a HOME without a profile."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return {"HOME": str(tmp_path / "home")}


@pytest.fixture
def meta() -> Iterator[requests_mock.Mocker]:
    with requests_mock.Mocker() as mocker:
        mocker.put(META + credentials.METADATA_TOKEN_PATH, text="imds-token")
        yield mocker


# -- env and profile ----------------------------------------------------------------------------


def test_env_source_reads_the_sdk_variables() -> None:
    environ = {
        "HUAWEICLOUD_SDK_AK": "ENVAK",
        "HUAWEICLOUD_SDK_SK": ENV_SK,
        "HUAWEICLOUD_SDK_SECURITY_TOKEN": TMP_TOKEN,
    }
    got = fetch(CredentialSettings("env"), T0, environ)
    assert (got.access_key, got.secret_key, got.security_token) == ("ENVAK", ENV_SK, TMP_TOKEN)
    assert got.source == "env"
    assert got.expires_at is None
    assert not got.refresh_due(T0 + dt.timedelta(days=365))


@pytest.mark.parametrize(
    ("environ", "lacking"),
    [
        ({}, "HUAWEICLOUD_SDK_AK and HUAWEICLOUD_SDK_SK not set"),
        ({"HUAWEICLOUD_SDK_AK": "A"}, "HUAWEICLOUD_SDK_SK not set"),
        ({"HUAWEICLOUD_SDK_SK": ENV_SK, "HUAWEICLOUD_SDK_AK": " "}, "HUAWEICLOUD_SDK_AK not set"),
        ({"HUAWEICLOUD_SDK_IDP_ID": "idp"}, "use credentials=oidc"),
    ],
)
def test_env_source_says_what_is_missing(environ: dict[str, str], lacking: str) -> None:
    with pytest.raises(IoTDACredentialsError, match="credentials=env") as caught:
        fetch(CredentialSettings("env"), T0, environ)
    assert lacking in str(caught.value)
    assert ENV_SK not in str(caught.value)


def test_profile_from_the_sdk_file_variable(tmp_path: Path) -> None:
    path = tmp_path / "credentials"
    path.write_text(
        f"[basic]\nak = PROFAK\nsk = {PROFILE_SK}\nproject_id = {TEST_PROJECT}\n"
        "[global]\nak = OTHER\nsk = other\n"
    )
    got = fetch(CredentialSettings("profile"), T0, {"HUAWEICLOUD_SDK_CREDENTIALS_FILE": str(path)})
    assert (got.access_key, got.secret_key, got.security_token) == ("PROFAK", PROFILE_SK, None)
    assert got.source == "profile"


def test_profile_default_path_is_the_sdks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    (home / ".huaweicloud").mkdir(parents=True)
    (home / ".huaweicloud" / "credentials").write_text(
        f"[basic]\nak=HOMEAK\nsk={PROFILE_SK}\nsecurity_token={TMP_TOKEN}\n"
    )
    monkeypatch.setenv("HOME", str(home))
    got = fetch(CredentialSettings("profile"), T0, {})
    assert (got.access_key, got.security_token) == ("HOMEAK", TMP_TOKEN)


def test_profile_extra_overrides_the_variable(tmp_path: Path) -> None:
    chosen = tmp_path / "chosen.ini"
    chosen.write_text(f"[basic]\nak=CHOSEN\nsk={PROFILE_SK}\n")
    settings = CredentialSettings("profile", credentials_file=str(chosen))
    env = {"HUAWEICLOUD_SDK_CREDENTIALS_FILE": str(tmp_path / "absent")}
    assert fetch(settings, T0, env).access_key == "CHOSEN"


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (None, "no credentials file at"),
        ("ak=1\n", "is not an INI file"),
        ("[global]\nak=A\nsk=B\n", "has no section named basic"),
        ("[basic]\nak=A\n", "has no sk"),
    ],
)
def test_profile_says_what_is_wrong(tmp_path: Path, content: str | None, reason: str) -> None:
    path = tmp_path / "credentials"
    if content is not None:
        path.write_text(content)
    with pytest.raises(IoTDACredentialsError, match="credentials=profile") as caught:
        fetch(CredentialSettings("profile", credentials_file=str(path)), T0, {})
    assert reason in str(caught.value)


# -- ECS metadata -------------------------------------------------------------------------------


def test_ecs_metadata_token_then_security_key(meta: requests_mock.Mocker) -> None:
    meta.get(META + credentials.METADATA_SECURITY_KEY_PATH, text=metadata_answer())
    got = fetch(CredentialSettings("ecs_metadata"), T0, {})
    token_call, key_call = meta.request_history
    assert token_call.method == "PUT"
    assert token_call.headers["X-Metadata-Token-Ttl-Seconds"] == "21600"
    assert key_call.headers["X-Metadata-Token"] == "imds-token"
    assert got.source == "ecs_metadata"
    assert got.security_token == TMP_TOKEN + "0"
    assert got.expires_at == T0 + dt.timedelta(hours=1)
    assert got.fetched_at == T0


@pytest.mark.parametrize("status", [404, 405, 503])
def test_ecs_metadata_without_imds_token(meta: requests_mock.Mocker, status: int) -> None:
    meta.put(META + credentials.METADATA_TOKEN_PATH, status_code=status)
    meta.get(META + credentials.METADATA_SECURITY_KEY_PATH, text=metadata_answer())
    assert fetch(CredentialSettings("ecs_metadata"), T0, {}).access_key.startswith("TMP")
    assert "X-Metadata-Token" not in meta.request_history[1].headers


def test_ecs_metadata_endpoint_override() -> None:
    with requests_mock.Mocker() as mock:
        mock.put("http://10.0.0.9:81" + credentials.METADATA_TOKEN_PATH, text="t")
        mock.get(
            "http://10.0.0.9:81" + credentials.METADATA_SECURITY_KEY_PATH, text=metadata_answer()
        )
        settings = CredentialSettings("ecs_metadata", metadata_endpoint="http://10.0.0.9:81")
        assert fetch(settings, T0, {}).source == "ecs_metadata"


def test_ecs_metadata_without_agency(meta: requests_mock.Mocker) -> None:
    meta.get(META + credentials.METADATA_SECURITY_KEY_PATH, status_code=404)
    with pytest.raises(IoTDACredentialsError, match="agency bound to this ECS"):
        fetch(CredentialSettings("ecs_metadata"), T0, {})


def test_ecs_metadata_server_error_is_retryable(meta: requests_mock.Mocker) -> None:
    meta.get(META + credentials.METADATA_SECURITY_KEY_PATH, status_code=500)
    with pytest.raises(IoTDACredentialsError, match="HTTP 500") as caught:
        fetch(CredentialSettings("ecs_metadata"), T0, {})
    assert caught.value.retryable


def test_ecs_metadata_unreachable_is_retryable() -> None:
    with requests_mock.Mocker() as mock:
        mock.put(META + credentials.METADATA_TOKEN_PATH, exc=requests.ConnectTimeout)
        with pytest.raises(IoTDACredentialsError, match="could not reach") as caught:
            fetch(CredentialSettings("ecs_metadata"), T0, {})
    assert caught.value.retryable


# -- answers ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        {"credential": {"access": "A", "secret": "S", "securitytoken": "T", "expires_at": "x"}},
        {
            "credentials": {
                "access_key_id": "A",
                "secret_access_key": "S",
                "security_token": "T",
                "expiration": "x",
            }
        },
        {"accessKeyId": "A", "secretAccessKey": "S", "securityToken": "T", "expires_at": "x"},
    ],
)
def test_answer_shapes_the_sdk_reads(body: dict[str, Any]) -> None:
    text = json.dumps(body).replace('"x"', '"2026-12-01T13:00:00Z"')
    got = parse_credential_answer(text.encode(), "oidc", T0)
    assert (got.access_key, got.secret_key, got.security_token) == ("A", "S", "T")
    assert got.expires_at == T0 + dt.timedelta(hours=1)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"<html>", "not JSON"),
        (b"[1]", "no credential object"),
        (json.dumps({"credential": {"access": "A", "secret": TMP_SK}}).encode(), "securitytoken"),
        (
            json.dumps(
                {"credential": {"access": "A", "secret": TMP_SK, "securitytoken": TMP_TOKEN}}
            ).encode(),
            "no expiry time",
        ),
    ],
)
def test_bad_answers_name_the_field_not_the_value(body: bytes, message: str) -> None:
    with pytest.raises(IoTDACredentialsError, match=message) as caught:
        parse_credential_answer(body, "ecs_metadata", T0)
    assert TMP_SK not in str(caught.value)
    assert TMP_TOKEN not in str(caught.value)


# -- pod identity and OIDC ----------------------------------------------------------------------


def test_pod_identity_posts_the_token_file(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(POD_TOKEN + "\n")
    env = {
        "HC_CONTAINER_CREDENTIALS_FULL_URI": "http://169.254.170.2/v1/credentials",
        "HC_CONTAINER_AUTHORIZATION_TOKEN_FILE": str(token_file),
    }
    with requests_mock.Mocker() as mock:
        mock.post("http://169.254.170.2/v1/credentials", text=metadata_answer())
        got = fetch(CredentialSettings("pod_identity"), T0, env)
    (call,) = mock.request_history
    assert call.headers["Authorization"] == POD_TOKEN
    assert call.json() == {}
    assert got.source == "pod_identity"


def test_pod_identity_endpoint_extra_and_missing_file(tmp_path: Path) -> None:
    settings = CredentialSettings("pod_identity", pod_identity_endpoint="http://x/creds")
    with pytest.raises(IoTDACredentialsError, match="HC_CONTAINER_AUTHORIZATION_TOKEN_FILE"):
        fetch(settings, T0, {})
    env = {"HC_CONTAINER_AUTHORIZATION_TOKEN_FILE": str(tmp_path / "absent")}
    with pytest.raises(IoTDACredentialsError, match="missing or empty"):
        fetch(settings, T0, env)


def oidc_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    token_file = tmp_path / "id_token"
    token_file.write_text(ID_TOKEN)
    return {
        "HUAWEICLOUD_OIDC_PROVIDER_URN": "iam::123:identityProvider:ci",
        "HUAWEICLOUD_OIDC_AGENCY_URN": "iam::123:agency:airflow",
        "HUAWEICLOUD_OIDC_TOKEN_FILE": str(token_file),
        **extra,
    }


def sts_answer() -> str:
    return json.dumps(
        {
            "credentials": {
                "access_key_id": TMP_AK,
                "secret_access_key": TMP_SK,
                "security_token": TMP_TOKEN,
                "expiration": _expiry(T0 + dt.timedelta(hours=1)),
            }
        }
    )


def test_oidc_assumes_the_agency(tmp_path: Path) -> None:
    env = oidc_env(tmp_path, HUAWEICLOUD_OIDC_DURATION_SECONDS="900")
    with requests_mock.Mocker() as mock:
        mock.post(
            credentials.DEFAULT_STS_ENDPOINT + "/v5/agencies/assume-with-oidc", text=sts_answer()
        )
        got = fetch(CredentialSettings("oidc"), T0, env)
    (call,) = mock.request_history
    assert call.json() == {
        "provider_urn": "iam::123:identityProvider:ci",
        "agency_urn": "iam::123:agency:airflow",
        "agency_session_name": "airflow-provider-iotda",
        "id_token": ID_TOKEN,
        "duration_seconds": 900,
    }
    assert (got.access_key, got.source) == (TMP_AK, "oidc")


def test_oidc_endpoint_from_extra_then_env(tmp_path: Path) -> None:
    env = oidc_env(tmp_path, HUAWEICLOUD_SDK_STS_ENDPOINT="https://sts.env.example")
    with requests_mock.Mocker() as mock:
        mock.post("https://sts.env.example/v5/agencies/assume-with-oidc", text=sts_answer())
        mock.post("https://sts.extra.example/v5/agencies/assume-with-oidc", text=sts_answer())
        fetch(CredentialSettings("oidc"), T0, env)
        fetch(CredentialSettings("oidc", sts_endpoint="https://sts.extra.example"), T0, env)
    assert [r.hostname for r in mock.request_history] == ["sts.env.example", "sts.extra.example"]


def test_oidc_rejections(tmp_path: Path) -> None:
    with pytest.raises(IoTDACredentialsError, match="HUAWEICLOUD_OIDC_PROVIDER_URN"):
        fetch(CredentialSettings("oidc"), T0, {})
    env = oidc_env(tmp_path, HUAWEICLOUD_OIDC_DURATION_SECONDS="5")
    with pytest.raises(IoTDACredentialsError, match="between 900 and 43200"):
        fetch(CredentialSettings("oidc"), T0, env)
    with requests_mock.Mocker() as mock:
        mock.post(requests_mock.ANY, status_code=401, text=f'{{"id_token": "{ID_TOKEN}"}}')
        with pytest.raises(IoTDACredentialsError, match="HTTP 401") as caught:
            fetch(CredentialSettings("oidc"), T0, oidc_env(tmp_path))
    assert ID_TOKEN not in str(caught.value)


# -- auto ---------------------------------------------------------------------------------------


def test_auto_follows_the_sdk_order(tmp_path: Path) -> None:
    env = {"HUAWEICLOUD_SDK_AK": "ENVAK", "HUAWEICLOUD_SDK_SK": ENV_SK, **oidc_env(tmp_path)}
    with requests_mock.Mocker() as mock:
        mock.post(requests_mock.ANY, text=sts_answer())
        assert fetch(CredentialSettings("auto"), T0, env).source == "oidc"
    del env["HUAWEICLOUD_OIDC_PROVIDER_URN"]
    assert fetch(CredentialSettings("auto"), T0, env).source == "env"


def test_auto_reaches_metadata_when_nothing_local(
    meta: requests_mock.Mocker, no_env: dict[str, str]
) -> None:
    meta.get(META + credentials.METADATA_SECURITY_KEY_PATH, text=metadata_answer())
    assert fetch(CredentialSettings("auto"), T0, no_env).source == "ecs_metadata"


def test_auto_error_says_what_each_source_lacked(no_env: dict[str, str]) -> None:
    with requests_mock.Mocker() as mock:
        mock.put(requests_mock.ANY, exc=requests.ConnectTimeout)
        with pytest.raises(IoTDACredentialsError) as caught:
            fetch(CredentialSettings("auto"), T0, no_env)
    message = str(caught.value)
    assert message.startswith("credentials=auto found no credentials (oidc: ")
    positions = [message.index(f"{source}: ") for source in AUTO_ORDER]
    assert positions == sorted(positions)
    for lacking in (
        "HUAWEICLOUD_OIDC_PROVIDER_URN",
        "HUAWEICLOUD_SDK_AK",
        "no credentials file at",
        "could not reach http://169.254.169.254",
        "HC_CONTAINER_CREDENTIALS_FULL_URI",
    ):
        assert lacking in message
    assert not caught.value.retryable


# -- the sync cache -----------------------------------------------------------------------------


def test_cache_refreshes_before_expiry(meta: requests_mock.Mocker) -> None:
    meta.get(
        META + credentials.METADATA_SECURITY_KEY_PATH,
        [
            {"text": metadata_answer(T0 + dt.timedelta(hours=1), 1)},
            {"text": metadata_answer(T0 + dt.timedelta(hours=2), 2)},
        ],
    )
    cache = CredentialCache(CredentialSettings("ecs_metadata"), environ={})
    first = cache.get(T0)
    assert cache.get(T0 + dt.timedelta(minutes=29)) is first  # more than half the life left
    refreshed = cache.get(T0 + dt.timedelta(minutes=31))  # 29 min left < 30 (half the life)
    assert refreshed.secret_key == TMP_SK + "2"
    assert cache.get(T0 + dt.timedelta(minutes=40)) is refreshed
    assert len([r for r in meta.request_history if r.method == "GET"]) == 2


def test_long_lived_credentials_refresh_40_minutes_before(meta: requests_mock.Mocker) -> None:
    meta.get(
        META + credentials.METADATA_SECURITY_KEY_PATH,
        [{"text": metadata_answer(T0 + dt.timedelta(hours=24), n)} for n in (1, 2)],
    )
    cache = CredentialCache(CredentialSettings("ecs_metadata"), environ={})
    first = cache.get(T0)
    assert cache.get(T0 + dt.timedelta(hours=23, minutes=19)) is first
    assert cache.get(T0 + dt.timedelta(hours=23, minutes=21)) is not first


def test_failed_refresh_keeps_valid_credentials_and_never_expired_ones(
    meta: requests_mock.Mocker,
) -> None:
    meta.get(
        META + credentials.METADATA_SECURITY_KEY_PATH,
        [{"text": metadata_answer()}, {"status_code": 500}, {"status_code": 500}],
    )
    failures: list[Exception] = []
    cache = CredentialCache(
        CredentialSettings("ecs_metadata"), environ={}, on_refresh_failure=failures.append
    )
    first = cache.get(T0)
    assert cache.get(T0 + dt.timedelta(minutes=45)) is first  # 15 min left: still usable
    assert len(failures) == 1
    with pytest.raises(IoTDACredentialsError, match="HTTP 500"):
        cache.get(T0 + dt.timedelta(minutes=59, seconds=45))  # 15 s left: not usable


def test_static_credentials_are_never_fetched() -> None:
    static = SourcedCredentials("AK", "SK-static-secret")
    cache = CredentialCache(CredentialSettings(), static)
    with requests_mock.Mocker():  # any HTTP call would fail
        assert cache.get(T0 + dt.timedelta(days=1000)) is static


def test_fetched_secrets_are_masked(
    meta: requests_mock.Mocker, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow_provider_iotda import compat

    masked: list[str] = []
    monkeypatch.setattr(compat, "mask_secret", masked.append)
    meta.get(META + credentials.METADATA_SECURITY_KEY_PATH, text=metadata_answer())
    CredentialCache(CredentialSettings("ecs_metadata"), environ={}).get(T0)
    assert masked == [TMP_SK + "0", TMP_TOKEN + "0"]


def test_repr_hides_secrets() -> None:
    got = SourcedCredentials(TMP_AK, TMP_SK, TMP_TOKEN, T0, "oidc", T0)
    assert TMP_AK in repr(got)
    for secret in (TMP_SK, TMP_TOKEN):
        assert secret not in repr(got)
    assert ID_TOKEN not in repr(
        credentials.HttpCall("POST", "http://x", {}, {"id_token": ID_TOKEN})
    )


# -- the async cache ----------------------------------------------------------------------------


class LoopGuard:
    """Fails any blocking file open or HTTP-client set-up done on the event loop's thread."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.loop_thread: int | None = None
        self.violations: list[str] = []
        real_open = builtins.open
        real_client_init = httpx.AsyncClient.__init__

        def guarded_open(*args: Any, **kwargs: Any) -> Any:
            if threading.get_ident() == self.loop_thread:
                self.violations.append(f"open({args[0]!r}) on the event loop")
            return real_open(*args, **kwargs)

        def guarded_init(client: Any, *args: Any, **kwargs: Any) -> None:
            if threading.get_ident() == self.loop_thread:
                self.violations.append("httpx.AsyncClient() built on the event loop")
            real_client_init(client, *args, **kwargs)

        monkeypatch.setattr(builtins, "open", guarded_open)
        monkeypatch.setattr(httpx.AsyncClient, "__init__", guarded_init)

    def run(self, coro: Any) -> Any:
        async def main() -> Any:
            self.loop_thread = threading.get_ident()
            loop = asyncio.get_running_loop()
            loop.slow_callback_duration = 0.5
            return await coro

        return asyncio.run(main(), debug=True)


def mock_transport_client(handler: Any) -> Any:
    def build() -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.MockTransport(handler))

    return build


def test_async_fetch_does_not_block_the_loop(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    guard = LoopGuard(monkeypatch)
    calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(200, text="imds" if request.method == "PUT" else metadata_answer())

    monkeypatch.setattr(credentials, "_new_async_client", mock_transport_client(handler))
    token_file = tmp_path / "token"
    token_file.write_text(POD_TOKEN)
    env = {
        "HC_CONTAINER_CREDENTIALS_FULL_URI": "http://pod.local/creds",
        "HC_CONTAINER_AUTHORIZATION_TOKEN_FILE": str(token_file),
    }
    profile = tmp_path / "credentials"
    profile.write_text(f"[basic]\nak=P\nsk={PROFILE_SK}\n")
    with caplog.at_level("WARNING", logger="asyncio"):
        pod = guard.run(afetch(CredentialSettings("pod_identity"), T0, env))
        prof = guard.run(
            afetch(CredentialSettings("profile", credentials_file=str(profile)), T0, {})
        )
        meta_got = guard.run(afetch(CredentialSettings("ecs_metadata"), T0, {}))
    assert guard.violations == []
    assert "Executing" not in caplog.text  # asyncio debug mode: no slow callback
    assert (pod.source, prof.source, meta_got.source) == ("pod_identity", "profile", "ecs_metadata")
    assert calls[0].headers["Authorization"] == POD_TOKEN
    assert [c.method for c in calls[1:]] == ["PUT", "GET"]
    assert calls[2].headers["X-Metadata-Token"] == "imds"


def test_one_fetch_per_connection_per_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    fetches: list[str] = []

    async def slow_fetch(settings: CredentialSettings, now: dt.datetime, environ: Any) -> Any:
        fetches.append(settings.source)
        await asyncio.sleep(0.01)
        return SourcedCredentials(
            TMP_AK, TMP_SK, TMP_TOKEN, now + dt.timedelta(hours=1), "oidc", now
        )

    monkeypatch.setattr(credentials, "afetch", slow_fetch)
    monkeypatch.setattr(credentials, "_amask_all", _no_mask)
    settings = CredentialSettings("oidc")

    async def main() -> tuple[set[int], bool, bool]:
        caches = [credentials.shared("conn_a", settings) for _ in range(50)]
        got = await asyncio.gather(*(cache.get(T0) for cache in caches))
        other = credentials.shared("conn_b", settings)
        return {id(g) for g in got}, caches[0] is caches[-1], other is not caches[0]

    ids, same, separate = asyncio.run(main())
    assert (len(ids), same, separate) == (1, True, True)
    assert fetches == ["oidc"]
    asyncio.run(main())  # a new loop has its own cache: one more fetch
    assert fetches == ["oidc", "oidc"]


async def _no_mask(credentials: SourcedCredentials) -> None:
    return None


def test_async_cache_refreshes_and_masks(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow_provider_iotda import compat

    masked: list[str] = []

    async def record(secret: str) -> None:
        masked.append(secret)

    monkeypatch.setattr(compat, "amask_secret", record)
    answers = iter([metadata_answer(T0 + dt.timedelta(hours=1), n) for n in (1, 2)])
    monkeypatch.setattr(
        credentials,
        "_new_async_client",
        mock_transport_client(
            lambda request: httpx.Response(
                200, text=next(answers) if request.method == "GET" else "t"
            )
        ),
    )

    async def main() -> list[str]:
        cache = AsyncCredentialCache(CredentialSettings("ecs_metadata"), environ={})
        first = await cache.get(T0)
        again = await cache.get(T0 + dt.timedelta(minutes=10))
        later = await cache.get(T0 + dt.timedelta(minutes=31))
        assert again is first
        return [first.secret_key, later.secret_key]

    assert asyncio.run(main()) == [TMP_SK + "1", TMP_SK + "2"]
    assert masked == [TMP_SK + "1", TMP_TOKEN + "1", TMP_SK + "2", TMP_TOKEN + "2"]


# -- connection extras --------------------------------------------------------------------------


def _config(monkeypatch: pytest.MonkeyPatch, **kwargs: Any) -> IoTDAConnectionConfig:
    from airflow_provider_iotda.hooks.iotda import IoTDAHook

    monkeypatch.setenv("AIRFLOW_CONN_IOTDA_DEFAULT", connection_json(**kwargs))
    return IoTDAHook().config


def test_other_sources_need_no_login(monkeypatch: pytest.MonkeyPatch) -> None:
    config = _config(
        monkeypatch,
        login="",
        password="",
        credentials="ecs_metadata",
        metadata_endpoint="http://127.0.0.1:9/",
    )
    assert config.credentials is None
    assert config.static_credentials() is None
    assert config.secrets() == []
    assert config.credential_settings == CredentialSettings(
        "ecs_metadata", metadata_endpoint="http://127.0.0.1:9"
    )


def test_connection_source_is_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    config = _config(monkeypatch)
    assert config.credential_settings.source == "connection"
    static = config.static_credentials()
    assert static is not None
    assert static.source == "connection"
    assert config.signing_credentials(static) is config.credentials
    with pytest.raises(ValueError, match="login"):
        _config(monkeypatch, login="")


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            {"credentials": "vault"},
            "extra credentials must be one of auto, automatic, connection, ecs_metadata",
        ),
        ({"credentials": "env", "sts_endpoint": "ftp://x"}, "extra sts_endpoint"),
        ({"credentials": "env", "metadata_endpoint": "http://h/path"}, "extra metadata_endpoint"),
        ({"credentials": "profile", "credentials_file": 3}, "extra credentials_file"),
    ],
)
def test_bad_credential_extras(
    monkeypatch: pytest.MonkeyPatch, extra: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        _config(monkeypatch, **extra)


@pytest.mark.parametrize(
    ("spelling", "source"),
    [("environment", "env"), ("oidc_federation", "oidc"), ("automatic", "auto"), ("env", "env")],
)
def test_long_spellings_of_the_short_sources(
    monkeypatch: pytest.MonkeyPatch, spelling: str, source: str
) -> None:
    """The form offers names of 5+ characters (shorter extras make Airflow's masker warn)."""
    assert _config(monkeypatch, credentials=spelling).credential_settings.source == source


def test_pod_identity_endpoint_keeps_its_path(monkeypatch: pytest.MonkeyPatch) -> None:
    config = _config(
        monkeypatch, credentials="pod_identity", pod_identity_endpoint="http://10.1.2.3/v1/creds"
    )
    assert config.credential_settings.pod_identity_endpoint == "http://10.1.2.3/v1/creds"


def test_signing_credentials_keep_the_connection_algorithm(monkeypatch: pytest.MonkeyPatch) -> None:
    config = _config(monkeypatch, credentials="env", auth="derived")
    signing = config.signing_credentials(SourcedCredentials(TMP_AK, TMP_SK, TMP_TOKEN))
    assert (signing.algorithm, signing.region, signing.security_token) == (
        "V11-HMAC-SHA256",
        "cn-north-4",
        TMP_TOKEN,
    )


# -- the hook -----------------------------------------------------------------------------------


def test_hook_signs_with_fetched_credentials_and_says_where_from(
    monkeypatch: pytest.MonkeyPatch, logs: CapturedLogs, capsys: pytest.CaptureFixture[str]
) -> None:
    from iotda_test_values import TASKS_URL, verify_signature

    from airflow_provider_iotda.hooks.iotda import IoTDAHook

    monkeypatch.setenv(
        "AIRFLOW_CONN_IOTDA_DEFAULT",
        connection_json(login="", password="", credentials="ecs_metadata"),
    )
    now = dt.datetime.now(dt.UTC)
    with requests_mock.Mocker() as mock:
        mock.put(META + credentials.METADATA_TOKEN_PATH, text="imds")
        mock.get(
            META + credentials.METADATA_SECURITY_KEY_PATH,
            text=metadata_answer(now + dt.timedelta(hours=6)),
        )
        mock.get(TASKS_URL, json={"tasks": [], "page": {"count": 0}})
        with IoTDAHook() as hook:
            ok, message = hook.test_connection()
            hook.list_instance_tasks()
    assert ok, message
    assert message.endswith("(credentials from ecs_metadata)")
    api_calls = [r for r in mock.request_history if r.url.startswith(TASKS_URL)]
    assert len(api_calls) == 2
    assert len([r for r in mock.request_history if "securitykey" in r.url]) == 1
    for call in api_calls:
        assert call.headers["X-Security-Token"] == TMP_TOKEN + "0"
        assert verify_signature(call, TMP_SK + "0")
    output = logs.text() + "".join(capsys.readouterr())
    for secret in (TMP_SK + "0", TMP_TOKEN + "0"):
        assert secret not in output
        assert secret not in message


def test_hook_reports_missing_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow_provider_iotda.hooks.iotda import IoTDAHook

    for name in ("HUAWEICLOUD_SDK_AK", "HUAWEICLOUD_SDK_SK"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(
        "AIRFLOW_CONN_IOTDA_DEFAULT", connection_json(login="", password="", credentials="env")
    )
    with requests_mock.Mocker() as mock:
        ok, message = IoTDAHook().test_connection()
    assert not ok
    assert "credentials=env: HUAWEICLOUD_SDK_AK and HUAWEICLOUD_SDK_SK not set" in message
    assert mock.request_history == []


# -- one chain, two drivers ---------------------------------------------------------------------

_SECURITY_KEY = META + credentials.METADATA_SECURITY_KEY_PATH
_TOKEN_URL = META + credentials.METADATA_TOKEN_PATH
_POD_URL = "http://pod.local/creds"

#: (settings, answers by (method, URL): a status and body, or "unreachable"; what comes out)
_SCRIPTS: dict[str, tuple[CredentialSettings, dict[tuple[str, str], Any], str]] = {
    "metadata": (
        CredentialSettings("ecs_metadata"),
        {("PUT", _TOKEN_URL): (200, "imds"), ("GET", _SECURITY_KEY): (200, metadata_answer())},
        "ok",
    ),
    "metadata without IMDS token": (
        CredentialSettings("ecs_metadata"),
        {("PUT", _TOKEN_URL): (405, ""), ("GET", _SECURITY_KEY): (200, metadata_answer())},
        "ok",
    ),
    "no agency": (
        CredentialSettings("ecs_metadata"),
        {("PUT", _TOKEN_URL): (200, "imds"), ("GET", _SECURITY_KEY): (404, "")},
        "error",
    ),
    "metadata 503": (
        CredentialSettings("ecs_metadata"),
        {("PUT", _TOKEN_URL): (200, "imds"), ("GET", _SECURITY_KEY): (503, "")},
        "error",
    ),
    "metadata unreachable": (
        CredentialSettings("ecs_metadata"),
        {("PUT", _TOKEN_URL): "unreachable"},
        "error",
    ),
    "broken answer": (
        CredentialSettings("ecs_metadata"),
        {("PUT", _TOKEN_URL): (200, "imds"), ("GET", _SECURITY_KEY): (200, '{"credential": 1}')},
        "error",
    ),
    "pod identity": (
        CredentialSettings("pod_identity", pod_identity_endpoint=_POD_URL),
        {("POST", _POD_URL): (200, metadata_answer(n=7))},
        "ok",
    ),
    "auto, metadata unreachable, pod identity answers": (
        CredentialSettings("auto", pod_identity_endpoint=_POD_URL),
        {("PUT", _TOKEN_URL): "unreachable", ("POST", _POD_URL): (200, metadata_answer(n=3))},
        "ok",
    ),
    "auto, nothing": (
        CredentialSettings("auto"),
        {("PUT", _TOKEN_URL): "unreachable"},
        "error",
    ),
}


def _outcome(run: Any) -> Any:
    try:
        got = run()
    except IoTDACredentialsError as exc:
        return ("error", str(exc), exc.retryable)
    return ("ok", got.source, got.access_key, got.secret_key, got.security_token, got.expires_at)


def _sync_fetch(settings: CredentialSettings, answers: dict[Any, Any], env: Any) -> Any:
    with requests_mock.Mocker() as mocker:
        for (method, url), answer in answers.items():
            if answer == "unreachable":
                refused = ConnectionRefusedError(111, "Connection refused")
                mocker.register_uri(method, url, exc=requests.ConnectionError(refused))
            else:
                mocker.register_uri(method, url, status_code=answer[0], text=answer[1])
        return _outcome(lambda: fetch(settings, T0, env))


def _async_fetch(
    settings: CredentialSettings, answers: dict[Any, Any], env: Any, monkeypatch: Any
) -> Any:
    def handler(request: httpx.Request) -> httpx.Response:
        answer = answers[(request.method, str(request.url))]
        if answer == "unreachable":
            error = httpx.ConnectError("All connection attempts failed")
            error.__cause__ = ConnectionRefusedError(111, "Connection refused")
            raise error
        return httpx.Response(answer[0], text=answer[1])

    monkeypatch.setattr(credentials, "_new_async_client", mock_transport_client(handler))
    return _outcome(lambda: asyncio.run(afetch(settings, T0, env)))


@pytest.mark.parametrize("scenario", list(_SCRIPTS))
def test_fetch_and_afetch_run_the_same_chain(
    scenario: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, no_env: dict[str, str]
) -> None:
    settings, answers, kind = _SCRIPTS[scenario]
    token_file = tmp_path / "pod-token"
    token_file.write_text(POD_TOKEN)
    env = {**no_env, credentials.ENV_POD_TOKEN_FILE: str(token_file)}
    sync = _sync_fetch(settings, answers, env)
    assert _async_fetch(settings, answers, env, monkeypatch) == sync
    assert sync[0] == kind
    if kind == "error":
        assert not any(secret in sync[1] for secret in SECRETS)


def test_afetch_builds_no_client_when_no_source_sends_a_request(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    built: list[int] = []
    monkeypatch.setattr(credentials, "_new_async_client", lambda: built.append(1))
    env = {credentials.ENV_AK: "ENVAK0000000000000001", credentials.ENV_SK: ENV_SK}
    got = asyncio.run(afetch(CredentialSettings("auto"), T0, env))
    assert got.source == "env"
    assert built == []
