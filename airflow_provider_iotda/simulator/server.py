"""Run the simulator: :class:`IoTDASimulator` (background thread) and :func:`serve` (CLI)."""

from __future__ import annotations

import asyncio
import datetime as dt
import importlib
import socket
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any, Self

from airflow_provider_iotda.simulator.faults import FaultConfig
from airflow_provider_iotda.simulator.scenario import (
    RunPlan,
    Scenario,
    ScenarioSource,
    instance_from_dict,
    make_plan,
    make_task,
)
from airflow_provider_iotda.simulator.state import Counters, SimulatorState

DEFAULT_REGION = "cn-north-4"
#: The packages the simulator's server needs, installed by the ``simulator`` extra.
SERVER_PACKAGES = ("starlette", "uvicorn")
SIMULATOR_EXTRA_INSTALL = 'pip install "airflow-provider-iotda[simulator]"'
#: Listen backlog, enough for a thousand pollers connecting at once.
BACKLOG = 2048


def require_server_packages() -> None:
    """Raise :class:`ImportError` naming the ``simulator`` extra when starlette or uvicorn is
    missing (the only place outside ``app.py`` and the server start that imports them)."""
    missing = []
    for name in SERVER_PACKAGES:
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    if missing:
        raise ImportError(
            f"the IoTDA simulator needs {' and '.join(SERVER_PACKAGES)}, and "
            f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} not installed; "
            "install the simulator extra: "
            f"{SIMULATOR_EXTRA_INSTALL}",
            name=missing[0],
        )


def _counting_protocol(base: Any, state: SimulatorState) -> Any:
    """A subclass of uvicorn's HTTP protocol class that counts TCP connections."""

    class CountingProtocol(base):  # type: ignore[misc]
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            sock = transport.get_extra_info("socket")
            if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            state.connection_opened()
            super().connection_made(transport)

        def connection_lost(self, exc: Exception | None) -> None:
            state.connection_closed()
            super().connection_lost(exc)

    CountingProtocol.__name__ = f"Counting{base.__name__}"
    return CountingProtocol


def _http_protocol_class() -> Any:
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    except ImportError:  # httptools missing: h11 is slower but works
        from uvicorn.protocols.http.h11_impl import H11Protocol

        return H11Protocol
    return HttpToolsProtocol


class IoTDASimulator:
    """A local IoTDA endpoint for the instance-task API on a real HTTP socket.

    Use as a context manager (``with IoTDASimulator(...) as sim: sim.url``) or call
    :meth:`start` / :meth:`stop`.  ``scenario`` is a path, a JSON string, a dict, a
    :class:`Scenario` or None (no instances); ``time_factor`` makes simulated time run faster
    (0 freezes it; :meth:`advance` moves it); ``seed`` makes faults and task IDs reproducible;
    ``tokens`` are accepted ``X-Auth-Token`` values; ``faults`` is the initial
    :class:`FaultConfig` (or its dict form).  The credential stand-ins (ECS metadata, pod
    identity, STS; see :mod:`~airflow_provider_iotda.simulator.identity`) issue temporary
    credentials valid ``credential_ttl`` seconds; ``oidc_tokens`` and ``pod_token`` are the
    accepted id tokens and pod identity token; ``clock_offset`` puts the gateway's clock that
    many seconds ahead of this machine's.
    """

    def __init__(
        self,
        *,
        ak: str,
        sk: str,
        project_id: str,
        scenario: ScenarioSource = None,
        host: str = "127.0.0.1",
        port: int = 0,
        region: str = DEFAULT_REGION,
        tokens: Iterable[str] = (),
        time_factor: float = 1.0,
        seed: int | None = None,
        faults: FaultConfig | Mapping[str, Any] | None = None,
        max_skew_seconds: float = 900.0,
        start_time: dt.datetime | None = None,
        log_level: str = "warning",
        credential_ttl: float = 3600.0,
        clock_offset: float = 0.0,
        oidc_tokens: Iterable[str] = (),
        pod_token: str | None = None,
        metadata_token_required: bool = True,
    ) -> None:
        require_server_packages()
        from airflow_provider_iotda.simulator.app import AuthSettings
        from airflow_provider_iotda.simulator.identity import IdentityService

        self.identity = IdentityService(
            credential_ttl=credential_ttl,
            clock_offset=clock_offset,
            metadata_token_required=metadata_token_required,
            oidc_tokens=frozenset(oidc_tokens),
            pod_token=pod_token,
        )

        self.auth = AuthSettings(
            access_key=ak,
            secret_key=sk,
            project_id=project_id,
            region=region,
            tokens=frozenset(tokens),
            max_skew_seconds=max_skew_seconds,
        )
        if isinstance(faults, Mapping):
            faults = FaultConfig.from_dict(faults)
        self.state = SimulatorState(
            Scenario.load(scenario),
            time_factor=time_factor,
            seed=seed,
            faults=faults,
            start=start_time,
        )
        self.host = host
        self.port = port
        self.log_level = log_level
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None
        self._error: BaseException | None = None

    def __repr__(self) -> str:
        where = self.url if self.running else "not running"
        return f"IoTDASimulator({where}, project_id={self.auth.project_id!r})"

    # -- lifecycle -------------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """Whether the server thread is serving."""
        return self._thread is not None and self._thread.is_alive()

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:40123`` (the real port, also with ``port=0``)."""
        if self._socket is None:
            raise RuntimeError("the simulator is not started")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def control_url(self) -> str:
        """Base URL of the control endpoint (``{url}/_sim``)."""
        return self.url + "/_sim"

    def bind(self) -> socket.socket:
        """Bind and listen on ``host:port`` (the real port is then in :attr:`port`)."""
        if self._socket is None:
            family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
            # IPPROTO_TCP explicitly: asyncio only disables Nagle on sockets that say so, and
            # without TCP_NODELAY keep-alive answers stall ~40 ms on delayed ACKs.
            sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((self.host, self.port))
                sock.listen(BACKLOG)
            except OSError:
                sock.close()
                raise
            sock.setblocking(False)
            self.port = sock.getsockname()[1]
            self._socket = sock
        return self._socket

    def _make_server(self, *, timeout_graceful_shutdown: int) -> Any:
        import uvicorn

        from airflow_provider_iotda.simulator.app import SimulatorApp

        config = uvicorn.Config(
            SimulatorApp(self.state, self.auth, self.identity),
            http=_counting_protocol(_http_protocol_class(), self.state),
            loop="asyncio",
            lifespan="off",
            ws="none",
            interface="asgi3",
            backlog=BACKLOG,
            timeout_keep_alive=30,
            timeout_graceful_shutdown=timeout_graceful_shutdown,
            log_level=self.log_level,
            access_log=False,
            server_header=False,
            date_header=False,  # the app stamps Date on the gateway's (offset) clock
        )
        return uvicorn.Server(config)

    def start(self, timeout: float = 10.0) -> Self:
        """Start serving in a background thread; return when it accepts connections."""
        if self.running:
            return self
        sock = self.bind()
        self._server = self._make_server(timeout_graceful_shutdown=2)
        self._error = None
        server = self._server

        def run() -> None:
            try:
                server.run(sockets=[sock])
            except BaseException as exc:  # reported by start()
                self._error = exc

        self._thread = threading.Thread(target=run, name="iotda-simulator", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not server.started:
            if self._error is not None or not self._thread.is_alive():
                self._cleanup()
                raise RuntimeError(f"the simulator failed to start: {self._error!r}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the simulator did not start within {timeout} s")
            time.sleep(0.005)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop serving and close the socket."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive() and self._server is not None:
                self._server.force_exit = True
                self._thread.join(timeout)
        self._cleanup()

    def _cleanup(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None
        self._thread = None
        self._server = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def serve_forever(self, on_ready: Callable[[str], None] | None = None) -> None:
        """Serve in the calling (main) thread until SIGINT/SIGTERM; ``on_ready(url)`` once bound."""
        sock = self.bind()
        self._server = self._make_server(timeout_graceful_shutdown=5)
        if on_ready is not None:
            on_ready(self.url)
        try:
            self._server.run(sockets=[sock])
        finally:
            self._cleanup()

    # -- test controls ---------------------------------------------------------------------------

    def add_task(
        self,
        instance_id: str,
        type: str = "MODIFY",
        timeline: Sequence[object] | None = None,
        *,
        created: float = 0.0,
        task_id: str | None = None,
        target_config: Mapping[str, Any] | None = None,
        operate_window: Mapping[str, Any] | None = None,
        status_detail: str | None = None,
    ) -> str:
        """Add a task (and its instance if new); return the task ID.

        ``timeline`` is a list of ``(status, seconds_after_creation[, status_detail])``
        (default: SUCCESS at once); ``created`` is relative to the current simulated time
        (negative: in the past).
        """
        spec = make_task(
            type,
            timeline,
            created=created,
            task_id=task_id,
            target_config=target_config,
            operate_window=operate_window,
            status_detail=status_detail,
        )
        return self.state.add_task(instance_id, spec)

    def add_instance(self, instance_id: str, **settings: Any) -> None:
        """Add an instance with no tasks; or, with ``settings`` (the keys of a scenario
        instance: ``flavor``, ``operate_window``, ``status``, ``charge_mode``, ``name``,
        ``instance_type``, ``created``, ``resize``, ``retry``, ``tasks``), add or replace it."""
        if not settings:
            self.state.add_instance(instance_id)
            return
        self.state.put_instance(instance_from_dict({"instance_id": instance_id, **settings}))

    def plan_resize(
        self,
        instance_id: str,
        outcome: str = "SUCCESS",
        *,
        pending_seconds: float = 5.0,
        running_seconds: float = 20.0,
        status_detail: str | None = None,
    ) -> None:
        """How the instance's next resize runs: its MODIFY task is PENDING for
        ``pending_seconds`` (after the operate window opens, with ``delay=true``), RUNNING for
        ``running_seconds``, then ``outcome`` (``SUCCESS`` or ``FAILED`` with
        ``status_detail``).  Plans queue up; without one the instance's ``resize`` plan applies."""
        self.state.plan_resize(
            instance_id, _plan(outcome, pending_seconds, running_seconds, status_detail)
        )

    def plan_retry(
        self,
        instance_id: str,
        outcome: str = "SUCCESS",
        *,
        pending_seconds: float = 5.0,
        running_seconds: float = 20.0,
        status_detail: str | None = None,
    ) -> None:
        """How the next retry of one of the instance's FAILED tasks runs (see
        :meth:`plan_resize`)."""
        self.state.plan_retry(
            instance_id, _plan(outcome, pending_seconds, running_seconds, status_detail)
        )

    def instance(self, instance_id: str) -> dict[str, Any] | None:
        """The instance as ``ShowInstance`` would answer now (None when unknown)."""
        return self.state.show_instance(instance_id)

    def advance(self, seconds: float) -> dt.datetime:
        """Move simulated time forward by ``seconds``; return the new simulated time."""
        return self.state.advance(seconds)

    def now(self) -> dt.datetime:
        """The current simulated time."""
        return self.state.now()

    def set_faults(self, config: FaultConfig | None = None, /, **settings: Any) -> FaultConfig:
        """Replace the fault configuration: a :class:`FaultConfig` or its fields as keywords
        (``rates``, ``next_faults``, ``latency_ms``, ``latency_rate``, ``slow_seconds``,
        ``retry_after``); fields not given take their defaults."""
        if config is None:
            config = FaultConfig.from_dict(settings)
        elif settings:
            raise TypeError("pass either a FaultConfig or keyword settings, not both")
        self.state.set_faults(config)
        return config

    def clear_faults(self) -> None:
        """No more faults."""
        self.state.set_faults(FaultConfig())

    @property
    def counters(self) -> Counters:
        """A snapshot of the counters."""
        return self.state.counters()

    def stats(self) -> dict[str, Any]:
        """Counters, clock and faults as JSON-able data (what ``GET /_sim/stats`` returns)."""
        return self.state.stats()

    def tasks(self, instance_id: str) -> list[dict[str, Any]]:
        """Every task of an instance as the API would show it now, hidden ones included."""
        return self.state.all_tasks(instance_id)

    def reset(self) -> None:
        """Restart the clock, reload the scenario, restore the initial faults, zero counters;
        forget issued credentials and restore the clock offset and credential TTL."""
        self.state.reset()
        self.identity.reset()

    def set_clock_offset(self, seconds: float) -> None:
        """Put the gateway's clock (checks of X-Sdk-Date, ``Date`` answers, credential expiry)
        ``seconds`` ahead of this machine's (negative: behind)."""
        self.identity.set_clock_offset(seconds)

    def set_credential_ttl(self, seconds: float) -> None:
        """Lifetime of the temporary credentials issued from now on."""
        self.identity.set_credential_ttl(seconds)


def _plan(
    outcome: str, pending_seconds: float, running_seconds: float, status_detail: str | None
) -> RunPlan:
    """A resize or retry plan, checked as a scenario's ``resize`` / ``retry`` entry is."""
    return make_plan(
        {
            "outcome": outcome,
            "pending_seconds": pending_seconds,
            "running_seconds": running_seconds,
            "status_detail": status_detail,
        }
    )
