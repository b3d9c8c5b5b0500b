"""Errors raised for what the IoTDA service (or the network) answered.

Input rejected before anything is sent raises ``ValueError``; everything here carries the HTTP
status, IoTDA's ``error_code`` / ``error_msg`` and the ``X-Request-Id`` of the answer when known.
Messages never contain request headers or credentials.
"""

from __future__ import annotations

import json
import socket
import ssl
from collections.abc import Iterator, Mapping
from typing import Literal, Protocol
from urllib.parse import urlsplit

REQUEST_ID_HEADER = "X-Request-Id"


class IoTDAError(Exception):
    """Base class: the IoTDA service or the transport failed."""

    #: Whether repeating the same (idempotent) request may succeed.
    retryable: bool = False

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        error_code: str | None = None,
        error_msg: str | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.error_code = error_code
        self.error_msg = error_msg
        self.request_id = request_id
        self.server_date: str | None = None

    def __reduce__(self) -> tuple[object, ...]:
        # Keep the attributes when the exception crosses a process boundary.
        return (_rebuild, (type(self), str(self), self.__dict__))


def _rebuild(cls: type[IoTDAError], message: str, state: dict[str, object]) -> IoTDAError:
    error = cls.__new__(cls)
    Exception.__init__(error, message)
    error.__dict__.update(state)
    return error


class IoTDAClientError(IoTDAError):
    """4xx: the request was wrong; repeating it will not help."""


class IoTDABadRequestError(IoTDAClientError):
    """400: IoTDA rejected a parameter."""


class IoTDAAuthError(IoTDAClientError):
    """401: signature, credentials or clock rejected."""


class IoTDAForbiddenError(IoTDAClientError):
    """403: the credentials may not access this project or instance."""


class IoTDANotFoundError(IoTDAClientError):
    """404: unknown instance or task."""


class IoTDAThrottledError(IoTDAError):
    """429: throttled by the API gateway; ``retry_after`` is the server's hint in seconds."""

    retryable = True

    retry_after: float | None = None


class IoTDAServerError(IoTDAError):
    """5xx: the service failed; the request may succeed later."""

    retryable = True


class IoTDATransportError(IoTDAError):
    """No answer: connection refused or dropped, or a timeout.

    ``request_sent`` is ``False`` only when the request certainly never left this machine (the
    connection could not be opened); otherwise IoTDA may have received it and acted on it.
    """

    retryable = True

    def __init__(self, message: str, *, request_sent: bool = True) -> None:
        super().__init__(message)
        self.request_sent = request_sent


class IoTDAInvalidResponseError(IoTDAError):
    """The answer could not be understood (not JSON, wrong shape, too large)."""

    def __init__(self, message: str, *, retryable: bool = False, status: int | None = None) -> None:
        super().__init__(message, status=status)
        self.retryable = retryable


class IoTDAPaginationError(IoTDAError):
    """The service repeated a page marker; following it would loop forever."""


class IoTDACredentialsError(IoTDAError):
    """No credentials: the chosen source lacks them, or its endpoint failed."""

    def __init__(self, message: str, *, retryable: bool = False, status: int | None = None) -> None:
        super().__init__(message, status=status)
        self.retryable = retryable


_HINTS = {
    401: " Check the AK/SK pair, and the clock of this machine: IoTDA rejects a request whose "
    "X-Sdk-Date is more than 15 minutes off.",
    403: " Check the connection's project_id (it must be the project of the instance's region) "
    "and the IAM permission iotda:instance:queryTaskList.",
}


def _header(headers: Mapping[str, str], name: str) -> str | None:
    wanted = name.lower()
    return next((v for k, v in headers.items() if k.lower() == wanted), None)


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds only); ``None`` when unusable."""
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return seconds if 0 <= seconds < 86400 else None


def _describe_body(body: bytes) -> tuple[str | None, str | None]:
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None, None
    if not isinstance(data, dict):
        return None, None
    code, msg = data.get("error_code"), data.get("error_msg")
    return (str(code) if code is not None else None, str(msg) if msg is not None else None)


def error_from_response(status: int, headers: Mapping[str, str], body: bytes) -> IoTDAError:
    """Build the error for a non-2xx answer from its status, headers and body."""
    request_id = _header(headers, REQUEST_ID_HEADER)
    code, msg = _describe_body(body)
    if msg is None:
        snippet = body[:200].decode("utf-8", "replace").strip()
        msg = f"non-JSON error body: {snippet!r}" if snippet else "empty error body"
    message = f"IoTDA {status}{' ' + code if code else ''}: {msg}"
    if request_id:
        message += f" (request id {request_id})"
    message += _HINTS.get(status, "")
    cls: type[IoTDAError]
    if status == 429:
        cls = IoTDAThrottledError
    elif status >= 500:
        cls = IoTDAServerError
    else:
        cls = _CLIENT_ERRORS.get(status, IoTDAClientError)
    error = cls(message, status=status, error_code=code, error_msg=msg, request_id=request_id)
    #: The answer's ``Date`` header: the clock-skew correction compares it with ours.
    error.server_date = _header(headers, "Date")
    if isinstance(error, IoTDAThrottledError):
        error.retry_after = parse_retry_after(_header(headers, "Retry-After"))
    return error


_CLIENT_ERRORS: dict[int, type[IoTDAError]] = {
    400: IoTDABadRequestError,
    401: IoTDAAuthError,
    403: IoTDAForbiddenError,
    404: IoTDANotFoundError,
}


# -- no answer: one message set for the sync (requests) and async (httpx) hooks --------------

#: Where a request without an answer failed, as the hook's HTTP library tells it:
#: ``connect`` / ``connect_timeout`` the connection could not be opened (nothing was sent),
#: ``timeout`` no answer within the read timeout, ``body`` the answer did not arrive whole
#: within ``body_timeout``, ``dropped`` anything else (the request may have arrived).
TransportStage = Literal["connect", "connect_timeout", "timeout", "body", "dropped"]


class TransportLimits(Protocol):
    """What the messages name: the endpoint and its timeouts (an ``IoTDAConnectionConfig``)."""

    @property
    def endpoint(self) -> str: ...

    @property
    def connect_timeout(self) -> float: ...

    @property
    def timeout(self) -> float: ...

    @property
    def body_timeout(self) -> float: ...


def _causes(error: BaseException) -> Iterator[BaseException]:
    """``error`` and everything it wraps (``__cause__``, ``__context__``, urllib3's ``reason``
    and exception arguments), each once."""
    seen: set[int] = set()
    pending = [error]
    while pending:
        current = pending.pop(0)
        if id(current) in seen or len(seen) > 32:
            continue
        seen.add(id(current))
        yield current
        linked = [current.__cause__, current.__context__, getattr(current, "reason", None)]
        linked += list(current.args)
        pending += [e for e in linked if isinstance(e, BaseException)]


def transport_cause(error: BaseException, host: str) -> tuple[str | None, bool]:
    """What the system said about a failure without an answer, in words (``None`` when it
    said nothing usable), and whether that proves the request was not sent."""
    for cause in _causes(error):
        if isinstance(cause, socket.gaierror):
            return (
                f"the host name {host} does not resolve (DNS); check the region or endpoint "
                "of the connection",
                True,
            )
        if isinstance(cause, ssl.SSLError):
            # ssl fills reason and verify_message; an SSLError made by hand has neither.
            reason = getattr(cause, "reason", None) or type(cause).__name__
            if isinstance(cause, ssl.SSLCertVerificationError):
                detail = getattr(cause, "verify_message", None) or reason
                return f"the TLS certificate of {host} was not accepted ({detail})", True
            return f"TLS failed ({reason})", False
        if isinstance(cause, ConnectionRefusedError):
            return f"{host} refused the connection", True
    # Otherwise the operating system's own words ("Network is unreachable"), if any.
    system = next((c for c in _causes(error) if isinstance(c, OSError) and c.strerror), None)
    return (system.strerror if system is not None else None), False


def error_from_transport(
    error: BaseException, stage: TransportStage, limits: TransportLimits
) -> IoTDATransportError:
    """The error for a request that got no (whole) answer, whatever the HTTP library.

    ``stage`` is the library's own account (see :data:`TransportStage`); the cause (a name
    that does not resolve, a TLS failure, a refused connection, the system's words) is read
    from the exceptions it wraps.  The library's own text never reaches the message (it may
    hold anything); the exception is chained for the traceback.  The messages name the
    endpoint and the host, never headers or credentials, and are the same for both hooks.
    """
    endpoint = limits.endpoint
    host = urlsplit(endpoint).hostname or endpoint
    cause, proves_unsent = transport_cause(error, host)
    if stage == "timeout" and not proves_unsent:
        return IoTDATransportError(f"IoTDA did not answer within {limits.timeout:g} s ({endpoint})")
    if stage == "body" and not proves_unsent:
        return IoTDATransportError(
            f"IoTDA did not send its whole answer within {limits.body_timeout:g} s ({endpoint})"
        )
    if stage == "connect_timeout":
        cause = cause or f"no connection within {limits.connect_timeout:g} s"
    if stage in ("connect", "connect_timeout") or proves_unsent:
        return IoTDATransportError(
            f"Could not talk to IoTDA at {endpoint}: "
            f"{cause or 'the connection could not be opened'} "
            "(no connection: the request was not sent)",
            request_sent=False,
        )
    return IoTDATransportError(
        f"Could not talk to IoTDA at {endpoint}: "
        f"{cause or 'the connection broke before the whole answer arrived'}"
    )
