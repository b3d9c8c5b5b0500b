"""One table of the values users give: each field declared once (pattern, bounds, message).

``validation.py`` checks values against these declarations, ``get_provider_info.py`` builds the
connection form's schema from them and the simulator checks scenarios and requests with them, so
the three can never disagree.

Every ``form`` is written for people: it spells a character class out in words ("lower-case
letters a-f, digits and hyphens") and holds no square brackets, which Airflow's CLI would take
for rich markup and drop.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import math
import re
from dataclasses import dataclass, field
from typing import Final


def shown(value: object) -> str:
    """``value`` as a message quotes it: its ``repr``, cut to 80 characters."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


@dataclass(frozen=True)
class Text:
    """A string field: ``regex`` (no anchors) must match all of it; ``form`` says it in words."""

    name: str
    regex: str
    form: str
    max_length: int | None = None
    example: str | None = None
    compiled: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Anchored at both ends (``\Z``, not ``$``, which lets a trailing newline through):
        # ``compiled.match`` checks the whole value.
        object.__setattr__(self, "compiled", re.compile(rf"(?:{self.regex})\Z"))

    @property
    def json_pattern(self) -> str:
        """The same rule as a JSON-schema ``pattern`` (anchored)."""
        return f"^{self.regex}$"

    def matches(self, value: object) -> bool:
        return isinstance(value, str) and self.compiled.match(value) is not None

    def check(self, value: object, name: str | None = None) -> str:
        """``value`` if it matches, else a ``ValueError`` naming the field, value and form."""
        if not self.matches(value):
            raise ValueError(f"{name or self.name} must be {self.form}; got {shown(value)}")
        return value  # type: ignore[return-value]  # matches() checked it is a str


def _characters(
    name: str, alphabet: str, words: str, longest: int, example: str | None = None
) -> Text:
    """A field of 1 to ``longest`` characters of the class ``alphabet`` (``words`` says it)."""
    return Text(
        name,
        f"[{alphabet}]{{1,{longest}}}",
        f"1 to {longest} characters of {words}",
        max_length=longest,
        example=example,
    )


@dataclass(frozen=True)
class Integer:
    """An integer from ``low`` to ``high`` (``None``: no upper bound)."""

    name: str
    low: int
    high: int | None = None
    default: int | None = None

    @property
    def form(self) -> str:
        if self.high is None:
            return f"an integer of at least {self.low}"
        return f"an integer from {self.low} to {self.high}"

    def check(self, value: object, name: str | None = None, *, digits: bool = True) -> int:
        """``value``; with ``digits`` also a string of digits, as templates and URIs give them
        (``digits=False`` where a JSON body or document must carry a number)."""
        if digits and isinstance(value, str) and re.fullmatch(r"\s*-?\d+\s*", value):
            value = int(value)
        if (
            isinstance(value, bool)
            or not isinstance(value, int)
            or value < self.low
            or (self.high is not None and value > self.high)
        ):
            raise ValueError(f"{name or self.name} must be {self.form}; got {shown(value)}")
        return value


@dataclass(frozen=True)
class Seconds:
    """A duration in seconds: greater than 0 (or at least 0 with ``allow_zero``), finite."""

    name: str
    default: float | None = None
    allow_zero: bool = False

    @property
    def form(self) -> str:
        return f"a number of seconds {'at least 0' if self.allow_zero else 'greater than 0'}"

    def check(self, value: object, name: str | None = None) -> float:
        """``value`` as a float (also a string of a number, or a ``timedelta``)."""
        number: float | None = None
        if isinstance(value, str):
            with contextlib.suppress(ValueError):
                number = float(value)
        elif isinstance(value, dt.timedelta):
            number = value.total_seconds()
        elif isinstance(value, int | float) and not isinstance(value, bool):
            number = float(value)
        positive = number is not None and (number > 0 or (self.allow_zero and number == 0))
        if positive and number is not None and number < math.inf:
            return number
        raise ValueError(f"{name or self.name} must be {self.form}; got {shown(value)}")


# -- path parameters: IoTDA's documented alphabets; none can change a request's path ----------
HEX_WORDS: Final = "lower-case letters a-f, digits and hyphens"
INSTANCE_ID: Final = _characters(
    "instance_id", "a-f0-9-", HEX_WORDS, 36, "6b6f5c3e-1f1a-4e55-9d5a-0123456789ab"
)
TASK_ID: Final = _characters("instance_task_id", "a-f0-9-", HEX_WORDS, 64)
PROJECT_ID: Final = _characters(
    "project_id",
    "A-Za-z0-9_-",
    "letters, digits, underscores and hyphens",
    64,
    "0123456789abcdef0123456789abcdef",
)
MARKER: Final = _characters(
    "marker", "A-Za-z0-9_.-", "letters, digits, underscores, dots and hyphens", 128
)
FLAVOR_TYPE: Final = _characters(
    "flavor_type",
    "A-Za-z0-9._-",
    "letters, digits, dots, underscores and hyphens",
    64,
    "iotda.standard.s3",
)
#: Task types and statuses: upper-case names (new ones Huawei adds are accepted).
UPPER_NAME: Final = Text(
    "instance_task_type",
    "[A-Z][A-Z0-9_]{0,63}",
    "an upper-case name of 1 to 64 letters, digits and underscores such as 'MODIFY'",
    max_length=64,
    example="MODIFY",
)
#: Airflow's own rule for connection IDs (airflow.models.connection.RE_SANITIZE_CONN_ID).
CONN_ID: Final = Text(
    "iotda_conn_id",
    r"[\w#!()\-.:/\\]{1,250}",
    "an Airflow connection ID: 1 to 250 letters, digits or any of _#!()-.:/\\",
    max_length=250,
)
#: An operate window's start or end, ``HH:mm`` in UTC (the simulator's scenarios).
WINDOW_TIME: Final = Text(
    "start_time", r"([01]\d|2[0-3]):[0-5]\d", "a time HH:mm in UTC such as '18:00'", 5, "18:00"
)

# -- regions --------------------------------------------------------------------------------
#: Huawei Cloud regions with IoTDA (huaweicloudsdkiotdm 3.1.219, ``IoTDMRegion``).
REGIONS: Final = (
    "cn-north-4",
    "cn-south-1",
    "cn-south-4",
    "cn-east-3",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-southeast-3",
    "af-south-1",
    "me-east-1",
    "la-south-2",
    "ru-moscow-1",
)
REGION: Final = Text(
    "region",
    r"[a-z]{2,}(-[a-z0-9]+)+",
    "a region name of lower-case letters, digits and hyphens such as 'cn-north-4'",
    example="cn-north-4",
)
#: The endpoint a region gives when extra ``endpoint`` is not set.
ENDPOINT_TEMPLATE: Final = "https://iotda-mgmt.{region}.myhuaweicloud.com"


def closest_region(value: str) -> str | None:
    """The known region ``value`` is most likely a misspelling of (``None``: none is close)."""
    import difflib  # only when a region is refused: importing the sensor stays cheap

    close = difflib.get_close_matches(value.strip().lower(), REGIONS, n=1, cutoff=0.6)
    return close[0] if close else None


def unknown_region_message(name: str, value: object) -> str:
    """Why ``value`` is refused as a region: the closest real one, the list, the way out."""
    guess = closest_region(value) if isinstance(value, str) else None
    hint = f"; did you mean {guess!r}?" if guess else ";"
    return (
        f"{name} must be a Huawei Cloud region with IoTDA ({', '.join(REGIONS)}); got "
        f"{shown(value)}{hint} For a region not in this list or a private endpoint, set extra "
        f"endpoint to its URL, e.g. {ENDPOINT_TEMPLATE.format(region='REGION')}"
    )


# -- numbers --------------------------------------------------------------------------------
#: The most records one list call returns, and the largest ``offset``.
PAGE_MAX: Final = 500
OFFSET: Final = Integer("offset", 0, PAGE_MAX, default=0)
LIMIT: Final = Integer("limit", 1, PAGE_MAX, default=PAGE_MAX)
FLAVOR_SIZE: Final = Integer("flavor_size", 1)
MAX_RETRIES: Final = Integer("max_retries", 0, 10, default=3)
TIMEOUT: Final = Seconds("timeout", default=30.0)
CONNECT_TIMEOUT: Final = Seconds("connect_timeout", default=10.0)
