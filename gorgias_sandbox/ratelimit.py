"""Gorgias's rate limit: a leaky bucket per account and authentication type.

Each request adds one unit to its bucket; the bucket drains continuously at ``capacity / window``
units per second (API keys: 40 per 20 s, OAuth: 80 per 20 s). A request that would overflow the bucket
is refused (429) and adds nothing. The clock is injected so tests can move time without sleeping.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass

Clock = Callable[[], float]
"""Monotonic seconds (``time.monotonic`` by default)."""

_RATE = re.compile(r"^\s*(\d+)\s*/\s*(\d+(?:\.\d+)?)\s*s?\s*$")
_EPSILON = 1e-9


@dataclass(frozen=True, slots=True)
class RateSpec:
    """``capacity`` requests that drain completely in ``window_s`` seconds."""

    capacity: int
    window_s: float

    @property
    def drain_per_s(self) -> float:
        """Units leaving the bucket per second."""
        return self.capacity / self.window_s

    def __str__(self) -> str:
        return f"{self.capacity}/{self.window_s:g}s"


def parse_rate(text: str) -> RateSpec | None:
    """``"40/20s"`` (or ``"40/20"``) → ``RateSpec(40, 20.0)``; ``"off"`` → ``None``. ``ValueError`` otherwise."""
    if text.strip().lower() == "off":
        return None
    match = _RATE.match(text)
    if not match or int(match.group(1)) < 1 or float(match.group(2)) <= 0:
        raise ValueError(f"rate limit {text!r} must look like 40/20s (requests/seconds) or be 'off'")
    return RateSpec(int(match.group(1)), float(match.group(2)))


@dataclass(frozen=True, slots=True)
class Admission:
    """The bucket's answer to one request: ``allowed``, the ``X-Gorgias-Account-Api-Call-Limit`` value,
    and on refusal ``retry_after_s`` (whole seconds until one unit has drained)."""

    allowed: bool
    call_limit: str
    retry_after_s: int = 0


class LeakyBucket:
    """One bucket. ``level`` is the number of units currently held (fractional while draining)."""

    __slots__ = ("capacity", "level", "rate", "updated")

    def __init__(self, spec: RateSpec, now: float) -> None:
        self.capacity = spec.capacity
        self.rate = spec.drain_per_s
        self.level = 0.0
        self.updated = now

    def _drain(self, now: float) -> None:
        elapsed = now - self.updated
        if elapsed > 0:
            self.level = max(0.0, self.level - elapsed * self.rate)
            self.updated = now

    def used(self, now: float) -> int:
        """Units held now, rounded up."""
        self._drain(now)
        return max(0, math.ceil(self.level - _EPSILON))

    def admit(self, now: float) -> Admission:
        """Add one unit if it fits; otherwise refuse and say how long until it would."""
        self._drain(now)
        if self.level + 1 > self.capacity + _EPSILON:
            wait = (self.level + 1 - self.capacity) / self.rate
            retry = max(1, math.ceil(wait - _EPSILON))
            return Admission(False, f"{math.ceil(self.level - _EPSILON)}/{self.capacity}", retry)
        self.level += 1
        return Admission(True, f"{math.ceil(self.level - _EPSILON)}/{self.capacity}")


class RateLimiter:
    """All buckets of a sandbox, keyed by ``(account, auth_type)`` with auth type ``api_key`` or ``oauth``."""

    def __init__(self, api_key: RateSpec | None, oauth: RateSpec | None, clock: Clock) -> None:
        self._clock = clock
        self._buckets: dict[tuple[str, str], LeakyBucket] = {}
        self._specs: dict[str, RateSpec | None] = {}
        self.configure(api_key, oauth)

    @property
    def enabled(self) -> bool:
        """False when neither authentication type is limited."""
        return any(spec is not None for spec in self._specs.values())

    def spec(self, auth_type: str) -> RateSpec | None:
        """The budget for ``auth_type`` (``None`` = unlimited)."""
        return self._specs[auth_type]

    def configure(self, api_key: RateSpec | None, oauth: RateSpec | None) -> None:
        """Change the budgets; every bucket starts empty again."""
        self._specs = {"api_key": api_key, "oauth": oauth}
        self._buckets.clear()

    def reset(self) -> None:
        """Empty every bucket."""
        self._buckets.clear()

    def _bucket(self, account: str, auth_type: str) -> LeakyBucket | None:
        key = (account, auth_type)
        bucket = self._buckets.get(key)
        if bucket is None:
            spec = self._specs[auth_type]
            if spec is None:
                return None
            bucket = self._buckets[key] = LeakyBucket(spec, self._clock())
        return bucket

    def admit(self, account: str, auth_type: str) -> Admission | None:
        """Count one request; ``None`` when this authentication type is not limited."""
        bucket = self._bucket(account, auth_type)
        return None if bucket is None else bucket.admit(self._clock())

    def call_limit(self, account: str, auth_type: str) -> str | None:
        """The header value without counting a request (``None`` when unlimited)."""
        bucket = self._bucket(account, auth_type)
        return None if bucket is None else f"{bucket.used(self._clock())}/{bucket.capacity}"

    def retry_after(self, account: str, auth_type: str) -> int:
        """Whole seconds until the bucket can take one more request (at least 1)."""
        bucket = self._bucket(account, auth_type)
        if bucket is None:
            return 1
        bucket.used(self._clock())
        return max(1, math.ceil((bucket.level + 1 - bucket.capacity) / bucket.rate - _EPSILON))

    def snapshot(self) -> dict[str, object]:
        """Budgets and current levels, for the admin API."""
        now = self._clock()
        return {
            "api_key": None if self._specs["api_key"] is None else str(self._specs["api_key"]),
            "oauth": None if self._specs["oauth"] is None else str(self._specs["oauth"]),
            "buckets": {f"{account}/{auth}": f"{bucket.used(now)}/{bucket.capacity}"
                        for (account, auth), bucket in sorted(self._buckets.items())},
        }
