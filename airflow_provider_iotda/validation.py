"""Checks on user input, run before any request is sent.

Each check raises ``ValueError`` naming the field, the value and the allowed form, and returns
the normalised value.  Path parameters are restricted to IoTDA's documented alphabets, so they
can never change the request path (no ``/``, ``..``, ``%2F``, ``?``, ``#`` or newlines).
"""

from __future__ import annotations

import ast
import datetime as dt
import json
import re
from collections.abc import Collection, Iterable, Sequence

import pendulum

from airflow_provider_iotda import fields
from airflow_provider_iotda.fields import shown as _shown
from airflow_provider_iotda.models import TASK_STATUSES, TASK_TYPES

_URL_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
# What could move a rendered destination somewhere else than its template says.
_UNSAFE_DESTINATION = re.compile(r"[?#\x00-\x1f\x7f]|%2[fF]|%5[cC]")

OFFSET_RANGE = (fields.OFFSET.low, fields.PAGE_MAX)
LIMIT_RANGE = (fields.LIMIT.low, fields.PAGE_MAX)


def is_template(value: object) -> bool:
    """Whether ``value`` (or an item of a list) still holds Jinja markup; such a field is
    checked after rendering, when the task runs, not when the DAG is parsed."""
    if isinstance(value, str):
        return "{{" in value or "{%" in value
    if isinstance(value, list | tuple):
        return any(is_template(v) for v in value)
    return False


def item(field: str, index: int) -> str:
    """How a message names one item of a list field (no square brackets: see fields.py)."""
    return f"{field} item {index}"


def instance_id(value: object, field: str = "instance_id") -> str:
    """An IoTDA instance ID: 1 to 36 lower-case letters a-f, digits and hyphens."""
    return fields.INSTANCE_ID.check(value, field)


def instance_task_id(value: object, field: str = "instance_task_id") -> str:
    """An IoTDA task ID: 1 to 64 lower-case letters a-f, digits and hyphens."""
    return fields.TASK_ID.check(value, field)


def project_id(value: object, field: str = "project_id") -> str:
    """A Huawei Cloud project ID: 1 to 64 letters, digits, underscores and hyphens."""
    return fields.PROJECT_ID.check(value, field)


def conn_id(value: object, field: str = "iotda_conn_id") -> str:
    """An Airflow connection ID: 1 to 250 letters, digits or ``_#!()-.:/\\`` (Airflow's rule)."""
    return fields.CONN_ID.check(value, field)


def region(value: object, field: str = "region", *, known: bool = True) -> str:
    """A Huawei Cloud region with IoTDA such as ``cn-north-4``.

    ``known=False`` accepts any well-formed region name (a connection whose extra ``endpoint``
    is set uses its region only to sign); otherwise an unknown one is refused with the closest
    real region and the way to reach one that is not listed.
    """
    if known and value not in fields.REGIONS:
        raise ValueError(fields.unknown_region_message(field, value))
    return fields.REGION.check(value, field)


def marker(value: object, field: str = "marker") -> str:
    """A page marker as returned by the API (string or number)."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    return fields.MARKER.check(value, field)


def bounded_int(value: object, field: str, low: int, high: int) -> int:
    """An integer in ``low..high`` (a string of digits is accepted, as templates render them)."""
    return fields.Integer(field, low, high).check(value)


def offset(value: object, field: str = "offset") -> int:
    return fields.OFFSET.check(value, field)


def limit(value: object, field: str = "limit") -> int:
    return fields.LIMIT.check(value, field)


def positive_number(value: object, field: str, *, allow_zero: bool = False) -> float:
    """A number greater than 0 (or at least 0): seconds, intervals."""
    return fields.Seconds(field, allow_zero=allow_zero).check(value)


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
            f"({fields.INSTANCE_ID.form}); got {type(value).__name__}"
        )
    if not items:
        raise ValueError(
            f"{field} must name at least one instance (or be None for the connection's instance)"
        )
    ids = [instance_id(one, item(field, i)) for i, one in enumerate(items)]
    return list(dict.fromkeys(ids))


def _upper_names(
    value: object, field: str, known: Sequence[str], *, allow_empty: bool
) -> frozenset[str]:
    value = name_list(value, field)
    items: Iterable[object]
    if isinstance(value, str):
        items = [part for part in re.split(r"[,\s]+", value) if part]
    elif isinstance(value, Iterable) and not isinstance(value, bytes | dict):
        items = list(value)
    else:
        raise ValueError(f"{field} must be a name or a list of names; got {_shown(value)}")
    upper = fields.Text(field, fields.UPPER_NAME.regex, f"upper-case names such as {known[0]!r}")
    names = frozenset(upper.check(one) for one in items)
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
    return fields.UPPER_NAME.check(value, field)


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


#: What a run triggered by hand can template instead of its zero-length data interval: the
#: day before the run (``dag_run.run_after`` is set for every run on Airflow 3.1 to 3.3, also
#: one triggered without a logical date).
MANUAL_CREATED_AFTER = "{{ (dag_run.run_after - macros.timedelta(days=1)) | ts }}"
MANUAL_CREATED_BEFORE = "{{ dag_run.run_after | ts }}"
MANUAL_WINDOW_HINT = (
    f'created_after="{MANUAL_CREATED_AFTER}" with created_before="{MANUAL_CREATED_BEFORE}" '
    "(the day before the run)"
)


def time_window(
    after: object, before: object
) -> tuple[pendulum.DateTime | None, pendulum.DateTime | None]:
    """``created_after`` and ``created_before``: the half-open window ``after <= t < before``."""
    start = timestamp(after, "created_after")
    end = timestamp(before, "created_before")
    if start is not None and end is not None and start >= end:
        raise ValueError(_empty_window_message(start, end))
    return start, end


def _empty_window_message(start: pendulum.DateTime, end: pendulum.DateTime) -> str:
    """Why the window ``start <= create_time < end`` is empty, and what gives a real one."""
    if start == end:
        cause = (
            f"got the same moment for both ({start.isoformat()}), so the window "
            "created_after <= create_time < created_before is empty. Airflow 3 gives a run "
            "triggered by hand, and a run of a schedule such as '@daily', a zero-length data "
            "interval: data_interval_start equals data_interval_end"
        )
    else:
        cause = (
            f"got {start.isoformat()} and {end.isoformat()}, so the window "
            "created_after <= create_time < created_before is empty"
        )
    return (
        f"created_after must be earlier than created_before; {cause}. For scheduled runs that "
        'cover a real interval, schedule the DAG with CronDataIntervalTimetable("@daily", '
        'timezone="UTC") (import it from airflow_provider_iotda.compat, which picks '
        "airflow.sdk or Airflow 3.1's airflow.timetables.interval); for a run triggered by "
        f"hand, template {MANUAL_WINDOW_HINT}"
    )


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


#: The spellings of a boolean a connection URI or a form may store (``strict_bool(words=True)``).
_TRUE_WORDS = frozenset({"true", "1", "yes", "on"})
_FALSE_WORDS = frozenset({"false", "0", "no", "off"})


def strict_bool(value: object, field: str, *, words: bool = False) -> bool:
    """A real ``True``/``False``: a string such as ``"no"`` would be truthy.

    ``words=True`` also reads the strings a connection URI carries (``true``/``false``,
    ``1``/``0``, ``yes``/``no``, ``on``/``off``, any case); anything else is still refused.
    """
    if isinstance(value, bool):
        return value
    if words and isinstance(value, str):
        word = value.strip().lower()
        if word in _TRUE_WORDS or word in _FALSE_WORDS:
            return word in _TRUE_WORDS
    form = "true or false" if words else "True or False"
    raise ValueError(f"{field} must be {form}; got {_shown(value)}")


def flavor_type(value: object, field: str = "flavor_type") -> str:
    """An instance specification such as ``iotda.standard.s3``: up to 64 letters, digits,
    dots, underscores and hyphens."""
    return fields.FLAVOR_TYPE.check(value, field)


def flavor_size(value: object, field: str = "flavor_size") -> int:
    """The number of units of a specification: an ``int`` of at least 1 (the request body
    carries a number; operators convert a rendered template's digits first)."""
    return fields.FLAVOR_SIZE.check(value, field, digits=False)
