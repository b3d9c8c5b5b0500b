"""Huawei Cloud AK/SK request signing (SDK-HMAC-SHA256 and V11-HMAC-SHA256).

Pure functions shared by the synchronous hook (through ``hooks.iotda.SigningAuth``, a
``requests.auth.AuthBase``), the asynchronous hook of the trigger and the simulator, which
verifies signatures with the same canonical forms.  Nothing here performs I/O or imports an
HTTP client, so importing it stays cheap.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final, Literal
from urllib.parse import quote, unquote, urlsplit

Algorithm = Literal["SDK-HMAC-SHA256", "V11-HMAC-SHA256"]
SDK_ALGORITHM: Final = "SDK-HMAC-SHA256"
V11_ALGORITHM: Final = "V11-HMAC-SHA256"

DATE_HEADER = "X-Sdk-Date"
CONTENT_SHA256_HEADER = "X-Sdk-Content-Sha256"
SECURITY_TOKEN_HEADER = "X-Security-Token"
DATE_FORMAT = "%Y%m%dT%H%M%SZ"
EMPTY_BODY_SHA256 = hashlib.sha256(b"").hexdigest()
DEFAULT_SERVICE = "iotdm"

# Hosts for which Huawei's SDK keeps the plain AK/SK algorithm; anything else is signed
# with derived credentials (V11) in ``auto`` mode.
HUAWEI_REGIONAL_HOST = re.compile(
    r"^[a-z][a-z0-9-]+(\.[a-z]{2,}-[a-z]+-\d{1,2})?\.(my)?(huaweicloud|myhwclouds).(com|cn)"
)


@dataclass(frozen=True)
class Credentials:
    """An access key pair, optionally temporary (with a security token).

    ``secret_key`` and ``security_token`` are kept out of ``repr()``.
    """

    access_key: str
    secret_key: str = field(repr=False)
    security_token: str | None = field(default=None, repr=False)
    algorithm: Algorithm = SDK_ALGORITHM
    region: str | None = None
    service: str = DEFAULT_SERVICE

    def __post_init__(self) -> None:
        if not self.access_key:
            raise ValueError("access_key (the connection login) must not be empty")
        if not self.secret_key:
            raise ValueError("secret_key (the connection password) must not be empty")
        if self.algorithm not in (SDK_ALGORITHM, V11_ALGORITHM):
            raise ValueError(
                f"algorithm must be {SDK_ALGORITHM!r} or {V11_ALGORITHM!r}, got {self.algorithm!r}"
            )
        if self.algorithm == V11_ALGORITHM and not self.region:
            raise ValueError("region is required for derived (V11-HMAC-SHA256) signing")


def uses_derived_signing(host: str) -> bool:
    """True where Huawei's SDK signs with derived credentials (non-regional hosts)."""
    return HUAWEI_REGIONAL_HOST.match(host.lower()) is None


def format_sdk_date(moment: dt.datetime) -> str:
    """Format a datetime as an ``X-Sdk-Date`` value (UTC, ``%Y%m%dT%H%M%SZ``)."""
    if moment.tzinfo is None:
        raise ValueError("moment must be timezone-aware")
    return moment.astimezone(dt.UTC).strftime(DATE_FORMAT)


def parse_sdk_date(value: str) -> dt.datetime:
    """Parse an ``X-Sdk-Date`` value; raises ``ValueError`` on a malformed one."""
    return dt.datetime.strptime(value, DATE_FORMAT).replace(tzinfo=dt.UTC)


def _encode(text: str) -> str:
    return quote(text, safe="~")


def canonical_uri(path: str) -> str:
    """Canonical URI: decode, encode each segment, always end with ``/``."""
    encoded = "/".join(_encode(segment) for segment in unquote(path).split("/"))
    return encoded if encoded.endswith("/") else encoded + "/"


def query_pairs(query: str) -> list[tuple[str, str]]:
    """Split a raw query string into decoded ``(key, value)`` pairs, keeping empty values."""
    pairs: list[tuple[str, str]] = []
    for part in query.split("&"):
        if not part:
            continue
        key, _, value = part.partition("=")
        pairs.append((unquote(key.replace("+", " ")), unquote(value.replace("+", " "))))
    return pairs


def canonical_query(pairs: list[tuple[str, str]]) -> str:
    """Canonical query: pairs sorted by key then value, both percent-encoded, joined by ``&``."""
    return "&".join(f"{_encode(key)}={_encode(value)}" for key, value in sorted(pairs))


def signed_header_names(headers: Mapping[str, str]) -> list[str]:
    """Lower-cased names of the headers to sign: all but those containing ``_``, sorted."""
    return sorted({name.lower() for name in headers if "_" not in name})


def canonical_headers(headers: Mapping[str, str], names: list[str]) -> str:
    """``name:value`` lines for the signed headers, each followed by a newline."""
    lowered = {name.lower(): value.strip() for name, value in headers.items()}
    return "".join(f"{name}:{lowered[name]}\n" for name in names)


def body_sha256(headers: Mapping[str, str], body: bytes) -> str:
    """Hex SHA-256 of the body, or the value of ``X-Sdk-Content-Sha256`` when present."""
    for name, value in headers.items():
        if name.lower() == CONTENT_SHA256_HEADER.lower():
            return value
    return hashlib.sha256(body).hexdigest()


def canonical_request(
    method: str, path: str, query: str, headers: Mapping[str, str], body: bytes
) -> tuple[str, list[str]]:
    """The six-line canonical request and the signed header names."""
    names = signed_header_names(headers)
    text = "\n".join(
        [
            method.upper(),
            canonical_uri(path),
            canonical_query(query_pairs(query)),
            canonical_headers(headers, names),
            ";".join(names),
            body_sha256(headers, body),
        ]
    )
    return text, names


def derive_v11_key(access_key: str, secret_key: str, info: str) -> str:
    """HKDF-SHA256 (salt = AK, IKM = SK, one block) as hex; the hex string is the signing key."""
    prk = hmac.new(access_key.encode(), secret_key.encode(), hashlib.sha256).digest()
    okm = hmac.new(prk, info.encode() + b"\x01", hashlib.sha256).digest()
    return okm.hex()


def _hmac_hex(key: bytes, message: str) -> str:
    return hmac.new(key, message.encode(), hashlib.sha256).hexdigest()


def host_of(url: str) -> str:
    """The ``Host`` value a client sends for ``url`` (port kept unless it is the default)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    port = parts.port
    default_port = {"http": 80, "https": 443}.get(parts.scheme)
    return host if port is None or port == default_port else f"{host}:{port}"


def authorization_header(
    credentials: Credentials,
    method: str,
    path: str,
    query: str,
    headers: Mapping[str, str],
    body: bytes,
) -> str:
    """The ``Authorization`` value; ``headers`` must already hold ``X-Sdk-Date`` and host."""
    sdk_date = next((v for k, v in headers.items() if k.lower() == DATE_HEADER.lower()), None)
    if sdk_date is None:
        raise ValueError(f"headers must contain {DATE_HEADER}")
    canonical, names = canonical_request(method, path, query, headers, body)
    digest = hashlib.sha256(canonical.encode()).hexdigest()
    signed = ";".join(names)
    if credentials.algorithm == V11_ALGORITHM:
        info = f"{sdk_date[:8]}/{credentials.region}/{credentials.service}"
        string_to_sign = f"{V11_ALGORITHM}\n{sdk_date}\n{info}\n{digest}"
        key = derive_v11_key(credentials.access_key, credentials.secret_key, info)
        signature = _hmac_hex(key.encode(), string_to_sign)
        return (
            f"{V11_ALGORITHM} Credential={credentials.access_key}/{info}, "
            f"SignedHeaders={signed}, Signature={signature}"
        )
    string_to_sign = f"{SDK_ALGORITHM}\n{sdk_date}\n{digest}"
    signature = _hmac_hex(credentials.secret_key.encode(), string_to_sign)
    return (
        f"{SDK_ALGORITHM} Access={credentials.access_key}, "
        f"SignedHeaders={signed}, Signature={signature}"
    )


def sign_request(
    credentials: Credentials,
    method: str,
    url: str,
    headers: Mapping[str, str] | None = None,
    body: bytes | str | None = None,
    *,
    now: dt.datetime | None = None,
) -> dict[str, str]:
    """Return the headers to send: ``headers`` plus date, security token and ``Authorization``.

    ``url`` is the full request URL including its query string.  ``Host`` is signed (taken from
    the URL unless given) but not added to the result: HTTP clients send the same value.
    An ``X-Sdk-Date`` already present in ``headers`` is kept (useful for test vectors).
    """
    out = dict(headers or {})
    lower = {name.lower() for name in out}
    if DATE_HEADER.lower() not in lower:
        out[DATE_HEADER] = format_sdk_date(now or dt.datetime.now(dt.UTC))
    if credentials.security_token and SECURITY_TOKEN_HEADER.lower() not in lower:
        out[SECURITY_TOKEN_HEADER] = credentials.security_token
    to_sign = dict(out)
    if "host" not in lower:
        to_sign["host"] = host_of(url)
    parts = urlsplit(url)
    payload = body.encode() if isinstance(body, str) else (body or b"")
    out["Authorization"] = authorization_header(
        credentials, method, parts.path or "/", parts.query, to_sign, payload
    )
    return out


@dataclass(frozen=True)
class ParsedAuthorization:
    """The parts of an ``Authorization`` header written by :func:`authorization_header`."""

    algorithm: Algorithm
    access_key: str
    signed_headers: list[str]
    signature: str
    info: str | None = None  # ``YYYYMMDD/region/service`` for V11


_AUTH_PATTERN = re.compile(
    r"^(?P<alg>SDK-HMAC-SHA256|V11-HMAC-SHA256)\s+"
    r"(?:Access=(?P<ak>[^,\s]+)|Credential=(?P<cred>[^,\s]+)),\s*"
    r"SignedHeaders=(?P<names>[^,\s]+),\s*Signature=(?P<sig>[0-9a-f]{64})$"
)


def parse_authorization(value: str) -> ParsedAuthorization:
    """Parse an ``Authorization`` header; ``ValueError`` when it is not one of ours."""
    match = _AUTH_PATTERN.match(value.strip())
    if match is None:
        raise ValueError("Authorization header is not a Huawei AK/SK signature")
    algorithm = match["alg"]
    names = match["names"].split(";")
    if algorithm == SDK_ALGORITHM:
        if match["ak"] is None:
            raise ValueError("SDK-HMAC-SHA256 Authorization needs Access=")
        return ParsedAuthorization(SDK_ALGORITHM, match["ak"], names, match["sig"])
    if match["cred"] is None or match["cred"].count("/") != 3:
        raise ValueError("V11-HMAC-SHA256 Authorization needs Credential=AK/date/region/service")
    access_key, info = match["cred"].split("/", 1)
    return ParsedAuthorization(V11_ALGORITHM, access_key, names, match["sig"], info)


def expected_authorization(
    parsed: ParsedAuthorization,
    secret_key: str,
    method: str,
    path: str,
    query: str,
    headers: Mapping[str, str],
    body: bytes,
) -> str:
    """Recompute the ``Authorization`` a client holding ``secret_key`` would send (server side).

    Only the headers the client declared as signed are used; a declared header that is absent
    raises ``ValueError``.
    """
    lowered = {name.lower(): value for name, value in headers.items()}
    missing = [name for name in parsed.signed_headers if name not in lowered]
    if missing:
        raise ValueError(f"signed headers missing from the request: {', '.join(missing)}")
    signed = {name: lowered[name] for name in parsed.signed_headers}
    region = service = None
    if parsed.info is not None:
        _, region, service = parsed.info.split("/")
    credentials = Credentials(
        parsed.access_key,
        secret_key,
        algorithm=parsed.algorithm,
        region=region,
        service=service or DEFAULT_SERVICE,
    )
    return authorization_header(credentials, method, path, query, signed, body)
