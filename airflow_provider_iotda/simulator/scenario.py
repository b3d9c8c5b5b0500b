"""Scenario model: the instances and tasks a simulator starts with.

A scenario is plain JSON (or the equivalent dict)::

    {
      "instances": [
        {
          "instance_id": "6b6f5c3e-1f1a-4e55-9d5a-0123456789ab",
          "tasks": [
            {
              "type": "MODIFY",
              "created": 0,
              "timeline": [["PENDING", 0], ["RUNNING", 5], ["SUCCESS", 20]],
              "target_config": {"flavor": {"type": "iotda.standard.s3", "size": 2},
                                "charge_mode": "postPaid"},
              "operate_window": {"start_time": "18:00", "end_time": "22:00"}
            }
          ]
        }
      ]
    }

``created`` is in seconds relative to the simulator's start (negative for history), and each
timeline entry is ``[status, seconds_after_creation]`` or ``[status, seconds, status_detail]``
(or ``{"status": ..., "at": ..., "status_detail": ...}``).

An instance may also describe itself and how the simulator runs its resizes and task retries
(every key optional)::

    "name": "factory-east", "instance_type": "standard", "charge_mode": "postPaid",
    "status": "ACTIVE", "flavor": {"type": "iotda.standard.s2", "size": 2},
    "operate_window": {"start_time": "18:00", "end_time": "22:00"}, "created": -8640000,
    "resize": {"outcome": "SUCCESS", "pending_seconds": 5, "running_seconds": 20},
    "retry": {"outcome": "SUCCESS", "pending_seconds": 2, "running_seconds": 10}

``flavor`` is the specification before any of the instance's MODIFY tasks; each MODIFY that
has succeeded (by simulated time) applies its ``target_config.flavor``.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from airflow_provider_iotda import fields, models

TASK_TYPES = frozenset(models.TASK_TYPES)
STATUSES = frozenset(models.TASK_STATUSES)
TERMINAL_STATUSES = frozenset({"SUCCESS", "FAILED"})
#: Instance statuses a scenario may set (MODIFYING / MODIFY_FAILED come from MODIFY tasks).
INSTANCE_STATUSES = frozenset({"CREATING", "ACTIVE", "FROZEN", "TRADING", "FAILED"})
INSTANCE_TYPES = frozenset({"standard", "enterprise"})
CHARGE_MODES = frozenset({"prePaid", "postPaid"})
DEFAULT_FLAVOR: Mapping[str, Any] = {"type": "iotda.standard.s1", "size": 1}
#: When an instance was created if the scenario does not say (seconds before the start).
DEFAULT_INSTANCE_AGE = 200 * 86400.0

#: The patterns of ``fields.py`` (one table for the provider, its form and the simulator).
INSTANCE_ID_PATTERN = fields.INSTANCE_ID.compiled
TASK_ID_PATTERN = fields.TASK_ID.compiled
FLAVOR_TYPE_PATTERN = fields.FLAVOR_TYPE.compiled
WINDOW_TIME_PATTERN = fields.WINDOW_TIME.compiled

DEMO_SCENARIO_PATH = Path(__file__).with_name("demo_scenario.json")


class ScenarioError(ValueError):
    """A scenario (or a task added at run time) is not valid."""


@dataclass(frozen=True)
class TimelineEntry:
    """The task reaches ``status`` ``at`` seconds after its creation."""

    status: str
    at: float
    status_detail: str | None = None


@dataclass(frozen=True)
class TaskSpec:
    """One task as described by a scenario or by :meth:`IoTDASimulator.add_task`."""

    type: str
    timeline: tuple[TimelineEntry, ...]
    created: float = 0.0
    task_id: str | None = None
    target_config: Mapping[str, Any] | None = None
    operate_window: Mapping[str, Any] | None = None
    status_detail: str | None = None

    @property
    def start_offset(self) -> float | None:
        """Seconds after creation at which the task first leaves PENDING (None: never)."""
        return next((e.at for e in self.timeline if e.status != "PENDING"), None)

    @property
    def end_offset(self) -> float | None:
        """Seconds after creation at which the task reaches SUCCESS/FAILED (None: never)."""
        return next((e.at for e in self.timeline if e.status in TERMINAL_STATUSES), None)


@dataclass(frozen=True)
class RunPlan:
    """How the simulator runs a task it creates (a resize) or restarts (a retry): PENDING for
    ``pending_seconds``, RUNNING for ``running_seconds``, then ``outcome``."""

    outcome: str = "SUCCESS"
    pending_seconds: float = 5.0
    running_seconds: float = 20.0
    status_detail: str | None = None

    def timeline(self, start: float, wait: float = 0.0) -> tuple[TimelineEntry, ...]:
        """The entries, ``start`` seconds after the task's creation, after ``wait`` more."""
        running = start + wait + self.pending_seconds
        detail = self.status_detail
        if detail is None and self.outcome == "FAILED":
            detail = "The specification change failed (simulated)."
        return (
            TimelineEntry("PENDING", start),
            TimelineEntry("RUNNING", running),
            TimelineEntry(self.outcome, running + self.running_seconds, detail),
        )


@dataclass(frozen=True)
class InstanceSpec:
    """An instance, what ``ShowInstance`` says about it, its tasks and its run plans."""

    instance_id: str
    tasks: tuple[TaskSpec, ...] = ()
    name: str | None = None
    instance_type: str = "standard"
    charge_mode: str = "postPaid"
    status: str = "ACTIVE"
    flavor: Mapping[str, Any] = field(default_factory=lambda: dict(DEFAULT_FLAVOR))
    operate_window: Mapping[str, Any] | None = None
    created: float = -DEFAULT_INSTANCE_AGE
    resize: RunPlan = field(default_factory=RunPlan)
    retry: RunPlan = field(default_factory=RunPlan)


_INSTANCE_KEYS = frozenset(
    {
        "instance_id",
        "tasks",
        "name",
        "instance_type",
        "charge_mode",
        "status",
        "flavor",
        "operate_window",
        "created",
        "resize",
        "retry",
    }
)


def make_flavor(raw: object, where: str = "flavor") -> dict[str, Any]:
    """A flavor ``{"type": ..., "size": ...}`` (``fields.FLAVOR_TYPE``, ``fields.FLAVOR_SIZE``)."""
    if not isinstance(raw, Mapping):
        raise ScenarioError(f"{where} must be an object with type and size")
    unknown = set(raw) - {"type", "size"}
    if unknown:
        raise ScenarioError(f"{where}: unknown keys {', '.join(sorted(unknown))}")
    return {
        "type": _checked(fields.FLAVOR_TYPE.check, raw.get("type"), f"{where}.type"),
        "size": _checked(flavor_size, raw.get("size"), f"{where}.size"),
    }


def make_window(raw: object, where: str = "operate_window") -> dict[str, str] | None:
    """An operate window ``{"start_time": "HH:mm", "end_time": "HH:mm"}`` (UTC) or None."""
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise ScenarioError(f"{where} must be an object with start_time and end_time, or null")
    unknown = set(raw) - {"start_time", "end_time"}
    if unknown:
        raise ScenarioError(f"{where}: unknown keys {', '.join(sorted(unknown))}")
    out: dict[str, str] = {}
    for key in ("start_time", "end_time"):
        out[key] = _checked(fields.WINDOW_TIME.check, raw.get(key), f"{where}.{key}")
    if out["start_time"] == out["end_time"]:
        raise ScenarioError(f"{where}: start_time and end_time must differ")
    return out


def make_plan(raw: object, where: str = "plan") -> RunPlan:
    """A :class:`RunPlan` from ``{"outcome", "pending_seconds", "running_seconds",
    "status_detail"}`` (every key optional)."""
    if isinstance(raw, RunPlan):
        return raw
    if raw is None:
        return RunPlan()
    if not isinstance(raw, Mapping):
        raise ScenarioError(f"{where} must be an object")
    unknown = set(raw) - {"outcome", "pending_seconds", "running_seconds", "status_detail"}
    if unknown:
        raise ScenarioError(f"{where}: unknown keys {', '.join(sorted(unknown))}")
    outcome = raw.get("outcome", "SUCCESS")
    if outcome not in TERMINAL_STATUSES:
        raise ScenarioError(f"{where}.outcome must be SUCCESS or FAILED, got {outcome!r}")
    pending = _number(raw.get("pending_seconds", 5.0), f"{where}.pending_seconds")
    running = _number(raw.get("running_seconds", 20.0), f"{where}.running_seconds")
    if pending < 0 or running < 0:
        raise ScenarioError(f"{where}: durations must be >= 0 seconds")
    detail = raw.get("status_detail")
    if detail is not None and not isinstance(detail, str):
        raise ScenarioError(f"{where}.status_detail must be a string")
    return RunPlan(str(outcome), pending, running, detail)


def _choice(
    raw: Mapping[str, Any], key: str, allowed: frozenset[str], default: str, where: str
) -> str:
    value = raw.get(key, default)
    if value not in allowed:
        raise ScenarioError(
            f"{where}.{key} must be one of {', '.join(sorted(allowed))}, got {value!r}"
        )
    return str(value)


def instance_from_dict(raw: object, where: str = "instance") -> InstanceSpec:
    """Build an instance (and its tasks) from its JSON form."""
    if not isinstance(raw, Mapping):
        raise ScenarioError(f"{where} must be an object")
    unknown = set(raw) - _INSTANCE_KEYS
    if unknown:
        raise ScenarioError(f"{where}: unknown keys {', '.join(sorted(unknown))}")
    instance_id = validate_instance_id(raw.get("instance_id"))
    raw_tasks = raw.get("tasks", [])
    if not isinstance(raw_tasks, list):
        raise ScenarioError(f"{where}.tasks must be a list")
    tasks = tuple(
        task_from_dict(task, where=f"{where}.tasks.{t}") for t, task in enumerate(raw_tasks)
    )
    name = raw.get("name")
    if name is not None and (not isinstance(name, str) or not 1 <= len(name) <= 64):
        raise ScenarioError(f"{where}.name must be a string of 1-64 characters")
    return InstanceSpec(
        instance_id,
        tasks,
        name=name,
        instance_type=_choice(raw, "instance_type", INSTANCE_TYPES, "standard", where),
        charge_mode=_choice(raw, "charge_mode", CHARGE_MODES, "postPaid", where),
        status=_choice(raw, "status", INSTANCE_STATUSES, "ACTIVE", where),
        flavor=make_flavor(raw.get("flavor", DEFAULT_FLAVOR), f"{where}.flavor"),
        operate_window=make_window(raw.get("operate_window"), f"{where}.operate_window"),
        created=_number(raw.get("created", -DEFAULT_INSTANCE_AGE), f"{where}.created"),
        resize=make_plan(raw.get("resize"), f"{where}.resize"),
        retry=make_plan(raw.get("retry"), f"{where}.retry"),
    )


@dataclass(frozen=True)
class Scenario:
    """The instances (with their tasks) a simulator starts with."""

    instances: tuple[InstanceSpec, ...] = field(default_factory=tuple)

    @classmethod
    def load(cls, source: ScenarioSource) -> Scenario:
        """Build a scenario from a path, a JSON string, a dict, a Scenario or None (empty)."""
        if source is None:
            return cls()
        if isinstance(source, Scenario):
            return source
        if isinstance(source, Path):
            return cls.from_dict(_read_json(source))
        if isinstance(source, str):
            text = source.strip()
            if text.startswith("{"):
                return cls.from_dict(_parse_json(text, "scenario text"))
            return cls.from_dict(_read_json(Path(source)))
        return cls.from_dict(source)

    @classmethod
    def demo(cls) -> Scenario:
        """The demo scenario shipped with the package (``demo_scenario.json``)."""
        return cls.from_dict(_read_json(DEMO_SCENARIO_PATH))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Scenario:
        """Validate and build a scenario from its JSON form."""
        if not isinstance(data, Mapping):
            raise ScenarioError("a scenario must be a JSON object with an 'instances' list")
        unknown = set(data) - {"instances", "description"}
        if unknown:
            raise ScenarioError(f"unknown scenario keys: {', '.join(sorted(unknown))}")
        raw_instances = data.get("instances", [])
        if not isinstance(raw_instances, list):
            raise ScenarioError("'instances' must be a list")
        instances: list[InstanceSpec] = []
        seen: set[str] = set()
        for index, raw in enumerate(raw_instances):
            instance = instance_from_dict(raw, f"instances.{index}")
            if instance.instance_id in seen:
                raise ScenarioError(f"instance {instance.instance_id} is listed twice")
            seen.add(instance.instance_id)
            instances.append(instance)
        return cls(tuple(instances))


ScenarioSource = Scenario | Mapping[str, Any] | str | Path | None


def _parse_json(text: str, what: str) -> Mapping[str, Any]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ScenarioError(f"{what} is not valid JSON: {exc}") from exc
    if not isinstance(data, Mapping):
        raise ScenarioError(f"{what} must be a JSON object")
    return data


def _read_json(path: Path) -> Mapping[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScenarioError(f"cannot read scenario file {path}: {exc}") from exc
    return _parse_json(text, f"scenario file {path}")


def flavor_size(value: object, where: str) -> int:
    """A flavor's size in a scenario: a JSON number (``fields.FLAVOR_SIZE``)."""
    return fields.FLAVOR_SIZE.check(value, where, digits=False)


def _checked(check: Callable[[object, str], Any], value: object, where: str) -> Any:
    """A check of ``fields.py`` whose ``ValueError`` becomes a :class:`ScenarioError`."""
    try:
        return check(value, where)
    except ValueError as exc:
        raise ScenarioError(str(exc)) from None


def validate_instance_id(value: object) -> str:
    """Return ``value`` if it is a valid instance ID (``fields.INSTANCE_ID``)."""
    return str(_checked(fields.INSTANCE_ID.check, value, "instance_id"))


def validate_task_id(value: object) -> str:
    """Return ``value`` if it is a valid task ID (``fields.TASK_ID``)."""
    return str(_checked(fields.TASK_ID.check, value, "task_id"))


def _number(value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ScenarioError(f"{what} must be a number, got {value!r}")
    return float(value)


def _entry(raw: object, where: str) -> TimelineEntry:
    if isinstance(raw, TimelineEntry):
        return raw
    detail: object = None
    if isinstance(raw, Mapping):
        unknown = set(raw) - {"status", "at", "status_detail"}
        if unknown:
            raise ScenarioError(f"{where}: unknown keys {', '.join(sorted(unknown))}")
        status, at, detail = raw.get("status"), raw.get("at", 0), raw.get("status_detail")
    elif isinstance(raw, list | tuple) and len(raw) in (2, 3):
        status, at = raw[0], raw[1]
        if len(raw) == 3:
            detail = raw[2]
    else:
        raise ScenarioError(
            f"{where} must be a list of a status and seconds (and a detail) or an object"
        )
    if status not in STATUSES:
        raise ScenarioError(
            f"{where}: status must be one of {', '.join(sorted(STATUSES))}, got {status!r}"
        )
    if detail is not None and not isinstance(detail, str):
        raise ScenarioError(f"{where}: status_detail must be a string")
    seconds = _number(at, f"{where} time")
    if seconds < 0:
        raise ScenarioError(f"{where}: time must be >= 0 (seconds after creation)")
    return TimelineEntry(str(status), seconds, detail)


def make_timeline(
    raw: Iterable[object] | None, where: str = "timeline"
) -> tuple[TimelineEntry, ...]:
    """Validate a timeline; ``None`` means an already finished task (SUCCESS at 0 s)."""
    if raw is None:
        return (TimelineEntry("SUCCESS", 0.0),)
    if isinstance(raw, str | bytes | Mapping):
        raise ScenarioError(f"{where} must be a list of entries")
    entries = tuple(_entry(item, f"{where}.{i}") for i, item in enumerate(raw))
    if not entries:
        raise ScenarioError(f"{where} must not be empty")
    for previous, current in itertools.pairwise(entries):
        if current.at < previous.at:
            raise ScenarioError(f"{where}: times must not decrease")
        if previous.status in TERMINAL_STATUSES:
            raise ScenarioError(f"{where}: nothing may follow {previous.status}")
    return entries


def _optional_object(value: object, what: str) -> Mapping[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ScenarioError(f"{what} must be an object or null")
    return dict(value)


def make_task(
    type: str,
    timeline: Sequence[object] | None = None,
    *,
    created: float = 0.0,
    task_id: str | None = None,
    target_config: Mapping[str, Any] | None = None,
    operate_window: Mapping[str, Any] | None = None,
    status_detail: str | None = None,
    where: str = "task",
) -> TaskSpec:
    """Validate the parts of a task and build a :class:`TaskSpec`."""
    if type not in TASK_TYPES:
        raise ScenarioError(
            f"{where}: type must be one of {', '.join(sorted(TASK_TYPES))}, got {type!r}"
        )
    if status_detail is not None and not isinstance(status_detail, str):
        raise ScenarioError(f"{where}: status_detail must be a string")
    return TaskSpec(
        type=type,
        timeline=make_timeline(timeline, f"{where}.timeline"),
        created=_number(created, f"{where}.created"),
        task_id=None if task_id is None else validate_task_id(task_id),
        target_config=_optional_object(target_config, f"{where}.target_config"),
        operate_window=_optional_object(operate_window, f"{where}.operate_window"),
        status_detail=status_detail,
    )


_TASK_KEYS = frozenset(
    {"type", "timeline", "created", "task_id", "target_config", "operate_window", "status_detail"}
)


def task_from_dict(raw: object, where: str = "task") -> TaskSpec:
    """Build a task from its JSON form (as in a scenario or the control endpoint)."""
    if not isinstance(raw, Mapping):
        raise ScenarioError(f"{where} must be an object")
    unknown = set(raw) - _TASK_KEYS
    if unknown:
        raise ScenarioError(f"{where}: unknown keys {', '.join(sorted(unknown))}")
    return make_task(
        raw.get("type", ""),
        raw.get("timeline"),
        created=raw.get("created", 0.0),
        task_id=raw.get("task_id"),
        target_config=raw.get("target_config"),
        operate_window=raw.get("operate_window"),
        status_detail=raw.get("status_detail"),
        where=where,
    )
