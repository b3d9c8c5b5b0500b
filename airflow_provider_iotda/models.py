"""Typed models of IoTDA instances and their tasks, parsed from (and back to) the API's JSON.

Parsing is tolerant where the API may grow (unknown task types, statuses and extra fields are
kept) and strict where a wrong shape would mislead (a missing ``task_id``, a ``status`` that is
not a string, an unparsable time): those raise ``IoTDAInvalidResponseError`` naming the field.

Reading an answer is on the hot path of every poll and audit, so the checks are written to be
cheap (a dict and a str are recognised before any ABC check; the API's own time format is read
by the standard library, other ISO forms by pendulum), never skipped.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pendulum

from airflow_provider_iotda.errors import IoTDAInvalidResponseError

TASK_TYPES = (
    "CREATE",
    "MODIFY",
    "DELETE",
    "FREEZE",
    "UNFREEZE",
    "UPDATE_ACCESS_CONFIG",
    "UPDATE_ALLOW_LISTS",
    "OPEN_SNAT",
)
TASK_STATUSES = ("PENDING", "RUNNING", "SUCCESS", "FAILED")
INSTANCE_STATUSES = (
    "CREATING",
    "ACTIVE",
    "FROZEN",
    "TRADING",
    "MODIFYING",
    "MODIFY_FAILED",
    "FAILED",
)
INSTANCE_TYPES = ("standard", "enterprise")
CHARGE_MODES = ("prePaid", "postPaid")
TIME_FORMAT = "%Y-%m-%dT%H:%M:%S"
_API_TIME_FORMAT = "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ"


_UTC = pendulum.UTC
_DateTime = pendulum.DateTime
_from_iso = dt.datetime.fromisoformat
#: The API's own time format, ``yyyy-MM-dd'T'HH:mm:ss.SSS'Z'``: the only one on the fast path.
_API_TIME_SHAPE = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z", re.ASCII).fullmatch


def format_api_time(moment: dt.datetime) -> str:
    """Format a datetime as the API does: ``yyyy-MM-dd'T'HH:mm:ss.SSS'Z'`` in UTC.

    A naive datetime is taken as local time (as ``datetime.astimezone`` does).
    """
    zone = moment.tzinfo
    utc = moment if zone is _UTC or zone is dt.UTC else dt.datetime.astimezone(moment, dt.UTC)
    return _API_TIME_FORMAT % (
        utc.year,
        utc.month,
        utc.day,
        utc.hour,
        utc.minute,
        utc.second,
        utc.microsecond // 1000,
    )


def _fast_api_time(value: str) -> pendulum.DateTime | None:
    """``value`` in the API's own format read by the standard library, or ``None`` for any
    other form (or an impossible date such as February 30): the general parser decides those.

    Same result as :func:`_general_api_time` for every value it reads (pinned by property
    tests), in about a twentieth of the time (``benchmarks/bench_parse.py``).
    """
    if _API_TIME_SHAPE(value) is None:
        return None
    try:
        read = _from_iso(value)
    except ValueError:
        return None
    return _DateTime(
        read.year,
        read.month,
        read.day,
        read.hour,
        read.minute,
        read.second,
        read.microsecond,
        tzinfo=_UTC,
    )


def _general_api_time(value: str, field_name: str) -> pendulum.DateTime:
    """Any ISO-8601 time pendulum reads (another offset, no fraction...), as UTC."""
    try:
        parsed = pendulum.parse(value, strict=False)
    except (ValueError, TypeError, pendulum.parsing.exceptions.ParserError) as exc:
        raise IoTDAInvalidResponseError(
            f"IoTDA answer has {field_name}={value!r}; expected yyyy-MM-ddTHH:mm:ss.SSSZ"
        ) from exc
    if not isinstance(parsed, pendulum.DateTime):
        raise IoTDAInvalidResponseError(f"IoTDA answer has {field_name}={value!r}; not a datetime")
    return parsed.in_timezone("UTC")


def parse_api_time(value: Any, field_name: str) -> pendulum.DateTime | None:
    """Parse an API time string to a UTC pendulum datetime; ``None`` for null or absent.

    The API's own format takes a fast path; anything else goes through pendulum's parser,
    and what neither reads is an ``IoTDAInvalidResponseError`` naming ``field_name``.
    """
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise IoTDAInvalidResponseError(
            f"IoTDA answer has {field_name}={value!r}; expected an ISO time string"
        )
    moment = _fast_api_time(value)
    return moment if moment is not None else _general_api_time(value, field_name)


def _optional_time(data: Mapping[str, Any], key: str, where: str) -> pendulum.DateTime | None:
    value = data.get(key)
    if type(value) is str:  # the usual case, without building the field's name
        moment = _fast_api_time(value)
        if moment is not None:
            return moment
    return parse_api_time(value, f"{where}{key}")


def _is_mapping(value: object) -> bool:
    # A JSON object is a dict: skip the (slower) ABC check for it.
    return type(value) is dict or isinstance(value, Mapping)


def _checked_str(value: Any, key: str, where: str) -> str | None:
    if value is None or type(value) is str:
        return value
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise IoTDAInvalidResponseError(
            f"IoTDA answer has {where}{key}={value!r}; expected a string"
        )
    return str(value)


def _optional_str(data: Mapping[str, Any], key: str, where: str) -> str | None:
    return _checked_str(data.get(key), key, where)


def _required_str(data: Mapping[str, Any], key: str, where: str) -> str:
    value = _checked_str(data.get(key), key, where)
    if value is None or value == "":
        raise IoTDAInvalidResponseError(f"IoTDA answer lacks {where}{key}")
    return value


def _optional_int(data: Mapping[str, Any], key: str, where: str) -> int | None:
    value = data.get(key)
    if value is None or type(value) is int:
        return value
    if isinstance(value, bool) or not isinstance(value, int):
        raise IoTDAInvalidResponseError(f"IoTDA answer has {where}{key}={value!r}; expected int")
    return value


def _mapping(value: Any, where: str, key: str = "") -> Mapping[str, Any] | None:
    """``value`` if it is an object or null; the error names ``{where}{key}``."""
    if value is None or type(value) is dict:
        return value
    if not isinstance(value, Mapping):
        raise IoTDAInvalidResponseError(
            f"IoTDA answer has {where}{key}={value!r}; expected an object"
        )
    return value


def _extra(data: Mapping[str, Any], known: frozenset[str]) -> dict[str, Any]:
    if data.keys() <= known:  # the usual case: nothing but the documented fields
        return {}
    return {k: v for k, v in data.items() if k not in known}


@dataclass(frozen=True)
class Flavor:
    """Instance specification: ``type`` (e.g. ``iotda.standard.s2``) and unit ``size``."""

    type: str | None = None
    size: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "flavor.") -> Flavor:
        size = _optional_int(data, "size", where)
        return cls(_optional_str(data, "type", where), size, _extra(data, _FLAVOR_FIELDS))

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "size": self.size, **self.extra}

    def same_as(self, flavor_type: str, flavor_size: int) -> bool:
        """Whether this is the specification ``flavor_type`` of ``flavor_size`` units."""
        return self.type == flavor_type and self.size == flavor_size

    def describe(self) -> str:
        """``iotda.standard.s3 x 2``."""
        return f"{self.type} x {self.size}"


@dataclass(frozen=True)
class TargetConfig:
    """The configuration a task moves the instance to."""

    flavor: Flavor | None = None
    charge_mode: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "target_config.") -> TargetConfig:
        flavor = _mapping(data.get("flavor"), where, "flavor")
        return cls(
            Flavor.from_dict(flavor, f"{where}flavor.") if flavor is not None else None,
            _optional_str(data, "charge_mode", where),
            _extra(data, _TARGET_FIELDS),
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"flavor": self.flavor.to_dict() if self.flavor else None}
        if self.charge_mode is not None:
            out["charge_mode"] = self.charge_mode
        return {**out, **self.extra}


@dataclass(frozen=True)
class OperateWindow:
    """Maintenance window (UTC ``HH:mm``) in which a delayed change runs."""

    start_time: str | None = None
    end_time: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "operate_window.") -> OperateWindow:
        return cls(
            _optional_str(data, "start_time", where),
            _optional_str(data, "end_time", where),
            _extra(data, _WINDOW_FIELDS),
        )

    def to_dict(self) -> dict[str, Any]:
        return {"start_time": self.start_time, "end_time": self.end_time, **self.extra}


_FLAVOR_FIELDS = frozenset({"type", "size"})
_TARGET_FIELDS = frozenset({"flavor", "charge_mode"})
_WINDOW_FIELDS = frozenset({"start_time", "end_time"})
_TASK_FIELDS = frozenset(
    {
        "task_id",
        "type",
        "status",
        "status_detail",
        "create_time",
        "start_time",
        "end_time",
        "target_config",
        "operate_window",
        "progress",
    }
)


@dataclass(frozen=True)
class InstanceTask:
    """One management task of an IoTDA instance."""

    task_id: str
    type: str
    status: str
    status_detail: str | None = None
    create_time: pendulum.DateTime | None = None
    start_time: pendulum.DateTime | None = None
    end_time: pendulum.DateTime | None = None
    target_config: TargetConfig | None = None
    operate_window: OperateWindow | None = None
    progress: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: Any, where: str = "task.") -> InstanceTask:
        """Parse one task object of the API; raises ``IoTDAInvalidResponseError`` on a bad shape."""
        if not _is_mapping(data):
            raise IoTDAInvalidResponseError(
                f"IoTDA answer has {where[:-1]}={data!r}; not an object"
            )
        target = _mapping(data.get("target_config"), where, "target_config")
        window = _mapping(data.get("operate_window"), where, "operate_window")
        return cls(
            task_id=_required_str(data, "task_id", where),
            type=_required_str(data, "type", where),
            status=_required_str(data, "status", where),
            status_detail=_optional_str(data, "status_detail", where),
            create_time=_optional_time(data, "create_time", where),
            start_time=_optional_time(data, "start_time", where),
            end_time=_optional_time(data, "end_time", where),
            target_config=TargetConfig.from_dict(target, f"{where}target_config.")
            if target is not None
            else None,
            operate_window=OperateWindow.from_dict(window, f"{where}operate_window.")
            if window is not None
            else None,
            progress=_optional_int(data, "progress", where),
            extra=_extra(data, _TASK_FIELDS),
        )

    @property
    def target_flavor(self) -> Flavor | None:
        """The flavor this task moves the instance to (a MODIFY's new specification)."""
        return self.target_config.flavor if self.target_config is not None else None

    def to_dict(self) -> dict[str, Any]:
        """The task in the API's JSON shape (times as the API's ISO strings)."""
        out: dict[str, Any] = {
            "task_id": self.task_id,
            "type": self.type,
            "status": self.status,
            "create_time": format_api_time(self.create_time) if self.create_time else None,
            "start_time": format_api_time(self.start_time) if self.start_time else None,
            "end_time": format_api_time(self.end_time) if self.end_time else None,
            "target_config": self.target_config.to_dict() if self.target_config else None,
            "operate_window": self.operate_window.to_dict() if self.operate_window else None,
        }
        # Optional fields the API leaves out when it has nothing to say (see its example).
        if self.status_detail is not None:
            out["status_detail"] = self.status_detail
        if self.progress is not None:
            out["progress"] = self.progress
        return {**out, **self.extra}


@dataclass(frozen=True)
class InstanceTaskPage:
    """One page of ``ListInstanceTasks``: the tasks, ``count`` (total) and ``marker`` (last ID)."""

    tasks: list[InstanceTask]
    count: int | None = None
    marker: str | None = None
    # The marker as the JSON carried it (the API's example gives a number), for to_dict().
    _marker_json: str | int | None = field(default=None, repr=False, compare=False)

    @property
    def records(self) -> list[InstanceTask]:
        """The page's records (what :class:`~airflow_provider_iotda.api.MarkerWalk` walks)."""
        return self.tasks

    @classmethod
    def from_dict(cls, data: Any) -> InstanceTaskPage:
        """Parse a whole ``ListInstanceTasks`` answer."""
        if not _is_mapping(data):
            raise IoTDAInvalidResponseError(
                f"IoTDA answer is a {type(data).__name__}, expected an object with 'tasks'"
            )
        if "tasks" not in data:
            raise IoTDAInvalidResponseError("IoTDA answer lacks 'tasks'")
        raw_tasks = data["tasks"]
        if raw_tasks is None:
            raw_tasks = []
        if not isinstance(raw_tasks, list):
            raise IoTDAInvalidResponseError(
                f"IoTDA answer has tasks of type {type(raw_tasks).__name__}; expected a list"
            )
        page = _mapping(data.get("page"), "page") or {}
        count = _optional_int(page, "count", "page.")
        tasks = [InstanceTask.from_dict(t, f"tasks.{i}.") for i, t in enumerate(raw_tasks)]
        marker = _optional_str(page, "marker", "page.")
        return cls(tasks, count, marker, page.get("marker") if marker is not None else None)

    def to_dict(self) -> dict[str, Any]:
        """The page in the API's JSON shape (a number marker stays a number)."""
        marker: str | int | None = self.marker
        if self._marker_json is not None and str(self._marker_json) == self.marker:
            marker = self._marker_json
        return {
            "page": {"count": self.count, "marker": marker},
            "tasks": [t.to_dict() for t in self.tasks],
        }


_INSTANCE_FIELDS = frozenset(
    {
        "instance_id",
        "status",
        "name",
        "instance_type",
        "charge_mode",
        "flavor",
        "region_id",
        "description",
        "create_time",
        "update_time",
        "enterprise_project_id",
        "order_id",
        "operate_window",
    }
)


@dataclass(frozen=True)
class Instance:
    """An IoTDA instance as ``ShowInstance`` (or, with fewer fields, ``ListInstances``) gives it.

    ``status`` is one of :data:`INSTANCE_STATUSES` or a newer one (kept as IoTDA wrote it).
    ``access_infos``, ``tags``, ``additional_params`` and unknown fields stay in ``extra``.
    """

    instance_id: str
    status: str | None = None
    name: str | None = None
    instance_type: str | None = None
    charge_mode: str | None = None
    flavor: Flavor | None = None
    region_id: str | None = None
    description: str | None = None
    create_time: pendulum.DateTime | None = None
    update_time: pendulum.DateTime | None = None
    enterprise_project_id: str | None = None
    order_id: str | None = None
    operate_window: OperateWindow | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: Any, where: str = "") -> Instance:
        """Parse one instance object; raises ``IoTDAInvalidResponseError`` on a bad shape."""
        if not _is_mapping(data):
            raise IoTDAInvalidResponseError(
                f"IoTDA answer has {where[:-1] or 'instance'}={data!r}; not an object"
            )
        flavor = _mapping(data.get("flavor"), where, "flavor")
        window = _mapping(data.get("operate_window"), where, "operate_window")
        return cls(
            instance_id=_required_str(data, "instance_id", where),
            status=_optional_str(data, "status", where),
            name=_optional_str(data, "name", where),
            instance_type=_optional_str(data, "instance_type", where),
            charge_mode=_optional_str(data, "charge_mode", where),
            flavor=Flavor.from_dict(flavor, f"{where}flavor.") if flavor is not None else None,
            region_id=_optional_str(data, "region_id", where),
            description=_optional_str(data, "description", where),
            create_time=_optional_time(data, "create_time", where),
            update_time=_optional_time(data, "update_time", where),
            enterprise_project_id=_optional_str(data, "enterprise_project_id", where),
            order_id=_optional_str(data, "order_id", where),
            operate_window=OperateWindow.from_dict(window, f"{where}operate_window.")
            if window is not None
            else None,
            extra=_extra(data, _INSTANCE_FIELDS),
        )

    def to_dict(self) -> dict[str, Any]:
        """The instance in the API's JSON shape (absent fields left out, times as ISO strings)."""
        out: dict[str, Any] = {
            "instance_id": self.instance_id,
            "status": self.status,
            "name": self.name,
            "instance_type": self.instance_type,
            "charge_mode": self.charge_mode,
            "flavor": self.flavor.to_dict() if self.flavor is not None else None,
            "region_id": self.region_id,
            "description": self.description,
            "create_time": format_api_time(self.create_time) if self.create_time else None,
            "update_time": format_api_time(self.update_time) if self.update_time else None,
            "enterprise_project_id": self.enterprise_project_id,
            "order_id": self.order_id,
            "operate_window": self.operate_window.to_dict() if self.operate_window else None,
        }
        return {**{k: v for k, v in out.items() if v is not None}, **self.extra}


@dataclass(frozen=True)
class InstancePage:
    """One page of ``ListInstances``: the instances, ``count`` (total) and ``marker`` (last ID)."""

    instances: list[Instance]
    count: int | None = None
    marker: str | None = None

    @property
    def records(self) -> list[Instance]:
        """The page's records (what :class:`~airflow_provider_iotda.api.MarkerWalk` walks)."""
        return self.instances

    @classmethod
    def from_dict(cls, data: Any) -> InstancePage:
        """Parse a whole ``ListInstances`` answer (``instances`` absent or null: none)."""
        if not _is_mapping(data):
            raise IoTDAInvalidResponseError(
                f"IoTDA answer is a {type(data).__name__}, expected an object with 'instances'"
            )
        raw = data.get("instances")
        if raw is None:
            raw = []
        if not isinstance(raw, list):
            raise IoTDAInvalidResponseError(
                f"IoTDA answer has instances of type {type(raw).__name__}; expected a list"
            )
        count = _optional_int(data, "count", "")
        instances = [Instance.from_dict(item, f"instances.{i}.") for i, item in enumerate(raw)]
        return cls(instances, count, _optional_str(data, "marker", ""))

    def to_dict(self) -> dict[str, Any]:
        """The page in the API's JSON shape."""
        return {
            "count": self.count,
            "marker": self.marker,
            "instances": [i.to_dict() for i in self.instances],
        }


def select_task(
    tasks: Iterable[InstanceTask],
    *,
    instance_task_id: str | None = None,
    instance_task_type: str | None = None,
    created_after: dt.datetime | None = None,
) -> InstanceTask | None:
    """The task with ``instance_task_id``, or the newest of ``instance_task_type`` created at or
    after ``created_after``; ``None`` when there is none."""
    if (instance_task_id is None) == (instance_task_type is None):
        raise ValueError("give exactly one of instance_task_id and instance_task_type")
    if instance_task_id is not None:
        return next((t for t in tasks if t.task_id == instance_task_id), None)
    candidates = [
        t
        for t in tasks
        if t.type == instance_task_type
        and (
            created_after is None or (t.create_time is not None and t.create_time >= created_after)
        )
    ]
    if not candidates:
        return None
    epoch = pendulum.datetime(1970, 1, 1)
    # Newest by creation time; the task ID (larger is newer) breaks ties.
    return max(candidates, key=lambda t: (t.create_time or epoch, t.task_id))
