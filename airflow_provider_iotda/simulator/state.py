"""The simulator's state: simulated clock, instances and tasks, faults and counters.

Pure Python (no web framework); shared by the HTTP app (event-loop thread) and the Python API
(test thread) under one lock.
"""

from __future__ import annotations

import bisect
import dataclasses
import datetime as dt
import random
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_iotda.models import format_api_time
from airflow_provider_iotda.simulator.faults import FaultConfig, FaultDecision, FaultInjector
from airflow_provider_iotda.simulator.scenario import (
    TERMINAL_STATUSES,
    InstanceSpec,
    RunPlan,
    Scenario,
    ScenarioError,
    TaskSpec,
    TimelineEntry,
    validate_instance_id,
)

#: Only tasks created within this many (simulated) seconds are listed.
RETENTION_SECONDS = 180 * 86400
#: At most this many tasks (the newest) are listed per instance.
MAX_LISTED_TASKS = 20


#: ``yyyy-MM-dd'T'HH:mm:ss.SSS'Z'`` in UTC: the format the provider reads back.
format_time = format_api_time


def format_instance_time(moment: dt.datetime) -> str:
    """``yyyy-MM-dd'T'HH:mm:ss'Z'`` in UTC, as the instance API writes times."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def seconds_until_window(moment: dt.datetime, window: Mapping[str, str]) -> float:
    """Seconds from ``moment`` until the operate window (UTC ``HH:mm``) is open; 0 inside it.

    A window whose end is before its start spans midnight.
    """
    utc = moment.astimezone(dt.UTC)
    midnight = utc.replace(hour=0, minute=0, second=0, microsecond=0)
    now = (utc - midnight).total_seconds()
    start_h, start_m = (int(part) for part in window["start_time"].split(":"))
    end_h, end_m = (int(part) for part in window["end_time"].split(":"))
    start, end = start_h * 3600 + start_m * 60, end_h * 3600 + end_m * 60
    inside = start <= now < end if start < end else (now >= start or now < end)
    if inside:
        return 0.0
    return (start - now) % 86400


@dataclass(frozen=True)
class Refusal:
    """An API call the simulated service refuses: HTTP status, IoTDA error code, message."""

    status: int
    code: str
    message: str


#: The simulator's own error codes (IoTDA's real codes for these are not documented).
INSTANCE_NOT_ACTIVE = "IOTDA.014002"
TASK_NOT_FAILED = "IOTDA.014003"
SAME_FLAVOR = "IOTDA.014004"
NO_OPERATE_WINDOW = "IOTDA.014005"


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

    def status_at(self, elapsed: float) -> tuple[str, str | None]:
        """Status and status_detail at simulated time ``elapsed``."""
        age = elapsed - self.created
        status, detail = "PENDING", None
        for entry in self.spec.timeline:
            if entry.at > age:
                break
            status, detail = entry.status, entry.status_detail
        if detail is None and status in TERMINAL_STATUSES:
            detail = self.spec.status_detail
        return status, detail

    def retime(self, clock: SimClock) -> None:
        """Recompute ``start_time`` / ``end_time`` from the spec's timeline."""
        start, end = self.spec.start_offset, self.spec.end_offset
        self.start_time = None if start is None else format_time(clock.at(self.created + start))
        self.end_time = None if end is None else format_time(clock.at(self.created + end))

    def visible_at(self, elapsed: float) -> bool:
        """Created already, and not older than the retention window."""
        age = elapsed - self.created
        return 0 <= age <= RETENTION_SECONDS

    def view(self, elapsed: float, *, progress: bool = False) -> dict[str, Any]:
        """The task as IoTDA returns it at simulated time ``elapsed``."""
        spec = self.spec
        age = elapsed - self.created
        status, detail = self.status_at(elapsed)
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
    ``paths``: API requests by path; ``methods``: API requests by HTTP method; ``statuses``:
    API responses by HTTP status (as strings; dropped connections have none); ``auth``:
    accepted requests by authentication method (``SDK-HMAC-SHA256``, ``V11-HMAC-SHA256``,
    ``token``).
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
    methods: dict[str, int] = field(default_factory=dict)

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
            "methods": dict(self.methods),
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
        self._specs: dict[str, InstanceSpec] = {}
        self._next_resizes: dict[str, deque[RunPlan]] = {}
        self._next_retries: dict[str, deque[RunPlan]] = {}
        self._orders: dict[str, str] = {}
        self._order_rng = random.Random(None if seed is None else f"orders-{seed}")
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
        self._methods: Counter[str] = Counter()
        self._statuses: Counter[str] = Counter()
        self._auth: Counter[str] = Counter()

    def _load_scenario(self) -> None:
        self._instances = {}
        self._specs = {}
        self._next_resizes = {}
        self._next_retries = {}
        self._orders = {}
        self._order_rng = random.Random(None if self.seed is None else f"orders-{self.seed}")
        self._task_ids = set()
        self._sequence = 0
        pending: list[tuple[str, TaskSpec]] = []
        for instance in self.scenario.instances:
            self._instances[instance.instance_id] = []
            self._specs[instance.instance_id] = instance
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
        self._specs.setdefault(instance_id, InstanceSpec(instance_id))
        bisect.insort(tasks, task, key=lambda t: t.task_id)
        self._task_ids.add(task_id)
        return task

    def add_instance(self, instance_id: str) -> None:
        """Make ``instance_id`` known (with no tasks) if it is not yet."""
        validate_instance_id(instance_id)
        with self.lock:
            self._instances.setdefault(instance_id, [])
            self._specs.setdefault(instance_id, InstanceSpec(instance_id))

    def put_instance(self, spec: InstanceSpec) -> None:
        """Add an instance, or replace what is known about it (its tasks stay; the spec's
        ``tasks`` are added, created relative to now)."""
        with self.lock:
            self._instances.setdefault(spec.instance_id, [])
            self._specs[spec.instance_id] = dataclasses.replace(spec, tasks=())
            elapsed = self.clock.elapsed()
            for task in sorted(spec.tasks, key=lambda t: t.created):
                self._insert(spec.instance_id, task, elapsed + task.created)

    def plan_resize(self, instance_id: str, plan: RunPlan) -> None:
        """How the instance's next resize runs (plans queue up; then the instance's default)."""
        validate_instance_id(instance_id)
        with self.lock:
            self._next_resizes.setdefault(instance_id, deque()).append(plan)

    def plan_retry(self, instance_id: str, plan: RunPlan) -> None:
        """How the next retry of one of the instance's tasks runs (plans queue up)."""
        validate_instance_id(instance_id)
        with self.lock:
            self._next_retries.setdefault(instance_id, deque()).append(plan)

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

    # -- instances ---------------------------------------------------------------------------

    def _instance_view(self, instance_id: str, elapsed: float, *, full: bool) -> dict[str, Any]:
        """The instance as the API shows it at ``elapsed`` (caller holds the lock).

        The flavor is the scenario's, changed by every MODIFY task that has succeeded (in order
        of creation); while the newest MODIFY runs the status is MODIFYING, after it failed
        MODIFY_FAILED (when the instance is otherwise ACTIVE).
        """
        spec = self._specs[instance_id]
        flavor = dict(spec.flavor)
        status = spec.status
        updated = spec.created
        modifies = sorted(
            (
                t
                for t in self._instances.get(instance_id, ())
                if t.spec.type == "MODIFY" and t.created <= elapsed
            ),
            key=lambda t: (t.created, t.task_id),
        )
        latest: str | None = None
        for task in modifies:
            latest, _ = task.status_at(elapsed)
            end = task.spec.end_offset
            if latest == "SUCCESS":
                target = (task.spec.target_config or {}).get("flavor")
                if isinstance(target, Mapping):
                    flavor = {"type": target.get("type"), "size": target.get("size")}
            if end is not None and latest in TERMINAL_STATUSES:
                updated = max(updated, task.created + end)
            else:
                updated = max(updated, task.created)
        if status == "ACTIVE" and latest in ("PENDING", "RUNNING"):
            status = "MODIFYING"
        elif status == "ACTIVE" and latest == "FAILED":
            status = "MODIFY_FAILED"
        out: dict[str, Any] = {
            "instance_type": spec.instance_type,
            "instance_id": instance_id,
            "name": spec.name or f"iotda-{instance_id[:8]}",
            "charge_mode": spec.charge_mode,
            "flavor": flavor,
            "status": status,
            "create_time": format_instance_time(self.clock.at(spec.created)),
            "update_time": format_instance_time(self.clock.at(min(updated, elapsed))),
            "enterprise_project_id": "0",
        }
        if full:
            out.update(
                {
                    "region_id": "cn-north-4",
                    "description": None,
                    "access_infos": [],
                    "tags": [],
                    "order_id": self._orders.get(instance_id),
                    "operate_window": None
                    if spec.operate_window is None
                    else dict(spec.operate_window),
                }
            )
        return out

    def show_instance(self, instance_id: str) -> dict[str, Any] | None:
        """The show-instance body, or None when the instance does not exist."""
        with self.lock:
            if instance_id not in self._instances:
                return None
            return self._instance_view(instance_id, self.clock.elapsed(), full=True)

    def list_instances(
        self,
        offset: int = 0,
        limit: int = 500,
        marker: str | None = None,
        name: str | None = None,
        instance_type: str | None = None,
    ) -> dict[str, Any]:
        """The list-instances body: newest (largest ID) first, ``marker`` = last ID."""
        with self.lock:
            elapsed = self.clock.elapsed()
            ids = sorted(self._instances, reverse=True)
            views = [self._instance_view(i, elapsed, full=False) for i in ids]
            if name is not None:
                views = [v for v in views if name in v["name"]]
            if instance_type is not None:
                views = [v for v in views if v["instance_type"] == instance_type]
            count = len(views)
            if marker is not None:
                views = [v for v in views if v["instance_id"] < marker]
            page = views[offset : offset + limit]
            return {
                "count": count,
                "marker": page[-1]["instance_id"] if page else None,
                "instances": page,
            }

    def _new_order_id(self, moment: dt.datetime) -> str:
        return f"CS{moment:%y%m%d%H%M}{self._order_rng.getrandbits(24):06X}"

    def resize(
        self, instance_id: str, flavor: Mapping[str, Any], *, delay: bool
    ) -> dict[str, Any] | Refusal | None:
        """Order a resize: a MODIFY task starts (or waits for the operate window with
        ``delay``); the answer body, a :class:`Refusal`, or None for an unknown instance."""
        with self.lock:
            if instance_id not in self._instances:
                return None
            elapsed = self.clock.elapsed()
            view = self._instance_view(instance_id, elapsed, full=True)
            if view["status"] != "ACTIVE":
                return Refusal(
                    400,
                    INSTANCE_NOT_ACTIVE,
                    f"The instance is {view['status']}; its specification can be changed only "
                    "when it is ACTIVE.",
                )
            current = view["flavor"]
            if current.get("type") == flavor["type"] and current.get("size") == flavor["size"]:
                return Refusal(
                    400,
                    SAME_FLAVOR,
                    f"The instance already has flavor {flavor['type']} x {flavor['size']}.",
                )
            spec = self._specs[instance_id]
            window = spec.operate_window
            if delay and window is None:
                return Refusal(
                    400,
                    NO_OPERATE_WINDOW,
                    "delay=true needs an operate window; the instance has none.",
                )
            queued = self._next_resizes.get(instance_id)
            plan = queued.popleft() if queued else spec.resize
            wait = seconds_until_window(self.clock.at(elapsed), window) if delay and window else 0
            task = TaskSpec(
                type="MODIFY",
                timeline=plan.timeline(0.0, wait),
                target_config={
                    "flavor": {"type": flavor["type"], "size": flavor["size"]},
                    "charge_mode": spec.charge_mode,
                },
                operate_window=None if window is None else dict(window),
            )
            self._insert(instance_id, task, elapsed)
            order_id = self._new_order_id(self.clock.at(elapsed))
            self._orders[instance_id] = order_id
            return {"order_id": order_id}

    def retry_task(self, instance_id: str, task_id: str) -> dict[str, Any] | Refusal | None:
        """Retry a FAILED task (it runs again as the instance's retry plan says); the task's
        show body, a :class:`Refusal`, or None when there is no such task."""
        with self.lock:
            elapsed = self.clock.elapsed()
            task = next(
                (
                    t
                    for t in self._instances.get(instance_id, ())
                    if t.task_id == task_id and t.visible_at(elapsed)
                ),
                None,
            )
            if task is None:
                return None
            status, _ = task.status_at(elapsed)
            if status != "FAILED":
                return Refusal(
                    400,
                    TASK_NOT_FAILED,
                    f"The task is {status}; only a FAILED task can be retried.",
                )
            queued = self._next_retries.get(instance_id)
            plan = queued.popleft() if queued else self._specs[instance_id].retry
            age = elapsed - task.created
            timeline = (TimelineEntry("PENDING", 0.0), *plan.timeline(age))
            task.spec = dataclasses.replace(task.spec, timeline=timeline, status_detail=None)
            task.retime(self.clock)
            return task.view(elapsed, progress=True)

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

    def record_request(self, path: str, *, control: bool, method: str = "GET") -> None:
        """Count one request."""
        with self.lock:
            if control:
                self._control_requests += 1
            else:
                self._requests += 1
                self._paths[path] += 1
                self._methods[method] += 1

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
                methods=dict(self._methods),
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
