"""One script of answers and faults for both hooks: the sync hook behind requests-mock, the
async hook behind httpx.MockTransport.

A fault is named once (``"refused"``, ``"dns"``...) and raised as the hook's own HTTP library
raises it, with the same chain of causes (checked against the real libraries by
tests/integration/test_transport_failures.py).  A test written against :class:`HookDouble`
runs on both hooks, so the two can never drift apart.
"""

from __future__ import annotations

import asyncio
import errno
import inspect
import json
import socket
from dataclasses import dataclass, field
from typing import Any

import httpx
import requests
import requests_mock
from iotda_test_values import verify_signature
from urllib3.exceptions import MaxRetryError, NameResolutionError, NewConnectionError, ProtocolError

from airflow_provider_iotda.hooks import iotda_async
from airflow_provider_iotda.hooks.iotda import IoTDAHook
from airflow_provider_iotda.hooks.iotda_async import IoTDAAsyncHook

#: Faults a script may name.
FAULTS = ("refused", "dns", "unreachable", "connect_timeout", "read_timeout", "dropped")


@dataclass(frozen=True)
class Reply:
    """An answer: status, JSON body (or raw ``text``) and headers."""

    status: int = 200
    body: Any = None
    text: str | None = None
    headers: dict[str, str] = field(default_factory=dict)

    def content(self) -> bytes:
        return (self.text if self.text is not None else json.dumps(self.body)).encode()


Script = list[Reply | str]


def _chained(error: BaseException, cause: BaseException) -> BaseException:
    error.__cause__ = cause
    return error


def _refused() -> ConnectionRefusedError:
    return ConnectionRefusedError(111, "Connection refused")


def _unreachable() -> OSError:
    return OSError(errno.ENETUNREACH, "Network is unreachable")


def _unresolved() -> socket.gaierror:
    return socket.gaierror(socket.EAI_NONAME, "Name or service not known")


def requests_fault(name: str, url: str) -> BaseException:
    """``name`` as requests raises it (urllib3's reason inside, the system's error as cause)."""
    if name == "refused":
        reason: Exception = _chained(NewConnectionError(None, "Connection refused"), _refused())  # type: ignore[arg-type]
        return requests.exceptions.ConnectionError(MaxRetryError(None, url, reason))  # type: ignore[arg-type]
    if name == "unreachable":
        reason = _chained(NewConnectionError(None, "Network is unreachable"), _unreachable())  # type: ignore[arg-type]
        return requests.exceptions.ConnectionError(MaxRetryError(None, url, reason))  # type: ignore[arg-type]
    if name == "dns":
        host = httpx.URL(url).host
        reason = _chained(NameResolutionError(host, None, _unresolved()), _unresolved())  # type: ignore[arg-type]
        return requests.exceptions.ConnectionError(MaxRetryError(None, url, reason))  # type: ignore[arg-type]
    if name == "connect_timeout":
        return requests.exceptions.ConnectTimeout("connect timed out")
    if name == "read_timeout":
        return requests.exceptions.ReadTimeout("read timed out")
    if name == "dropped":
        reset = ConnectionResetError(104, "Connection reset by peer")
        return requests.exceptions.ConnectionError(ProtocolError("Connection aborted.", reset))
    raise AssertionError(f"unknown fault {name!r}")


def httpx_fault(name: str) -> BaseException:
    """``name`` as httpx raises it (httpcore's error mapped, the system's error as cause)."""
    if name == "refused":
        return _chained(httpx.ConnectError("All connection attempts failed"), _refused())
    if name == "unreachable":
        return _chained(httpx.ConnectError("Network is unreachable"), _unreachable())
    if name == "dns":
        return _chained(httpx.ConnectError("Name or service not known"), _unresolved())
    if name == "connect_timeout":
        return httpx.ConnectTimeout("connect timed out")
    if name == "read_timeout":
        return httpx.ReadTimeout("read timed out")
    if name == "dropped":
        reset = ConnectionResetError(104, "Connection reset by peer")
        return _chained(httpx.ReadError("Connection reset by peer"), reset)
    raise AssertionError(f"unknown fault {name!r}")


@dataclass
class Sent:
    """A request as either library recorded it."""

    method: str
    url: str
    body: bytes
    signed: bool
    sdk_date: str


class HookDouble:
    """Runs a hook method on the sync or the async hook (``flavor``) against ``script``.

    The last entry of the script repeats.  ``sent`` lists the requests that reached the
    transport, each with its signature checked.
    """

    def __init__(self, flavor: str, mocker: requests_mock.Mocker, monkeypatch: Any) -> None:
        self.flavor = flavor
        self.script: Script = []
        self.sent: list[Sent] = []
        self._mocker = mocker
        mocker.register_uri(requests_mock.ANY, requests_mock.ANY, content=self._requests_answer)
        monkeypatch.setattr(iotda_async, "_new_client", self._httpx_client)

    def _next(self) -> Reply | str:
        index = min(len(self.sent), len(self.script)) - 1
        return self.script[index]

    def _requests_answer(self, request: Any, context: Any) -> bytes:
        body = request.body or b""
        self.sent.append(
            Sent(
                request.method,
                request.url,
                body.encode() if isinstance(body, str) else body,
                verify_signature(request),
                request.headers["X-Sdk-Date"],
            )
        )
        answer = self._next()
        if isinstance(answer, str):
            raise requests_fault(answer, request.url)
        context.status_code = answer.status
        context.headers.update(answer.headers)
        return answer.content()

    def _httpx_answer(self, request: httpx.Request) -> httpx.Response:
        self.sent.append(
            Sent(
                request.method,
                str(request.url),
                request.content,
                verify_signature(request),
                request.headers["X-Sdk-Date"],
            )
        )
        answer = self._next()
        if isinstance(answer, str):
            raise httpx_fault(answer)
        return httpx.Response(answer.status, headers=answer.headers, content=answer.content())

    def _httpx_client(self, verify: bool) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.MockTransport(self._httpx_answer), verify=verify)

    def call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        """``hook.name(*args, **kwargs)``; an iterator's items as a list."""
        if self.flavor == "sync":
            with IoTDAHook() as hook:
                result = getattr(hook, name)(*args, **kwargs)
                return list(result) if inspect.isgenerator(result) else result

        async def run() -> Any:
            async with IoTDAAsyncHook() as hook:
                result = getattr(hook, name)(*args, **kwargs)
                if inspect.isasyncgen(result):
                    return [item async for item in result]
                return await result

        return asyncio.run(run())
