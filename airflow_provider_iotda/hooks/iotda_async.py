"""``IoTDAAsyncHook``: the instance API over httpx's async client, for triggers.

Only the sending differs from the sync :class:`~airflow_provider_iotda.hooks.iotda.IoTDAHook`:
the calls (:class:`~airflow_provider_iotda.transport.InstanceApi`), the conversation of each
call (retries, clock correction: :func:`~airflow_provider_iotda.transport.conversation`), the
signing (:func:`~airflow_provider_iotda.auth.sign_request`), the parsing
(:mod:`~airflow_provider_iotda.api`) and the words of a failure without an answer
(:func:`~airflow_provider_iotda.errors.error_from_transport`) are the same objects.

Sharing in one event loop.  Airflow's triggerer runs up to 1,000 triggers in one loop, so all
hooks in a loop share:

* one ``httpx.AsyncClient`` per TLS-verification setting, created in a worker thread (building
  an SSL context blocks for tens of milliseconds) and pooling up to :data:`MAX_CONNECTIONS`
  connections; it is closed when the last hook of the loop closes;
* one ``asyncio.Semaphore`` of :data:`MAX_IN_FLIGHT` permits in front of the client.  httpx's
  pool spends CPU in proportion to (requests queued x connections) on every event, so
  ~1,000 requests must never queue inside httpx; they wait on the semaphore instead, and the
  pool always has a connection free for a request that got a permit;
* the validated connection (:class:`~airflow_provider_iotda.config.IoTDAConnectionConfig`) per
  connection ID, read once (concurrent first readers wait for the same read) and kept for
  :data:`CONFIG_TTL` seconds, so 1,000 hooks starting at once read, validate and mask a
  connection once instead of 1,000 times; a failed read is not kept.

Nothing here blocks the event loop: the connection comes from ``BaseHook.aget_connection``,
secrets are masked with ``amask_secret`` and bodies are streamed (and capped at
``api.MAX_BODY_BYTES``).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import importlib
import weakref
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import httpx
from airflow.sdk import BaseHook

from airflow_provider_iotda import api, credentials, transport
from airflow_provider_iotda.auth import Credentials, sign_request
from airflow_provider_iotda.clock import ClockOffset, shared_offset
from airflow_provider_iotda.config import IoTDAConnectionConfig
from airflow_provider_iotda.errors import TransportStage, error_from_transport
from airflow_provider_iotda.hooks.base import IoTDABaseHook
from airflow_provider_iotda.models import Instance, InstancePage, InstanceTask, InstanceTaskPage
from airflow_provider_iotda.waiting import TaskQuery

if TYPE_CHECKING:
    import datetime as dt
    from collections.abc import AsyncIterator
    from types import TracebackType

T = TypeVar("T")


#: Requests in flight at once per event loop (all hooks of the loop together).  16 serves
#: 1,000 triggers polling every 10 s on loopback with room to spare; more let httpx open more
#: connections at start-up and stall the loop longer (benchmarks/bench_triggerer.py,
#: --max-in-flight).  At 200 ms per request it still allows about 80 polls a second.
MAX_IN_FLIGHT = 16
#: Connections the shared client may hold (open and idle) per TLS setting; above
#: :data:`MAX_IN_FLIGHT`, so a request holding a permit never waits for a connection.
MAX_CONNECTIONS = 100
#: Seconds an idle pooled connection is kept for the next poll.
KEEPALIVE_EXPIRY = 30.0
#: Seconds a connection read by one hook of a loop serves the loop's other hooks; a connection
#: edited in Airflow reaches new hooks after at most this long.  0 turns the cache off (every
#: hook reads the connection itself).
CONFIG_TTL = 60.0


def _new_client(verify: bool) -> httpx.AsyncClient:
    """Build a client (blocking: loads CA certificates); called in a worker thread.

    Also imports what the client's first request would otherwise import on the event loop:
    httpcore's connection pool builds an ``anyio.Event``, whose first use imports anyio's
    asyncio backend (20-30 ms, measured on Airflow 3.3.2, whose triggerer has it loaded already;
    Airflow 3.1's does not).
    """
    with contextlib.suppress(ImportError):
        importlib.import_module("anyio._backends._asyncio")
    return httpx.AsyncClient(
        verify=verify,
        limits=httpx.Limits(
            max_connections=MAX_CONNECTIONS,
            max_keepalive_connections=MAX_CONNECTIONS,
            keepalive_expiry=KEEPALIVE_EXPIRY,
        ),
        follow_redirects=False,
    )


@dataclass(eq=False)
class _LoopShare:
    """What the hooks of one event loop share (see the module docstring)."""

    semaphore: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(MAX_IN_FLIGHT))
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    clients: dict[bool, httpx.AsyncClient] = field(default_factory=dict)
    users: int = 0
    #: conn_id -> (monotonic expiry, the read: done or in flight)
    configs: dict[str, tuple[float, asyncio.Future[IoTDAConnectionConfig]]] = field(
        default_factory=dict
    )

    async def client(self, verify: bool) -> httpx.AsyncClient:
        client = self.clients.get(verify)
        if client is None:
            async with self.lock:
                client = self.clients.get(verify)
                if client is None:
                    client = await asyncio.to_thread(_new_client, verify)
                    self.clients[verify] = client
        return client

    async def config(
        self, conn_id: str, read: Callable[[], Coroutine[Any, Any, IoTDAConnectionConfig]]
    ) -> IoTDAConnectionConfig:
        """The connection ``conn_id`` as ``read`` returns it, read once per :data:`CONFIG_TTL`."""
        if CONFIG_TTL <= 0:
            return await read()
        loop = asyncio.get_running_loop()
        entry = self.configs.get(conn_id)
        if entry is None or entry[0] <= loop.time():
            # A task of its own: a hook that is cancelled while waiting (its trigger was
            # cancelled) does not cancel the read the loop's other hooks wait for.
            task = loop.create_task(read(), name=f"iotda-read-connection {conn_id}")
            task.add_done_callback(functools.partial(self._forget_failed_read, conn_id))
            entry = (loop.time() + CONFIG_TTL, task)
            self.configs[conn_id] = entry
        return await asyncio.shield(entry[1])

    def _forget_failed_read(
        self, conn_id: str, read: asyncio.Future[IoTDAConnectionConfig]
    ) -> None:
        """A read that failed is not kept (every waiter got its error; the next hook retries)."""
        if read.cancelled() or read.exception() is not None:
            entry = self.configs.get(conn_id)
            if entry is not None and entry[1] is read:
                del self.configs[conn_id]


_SHARES: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopShare] = (
    weakref.WeakKeyDictionary()
)


def _acquire_share() -> _LoopShare:
    loop = asyncio.get_running_loop()
    share = _SHARES.get(loop)
    if share is None:
        share = _SHARES[loop] = _LoopShare()
    share.users += 1
    return share


async def _release_share(share: _LoopShare) -> None:
    share.users -= 1
    if share.users > 0:
        return
    # Last user: forget the share first (a new user gets a fresh one), then close its clients.
    loop = asyncio.get_running_loop()
    if _SHARES.get(loop) is share:
        del _SHARES[loop]
    clients = list(share.clients.values())
    share.clients.clear()
    for client in clients:
        await client.aclose()


def forget_connection(conn_id: str) -> None:
    """Drop the running loop's cached read of ``conn_id``: the next hook reads it again.

    For a caller that got an answer suggesting the connection changed (401/403).
    """
    share = _SHARES.get(asyncio.get_running_loop())
    if share is not None:
        share.configs.pop(conn_id, None)


async def _amask(secrets: list[str]) -> None:
    from airflow_provider_iotda.compat import amask_secret

    for secret in secrets:
        await amask_secret(secret)


async def _read_limited(response: httpx.Response, limit: int) -> bytes:
    body = api.CappedBody(response.status_code, response.headers, limit)
    async for chunk in response.aiter_bytes():
        body.add(chunk)
    return body.value()


class IoTDAAsyncHook(IoTDABaseHook):
    """Async calls to IoTDA's instance-task API (for triggers); same connection as IoTDAHook.

    Use ``async with IoTDAAsyncHook(conn_id) as hook:`` so that the loop's shared client is
    held for the hook's life (and closed after the last hook of the loop); calls made outside
    ``async with`` hold it for the call only.

    Parameters as for :class:`~airflow_provider_iotda.hooks.base.IoTDABaseHook`.
    """

    _config: IoTDAConnectionConfig | None = None
    _share: _LoopShare | None = None

    async def get_config(self) -> IoTDAConnectionConfig:
        """The validated connection (read once); the SK and token are masked in logs.

        Inside ``async with``, the loop's hooks share one read per :data:`CONFIG_TTL` (unless
        the hook was given its ``config``).
        """
        if self._config is None:
            config = self._given_config
            if config is not None:
                await _amask(config.secrets())
            else:
                share = self._share
                if share is None:
                    config = await self._read_config()
                else:
                    config = await share.config(self.iotda_conn_id, self._read_config)
                if not config.verify:  # the warning's write may block: not on the loop
                    await asyncio.to_thread(self._warn_if_unverified, config)
            self._config = config
        return self._config

    async def _read_config(self) -> IoTDAConnectionConfig:
        conn = await BaseHook.aget_connection(self.iotda_conn_id)
        config = IoTDAConnectionConfig.from_connection(conn)
        await _amask(config.secrets())
        return config

    async def resolve_instance_id(self, instance_id: str | None) -> str:
        """``instance_id`` validated, or the connection's default instance."""
        return (await self.get_config()).resolve_instance_id(instance_id)

    @property
    def clock(self) -> ClockOffset:
        """The clock-skew correction shared by every async hook of this connection in the loop."""
        return shared_offset(self.iotda_conn_id)

    async def credential_cache(self) -> credentials.AsyncCredentialCache:
        """The loop's credentials of this connection: one fetch serves every trigger."""
        config = await self.get_config()
        return credentials.shared(
            self.iotda_conn_id, config.credential_settings, config.static_credentials()
        )

    async def _acredentials(self) -> Credentials:
        """The credentials to sign with now (fetched without blocking the loop when due)."""
        config = await self.get_config()
        cache = await self.credential_cache()
        return config.signing_credentials(await cache.get(self.clock.now()))

    # -- lifetime ------------------------------------------------------------------------------

    async def __aenter__(self) -> IoTDAAsyncHook:
        if self._share is None:
            self._share = _acquire_share()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop holding the loop's shared client (closed when no hook of the loop holds it)."""
        share, self._share = self._share, None
        if share is not None:
            await _release_share(share)

    # -- requests ------------------------------------------------------------------------------

    async def _send_once(self, share: _LoopShare, call: api.Call[Any]) -> api.Answer:
        """Send ``call`` once, signed, and read the whole answer."""
        config = await self.get_config()
        timeout = httpx.Timeout(config.timeout, connect=config.connect_timeout)
        content = call.content
        async with share.semaphore:
            client = await share.client(config.verify)
            # Signed after waiting for a permit, so X-Sdk-Date is fresh; the URL string is sent
            # as is (every part is validated and already encoded), so what is signed is sent.
            headers = sign_request(
                await self._acredentials(),
                call.method,
                call.url,
                api.base_headers(config.project_id),
                content,
                now=self.clock.signing_time(),
            )
            try:
                async with client.stream(
                    call.method, call.url, headers=headers, content=content, timeout=timeout
                ) as response:
                    # httpx's timeouts bound each read; this bounds the whole body.
                    async with asyncio.timeout(config.body_timeout):
                        body = await _read_limited(response, api.MAX_BODY_BYTES)
            except TimeoutError as exc:  # asyncio.timeout: the body overran body_timeout
                raise error_from_transport(exc, "body", config) from exc
            except httpx.RequestError as exc:
                raise error_from_transport(exc, _stage(exc), config) from exc
        return api.Answer(response.status_code, response.headers, body)

    async def _call(self, call: api.Call[T]) -> T:
        """Send ``call`` and parse its answer, as :func:`transport.conversation` decides."""
        config = await self.get_config()
        steps = transport.conversation(
            call, self._policy_for(config), self.clock, self.iotda_conn_id
        )
        share = self._share
        temporary = share is None
        if share is None:
            share = _acquire_share()
        try:
            send = functools.partial(self._send_once, share, call)
            return await transport.arun(steps, send, self.log)
        finally:
            if temporary:
                await _release_share(share)

    async def _api(self) -> transport.InstanceApi:
        return transport.InstanceApi(await self.get_config())

    # -- API -----------------------------------------------------------------------------------

    async def list_instance_tasks(
        self,
        instance_id: str | None = None,
        *,
        offset: int | None = None,
        limit: int | None = None,
        marker: str | int | None = None,
    ) -> InstanceTaskPage:
        """One page of the instance's tasks, newest first; one request (plus retries)."""
        calls = await self._api()
        return await self._call(
            calls.list_tasks(instance_id, offset=offset, limit=limit, marker=marker)
        )

    async def iter_instance_tasks(
        self, instance_id: str | None = None, *, page_size: int | None = None
    ) -> AsyncIterator[InstanceTask]:
        """Every task of the instance, following ``marker`` page after page.

        The same walk as :meth:`IoTDAHook.iter_instance_tasks <airflow_provider_iotda.hooks.
        iotda.IoTDAHook.iter_instance_tasks>` (``api.PageWalk``): stops at an empty or short
        page, yields a task listed twice once, and raises ``IoTDAPaginationError`` rather than
        loop forever.
        """
        walk = api.PageWalk(await self.resolve_instance_id(instance_id), page_size)
        while not walk.done:
            page = await self.list_instance_tasks(
                walk.instance_id, limit=walk.limit, marker=walk.marker
            )
            for task in walk.take(page):
                yield task

    async def get_instance_task(
        self, instance_task_id: str, instance_id: str | None = None
    ) -> InstanceTask | None:
        """The task with this ID, or ``None`` when the instance does not list it."""
        return await self.find_task(
            TaskQuery.build(
                await self.resolve_instance_id(instance_id), instance_task_id=instance_task_id
            )
        )

    async def find_task(self, query: TaskQuery) -> InstanceTask | None:
        """The task ``query`` means; one request (the list holds every task, at most 20)."""
        return query.find([task async for task in self.iter_instance_tasks(query.instance_id)])

    async def find_instance_task(
        self,
        instance_id: str | None = None,
        *,
        instance_task_id: str | None = None,
        instance_task_type: str | None = None,
        created_after: dt.datetime | str | None = None,
    ) -> InstanceTask | None:
        """:meth:`find_task` from loose arguments (each checked, naming its field)."""
        return await self.find_task(
            TaskQuery.build(
                await self.resolve_instance_id(instance_id),
                instance_task_id=instance_task_id,
                instance_task_type=instance_task_type,
                created_after=created_after,
            )
        )

    async def show_instance_task(
        self, instance_task_id: str, instance_id: str | None = None
    ) -> InstanceTask:
        """One task by ID, with ``progress`` (``IoTDANotFoundError`` when there is none)."""
        calls = await self._api()
        return await self._call(calls.show_task(instance_task_id, instance_id))

    async def retry_instance_task(
        self, instance_task_id: str, instance_id: str | None = None
    ) -> InstanceTask:
        """Run a FAILED task again; sent once, as :meth:`IoTDAHook.retry_instance_task
        <airflow_provider_iotda.hooks.iotda.IoTDAHook.retry_instance_task>`."""
        calls = await self._api()
        return await self._call(calls.retry_task(instance_task_id, instance_id))

    async def resize_instance(
        self,
        instance_id: str | None = None,
        *,
        flavor_type: str,
        flavor_size: int,
        delay: bool = False,
        is_auto_pay: bool = False,
    ) -> str | None:
        """Order a new specification; IoTDA's ``order_id``.  Sent once, as
        :meth:`IoTDAHook.resize_instance <airflow_provider_iotda.hooks.iotda.IoTDAHook.
        resize_instance>`, which documents the fields."""
        calls = await self._api()
        return await self._call(
            calls.resize(
                instance_id,
                flavor_type=flavor_type,
                flavor_size=flavor_size,
                delay=delay,
                is_auto_pay=is_auto_pay,
            )
        )

    async def show_instance(self, instance_id: str | None = None) -> Instance:
        """The instance: status, flavor, operate window, charge mode, times."""
        calls = await self._api()
        return await self._call(calls.show_instance(instance_id))

    async def list_instances(
        self,
        *,
        offset: int | None = None,
        limit: int | None = None,
        marker: str | int | None = None,
    ) -> InstancePage:
        """One page of the project's instances, newest first."""
        calls = await self._api()
        return await self._call(calls.list_instances(offset=offset, limit=limit, marker=marker))

    async def iter_instances(self, *, page_size: int | None = None) -> AsyncIterator[Instance]:
        """Every instance of the project, following ``marker`` (loop-safe, as
        :meth:`iter_instance_tasks`)."""
        walk = api.InstanceWalk(page_size)
        while not walk.done:
            page = await self.list_instances(limit=walk.limit, marker=walk.marker)
            for instance in walk.take(page):
                yield instance


def _stage(error: httpx.RequestError) -> TransportStage:
    """How far a request that raised ``error`` got, in httpx's account."""
    if isinstance(error, httpx.ConnectTimeout):
        return "connect_timeout"
    if isinstance(error, httpx.ConnectError | httpx.PoolTimeout):
        return "connect"
    if isinstance(error, httpx.TimeoutException):
        return "timeout"
    return "dropped"
