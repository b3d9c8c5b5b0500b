"""The simulator's state: simulated clock, instances and tasks, faults and counters.

Pure Python (no web framework); shared by the HTTP app (event-loop thread) and the Python API
(test thread) under one lock.
"""

from __future__ import annotations

import bisect
import datetime as dt
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_iotda.simulator.faults import FaultConfig, FaultDecision, FaultInjector
from airflow_provider_iotda.simulator.scenario import (
    TERMINAL_STATUSES,
    Scenario,
    ScenarioError,
    TaskSpec,
    validate_instance_id,
)

#: Only tasks created within this many (simulated) seconds are listed.
RETENTION_SECONDS = 180 * 86400
#: At most this many tasks (the newest) are listed per instance.
MAX_LISTED_TASKS = 20


def format_time(moment: dt.datetime) -> str:
    """``yyyy-MM-dd'T'HH:mm:ss.SSS'Z'`` in UTC."""
    utc = moment.astimezone(dt.UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


class SimClock:
    """Simulated time: starts at ``start``, runs ``time_factor`` times faster than the wall
    clock (0 freezes it) and jumps forward with :meth:`advance`."""

    def __init__(
        self,
        time_factor: float = 1.0,
        start: dt.datetime | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if time_factor < 0:
            raise ValueError("time_factor must be >= 0")
        self.time_factor = float(time_factor)
        self._monotonic = monotonic
        self._fixed_start = start
        self.start = start or dt.datetime.now(dt.UTC)
        self._anchor = monotonic()
        self._advanced = 0.0

    def restart(self) -> None:
        """Back to elapsed 0; the start moves to now unless a fixed start was given."""
        self.start = self._fixed_start or dt.datetime.now(dt.UTC)
        self._anchor = self._monotonic()
        self._advanced = 0.0

    def elapsed(self) -> float:
        """Simulated seconds since the start."""
        return (self._monotonic() - self._anchor) * self.time_factor + self._advanced

    def at(self, elapsed: float) -> dt.datetime:
        """The simulated datetime ``elapsed`` seconds after the start."""
        return self.start + dt.timedelta(seconds=elapsed)

    def now(self) -> dt.datetime:
        """The current simulated datetime."""
        return self.at(self.elapsed())

    def advance(self, seconds: float) -> None:
        """Move simulated time forward."""
        if seconds < 0:
            raise ValueError("cannot move time backwards")
        self._advanced += seconds


@dataclass
class SimTask:
    """A task placed on the simulated clock."""

    instance_id: str
    task_id: str
    spec: TaskSpec
    created: float  # simulated seconds since the clock's start
    create_time: str
    start_time: str | None
    end_time: str | None

    def visible_at(self, elapsed: float) -> bool:
        """Created already, and not older than the retention window."""
        age = elapsed - self.created
        return 0 <= age <= RETENTION_SECONDS

    def view(self, elapsed: float, *, progress: bool = False) -> dict[str, Any]:
        """The task as IoTDA returns it at simulated time ``elapsed``."""
        spec = self.spec
        age = elapsed - self.created
        status, detail = "PENDING", None
        for entry in spec.timeline:
            if entry.at > age:
                break
            status, detail = entry.status, entry.status_detail
        if detail is None and status in TERMINAL_STATUSES:
            detail = spec.status_detail
        start_offset, end_offset = spec.start_offset, spec.end_offset
        out: dict[str, Any] = {"task_id": self.task_id, "type": spec.type, "status": status}
        if detail is not None:
            out["status_detail"] = detail
        out["create_time"] = self.create_time
        out["start_time"] = (
            self.start_time if start_offset is not None and age >= start_offset else None
        )
        out["end_time"] = self.end_time if end_offset is not None and age >= end_offset else None
        out["target_config"] = None if spec.target_config is None else dict(spec.target_config)
        out["operate_window"] = None if spec.operate_window is None else dict(spec.operate_window)
        if progress:
            out["progress"] = _progress(status, age, start_offset, end_offset)
        return out


def _progress(status: str, age: float, start: float | None, end: float | None) -> int:
    if status in TERMINAL_STATUSES:
        return 100
    if status == "PENDING" or start is None:
        return 0
    if end is None or end <= start:
        return 50
    return int(min(99.0, max(0.0, (age - start) / (end - start) * 100)))


@dataclass(frozen=True)
class Counters:
    """A snapshot of the simulator's counters.

    ``requests``: API requests (everything but ``/_sim``); ``control_requests``: ``/_sim``
    requests; ``connections``: TCP connections opened; ``connections_open`` / ``connections_peak``:
    open now / most open at once; ``faults``: injected faults by kind (``latency`` included);
    ``paths``: API requests by path; ``statuses``: API responses by HTTP status (as strings;
    dropped connections have none); ``auth``: accepted requests by authentication method
    (``SDK-HMAC-SHA256``, ``V11-HMAC-SHA256``, ``token``).
    """

    requests: int = 0
    control_requests: int = 0
    connections: int = 0
    connections_open: int = 0
    connections_peak: int = 0
    faults: dict[str, int] = field(default_factory=dict)
    paths: dict[str, int] = field(default_factory=dict)
    statuses: dict[str, int] = field(default_factory=dict)
    auth: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form."""
        return {
            "requests": self.requests,
            "control_requests": self.control_requests,
            "connections": self.connections,
            "connections_open": self.connections_open,
            "connections_peak": self.connections_peak,
            "faults": dict(self.faults),
            "paths": dict(self.paths),
            "statuses": dict(self.statuses),
            "auth": dict(self.auth),
        }


class SimulatorState:
    """Instances, tasks, clock, faults and counters of one simulator."""

    def __init__(
        self,
        scenario: Scenario | None = None,
        *,
        time_factor: float = 1.0,
        seed: int | None = None,
        faults: FaultConfig | None = None,
        start: dt.datetime | None = None,
    ) -> None:
        self.scenario = scenario or Scenario()
        self.seed = seed
        self.initial_faults = faults or FaultConfig()
        self.clock = SimClock(time_factor, start)
        self.lock = threading.Lock()
        self.injector = FaultInjector(self.initial_faults, seed)
        self._id_rng = random.Random(None if seed is None else f"task-ids-{seed}")
        self._sequence = 0
        self._instances: dict[str, list[SimTask]] = {}  # tasks sorted by ascending task_id
        self._task_ids: set[str] = set()
        self._reset_counters()
        self._load_scenario()

    # -- setup -------------------------------------------------------------------------------

    def _reset_counters(self) -> None:
        # Connections open right now stay open across a reset.
        still_open = getattr(self, "_connections_open", 0)
        self._requests = 0
        self._control_requests = 0
        self._connections = 0
        self._connections_open = still_open
        self._connections_peak = still_open
        self._faults: Counter[str] = Counter()
        self._paths: Counter[str] = Counter()
        self._statuses: Counter[str] = Counter()
        self._auth: Counter[str] = Counter()

    def _load_scenario(self) -> None:
        self._instances = {}
        self._task_ids = set()
        self._sequence = 0
        pending: list[tuple[str, TaskSpec]] = []
        for instance in self.scenario.instances:
            self._instances[instance.instance_id] = []
            pending.extend((instance.instance_id, task) for task in instance.tasks)
        # Older tasks first, so that generated IDs grow with creation time.
        pending.sort(key=lambda item: item[1].created)
        for instance_id, spec in pending:
            self._insert(instance_id, spec, spec.created)

    def reset(self) -> None:
        """Restart the clock, reload the scenario, restore the initial faults, zero counters."""
        with self.lock:
            self.clock.restart()
            self._id_rng = random.Random(None if self.seed is None else f"task-ids-{self.seed}")
            self.injector = FaultInjector(self.initial_faults, self.seed)
            self._reset_counters()
            self._load_scenario()

    # -- tasks -------------------------------------------------------------------------------

    def _new_task_id(self, created: dt.datetime) -> str:
        millis = max(0, int(created.timestamp() * 1000))
        self._sequence = (self._sequence + 1) & 0xFFFF
        digits = f"{millis:012x}{self._sequence:04x}{self._id_rng.getrandbits(64):016x}"
        return f"{digits[:8]}-{digits[8:12]}-{digits[12:16]}-{digits[16:20]}-{digits[20:]}"

    def _insert(self, instance_id: str, spec: TaskSpec, created: float) -> SimTask:
        created_at = self.clock.at(created)
        task_id = spec.task_id or self._new_task_id(created_at)
        if task_id in self._task_ids:
            raise ScenarioError(f"task_id {task_id} is used twice")
        start, end = spec.start_offset, spec.end_offset
        task = SimTask(
            instance_id=instance_id,
            task_id=task_id,
            spec=spec,
            created=created,
            create_time=format_time(created_at),
            start_time=None if start is None else format_time(self.clock.at(created + start)),
            end_time=None if end is None else format_time(self.clock.at(created + end)),
        )
        tasks = self._instances.setdefault(instance_id, [])
        bisect.insort(tasks, task, key=lambda t: t.task_id)
        self._task_ids.add(task_id)
        return task

    def add_instance(self, instance_id: str) -> None:
        """Make ``instance_id`` known (with no tasks) if it is not yet."""
        validate_instance_id(instance_id)
        with self.lock:
            self._instances.setdefault(instance_id, [])

    def add_task(self, instance_id: str, spec: TaskSpec) -> str:
        """Add a task created ``spec.created`` seconds from now (simulated); return its ID."""
        validate_instance_id(instance_id)
        with self.lock:
            return self._insert(instance_id, spec, self.clock.elapsed() + spec.created).task_id

    def has_instance(self, instance_id: str) -> bool:
        """Whether the instance exists."""
        with self.lock:
            return instance_id in self._instances

    def instance_ids(self) -> list[str]:
        """The known instance IDs."""
        with self.lock:
            return list(self._instances)

    def list_tasks(
        self, instance_id: str, offset: int = 0, limit: int = 500, marker: str | None = None
    ) -> dict[str, Any] | None:
        """The list-tasks response body, or None when the instance does not exist."""
        with self.lock:
            tasks = self._instances.get(instance_id)
            if tasks is None:
                return None
            elapsed = self.clock.elapsed()
            visible: list[SimTask] = []
            for task in reversed(tasks):  # newest (largest ID) first
                if task.visible_at(elapsed):
                    visible.append(task)
                    if len(visible) == MAX_LISTED_TASKS:
                        break
            count = len(visible)
            if marker is not None:
                visible = [task for task in visible if task.task_id < marker]
            page = visible[offset : offset + limit]
            return {
                "page": {"count": count, "marker": page[-1].task_id if page else None},
                "tasks": [task.view(elapsed) for task in page],
            }

    def get_task(self, instance_id: str, task_id: str) -> dict[str, Any] | None:
        """The show-task body (with ``progress``), or None when there is no such visible task."""
        with self.lock:
            elapsed = self.clock.elapsed()
            for task in self._instances.get(instance_id, ()):
                if task.task_id == task_id and task.visible_at(elapsed):
                    return task.view(elapsed, progress=True)
            return None

    def all_tasks(self, instance_id: str) -> list[dict[str, Any]]:
        """Every task of an instance, newest first, including hidden (old or future) ones."""
        with self.lock:
            elapsed = self.clock.elapsed()
            return [
                task.view(elapsed, progress=True)
                for task in reversed(self._instances.get(instance_id, []))
            ]

    # -- time --------------------------------------------------------------------------------

    def advance(self, seconds: float) -> dt.datetime:
        """Move simulated time forward; return the new simulated now."""
        with self.lock:
            self.clock.advance(seconds)
            return self.clock.now()

    def now(self) -> dt.datetime:
        """The current simulated time."""
        with self.lock:
            return self.clock.now()

    # -- faults ------------------------------------------------------------------------------

    def set_faults(self, config: FaultConfig) -> None:
        """Replace the fault configuration."""
        with self.lock:
            self.injector.configure(config)

    def decide_fault(self) -> FaultDecision:
        """Draw the fault for one API request and count it."""
        with self.lock:
            decision = self.injector.decide()
            if decision.kind is not None:
                self._faults[decision.kind] += 1
            if decision.delay > 0:
                self._faults["latency"] += 1
            return decision

    # -- counters ----------------------------------------------------------------------------

    def record_request(self, path: str, *, control: bool) -> None:
        """Count one request."""
        with self.lock:
            if control:
                self._control_requests += 1
            else:
                self._requests += 1
                self._paths[path] += 1

    def record_status(self, status: int) -> None:
        """Count one API response by status."""
        with self.lock:
            self._statuses[str(status)] += 1

    def record_auth(self, method: str) -> None:
        """Count one accepted request by authentication method."""
        with self.lock:
            self._auth[method] += 1

    def connection_opened(self) -> None:
        """Count a new TCP connection."""
        with self.lock:
            self._connections += 1
            self._connections_open += 1
            self._connections_peak = max(self._connections_peak, self._connections_open)

    def connection_closed(self) -> None:
        """Count a closed TCP connection."""
        with self.lock:
            self._connections_open = max(0, self._connections_open - 1)

    def counters(self) -> Counters:
        """A snapshot of the counters."""
        with self.lock:
            return Counters(
                requests=self._requests,
                control_requests=self._control_requests,
                connections=self._connections,
                connections_open=self._connections_open,
                connections_peak=self._connections_peak,
                faults=dict(self._faults),
                paths=dict(self._paths),
                statuses=dict(self._statuses),
                auth=dict(self._auth),
            )

    def stats(self) -> dict[str, Any]:
        """Counters plus the clock and the fault configuration, as JSON-able data."""
        counters = self.counters().to_dict()
        with self.lock:
            counters["clock"] = {
                "now": format_time(self.clock.now()),
                "start": format_time(self.clock.start),
                "elapsed": self.clock.elapsed(),
                "time_factor": self.clock.time_factor,
            }
            counters["fault_config"] = self.injector.config.to_dict()
            counters["pending_faults"] = self.injector.pending
        return counters
