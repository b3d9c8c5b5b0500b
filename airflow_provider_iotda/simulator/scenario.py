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
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TASK_TYPES = frozenset(
    {
        "CREATE",
        "MODIFY",
        "DELETE",
        "FREEZE",
        "UNFREEZE",
        "UPDATE_ACCESS_CONFIG",
        "UPDATE_ALLOW_LISTS",
        "OPEN_SNAT",
    }
)
STATUSES = frozenset({"PENDING", "RUNNING", "SUCCESS", "FAILED"})
TERMINAL_STATUSES = frozenset({"SUCCESS", "FAILED"})

INSTANCE_ID_PATTERN = re.compile(r"^[a-f0-9-]{1,36}$")
TASK_ID_PATTERN = re.compile(r"^[a-f0-9-]{1,64}$")

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
class InstanceSpec:
    """An instance and its tasks."""

    instance_id: str
    tasks: tuple[TaskSpec, ...] = ()


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
            if not isinstance(raw, Mapping):
                raise ScenarioError(f"instances[{index}] must be an object")
            instance_id = validate_instance_id(raw.get("instance_id"))
            if instance_id in seen:
                raise ScenarioError(f"instance {instance_id} is listed twice")
            seen.add(instance_id)
            raw_tasks = raw.get("tasks", [])
            if not isinstance(raw_tasks, list):
                raise ScenarioError(f"instances[{index}].tasks must be a list")
            tasks = tuple(
                task_from_dict(task, where=f"instances[{index}].tasks[{t}]")
                for t, task in enumerate(raw_tasks)
            )
            instances.append(InstanceSpec(instance_id, tasks))
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


def validate_instance_id(value: object) -> str:
    """Return ``value`` if it is a valid instance ID (1-36 chars of ``[a-f0-9-]``)."""
    if not isinstance(value, str) or not INSTANCE_ID_PATTERN.match(value):
        raise ScenarioError(f"instance_id must be 1-36 characters of [a-f0-9-], got {value!r}")
    return value


def validate_task_id(value: object) -> str:
    """Return ``value`` if it is a valid task ID (1-64 chars of ``[a-f0-9-]``)."""
    if not isinstance(value, str) or not TASK_ID_PATTERN.match(value):
        raise ScenarioError(f"task_id must be 1-64 characters of [a-f0-9-], got {value!r}")
    return value


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
            f"{where} must be [status, seconds], [status, seconds, detail] or an object"
        )
    if status not in STATUSES:
        raise ScenarioError(f"{where}: status must be one of {sorted(STATUSES)}, got {status!r}")
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
    entries = tuple(_entry(item, f"{where}[{i}]") for i, item in enumerate(raw))
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
        raise ScenarioError(f"{where}: type must be one of {sorted(TASK_TYPES)}, got {type!r}")
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
