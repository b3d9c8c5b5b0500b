"""``IoTDAHook``: signed, retried calls to the IoTDA instance API over ``requests``.

Only the sending is here (a ``requests.Session``, a body deadline, how far a failed request
got); what to send, retry and say is :mod:`~airflow_provider_iotda.transport`'s, shared with
:class:`~airflow_provider_iotda.hooks.iotda_async.IoTDAAsyncHook`.
"""

from __future__ import annotations

import contextlib
import functools
import heapq
import itertools
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from functools import cached_property
from typing import TYPE_CHECKING, Any, TypeVar

import requests
import requests.auth

from airflow_provider_iotda import api, compat, transport
from airflow_provider_iotda.auth import (
    DATE_HEADER,
    SECURITY_TOKEN_HEADER,
    Credentials,
    sign_request,
)
from airflow_provider_iotda.config import ConnectionFieldError, IoTDAConnectionConfig
from airflow_provider_iotda.credentials import CredentialCache
from airflow_provider_iotda.errors import (
    IoTDAAuthError,
    IoTDAClientError,
    IoTDAError,
    IoTDAForbiddenError,
    IoTDATransportError,
    TransportStage,
    error_from_transport,
)
from airflow_provider_iotda.hooks.base import IoTDABaseHook
from airflow_provider_iotda.models import (
    Instance,
    InstancePage,
    InstanceTask,
    InstanceTaskPage,
)
from airflow_provider_iotda.retry import RetryPolicy
from airflow_provider_iotda.waiting import TaskQuery

if TYPE_CHECKING:
    import datetime as dt

    from requests.sessions import _Settings

T = TypeVar("T")


class SigningAuth(requests.auth.AuthBase):
    """``requests`` auth that signs every request (each retry afresh) just before it is sent.

    ``credentials`` is fixed credentials or a callable returning the ones to use now
    (temporary credentials are refreshed there); ``now`` gives the (clock-corrected) time.
    """

    def __init__(
        self,
        credentials: Credentials | Callable[[], Credentials],
        now: Callable[[], dt.datetime | None] | None = None,
    ) -> None:
        self.credentials = credentials
        self.now = now

    def __repr__(self) -> str:
        credentials = self.credentials
        if isinstance(credentials, Credentials):
            return f"SigningAuth(access_key={credentials.access_key!r})"
        return "SigningAuth(<credentials fetched when signing>)"

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        stale = {"authorization", DATE_HEADER.lower(), SECURITY_TOKEN_HEADER.lower()}
        body = request.body
        credentials = self.credentials
        request.headers.update(
            sign_request(
                credentials if isinstance(credentials, Credentials) else credentials(),
                request.method or "GET",
                request.url or "",
                {k: v for k, v in request.headers.items() if k.lower() not in stale},
                body if isinstance(body, bytes | str) else None,
                now=self.now() if self.now is not None else None,
            )
        )
        return request


# An instance ID that cannot exist, used by test_connection when the connection names none.
_PROBE_INSTANCE_ID = "00000000-0000-0000-0000-000000000000"


class IoTDAHook(IoTDABaseHook):
    """Calls Huawei Cloud IoTDA's instance-task API with AK/SK-signed requests.

    Parameters as for :class:`~airflow_provider_iotda.hooks.base.IoTDABaseHook`.
    """

    _session: requests.Session | None = None

    if not compat.has_conn_fields_form():  # Airflow 3.1 builds the form from these two only

        @classmethod
        def get_ui_field_behaviour(cls) -> dict[str, Any]:
            """Connection form: AK/SK labels, hidden host, schema and port."""
            from airflow_provider_iotda.get_provider_info import hook_field_behaviour

            return hook_field_behaviour()

        @classmethod
        def get_connection_form_widgets(cls) -> dict[str, Any]:
            """Connection form: the extras (3.2+ reads them from the provider info)."""
            from airflow_provider_iotda.get_provider_info import hook_form_widgets

            return hook_form_widgets()

    @cached_property
    def config(self) -> IoTDAConnectionConfig:
        """The validated connection; the SK and token are registered with Airflow's masker."""
        config = self._given_config
        if config is None:
            config = IoTDAConnectionConfig.from_connection(self.get_connection(self.iotda_conn_id))
            self._warn_if_unverified(config)
        _mask(config.secrets())
        return config

    @cached_property
    def credential_cache(self) -> CredentialCache:
        """Where this hook's AK/SK comes from; temporary ones are refreshed before expiry."""
        config = self.config

        def warn(error: Exception) -> None:
            self.log.warning("Refreshing the credentials failed, using the current ones: %s", error)

        return CredentialCache(
            config.credential_settings, config.static_credentials(), on_refresh_failure=warn
        )

    def _credentials(self) -> Credentials:
        """The credentials to sign with now (fetched or refreshed when due)."""
        return self.config.signing_credentials(self.credential_cache.get(self.clock.now()))

    @property
    def retry_policy(self) -> RetryPolicy:
        return self._policy_for(self.config)

    def get_conn(self) -> requests.Session:
        """The hook's one ``requests.Session`` (signing, TLS setting); connections are reused."""
        if self._session is None:
            config = self.config
            session = _Session()
            session.auth = SigningAuth(self._credentials, self.clock.signing_time)
            session.verify = config.verify
            # Only our own headers (as Huawei's SDK sends them): nothing hop-by-hop gets signed.
            session.headers = requests.structures.CaseInsensitiveDict(
                api.base_headers(config.project_id)
            )
            self._session = session
        return self._session

    def close(self) -> None:
        """Close the session and its pooled connections."""
        if self._session is not None:
            self._session.close()
            self._session = None

    def __enter__(self) -> IoTDAHook:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def resolve_instance_id(self, instance_id: str | None) -> str:
        """``instance_id`` validated, or the connection's default instance."""
        return self.config.resolve_instance_id(instance_id)

    @property
    def _api(self) -> transport.InstanceApi:
        return transport.InstanceApi(self.config)

    # -- requests --------------------------------------------------------------------------

    def _send_once(self, call: api.Call[Any]) -> api.Answer:
        """Send ``call`` once (signed by the session's auth) and read the whole answer."""
        config = self.config
        deadline: _BodyDeadline | None = None
        try:
            # verify is passed on every call: requests lets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE
            # override a session's verify=False.
            with self.get_conn().request(
                call.method,
                call.url,
                data=call.content,
                timeout=(config.connect_timeout, config.timeout),
                stream=True,
                verify=config.verify,
                allow_redirects=False,
            ) as response:
                with _BodyDeadline(response, config.body_timeout) as deadline:
                    body = _read_limited(response, api.MAX_BODY_BYTES)
                return api.Answer(response.status_code, response.headers, body)
        except requests.RequestException as exc:
            stage = "body" if deadline is not None and deadline.expired else _stage(exc)
            raise error_from_transport(exc, stage, config) from exc

    def _call(self, call: api.Call[T], policy: RetryPolicy | None = None) -> T:
        """Send ``call`` and parse its answer, as :func:`transport.conversation` decides."""
        steps = transport.conversation(
            call, policy or self.retry_policy, self.clock, self.iotda_conn_id
        )
        return transport.run(steps, functools.partial(self._send_once, call), self.log)

    # -- API ---------------------------------------------------------------------------------

    def list_instance_tasks(
        self,
        instance_id: str | None = None,
        *,
        offset: int | None = None,
        limit: int | None = None,
        marker: str | int | None = None,
    ) -> InstanceTaskPage:
        """One page of the instance's tasks, newest first (``.tasks``, ``.count``, ``.marker``)."""
        return self._call(
            self._api.list_tasks(instance_id, offset=offset, limit=limit, marker=marker)
        )

    def iter_instance_tasks(
        self, instance_id: str | None = None, *, page_size: int | None = None
    ) -> Iterator[InstanceTask]:
        """Every task of the instance, following ``marker`` page after page.

        Stops at an empty or short page.  A task listed again on a later page is not yielded
        again.  Raises ``IoTDAPaginationError`` instead of looping forever when the service
        repeats a marker or goes on past ``api.MAX_PAGES`` pages or ``api.MAX_TASKS`` tasks.
        """
        walk = api.PageWalk(self.resolve_instance_id(instance_id), page_size)
        while not walk.done:
            page = self.list_instance_tasks(walk.instance_id, limit=walk.limit, marker=walk.marker)
            yield from walk.take(page)

    def get_instance_task(
        self, instance_task_id: str, instance_id: str | None = None
    ) -> InstanceTask | None:
        """The task with this ID, or ``None`` when the instance does not list it."""
        return self.find_task(
            TaskQuery.build(
                self.resolve_instance_id(instance_id), instance_task_id=instance_task_id
            )
        )

    def find_task(self, query: TaskQuery) -> InstanceTask | None:
        """The task ``query`` means (by ID, or the newest of a type created at or after a time).

        Costs one request (the list holds every task) unless the service pages.
        """
        return query.find(self.iter_instance_tasks(query.instance_id))

    def find_instance_task(
        self,
        instance_id: str | None = None,
        *,
        instance_task_id: str | None = None,
        instance_task_type: str | None = None,
        created_after: dt.datetime | str | None = None,
    ) -> InstanceTask | None:
        """:meth:`find_task` from loose arguments (each checked, naming its field)."""
        return self.find_task(
            TaskQuery.build(
                self.resolve_instance_id(instance_id),
                instance_task_id=instance_task_id,
                instance_task_type=instance_task_type,
                created_after=created_after,
            )
        )

    def show_instance_task(
        self, instance_task_id: str, instance_id: str | None = None
    ) -> InstanceTask:
        """One task by ID, with ``progress`` (``IoTDANotFoundError`` when there is none)."""
        return self._call(self._api.show_task(instance_task_id, instance_id))

    def retry_instance_task(
        self, instance_task_id: str, instance_id: str | None = None
    ) -> InstanceTask:
        """Run a FAILED task again (POST ``.../tasks/{id}/retry``); the task as IoTDA answers.

        Sent once: only a 429 or a connection that could not be opened is retried, never a
        timeout, a dropped connection or a 5xx (IoTDA may have acted on it).
        """
        return self._call(self._api.retry_task(instance_task_id, instance_id))

    def resize_instance(
        self,
        instance_id: str | None = None,
        *,
        flavor_type: str,
        flavor_size: int,
        delay: bool = False,
        is_auto_pay: bool = False,
    ) -> str | None:
        """Order a new specification (POST ``.../resize``); returns IoTDA's ``order_id``.

        IoTDA starts a MODIFY task (its ID is not returned: find it by type and creation time).
        ``delay=True`` runs it in the instance's operate window, so it may stay PENDING for
        hours.  ``is_auto_pay`` pays a prepaid order from the account balance.  Sent once, as
        :meth:`retry_instance_task`.  ``ValueError`` before anything is sent when a field is
        wrong: ``flavor_type`` of ``[A-Za-z0-9._-]``, ``flavor_size`` an int >= 1, the flags
        real booleans.
        """
        return self._call(
            self._api.resize(
                instance_id,
                flavor_type=flavor_type,
                flavor_size=flavor_size,
                delay=delay,
                is_auto_pay=is_auto_pay,
            )
        )

    def show_instance(self, instance_id: str | None = None) -> Instance:
        """The instance: status, flavor, operate window, charge mode, times."""
        return self._call(self._api.show_instance(instance_id))

    def list_instances(
        self,
        *,
        offset: int | None = None,
        limit: int | None = None,
        marker: str | int | None = None,
    ) -> InstancePage:
        """One page of the project's instances, newest first (``.instances``, ``.count``,
        ``.marker``)."""
        return self._call(self._api.list_instances(offset=offset, limit=limit, marker=marker))

    def iter_instances(self, *, page_size: int | None = None) -> Iterator[Instance]:
        """Every instance of the project, following ``marker`` page after page.

        Loop-safe as :meth:`iter_instance_tasks`: an instance listed twice is yielded once, and
        a repeated marker or endless paging raises ``IoTDAPaginationError``.
        """
        walk = api.InstanceWalk(page_size)
        while not walk.done:
            yield from walk.take(self.list_instances(limit=walk.limit, marker=walk.marker))

    def test_connection(self) -> tuple[bool, str]:
        """Make one real list call (limit=1); ``(True, ...)`` when the credentials are accepted.

        The messages name the field at fault but never the connection ID: the form's Test
        button runs this on a random temporary ID that means nothing to the user.
        """
        try:
            config = self.config
            instance = config.instance_id or _PROBE_INSTANCE_ID
            call = self._api.list_tasks(instance, limit=1)
            # One attempt: a connection test should answer fast.
            result = self._call(call, RetryPolicy(max_retries=0))
        except IoTDAAuthError as exc:
            return False, f"Credentials rejected{self._used_source()}: {exc}"
        except IoTDAForbiddenError as exc:
            return False, f"Access denied{self._used_source()}: {exc}"
        except IoTDAClientError as exc:
            if config.instance_id is None and exc.status in (400, 404):
                return True, (
                    f"Credentials accepted by {config.endpoint} (project {config.project_id})"
                    f"{self._used_source()}; the connection names no instance_id"
                )
            return False, str(exc)
        except IoTDATransportError as exc:
            return False, str(exc)
        except ConnectionFieldError as exc:
            return False, exc.detail
        except (IoTDAError, ValueError) as exc:
            return False, str(exc)
        return True, (
            f"Connected to {config.endpoint}: instance {instance} lists {result.count} task(s)"
            f"{self._used_source()}"
        )

    def _used_source(self) -> str:
        return self._source_note(self.credential_cache.current)


def _stage(error: requests.RequestException) -> TransportStage:
    """How far a request that raised ``error`` got (requests wraps urllib3's account)."""
    from urllib3.exceptions import MaxRetryError, NewConnectionError, ReadTimeoutError

    reason = error.args[0] if error.args else None
    if isinstance(reason, MaxRetryError):
        reason = reason.reason
    # NewConnectionError subclasses ConnectTimeoutError: test it first.
    if isinstance(reason, NewConnectionError):
        return "connect"
    if isinstance(error, requests.ConnectTimeout):
        return "connect_timeout"
    # requests reports a read timeout while streaming the body as a ConnectionError.
    if isinstance(error, requests.Timeout) or isinstance(reason, ReadTimeoutError):
        return "timeout"
    return "dropped"


class _Session(requests.Session):
    """A ``requests.Session`` that reads the environment's proxy and CA-bundle settings once.

    requests reads them (``*_PROXY``, ``NO_PROXY``, ``REQUESTS_CA_BUNDLE``, ``CURL_CA_BUNDLE``)
    on every request, scanning the whole environment each time; here the result is kept per
    target (scheme and host) and per setting asked for, so every request still gets what
    requests would give it, as long as the environment does not change during the hook's life.
    """

    _MAX_TARGETS = 64

    def __init__(self) -> None:
        super().__init__()
        self._environment: dict[tuple[Any, ...], _Settings] = {}

    def merge_environment_settings(
        self,
        url: Any,
        proxies: Any,
        stream: Any,
        verify: Any,
        cert: Any,
    ) -> _Settings:
        key = (
            tuple(str(url).split("/", 3)[:3]),  # scheme, "", host: what the proxy choice reads
            _frozen(proxies),
            stream,
            verify,
            cert,
            self.trust_env,
            _frozen(self.proxies),
            self.stream,
            self.verify,
            self.cert,
        )
        try:
            settings = self._environment.get(key)
        except TypeError:  # an unhashable setting: ask requests every time
            return super().merge_environment_settings(url, proxies, stream, verify, cert)
        if settings is None:
            asked = dict(proxies) if proxies is not None else None
            settings = super().merge_environment_settings(url, asked, stream, verify, cert)
            if len(self._environment) >= self._MAX_TARGETS:
                self._environment.clear()
            self._environment[key] = settings
        fresh = settings.copy()  # requests may change what it is given
        fresh["proxies"] = dict(settings["proxies"])
        return fresh


def _frozen(mapping: Any) -> Any:
    return None if mapping is None else frozenset(mapping.items())


class _BodyDeadline:
    """Shuts the response's socket down if its body is not read within ``seconds``.

    requests' read timeout bounds each socket read, not their sum; shutting the socket down
    from another thread makes the blocked read fail at once.  That thread is the process's
    one :class:`_Watchdog`, not a thread per request.
    """

    def __init__(self, response: requests.Response, seconds: float) -> None:
        self.expired = False
        self.done = False
        self._response: requests.Response | None = response
        self._seconds = seconds

    def _expire(self) -> None:
        """Called by the watchdog (holding its lock) once the deadline passed."""
        self.expired = True
        connection = getattr(getattr(self._response, "raw", None), "connection", None)
        sock = getattr(connection, "sock", None)
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def __enter__(self) -> _BodyDeadline:
        _watchdog().add(self, time.monotonic() + self._seconds)
        return self

    def __exit__(self, *exc_info: object) -> None:
        _watchdog().cancel(self)


class _Watchdog:
    """One daemon thread that fires every :class:`_BodyDeadline` of the process when due.

    Adding or cancelling a deadline is a lock and a heap push; a cancelled deadline never
    fires afterwards (cancelling and firing take the same lock), so a socket handed back to
    the pool is never shut down.
    """

    def __init__(self) -> None:
        self._lock = threading.Condition(threading.Lock())
        self._heap: list[tuple[float, int, _BodyDeadline]] = []
        self._order = itertools.count()
        self._live = 0
        self._thread: threading.Thread | None = None

    def add(self, deadline: _BodyDeadline, when: float) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="iotda-body-deadlines", daemon=True
                )
                self._thread.start()
            heap = self._heap
            if len(heap) > 64 and len(heap) > 2 * self._live:  # drop the cancelled ones
                heap[:] = [entry for entry in heap if not entry[2].done]
                heapq.heapify(heap)
            heapq.heappush(heap, (when, next(self._order), deadline))
            self._live += 1
            if heap[0][2] is deadline:  # earlier than what the thread waits for
                self._lock.notify()

    def cancel(self, deadline: _BodyDeadline) -> None:
        with self._lock:
            if not deadline.done:
                deadline.done = True
                deadline._response = None
                self._live -= 1

    def _run(self) -> None:
        heap = self._heap
        with self._lock:
            while True:
                while heap and heap[0][2].done:
                    heapq.heappop(heap)
                if not heap:
                    self._lock.wait()
                    continue
                wait = heap[0][0] - time.monotonic()
                if wait > 0:
                    self._lock.wait(wait)
                    continue
                deadline = heapq.heappop(heap)[2]
                deadline.done = True
                self._live -= 1
                with contextlib.suppress(Exception):  # the thread must outlive any one deadline
                    deadline._expire()
                deadline._response = None


_WATCHDOG: _Watchdog | None = None
_WATCHDOG_LOCK = threading.Lock()


def _watchdog() -> _Watchdog:
    """The process's watchdog (a forked child builds its own: threads do not survive a fork)."""
    global _WATCHDOG
    watchdog = _WATCHDOG
    if watchdog is None:
        with _WATCHDOG_LOCK:
            if _WATCHDOG is None:
                _WATCHDOG = _Watchdog()
            watchdog = _WATCHDOG
    return watchdog


def _forget_watchdog() -> None:
    global _WATCHDOG, _WATCHDOG_LOCK
    _WATCHDOG = None
    _WATCHDOG_LOCK = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_watchdog)


def _read_limited(response: requests.Response, limit: int) -> bytes:
    body = api.CappedBody(response.status_code, response.headers, limit)
    for chunk in response.iter_content(chunk_size=65536):
        body.add(chunk)
    return body.value()


def _mask(secrets: list[str]) -> None:
    from airflow_provider_iotda.compat import mask_secret

    for secret in secrets:
        mask_secret(secret)
