"""Where the AK/SK comes from: the connection, the environment, a profile file, the ECS metadata
service, CCE pod identity or OIDC federation (STS), and a cache that refreshes temporary
credentials before they expire.

The environment variable names, the profile file format and the endpoints are those of Huawei's
SDK (``huaweicloudsdkcore``), so a machine set up for the SDK works unchanged.

Each source is a generator of *steps* (an HTTP call or a file read) that returns the
credentials.  One driver runs the steps with ``requests`` (sync hook), another with ``httpx``
and worker threads (async hook, never blocking the event loop): the sources' logic exists
once (:func:`chain`; :class:`~airflow_provider_iotda.steps.Steps` runs it).  No HTTP client
is imported until a fetch runs.

Secrets (SK, security tokens, OIDC id tokens) are never put in a message or a ``repr``; every
fetched SK and token is registered with Airflow's masker by the caches.
"""

from __future__ import annotations

import asyncio
import configparser
import datetime as dt
import json
import logging
import os
import threading
import weakref
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal
from urllib.parse import urlsplit

from airflow_provider_iotda.errors import IoTDACredentialsError, transport_cause
from airflow_provider_iotda.steps import Steps

_log = logging.getLogger(__name__)

Source = Literal["connection", "env", "profile", "ecs_metadata", "pod_identity", "oidc"]
CREDENTIAL_SOURCES: Final = (
    "connection",
    "env",
    "profile",
    "ecs_metadata",
    "pod_identity",
    "oidc",
    "auto",
)
#: Longer spellings of the sources whose names are under 5 characters: Airflow's masker warns
#: "too short" for every such string in a connection's extra, on every task.  Both spellings
#: are accepted; the form offers the long ones.
SOURCE_SPELLINGS: Final = {"environment": "env", "oidc_federation": "oidc", "automatic": "auto"}
#: ``auto`` tries these in the order of Huawei's SDK chain; the first that yields wins.
AUTO_ORDER: Final[tuple[Source, ...]] = ("oidc", "env", "profile", "ecs_metadata", "pod_identity")

# -- the SDK's names -------------------------------------------------------------------------
ENV_AK: Final = "HUAWEICLOUD_SDK_AK"
ENV_SK: Final = "HUAWEICLOUD_SDK_SK"
ENV_SECURITY_TOKEN: Final = "HUAWEICLOUD_SDK_SECURITY_TOKEN"
ENV_IDP_ID: Final = "HUAWEICLOUD_SDK_IDP_ID"
ENV_CREDENTIALS_FILE: Final = "HUAWEICLOUD_SDK_CREDENTIALS_FILE"
ENV_STS_ENDPOINT: Final = "HUAWEICLOUD_SDK_STS_ENDPOINT"
ENV_POD_URI: Final = "HC_CONTAINER_CREDENTIALS_FULL_URI"
ENV_POD_TOKEN_FILE: Final = "HC_CONTAINER_AUTHORIZATION_TOKEN_FILE"
ENV_OIDC_PROVIDER_URN: Final = "HUAWEICLOUD_OIDC_PROVIDER_URN"
ENV_OIDC_AGENCY_URN: Final = "HUAWEICLOUD_OIDC_AGENCY_URN"
ENV_OIDC_ID_TOKEN: Final = "HUAWEICLOUD_OIDC_ID_TOKEN"
ENV_OIDC_TOKEN_FILE: Final = "HUAWEICLOUD_OIDC_TOKEN_FILE"
ENV_OIDC_SESSION_NAME: Final = "HUAWEICLOUD_OIDC_SESSION_NAME"
ENV_OIDC_DURATION: Final = "HUAWEICLOUD_OIDC_DURATION_SECONDS"

DEFAULT_PROFILE_PATH: Final = "~/.huaweicloud/credentials"
PROFILE_SECTION: Final = "basic"
DEFAULT_METADATA_ENDPOINT: Final = "http://169.254.169.254"
METADATA_TOKEN_PATH: Final = "/meta-data/latest/api/token"
METADATA_SECURITY_KEY_PATH: Final = "/openstack/latest/securitykey"
METADATA_TOKEN_HEADER: Final = "X-Metadata-Token"
METADATA_TTL_HEADER: Final = "X-Metadata-Token-Ttl-Seconds"
METADATA_TOKEN_TTL: Final = 21600
DEFAULT_STS_ENDPOINT: Final = "https://sts.cn-north-4.myhuaweicloud.com"
OIDC_PATH: Final = "/v5/agencies/assume-with-oidc"
DEFAULT_OIDC_SESSION_NAME: Final = "airflow-provider-iotda"
DEFAULT_OIDC_DURATION: Final = 3600
#: (connect, read) seconds for credential endpoints, as the SDK uses for the metadata service.
FETCH_TIMEOUT: Final = (3.0, 3.0)
#: Refresh when less than this remains (the SDK's 40 minutes), at most half the lifetime.
REFRESH_BEFORE: Final = 40 * 60.0
#: A refresh that fails leaves the old credentials in use only while this much remains.
MIN_REMAINING: Final = 30.0
#: Largest credential answer read (a few hundred bytes in practice).
MAX_ANSWER_BYTES: Final = 64 * 1024


@dataclass(frozen=True)
class CredentialSettings:
    """The connection's choice of source and its endpoint overrides (extras)."""

    source: str = "connection"
    metadata_endpoint: str | None = None
    sts_endpoint: str | None = None
    pod_identity_endpoint: str | None = None
    credentials_file: str | None = None


@dataclass(frozen=True)
class SourcedCredentials:
    """An AK/SK (with a security token when temporary) and where it came from."""

    access_key: str
    secret_key: str = field(repr=False)
    security_token: str | None = field(default=None, repr=False)
    expires_at: dt.datetime | None = None
    source: str = "connection"
    fetched_at: dt.datetime | None = None

    def secrets(self) -> list[str]:
        """The values the masker must hide."""
        return [s for s in (self.secret_key, self.security_token) if s]

    def remaining(self, now: dt.datetime) -> float | None:
        """Seconds until expiry (``None``: they do not expire)."""
        if self.expires_at is None:
            return None
        return (self.expires_at - now).total_seconds()

    def refresh_due(self, now: dt.datetime) -> bool:
        """Whether to fetch new ones now: within ``REFRESH_BEFORE`` (or half the lifetime)."""
        left = self.remaining(now)
        if left is None:
            return False
        lifetime = (
            (self.expires_at - self.fetched_at).total_seconds()
            if self.expires_at is not None and self.fetched_at is not None
            else 2 * REFRESH_BEFORE
        )
        return left <= min(REFRESH_BEFORE, max(lifetime, 0.0) / 2)

    def still_usable(self, now: dt.datetime) -> bool:
        """Whether a request signed now would still arrive before expiry."""
        left = self.remaining(now)
        return left is None or left > MIN_REMAINING


class SourceUnavailable(Exception):
    """A source lacks what it needs (not set up here); the message says what is missing.

    ``retryable``: the source is set up but its endpoint could not be reached.
    """

    def __init__(self, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable


# -- steps ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HttpCall:
    """A step: one HTTP request to a credential endpoint (body sent as JSON when given)."""

    method: str
    url: str
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    json_body: Mapping[str, Any] | None = field(default=None, repr=False)


@dataclass(frozen=True)
class HttpAnswer:
    """The answer to an :class:`HttpCall`."""

    status: int
    body: bytes = field(repr=False)


@dataclass(frozen=True)
class ReadFile:
    """A step: read a text file; the driver sends back its stripped text, or ``None``."""

    path: str


Step = HttpCall | ReadFile
Fetch = Generator[Step, Any, SourcedCredentials]


def _nonempty(environ: Mapping[str, str], name: str) -> str | None:
    value = environ.get(name, "").strip()
    return value or None


def parse_expiry(value: object) -> dt.datetime:
    """``2026-12-01T22:00:00.000000Z`` (the SDK's form; fraction and ``Z`` optional)."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError("the answer has no expiry time (expires_at / expiration)")
    text = value.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    moment = dt.datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC)


def parse_credential_answer(body: bytes, source: str, now: dt.datetime) -> SourcedCredentials:
    """Read a temporary credential from a metadata, pod identity or STS answer.

    Accepts the shapes Huawei's SDK reads: the keys under ``credential`` or ``credentials``,
    named ``access``/``accessKeyId``/``access_key_id``, ``secret``/``secretAccessKey``/
    ``secret_access_key``, ``securitytoken``/``securityToken``/``security_token`` and
    ``expires_at``/``expiration``.  Errors name the missing field, never a value.
    """
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise IoTDACredentialsError(f"{source}: the answer is not JSON", retryable=True) from exc
    if isinstance(data, dict):
        data = data.get("credential", data.get("credentials", data))
    if not isinstance(data, dict):
        raise IoTDACredentialsError(f"{source}: the answer holds no credential object")

    def pick(*names: str) -> str | None:
        for name in names:
            value = data.get(name)
            if isinstance(value, str) and value:
                return value
        return None

    access = pick("access", "accessKeyId", "access_key_id")
    secret = pick("secret", "secretAccessKey", "secret_access_key")
    token = pick("securitytoken", "securityToken", "security_token")
    missing = [
        name
        for name, value in (("access", access), ("secret", secret), ("securitytoken", token))
        if value is None
    ]
    if missing:
        raise IoTDACredentialsError(f"{source}: the answer lacks {', '.join(missing)}")
    try:
        expires = parse_expiry(data.get("expires_at", data.get("expiration")))
    except ValueError as exc:
        raise IoTDACredentialsError(f"{source}: unusable expiry time: {exc}") from None
    return SourcedCredentials(str(access), str(secret), token, expires, source, now)


def _check_answer(answer: HttpAnswer, source: str, url: str) -> None:
    if not 200 <= answer.status < 300:
        raise IoTDACredentialsError(
            f"{source}: {url} answered HTTP {answer.status}",
            retryable=answer.status == 429 or answer.status >= 500,
            status=answer.status,
        )


# -- the sources ------------------------------------------------------------------------------


def from_env(environ: Mapping[str, str], now: dt.datetime) -> Fetch:
    """``HUAWEICLOUD_SDK_AK`` / ``_SK`` (and ``_SECURITY_TOKEN``)."""
    ak, sk = _nonempty(environ, ENV_AK), _nonempty(environ, ENV_SK)
    if ak is None or sk is None:
        lacking = " and ".join(name for name, v in ((ENV_AK, ak), (ENV_SK, sk)) if v is None)
        hint = (
            f" ({ENV_IDP_ID} federation through IAM is not supported: use credentials=oidc)"
            if _nonempty(environ, ENV_IDP_ID)
            else ""
        )
        raise SourceUnavailable(f"{lacking} not set{hint}")
    return SourcedCredentials(ak, sk, _nonempty(environ, ENV_SECURITY_TOKEN), None, "env", now)
    yield  # pragma: no cover - makes this a generator like the other sources


def from_profile(
    environ: Mapping[str, str], settings: CredentialSettings, now: dt.datetime
) -> Fetch:
    """INI file (``[basic]`` with ``ak``, ``sk``, ``security_token``), as the SDK reads it."""
    path = (
        settings.credentials_file
        or _nonempty(environ, ENV_CREDENTIALS_FILE)
        or os.path.expanduser(DEFAULT_PROFILE_PATH)
    )
    text = yield ReadFile(path)
    if text is None:
        raise SourceUnavailable(f"no credentials file at {path}")
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read_string(text, source=path)
    except configparser.Error as exc:
        raise SourceUnavailable(f"{path} is not an INI file: {type(exc).__name__}") from None
    if not parser.has_section(PROFILE_SECTION):
        raise SourceUnavailable(f"{path} has no section named {PROFILE_SECTION}")
    section = parser[PROFILE_SECTION]
    ak, sk = section.get("ak", "").strip(), section.get("sk", "").strip()
    if not ak or not sk:
        lacking = " and ".join(name for name, v in (("ak", ak), ("sk", sk)) if not v)
        raise SourceUnavailable(f"section {PROFILE_SECTION} of {path} has no {lacking}")
    token = section.get("security_token", "").strip() or None
    return SourcedCredentials(ak, sk, token, None, "profile", now)


def from_ecs_metadata(settings: CredentialSettings, now: dt.datetime) -> Fetch:
    """ECS metadata: ``PUT`` an IMDS token (skipped on 404/405/503), then ``GET`` securitykey."""
    base = (settings.metadata_endpoint or DEFAULT_METADATA_ENDPOINT).rstrip("/")
    answer = yield HttpCall(
        "PUT", base + METADATA_TOKEN_PATH, {METADATA_TTL_HEADER: str(METADATA_TOKEN_TTL)}
    )
    headers: dict[str, str] = {}
    if 200 <= answer.status < 300:
        headers[METADATA_TOKEN_HEADER] = answer.body.decode("utf-8", "replace").strip()
    elif answer.status not in (404, 405, 503):
        _check_answer(answer, "ecs_metadata", base + METADATA_TOKEN_PATH)
    url = base + METADATA_SECURITY_KEY_PATH
    answer = yield HttpCall("GET", url, headers)
    if answer.status == 404:
        raise SourceUnavailable(
            f"{url} has no security key (is an agency bound to this ECS instance?)"
        )
    _check_answer(answer, "ecs_metadata", url)
    return parse_credential_answer(answer.body, "ecs_metadata", now)


def from_pod_identity(
    environ: Mapping[str, str], settings: CredentialSettings, now: dt.datetime
) -> Fetch:
    """CCE pod identity: ``POST`` the full URI with the token file's content as Authorization."""
    uri = settings.pod_identity_endpoint or _nonempty(environ, ENV_POD_URI)
    token_file = _nonempty(environ, ENV_POD_TOKEN_FILE)
    if uri is None or token_file is None:
        lacking = [
            name
            for name, value in ((ENV_POD_URI, uri), (ENV_POD_TOKEN_FILE, token_file))
            if value is None
        ]
        raise SourceUnavailable(f"{' and '.join(lacking)} not set")
    token = yield ReadFile(token_file)
    if not token:
        raise SourceUnavailable(f"the token file {token_file} is missing or empty")
    answer = yield HttpCall("POST", uri, {"Authorization": token}, {})
    _check_answer(answer, "pod_identity", uri)
    return parse_credential_answer(answer.body, "pod_identity", now)


def from_oidc(environ: Mapping[str, str], settings: CredentialSettings, now: dt.datetime) -> Fetch:
    """OIDC federation: ``POST {sts}/v5/agencies/assume-with-oidc`` with the id token."""
    provider = _nonempty(environ, ENV_OIDC_PROVIDER_URN)
    agency = _nonempty(environ, ENV_OIDC_AGENCY_URN)
    token = _nonempty(environ, ENV_OIDC_ID_TOKEN)
    token_file = _nonempty(environ, ENV_OIDC_TOKEN_FILE)
    lacking = [
        name
        for name, value in (
            (ENV_OIDC_PROVIDER_URN, provider),
            (ENV_OIDC_AGENCY_URN, agency),
            (f"{ENV_OIDC_ID_TOKEN} or {ENV_OIDC_TOKEN_FILE}", token or token_file),
        )
        if value is None
    ]
    if lacking:
        raise SourceUnavailable(f"{' and '.join(lacking)} not set")
    duration_text = _nonempty(environ, ENV_OIDC_DURATION) or str(DEFAULT_OIDC_DURATION)
    if not duration_text.isdigit() or not 900 <= int(duration_text) <= 43200:
        raise IoTDACredentialsError(
            f"oidc: {ENV_OIDC_DURATION} must be a whole number of seconds between 900 and "
            f"43200; got {duration_text!r}"
        )
    if token is None:
        assert token_file is not None
        token = yield ReadFile(token_file)
        if not token:
            raise SourceUnavailable(f"the id token file {token_file} is missing or empty")
    base = (
        settings.sts_endpoint or _nonempty(environ, ENV_STS_ENDPOINT) or DEFAULT_STS_ENDPOINT
    ).rstrip("/")
    url = base + OIDC_PATH
    body = {
        "provider_urn": provider,
        "agency_urn": agency,
        "agency_session_name": _nonempty(environ, ENV_OIDC_SESSION_NAME)
        or DEFAULT_OIDC_SESSION_NAME,
        "id_token": token,
        "duration_seconds": int(duration_text),
    }
    answer = yield HttpCall("POST", url, {"Content-Type": "application/json"}, body)
    _check_answer(answer, "oidc", url)
    return parse_credential_answer(answer.body, "oidc", now)


def _plan(
    source: str,
    settings: CredentialSettings,
    environ: Mapping[str, str],
    now: dt.datetime,
) -> Fetch:
    if source == "env":
        return from_env(environ, now)
    if source == "profile":
        return from_profile(environ, settings, now)
    if source == "ecs_metadata":
        return from_ecs_metadata(settings, now)
    if source == "pod_identity":
        return from_pod_identity(environ, settings, now)
    if source == "oidc":
        return from_oidc(environ, settings, now)
    raise ValueError(
        f"credentials must be one of {', '.join(CREDENTIAL_SOURCES)}; got {source!r}"
    )  # pragma: no cover - the config validates it


def _sources(settings: CredentialSettings) -> tuple[str, ...]:
    return AUTO_ORDER if settings.source == "auto" else (settings.source,)


def _none_found(
    settings: CredentialSettings, reasons: list[tuple[str, str]], retryable: bool
) -> IoTDACredentialsError:
    if settings.source != "auto":  # auto: an unreachable source is normal, not worth a retry
        source, reason = reasons[0]
        return IoTDACredentialsError(f"credentials={source}: {reason}", retryable=retryable)
    listed = "; ".join(f"{source}: {reason}" for source, reason in reasons)
    return IoTDACredentialsError(f"credentials=auto found no credentials ({listed})")


def chain(
    settings: CredentialSettings, now: dt.datetime, environ: Mapping[str, str] | None = None
) -> Fetch:
    """The steps of a fetch from the configured source (``auto``: the first of the chain that
    yields); both drivers run it.  A driver whose step failed throws the
    :class:`SourceUnavailable` into it, so that ``auto`` goes on with the next source."""
    environ = os.environ if environ is None else environ
    reasons: list[tuple[str, str]] = []
    retryable = False
    for source in _sources(settings):
        try:
            return (yield from _plan(source, settings, environ, now))
        except SourceUnavailable as exc:
            reasons.append((source, str(exc)))
            retryable = retryable or exc.retryable
        except IoTDACredentialsError as exc:
            if settings.source != "auto":
                raise
            reasons.append((source, str(exc).removeprefix(f"{source}: ")))
    raise _none_found(settings, reasons, retryable)


# -- drivers: only the sending differs ----------------------------------------------------------


def _read_text(path: str) -> str | None:
    try:
        with open(os.path.expanduser(path), encoding="utf-8") as handle:
            text = handle.read(MAX_ANSWER_BYTES)
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return None
    except OSError as exc:
        raise SourceUnavailable(f"cannot read {path}: {type(exc).__name__}") from None
    return text.strip() or None


def _transport_failure(url: str, exc: Exception) -> SourceUnavailable:
    """The same words for both drivers (never the library's own text)."""
    cause, _ = transport_cause(exc, urlsplit(url).hostname or url)
    return SourceUnavailable(f"could not reach {url}: {cause or 'no answer'}", retryable=True)


def _http_sync(call: HttpCall) -> HttpAnswer:
    import requests

    try:
        with requests.request(
            call.method,
            call.url,
            headers=dict(call.headers),
            json=dict(call.json_body) if call.json_body is not None else None,
            timeout=FETCH_TIMEOUT,
            allow_redirects=False,
            stream=True,
        ) as response:
            body = response.raw.read(MAX_ANSWER_BYTES + 1, decode_content=True)
            return HttpAnswer(response.status_code, body[:MAX_ANSWER_BYTES])
    except requests.RequestException as exc:
        raise _transport_failure(call.url, exc) from None


def fetch(
    settings: CredentialSettings,
    now: dt.datetime,
    environ: Mapping[str, str] | None = None,
) -> SourcedCredentials:
    """Fetch from the configured source (``auto``: the first of the chain that yields)."""
    steps = Steps(chain(settings, now, environ))
    for step in steps:
        try:
            steps.reply = _read_text(step.path) if isinstance(step, ReadFile) else _http_sync(step)
        except SourceUnavailable as exc:
            steps.failure = exc
    return steps.result


def _new_async_client() -> Any:
    import httpx

    return httpx.AsyncClient(
        timeout=httpx.Timeout(FETCH_TIMEOUT[1], connect=FETCH_TIMEOUT[0]), follow_redirects=False
    )


async def _http_async(client: Any, call: HttpCall) -> HttpAnswer:
    import httpx

    try:
        async with client.stream(
            call.method,
            call.url,
            headers=dict(call.headers),
            json=dict(call.json_body) if call.json_body is not None else None,
        ) as response:
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.aiter_bytes():
                chunks.append(chunk)
                size += len(chunk)
                if size > MAX_ANSWER_BYTES:
                    break
            return HttpAnswer(response.status_code, b"".join(chunks)[:MAX_ANSWER_BYTES])
    except httpx.HTTPError as exc:
        raise _transport_failure(call.url, exc) from None


async def afetch(
    settings: CredentialSettings,
    now: dt.datetime,
    environ: Mapping[str, str] | None = None,
) -> SourcedCredentials:
    """Like :func:`fetch`, without blocking the event loop (files and TLS set-up in threads)."""
    steps = Steps(chain(settings, now, environ))
    client: Any = None
    try:
        for step in steps:
            try:
                if isinstance(step, ReadFile):
                    steps.reply = await asyncio.to_thread(_read_text, step.path)
                    continue
                if client is None:
                    # Building the client loads CA certificates (blocking): in a worker thread.
                    client = await asyncio.to_thread(_new_async_client)
                steps.reply = await _http_async(client, step)
            except SourceUnavailable as exc:
                steps.failure = exc
    finally:
        if client is not None:
            await client.aclose()
    return steps.result


# -- caches -----------------------------------------------------------------------------------


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _mask_all(credentials: SourcedCredentials) -> None:
    from airflow_provider_iotda.compat import mask_secret

    for secret in credentials.secrets():
        mask_secret(secret)


async def _amask_all(credentials: SourcedCredentials) -> None:
    from airflow_provider_iotda.compat import amask_secret

    for secret in credentials.secrets():
        await amask_secret(secret)


class _CacheRule:
    """What both caches decide: reuse, refresh, or fall back to the old credentials."""

    def __init__(self, settings: CredentialSettings, static: SourcedCredentials | None) -> None:
        self.settings = settings
        self.current = static
        #: The source that supplied the current credentials (``auto`` keeps using it).
        self.winner: str | None = static.source if static is not None else None

    def fresh(self, now: dt.datetime) -> SourcedCredentials | None:
        current = self.current
        if current is not None and not current.refresh_due(now):
            return current
        return None

    def settings_for_refresh(self) -> CredentialSettings:
        if self.winner is not None and self.settings.source == "auto":
            return CredentialSettings(**{**self.settings.__dict__, "source": self.winner})
        return self.settings

    def after_failure(self, now: dt.datetime, error: Exception) -> SourcedCredentials:
        current = self.current
        if current is not None and current.still_usable(now):
            return current  # the refresh failed, but the old ones are good for a while yet
        raise error

    def store(self, fetched: SourcedCredentials) -> SourcedCredentials:
        self.current = fetched
        self.winner = fetched.source
        return fetched


class CredentialCache:
    """The sync hook's credentials: fetched once, refreshed before expiry (thread-safe).

    :param static: the connection's own AK/SK (``credentials=connection``), never refetched.
    """

    def __init__(
        self,
        settings: CredentialSettings,
        static: SourcedCredentials | None = None,
        *,
        environ: Mapping[str, str] | None = None,
        on_refresh_failure: Callable[[Exception], None] | None = None,
    ) -> None:
        self._rule = _CacheRule(settings, static)
        self._lock = threading.Lock()
        self._environ = environ
        self._on_refresh_failure = on_refresh_failure

    @property
    def current(self) -> SourcedCredentials | None:
        """The credentials last handed out (``None`` before the first fetch)."""
        return self._rule.current

    def get(self, now: dt.datetime | None = None) -> SourcedCredentials:
        """Credentials valid at ``now`` (the clock-corrected time), fetching when due."""
        now = now or _utcnow()
        fresh = self._rule.fresh(now)
        if fresh is not None:
            return fresh
        with self._lock:
            fresh = self._rule.fresh(now)
            if fresh is not None:
                return fresh
            try:
                fetched = fetch(self._rule.settings_for_refresh(), now, self._environ)
            except IoTDACredentialsError as exc:
                kept = self._rule.after_failure(now, exc)
                if self._on_refresh_failure is not None:
                    self._on_refresh_failure(exc)
                return kept
            _mask_all(fetched)
            return self._rule.store(fetched)


class AsyncCredentialCache:
    """The async hooks' credentials for one connection in one event loop (see :func:`shared`).

    One fetch at a time (an ``asyncio.Lock``): a thousand triggers whose credentials are due
    wait for the same fetch.
    """

    def __init__(
        self,
        settings: CredentialSettings,
        static: SourcedCredentials | None = None,
        *,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self._rule = _CacheRule(settings, static)
        self._lock = asyncio.Lock()
        self._environ = environ
        self.fetches = 0

    @property
    def current(self) -> SourcedCredentials | None:
        return self._rule.current

    async def get(self, now: dt.datetime | None = None) -> SourcedCredentials:
        """Credentials valid at ``now``, fetching (once for all waiters) when due."""
        now = now or _utcnow()
        fresh = self._rule.fresh(now)
        if fresh is not None:
            return fresh
        async with self._lock:
            fresh = self._rule.fresh(now)
            if fresh is not None:
                return fresh
            self.fetches += 1
            try:
                fetched = await afetch(self._rule.settings_for_refresh(), now, self._environ)
            except IoTDACredentialsError as exc:
                kept = self._rule.after_failure(now, exc)
                await asyncio.to_thread(  # a log handler may block: never on the loop
                    _log.warning,
                    "Refreshing the credentials failed, using the current ones: %s",
                    exc,
                )
                return kept
            await _amask_all(fetched)
            return self._rule.store(fetched)


_ASYNC_CACHES: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, dict[tuple[str, CredentialSettings], AsyncCredentialCache]
] = weakref.WeakKeyDictionary()


def shared(
    conn_id: str, settings: CredentialSettings, static: SourcedCredentials | None = None
) -> AsyncCredentialCache:
    """The running loop's cache for this connection (created on first use)."""
    loop = asyncio.get_running_loop()
    caches = _ASYNC_CACHES.setdefault(loop, {})
    key = (conn_id, settings)
    cache = caches.get(key)
    if cache is None or (static is not None and cache.current != static):
        cache = caches[key] = AsyncCredentialCache(settings, static)
    return cache
