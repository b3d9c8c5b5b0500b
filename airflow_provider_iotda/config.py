"""The ``huaweicloud_iotda`` connection: its fields, defaults and validation.

Shared by the hook (sync) and the trigger (async), which read the same Airflow connection.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from airflow_provider_iotda import fields, validation
from airflow_provider_iotda.auth import (
    SDK_ALGORITHM,
    V11_ALGORITHM,
    Algorithm,
    Credentials,
    uses_derived_signing,
)
from airflow_provider_iotda.credentials import (
    CREDENTIAL_SOURCES,
    SOURCE_SPELLINGS,
    CredentialSettings,
    SourcedCredentials,
)

if TYPE_CHECKING:
    from airflow.sdk import Connection

CONN_TYPE = "huaweicloud_iotda"
DEFAULT_CONN_ID = "iotda_default"
DEFAULT_ENDPOINT_TEMPLATE = fields.ENDPOINT_TEMPLATE
DEFAULT_TIMEOUT: float = fields.TIMEOUT.default or 30.0
DEFAULT_CONNECT_TIMEOUT: float = fields.CONNECT_TIMEOUT.default or 10.0
DEFAULT_MAX_RETRIES: int = fields.MAX_RETRIES.default or 0
MAX_RETRIES_LIMIT: int = fields.MAX_RETRIES.high or 0
#: Extras choosing where the AK/SK comes from (see ``credentials.py``).
CREDENTIAL_EXTRAS = (
    "credentials",
    "metadata_endpoint",
    "sts_endpoint",
    "pod_identity_endpoint",
    "credentials_file",
)
#: Values of the ``signing`` extra: plain AK/SK (SDK-HMAC-SHA256), derived AK/SK
#: (V11-HMAC-SHA256), or derived only for hosts outside Huawei's regional pattern.
SIGNING_MODES = ("standard", "derived", "automatic")
DEFAULT_SIGNING = "standard"
#: The extra ``signing`` had the name ``auth`` (values ``aksk``, ``derived``, ``auto``) up to
#: 0.x; both the old name and the old values are still accepted.  Airflow's masker warns
#: "Skipping masking for a secret as it's too short" for any extra string under 5 characters
#: (it checks the length before the key name), which ``aksk`` and ``auto`` were.
LEGACY_SIGNING_EXTRA = "auth"
LEGACY_SIGNING_VALUES = {"aksk": "standard", "auto": "automatic"}
#: The extras of a ``huaweicloud_iotda`` connection, in the form's order: where the AK/SK come
#: from first (Airflow shows the extras after login and password), then where to call.
EXTRA_FIELDS = (
    "credentials",
    "security_token",
    "region",
    "endpoint",
    "project_id",
    "instance_id",
    "signing",
    "timeout",
    "verify",
    "max_retries",
    *CREDENTIAL_EXTRAS[1:],
)
#: Extras still accepted under an old name (not shown in the form).
DEPRECATED_EXTRA_FIELDS = (LEGACY_SIGNING_EXTRA,)
#: Said when the AK or SK is empty while the connection is the credentials source.
_OTHER_SOURCES = (
    "set it, or set extra credentials to another source (environment, profile, ecs_metadata, "
    "pod_identity, oidc_federation or automatic), with which login and password stay empty"
)


class ConnectionFieldError(ValueError):
    """A connection field holds a bad value.

    ``str()`` names the field first, then the connection; ``detail`` is the same message
    without the connection ID, for places where the ID means nothing to the reader (the
    form's Test button runs on a random temporary ID).
    """

    def __init__(self, detail: str, conn_id: str) -> None:
        super().__init__(f"{detail} (connection {conn_id!r})")
        self.detail = detail
        self.conn_id = conn_id


@dataclass(frozen=True)
class IoTDAConnectionConfig:
    """Everything needed to call IoTDA, read from one Airflow connection.

    ``credentials`` is the connection's own AK/SK; it is ``None`` when
    ``credential_settings.source`` names another source (fetched by the hooks).
    """

    credentials: Credentials | None
    endpoint: str
    project_id: str
    instance_id: str | None = None
    region: str | None = None
    timeout: float = DEFAULT_TIMEOUT
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    verify: bool = True
    max_retries: int = DEFAULT_MAX_RETRIES
    conn_id: str = field(default=DEFAULT_CONN_ID, compare=False)
    credential_settings: CredentialSettings = field(default_factory=CredentialSettings)
    algorithm: Algorithm = SDK_ALGORITHM

    def static_credentials(self) -> SourcedCredentials | None:
        """The connection's own AK/SK as a sourced credential (``None`` for other sources)."""
        own = self.credentials
        if own is None:
            return None
        return SourcedCredentials(
            own.access_key, own.secret_key, own.security_token, source="connection"
        )

    def signing_credentials(self, sourced: SourcedCredentials) -> Credentials:
        """What :func:`~airflow_provider_iotda.auth.sign_request` needs for ``sourced``."""
        own = self.credentials
        if own is not None and sourced.source == "connection":
            return own
        return Credentials(
            sourced.access_key,
            sourced.secret_key,
            security_token=sourced.security_token,
            algorithm=self.algorithm,
            region=self.region,
        )

    def resolve_instance_id(self, instance_id: str | None) -> str:
        """``instance_id`` validated, or this connection's default instance."""
        if instance_id:
            return validation.instance_id(instance_id)
        if self.instance_id:
            return self.instance_id
        raise ValueError(
            f"instance_id is required: neither the call nor connection {self.conn_id!r} "
            "(extra 'instance_id') names an instance"
        )

    @property
    def body_timeout(self) -> float:
        """Seconds the whole body may take once the headers are in (twice the read timeout).

        ``timeout`` bounds each read; this bounds their sum, so a server trickling a byte at a
        time cannot hold a call forever.  Both hooks (sync and async) apply it.
        """
        return 2 * self.timeout

    @property
    def host(self) -> str:
        return urlsplit(self.endpoint).netloc

    @classmethod
    def from_connection(cls, conn: Connection) -> IoTDAConnectionConfig:
        """Build from an Airflow connection (login = AK, password = SK, the rest in extras)."""
        extras = _extras(conn)
        return cls.from_values(
            conn_id=conn.conn_id,
            access_key=conn.login,
            secret_key=conn.password,
            host=_host_endpoint(conn.host, conn.port),
            **extras,
        )

    @classmethod
    def from_values(
        cls,
        *,
        conn_id: str = DEFAULT_CONN_ID,
        access_key: str | None,
        secret_key: str | None,
        host: str | None = None,
        **extras: Any,
    ) -> IoTDAConnectionConfig:
        """Validate raw values; every error names the connection field at fault.

        Raises :class:`ConnectionFieldError` (a ``ValueError``): the checks of ``validation``
        raise a ``ValueError`` naming the field, and this adds the connection.
        """
        try:
            return cls._from_values(conn_id, access_key, secret_key, host, extras)
        except ValueError as exc:
            raise ConnectionFieldError(str(exc), conn_id) from None

    @classmethod
    def _from_values(
        cls,
        conn_id: str,
        access_key: str | None,
        secret_key: str | None,
        host: str | None,
        extras: dict[str, Any],
    ) -> IoTDAConnectionConfig:
        unknown = sorted(set(extras) - set(EXTRA_FIELDS) - set(DEPRECATED_EXTRA_FIELDS))
        if unknown:
            raise ValueError(
                f"unknown extra field(s) {', '.join(unknown)}; allowed: {', '.join(EXTRA_FIELDS)}"
            )
        settings = _credential_settings(extras)
        if settings.source == "connection":
            if not access_key:
                raise ValueError(f"login (the Access Key, AK) is empty; {_OTHER_SOURCES}")
            if not secret_key:
                raise ValueError(f"password (the Secret Key, SK) is empty; {_OTHER_SOURCES}")
        endpoint, region = _endpoint_and_region(extras, host, conn_id)
        project = extras.get("project_id")
        if not project:
            raise ValueError("extra 'project_id' is required")
        project = validation.project_id(project, "extra project_id")
        mode = _signing_mode(extras)
        host_name = urlsplit(endpoint).hostname or ""
        derived = mode == "derived" or (mode == "automatic" and uses_derived_signing(host_name))
        if derived and not region:
            raise ValueError("extra 'region' is required for derived (V11) signing")
        token = extras.get("security_token") or None
        algorithm: Algorithm = V11_ALGORITHM if derived else SDK_ALGORITHM
        credentials = (
            Credentials(
                str(access_key),
                str(secret_key),
                security_token=str(token) if token else None,
                algorithm=algorithm,
                region=region,
            )
            if settings.source == "connection"
            else None
        )
        instance = extras.get("instance_id") or None
        return cls(
            credentials=credentials,
            endpoint=endpoint,
            project_id=project,
            instance_id=validation.instance_id(instance, "extra instance_id") if instance else None,
            region=region,
            conn_id=conn_id,
            credential_settings=settings,
            algorithm=algorithm,
            **_tuning(extras),
        )

    def secrets(self) -> list[str]:
        """The values that must be masked wherever Airflow logs."""
        own = self.credentials
        if own is None:
            return []
        return [s for s in (own.secret_key, own.security_token) if s]


def _credential_settings(extras: Mapping[str, Any]) -> CredentialSettings:
    """The ``credentials`` extra and its endpoint overrides, validated."""
    spelled = validation.one_of(
        extras.get("credentials") or "connection",
        "extra credentials",
        (*CREDENTIAL_SOURCES, *SOURCE_SPELLINGS),
    )
    source = SOURCE_SPELLINGS.get(spelled, spelled)
    urls: dict[str, str | None] = {}
    for key in ("metadata_endpoint", "sts_endpoint", "pod_identity_endpoint"):
        value = extras.get(key)
        urls[key] = (
            _endpoint(str(value), f"extra {key}", allow_path=key == "pod_identity_endpoint")
            if value not in (None, "")
            else None
        )
    path = extras.get("credentials_file")
    if path not in (None, "") and not isinstance(path, str):
        raise ValueError(f"extra credentials_file must be a file path (a string); got {path!r}")
    return CredentialSettings(source=source, credentials_file=path or None, **urls)


def _endpoint_and_region(
    extras: Mapping[str, Any], host: str | None, conn_id: str
) -> tuple[str, str | None]:
    """The endpoint URL and the region (``None`` when not set), checked together.

    Without extra ``endpoint`` (or the old host field) the region names the endpoint, so it
    must be one of Huawei's; with one, any well-formed region is accepted (it only signs).
    """
    chosen, source = _choose_endpoint(extras.get("endpoint"), host, conn_id)
    raw_region = extras.get("region")
    region = (
        validation.region(raw_region, "extra region", known=not chosen)
        if raw_region not in (None, "")
        else None
    )
    if chosen:
        return _endpoint(str(chosen), source), region
    if region:
        return DEFAULT_ENDPOINT_TEMPLATE.format(region=region), region
    raise ValueError(
        "set extra 'region' (e.g. cn-north-4) or extra 'endpoint' (a URL such as "
        "http://127.0.0.1:8787): one of the two is needed"
    )


def _tuning(extras: Mapping[str, Any]) -> dict[str, Any]:
    """Extras ``timeout``, ``verify`` and ``max_retries``: checked, or their defaults."""

    def given(key: str) -> bool:
        return extras.get(key) not in (None, "")

    return {
        "timeout": fields.TIMEOUT.check(extras["timeout"], "extra timeout")
        if given("timeout")
        else DEFAULT_TIMEOUT,
        "verify": validation.strict_bool(extras["verify"], "extra verify", words=True)
        if given("verify")
        else True,
        "max_retries": fields.MAX_RETRIES.check(extras["max_retries"], "extra max_retries")
        if given("max_retries")
        else DEFAULT_MAX_RETRIES,
    }


def _extras(conn: Connection) -> dict[str, Any]:
    # Parse ``conn.extra`` here rather than reading ``extra_dejson``: that property calls the
    # synchronous ``mask_secret``, which blocks (or raises) inside the triggerer's event loop.
    # Callers mask ``config.secrets()`` themselves, sync or async.
    try:
        extra = json.loads(conn.extra or "{}")
    except ValueError:
        raise ConnectionFieldError("extra is not valid JSON", str(conn.conn_id)) from None
    if not isinstance(extra, Mapping):
        raise ConnectionFieldError("extra must be a JSON object", str(conn.conn_id))
    return dict(extra)


def _host_endpoint(host: str | None, port: int | None) -> str | None:
    """The connection's host field (``https`` unless it names a scheme), with its port.

    Deprecated way to set the endpoint (the form hides it): used only without extra
    ``endpoint``.
    """
    if not host:
        return None
    url = host if "://" in host else f"https://{host}"
    if port and urlsplit(url).port is None:
        url = f"{url.rstrip('/')}:{port}"
    return url


def _choose_endpoint(extra: object, host: str | None, conn_id: str) -> tuple[object, str]:
    """Extra ``endpoint`` if set, else the (deprecated) host field, and which one it is.

    Warns when both are set and disagree (the form shows only the extra).
    """
    if not extra:
        return host, "host field"
    if host and _endpoint_or_none(str(extra)) != _endpoint_or_none(host):
        warnings.warn(
            f"Connection {conn_id!r}: the host field ({host!r}) is ignored because extra "
            f"'endpoint' is set ({str(extra)!r}); clear the host field, which is deprecated "
            "for this connection type (the form no longer shows it)",
            UserWarning,
            stacklevel=4,
        )
    return extra, "extra endpoint"


def _signing_mode(extras: Mapping[str, Any]) -> str:
    """Extra ``signing`` (or its old name ``auth``), normalised to one of ``SIGNING_MODES``."""
    new = extras.get("signing") or None
    old = extras.get(LEGACY_SIGNING_EXTRA) or None
    mode = validation.one_of(new, "extra signing", SIGNING_MODES) if new else None
    if old is not None:
        allowed = (*SIGNING_MODES, *LEGACY_SIGNING_VALUES)
        legacy = validation.one_of(old, f"extra {LEGACY_SIGNING_EXTRA}", allowed)
        legacy = LEGACY_SIGNING_VALUES.get(legacy, legacy)
        if mode is not None and mode != legacy:
            raise ValueError(
                f"extra signing ({new!r}) and its old name extra {LEGACY_SIGNING_EXTRA} "
                f"({old!r}) disagree; keep only extra signing"
            )
        mode = legacy
    return mode or DEFAULT_SIGNING


def _endpoint_or_none(value: str) -> str | None:
    try:
        return _endpoint(value, "endpoint")
    except ValueError:
        return None


def _endpoint(value: str, field: str, *, allow_path: bool = False) -> str:
    url = value.strip()
    if "://" not in url:
        url = "https://" + url
    url = url.rstrip("/")  # after the scheme check: "http://" must not become host "http"
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(
            f"{field} must be an http(s) URL such as "
            "https://iotda-mgmt.cn-north-4.myhuaweicloud.com or http://127.0.0.1:8787; "
            f"got {value!r}"
        )
    if parts.query or parts.fragment or (parts.path not in ("", "/") and not allow_path):
        raise ValueError(f"{field} must have no path, query or fragment; got {value!r}")
    try:
        parts.port  # noqa: B018 - raises on an invalid port
    except ValueError:
        raise ValueError(f"{field} has an invalid port; got {value!r}") from None
    return f"{parts.scheme}://{parts.netloc}{parts.path if allow_path else ''}"
