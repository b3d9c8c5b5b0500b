"""Fault injection: which API requests get a throttle, an error, a dropped connection...

Faults apply to the IoTDA API paths only, never to the ``/_sim`` control endpoint.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

#: Kinds of fault, at most one per request (latency comes on top of any of them).
FAULT_KINDS: tuple[str, ...] = (
    "429",  # throttled: 429, APIG.0308 body, Retry-After header
    "500",  # internal error
    "503",  # backend unavailable
    "drop",  # close the connection without answering
    "slow",  # answer correctly, but only after ``slow_seconds``
    "malformed",  # 200 with a body that is not JSON
    "truncated",  # 200 with the real JSON body cut in half
)
#: Entry of ``next_faults`` meaning "this request gets no fault".
NO_FAULT = "none"


class FaultConfigError(ValueError):
    """A fault configuration is not valid."""


@dataclass(frozen=True)
class FaultConfig:
    """How the simulator misbehaves.

    ``rates`` maps a kind from :data:`FAULT_KINDS` to the probability that an API request gets
    it (the rates must add up to at most 1); ``next_faults`` lists kinds (or ``"none"``) for the
    next API requests, in order, before the rates apply again.  ``latency_ms`` is added to a
    share ``latency_rate`` of the API requests.  A ``slow`` answer waits ``slow_seconds``; a
    ``429`` carries ``Retry-After: retry_after``.
    """

    rates: Mapping[str, float] = field(default_factory=dict)
    next_faults: tuple[str, ...] = ()
    latency_ms: float = 0.0
    latency_rate: float = 1.0
    slow_seconds: float = 5.0
    retry_after: int = 1

    def __post_init__(self) -> None:
        rates = dict(self.rates)
        for kind, rate in rates.items():
            if kind not in FAULT_KINDS:
                raise FaultConfigError(f"unknown fault kind {kind!r}; use one of {FAULT_KINDS}")
            if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 <= rate <= 1:
                raise FaultConfigError(f"rate of {kind!r} must be between 0 and 1, got {rate!r}")
        if sum(rates.values()) > 1 + 1e-9:
            raise FaultConfigError("fault rates must add up to at most 1")
        object.__setattr__(self, "rates", {k: float(v) for k, v in rates.items()})
        for kind in self.next_faults:
            if kind not in FAULT_KINDS and kind != NO_FAULT:
                raise FaultConfigError(f"unknown fault kind {kind!r} in next_faults")
        object.__setattr__(self, "next_faults", tuple(self.next_faults))
        if self.latency_ms < 0 or not 0 <= self.latency_rate <= 1:
            raise FaultConfigError("latency_ms must be >= 0 and latency_rate between 0 and 1")
        if self.slow_seconds < 0 or self.retry_after < 0:
            raise FaultConfigError("slow_seconds and retry_after must be >= 0")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FaultConfig:
        """Build from the JSON form (the same field names)."""
        unknown = set(data) - {
            "rates",
            "next_faults",
            "latency_ms",
            "latency_rate",
            "slow_seconds",
            "retry_after",
        }
        if unknown:
            raise FaultConfigError(f"unknown fault settings: {', '.join(sorted(unknown))}")
        rates = data.get("rates") or {}
        next_faults = data.get("next_faults") or ()
        if not isinstance(rates, Mapping) or isinstance(next_faults, str | bytes):
            raise FaultConfigError("rates must be an object and next_faults a list")
        try:
            return cls(
                rates=dict(rates),
                next_faults=tuple(str(kind) for kind in next_faults),
                latency_ms=float(data.get("latency_ms", 0.0)),
                latency_rate=float(data.get("latency_rate", 1.0)),
                slow_seconds=float(data.get("slow_seconds", 5.0)),
                retry_after=int(data.get("retry_after", 1)),
            )
        except (TypeError, ValueError) as exc:
            if isinstance(exc, FaultConfigError):
                raise
            raise FaultConfigError(f"invalid fault settings: {exc}") from exc

    def to_dict(self) -> dict[str, Any]:
        """The JSON form."""
        return {
            "rates": dict(self.rates),
            "next_faults": list(self.next_faults),
            "latency_ms": self.latency_ms,
            "latency_rate": self.latency_rate,
            "slow_seconds": self.slow_seconds,
            "retry_after": self.retry_after,
        }


@dataclass(frozen=True)
class FaultDecision:
    """What to do to one request: a fault kind (or None) and a delay in seconds."""

    kind: str | None
    delay: float


class FaultInjector:
    """Draws a :class:`FaultDecision` per API request from a config and a seeded RNG.

    Not thread-safe by itself; the simulator state calls it under its lock.
    """

    def __init__(self, config: FaultConfig | None = None, seed: int | None = None) -> None:
        self._seed = seed
        self._rng = random.Random(seed)
        self.config = FaultConfig()
        self._queue: deque[str] = deque()
        self.configure(config or FaultConfig())

    def configure(self, config: FaultConfig) -> None:
        """Replace the configuration (and the queue of next faults)."""
        self.config = config
        self._queue = deque(config.next_faults)

    def reseed(self) -> None:
        """Restart the random sequence from the seed."""
        self._rng = random.Random(self._seed)

    @property
    def pending(self) -> list[str]:
        """The kinds still queued for the next requests."""
        return list(self._queue)

    def decide(self) -> FaultDecision:
        """Draw the fault (if any) and the added latency for one API request."""
        config = self.config
        kind: str | None = None
        if self._queue:
            queued = self._queue.popleft()
            kind = None if queued == NO_FAULT else queued
        elif config.rates:
            draw = self._rng.random()
            total = 0.0
            for candidate in FAULT_KINDS:
                total += config.rates.get(candidate, 0.0)
                if draw < total:
                    kind = candidate
                    break
        delay = 0.0
        if config.latency_ms > 0 and (
            config.latency_rate >= 1 or self._rng.random() < config.latency_rate
        ):
            delay = config.latency_ms / 1000.0
        return FaultDecision(kind, delay)


def parse_rate_options(values: Iterable[str]) -> dict[str, float]:
    """Parse CLI ``KIND=RATE`` options into a rates mapping."""
    rates: dict[str, float] = {}
    for value in values:
        kind, sep, rate = value.partition("=")
        if not sep:
            raise FaultConfigError(f"expected KIND=RATE, got {value!r}")
        try:
            rates[kind.strip()] = float(rate)
        except ValueError as exc:
            raise FaultConfigError(f"rate in {value!r} is not a number") from exc
    return rates
