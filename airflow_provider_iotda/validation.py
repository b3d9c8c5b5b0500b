"""Checks on user input, run before any request is sent.

Each check raises ``ValueError`` naming the field, the value and the allowed form, and returns
the normalised value.  Path parameters are restricted to IoTDA's documented alphabets, so they
can never change the request path (no ``/``, ``..``, ``%2F``, ``?``, ``#`` or newlines).
"""

from __future__ import annotations

import ast
import contextlib
import datetime as dt
import json
import math
import re
from collections.abc import Collection, Iterable
from typing import Any

import pendulum

from airflow_provider_iotda.models import TASK_STATUSES, TASK_TYPES

_INSTANCE_ID = re.compile(r"[a-f0-9-]{1,36}")
_TASK_ID = re.compile(r"[a-f0-9-]{1,64}")
_PROJECT_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_MARKER = re.compile(r"[A-Za-z0-9_.-]{1,128}")
_TASK_TYPE_OR_STATUS = re.compile(r"[A-Z][A-Z0-9_]{0,63}")
_FLAVOR_TYPE = re.compile(r"[A-Za-z0-9._-]{1,64}")
_REGION = re.compile(r"[a-z]{2,}(-[a-z0-9]+)+")
# Airflow's own rule for connection IDs (airflow.models.connection.RE_SANITIZE_CONN_ID).
_CONN_ID = re.compile(r"[\w#!()\-.:/\\]{1,250}")
_URL_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
# What could move a rendered destination somewhere else than its template says.
_UNSAFE_DESTINATION = re.compile(r"[?#\x00-\x1f\x7f]|%2[fF]|%5[cC]")

OFFSET_RANGE = (0, 500)
LIMIT_RANGE = (1, 500)


def is_template(value: object) -> bool:
    """Whether ``value`` (or an item of a list) still holds Jinja markup; such a field is
    checked after rendering, when the task runs, not when the DAG is parsed."""
    if isinstance(value, str):
        return "{{" in value or "{%" in value
    if isinstance(value, list | tuple):
        return any(is_template(v) for v in value)
    return False


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _check_pattern(field: str, value: object, pattern: re.Pattern[str], form: str) -> str:
    if not isinstance(value, str) or pattern.fullmatch(value) is None:
        raise ValueError(f"{field} must be {form}; got {_shown(value)}")
    return value


def instance_id(value: object, field: str = "instance_id") -> str:
    """An IoTDA instance ID: up to 36 of ``[a-f0-9-]``."""
    return _check_pattern(field, value, _INSTANCE_ID, "1 to 36 characters of [a-f0-9-]")


def instance_task_id(value: object, field: str = "instance_task_id") -> str:
    """An IoTDA task ID: up to 64 of ``[a-f0-9-]``."""
    return _check_pattern(field, value, _TASK_ID, "1 to 64 characters of [a-f0-9-]")


def project_id(value: object, field: str = "project_id") -> str:
    """A Huawei Cloud project ID: up to 64 of ``[A-Za-z0-9_-]``."""
    return _check_pattern(field, value, _PROJECT_ID, "1 to 64 characters of [A-Za-z0-9_-]")


def conn_id(value: object, field: str = "iotda_conn_id") -> str:
    """An Airflow connection ID: 1 to 250 letters, digits or ``_#!()-.:/\\`` (Airflow's rule)."""
    form = "an Airflow connection ID (1 to 250 of letters, digits, _#!()-.:/\\)"
    return _check_pattern(field, value, _CONN_ID, form)


def region(value: object, field: str = "region") -> str:
    """A Huawei Cloud region such as ``cn-north-4``."""
    return _check_pattern(field, value, _REGION, "a region name such as 'cn-north-4'")


def marker(value: object, field: str = "marker") -> str:
    """A page marker as returned by the API (string or number)."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    return _check_pattern(field, value, _MARKER, "1 to 128 characters of [A-Za-z0-9_.-]")


def bounded_int(value: object, field: str, low: int, high: int) -> int:
    """An integer in ``low..high`` (a string of digits is accepted, as templates render them)."""
    if isinstance(value, str) and re.fullmatch(r"\s*-?\d+\s*", value):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{field} must be an integer from {low} to {high}; got {_shown(value)}")
    return value


def offset(value: object, field: str = "offset") -> int:
    return bounded_int(value, field, *OFFSET_RANGE)


def limit(value: object, field: str = "limit") -> int:
    return bounded_int(value, field, *LIMIT_RANGE)


def positive_number(value: object, field: str, *, allow_zero: bool = False) -> float:
    """A number greater than 0 (or at least 0): seconds, intervals."""
    number: float | None = None
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            number = float(value)
    elif isinstance(value, dt.timedelta):
        number = value.total_seconds()
    elif isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
    if number is not None and (number > 0 or (allow_zero and number == 0)) and number < math.inf:
        return number
    bound = "at least 0" if allow_zero else "greater than 0"
    raise ValueError(f"{field} must be a number of seconds {bound}; got {_shown(value)}")


def name_list(value: object, field: str) -> object:
    """Text holding a list (``'["a", "b"]'``, as a rendered template gives one) as that list;
    anything else unchanged."""
    if isinstance(value, str) and value.strip().startswith("["):
        text = value.strip()
        try:
            return json.loads(text)
        except ValueError:
            try:
                return ast.literal_eval(text)
            except (ValueError, SyntaxError) as exc:
                raise ValueError(
                    f"{field} must be a name, a comma-separated string or a list of names; "
                    f"got {_shown(text)}"
                ) from exc
    return value


def instance_ids(value: object, field: str = "instance_ids") -> list[str] | None:
    """``None`` (the connection's instance), one ID, or a list of IDs; deduplicated, in order.

    A string may hold several IDs separated by commas or spaces, or a JSON list (as a template
    rendered from a Variable gives it).
    """
    if value is None:
        return None
    value = name_list(value, field)
    items: list[object]
    if isinstance(value, str):
        items = [part for part in re.split(r"[,\s]+", value) if part]
    elif isinstance(value, list | tuple):
        items = list(value)
    else:
        raise ValueError(
            f"{field} must be an instance ID or a list of instance IDs "
            f"(1 to 36 characters of [a-f0-9-]); got {type(value).__name__}"
        )
    if not items:
        raise ValueError(
            f"{field} must name at least one instance (or be None for the connection's instance)"
        )
    ids = [instance_id(item, f"{field}[{i}]") for i, item in enumerate(items)]
    return list(dict.fromkeys(ids))


def _upper_names(
    value: object, field: str, known: Collection[str], *, allow_empty: bool
) -> frozenset[str]:
    value = name_list(value, field)
    items: Iterable[object]
    if isinstance(value, str):
        items = [part for part in re.split(r"[,\s]+", value) if part]
    elif isinstance(value, Iterable) and not isinstance(value, bytes | dict):
        items = list(value)
    else:
        raise ValueError(f"{field} must be a name or a list of names; got {_shown(value)}")
    names = frozenset(
        _check_pattern(field, item, _TASK_TYPE_OR_STATUS, f"upper-case names such as {known[0]!r}")  # type: ignore[index]
        for item in items
    )
    if not names and not allow_empty:
        raise ValueError(f"{field} must name at least one of {', '.join(known)}")
    return names


def task_types(value: object, field: str = "task_types") -> frozenset[str]:
    """Task types (known ones are ``CREATE``, ``MODIFY``, ...; new ones are accepted)."""
    return _upper_names(value, field, TASK_TYPES, allow_empty=False)


def task_statuses(value: object, field: str = "statuses") -> frozenset[str]:
    """Task statuses (known ones are ``PENDING``, ``RUNNING``, ``SUCCESS``, ``FAILED``)."""
    return _upper_names(value, field, TASK_STATUSES, allow_empty=False)


def task_type(value: object, field: str = "instance_task_type") -> str:
    """One task type such as ``MODIFY``."""
    return _check_pattern(field, value, _TASK_TYPE_OR_STATUS, "an upper-case type such as 'MODIFY'")


def timestamp(value: object, field: str) -> pendulum.DateTime | None:
    """A datetime or an ISO-8601 string (naive means UTC); ``None`` and ``""`` stay ``None``."""
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
        return pendulum.instance(moment).in_timezone("UTC")
    if isinstance(value, str):
        try:
            parsed = pendulum.parse(value.strip())
        except Exception as exc:  # pendulum raises several parser errors
            raise ValueError(
                f"{field} must be a datetime or an ISO-8601 string; got {_shown(value)}"
            ) from exc
        if isinstance(parsed, pendulum.DateTime):
            return parsed.in_timezone("UTC")
    raise ValueError(f"{field} must be a datetime or an ISO-8601 string; got {_shown(value)}")


def time_window(
    after: object, before: object
) -> tuple[pendulum.DateTime | None, pendulum.DateTime | None]:
    """``created_after`` and ``created_before``: the half-open window ``after <= t < before``."""
    start = timestamp(after, "created_after")
    end = timestamp(before, "created_before")
    if start is not None and end is not None and start >= end:
        raise ValueError(
            f"created_after must be earlier than created_before (the window is "
            f"created_after <= create_time < created_before); got {start.isoformat()} and "
            f"{end.isoformat()}"
        )
    return start, end


def destination(value: object, field: str = "destination") -> str:
    """An absolute path or a URL (or an ``ObjectStoragePath``) that templates cannot bend:
    no ``.``/``..`` segments, ``?``, ``#``, encoded separators or control characters."""
    if isinstance(value, str):
        text = value.strip()
    elif hasattr(value, "protocol") and hasattr(value, "path"):  # an ObjectStoragePath
        return str(value)
    else:
        raise ValueError(
            f"{field} must be None (XCom), a path or URL string, or an ObjectStoragePath; "
            f"got {type(value).__name__}"
        )
    if not text:
        raise ValueError(
            f"{field} must be None (XCom) or a path/URL such as "
            "file:///data/iotda/{{ ds }}/tasks.jsonl; got an empty string"
        )
    if _UNSAFE_DESTINATION.search(text) or any(
        segment in (".", "..") for segment in _URL_SCHEME.sub("", text).split("/")
    ):
        raise ValueError(
            f"{field} must not contain '.' or '..' segments, '?', '#', an encoded '/' or "
            f"'\\' (%2F, %5C) or control characters; got {text!r}"
        )
    if not _URL_SCHEME.match(text) and not text.startswith("/"):
        raise ValueError(
            f"{field} must be an absolute path or a URL such as "
            "file:///data/iotda/tasks.jsonl or s3://aws_default@bucket/iotda/tasks.csv; "
            f"got {text!r}"
        )
    return text


def one_of(value: object, field: str, allowed: Collection[str]) -> str:
    """One of a fixed set of strings."""
    if not isinstance(value, str) or value not in allowed:
        raise ValueError(
            f"{field} must be one of {', '.join(sorted(allowed))}; got {_shown(value)}"
        )
    return value


def as_bool(value: Any, field: str) -> bool:
    """A boolean, also from the strings a URI carries (``true``/``false``/``1``/``0``)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in {"true", "1", "yes", "on"}:
        return True
    if isinstance(value, str) and value.strip().lower() in {"false", "0", "no", "off"}:
        return False
    raise ValueError(f"{field} must be true or false; got {_shown(value)}")


def strict_bool(value: object, field: str) -> bool:
    """A real ``True``/``False``: a string such as ``"no"`` would be truthy."""
    if not isinstance(value, bool):
        raise ValueError(f"{field} must be True or False; got {_shown(value)}")
    return value


def flavor_type(value: object, field: str = "flavor_type") -> str:
    """An instance specification such as ``iotda.standard.s3``: up to 64 of ``[A-Za-z0-9._-]``."""
    return _check_pattern(field, value, _FLAVOR_TYPE, "1 to 64 characters of [A-Za-z0-9._-]")


def flavor_size(value: object, field: str = "flavor_size") -> int:
    """The number of units of a specification: an ``int`` of at least 1."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{field} must be an integer of at least 1; got {_shown(value)}")
    return value
