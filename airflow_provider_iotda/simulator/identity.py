"""The simulator's stand-ins for where temporary credentials come from, and its gateway clock.

* ECS metadata: ``PUT /meta-data/latest/api/token`` (IMDS token), then
  ``GET /openstack/latest/securitykey`` with ``X-Metadata-Token``;
* CCE pod identity: ``POST /cce/pod-identity/credentials`` with ``Authorization: <token>``;
* STS: ``POST /v5/agencies/assume-with-oidc`` with an accepted OIDC id token.

Each issues a fresh temporary AK/SK/security token that expires ``credential_ttl`` seconds
later on the gateway's clock; the API then requires the token and rejects expired ones.  The
gateway's clock is the machine's plus ``clock_offset`` seconds (to test skew correction); it
also stamps every answer's ``Date`` header.  Pure Python, thread-safe.
"""

from __future__ import annotations

import datetime as dt
import secrets
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

METADATA_TOKEN_PATH = "/meta-data/latest/api/token"
METADATA_SECURITY_KEY_PATH = "/openstack/latest/securitykey"
POD_IDENTITY_PATH = "/cce/pod-identity/credentials"
OIDC_PATH = "/v5/agencies/assume-with-oidc"
IDENTITY_PATHS = frozenset(
    {METADATA_TOKEN_PATH, METADATA_SECURITY_KEY_PATH, POD_IDENTITY_PATH, OIDC_PATH}
)
DEFAULT_CREDENTIAL_TTL = 3600.0


@dataclass(frozen=True)
class IssuedCredential:
    """A temporary credential handed out by one of the stand-ins."""

    access_key: str
    secret_key: str = field(repr=False)
    security_token: str = field(repr=False)
    expires_at: dt.datetime
    source: str

    def answer(self, style: str = "metadata") -> dict[str, Any]:
        """The JSON answer: metadata/pod identity style, or STS style."""
        expires = self.expires_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        if style == "sts":
            return {
                "credentials": {
                    "access_key_id": self.access_key,
                    "secret_access_key": self.secret_key,
                    "security_token": self.security_token,
                    "expiration": expires,
                }
            }
        return {
            "credential": {
                "access": self.access_key,
                "secret": self.secret_key,
                "securitytoken": self.security_token,
                "expires_at": expires,
            }
        }


class IdentityService:
    """Issues and checks temporary credentials; keeps the gateway's clock offset.

    :param credential_ttl: seconds a temporary credential is valid.
    :param clock_offset: seconds the gateway's clock is ahead of this machine's (negative:
        behind).
    :param metadata_token_required: whether securitykey needs an IMDS token (else 401);
        ``False`` answers the token ``PUT`` with 404 (an IMDSv1-style service).
    :param oidc_tokens: accepted OIDC id tokens; :param pod_token: the accepted pod identity
        ``Authorization`` value.
    """

    def __init__(
        self,
        *,
        credential_ttl: float = DEFAULT_CREDENTIAL_TTL,
        clock_offset: float = 0.0,
        metadata_token_required: bool = True,
        oidc_tokens: frozenset[str] = frozenset(),
        pod_token: str | None = None,
    ) -> None:
        if credential_ttl <= 0:
            raise ValueError(f"credential_ttl must be > 0 seconds; got {credential_ttl!r}")
        self._initial = (credential_ttl, clock_offset, metadata_token_required)
        self.oidc_tokens = oidc_tokens
        self.pod_token = pod_token
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        """Back to the initial settings; forget issued credentials and counts."""
        with self._lock:
            self.credential_ttl, self.clock_offset, self.metadata_token_required = self._initial
            self._issued: dict[str, IssuedCredential] = {}
            self._metadata_tokens: set[str] = set()
            self.counts: Counter[str] = Counter()

    # -- clock -------------------------------------------------------------------------------

    def now(self) -> dt.datetime:
        """The gateway's clock."""
        return dt.datetime.now(dt.UTC) + dt.timedelta(seconds=self.clock_offset)

    def set_clock_offset(self, seconds: float) -> None:
        """Move the gateway's clock ``seconds`` away from this machine's."""
        self.clock_offset = float(seconds)

    def set_credential_ttl(self, seconds: float) -> None:
        """Lifetime of credentials issued from now on."""
        if seconds <= 0:
            raise ValueError(f"credential_ttl must be > 0 seconds; got {seconds!r}")
        self.credential_ttl = float(seconds)

    # -- issuing -----------------------------------------------------------------------------

    def issue(self, source: str) -> IssuedCredential:
        """A fresh temporary credential valid for ``credential_ttl`` seconds."""
        credential = IssuedCredential(
            access_key="TMP" + secrets.token_hex(8).upper(),
            secret_key="tmp-sk-" + secrets.token_urlsafe(18),
            security_token="tmp-token-" + secrets.token_urlsafe(48),
            expires_at=self.now() + dt.timedelta(seconds=self.credential_ttl),
            source=source,
        )
        with self._lock:
            self._issued[credential.access_key] = credential
            self.counts[source] += 1
        return credential

    def new_metadata_token(self) -> str | None:
        """An IMDS token, or ``None`` when the service runs without tokens (404)."""
        with self._lock:
            self.counts["metadata_token"] += 1
            if not self.metadata_token_required:
                return None
            token = secrets.token_urlsafe(24)
            self._metadata_tokens.add(token)
            return token

    def metadata_token_valid(self, token: str | None) -> bool:
        """Whether securitykey may be read with this IMDS token."""
        if not self.metadata_token_required:
            return True
        with self._lock:
            return token is not None and token in self._metadata_tokens

    def lookup(self, access_key: str) -> IssuedCredential | None:
        """The issued credential with this AK, if any."""
        with self._lock:
            return self._issued.get(access_key)

    def issued(self) -> list[IssuedCredential]:
        """Every credential issued since the last reset (tests scan output for their secrets)."""
        with self._lock:
            return list(self._issued.values())

    def stats(self) -> dict[str, Any]:
        """Counts per endpoint, clock offset and TTL (for ``/_sim/stats``)."""
        with self._lock:
            return {
                "issued": dict(self.counts),
                "clock_offset": self.clock_offset,
                "credential_ttl": self.credential_ttl,
            }
