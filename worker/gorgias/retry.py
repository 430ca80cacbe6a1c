"""Retry as two pieces: a classifier that decides *whether* and a backoff policy that decides *when*.

``classify`` turns one attempt's result (an :class:`~worker.gorgias.client.HttpResult` or a
:class:`~worker.gorgias.errors.TransportError`) into a :class:`Verdict`; :class:`BackoffPolicy` gives
the pause before the next attempt: exponential, capped, full jitter, never shorter than a Retry-After.
The loop that uses both lives in :mod:`worker.gorgias.delivery`.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Literal

from worker.gorgias.client import HttpResult
from worker.gorgias.errors import TransportError, gorgias_error_message

Action = Literal["success", "retry", "fail"]

RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
"""Statuses worth another attempt; other 5xx (501, 505, ...) will not change on a retry."""


@dataclass(frozen=True, slots=True)
class Verdict:
    """What to do after one attempt, and why (``reason`` is readable and free of secrets)."""

    action: Action
    reason: str
    retry_after_s: float | None = None
    outcome_unknown: bool = False


def classify(outcome: HttpResult | TransportError, *, now: Callable[[], float] = time.time) -> Verdict:
    """Success for 2xx; retry for 408, 429 (with its Retry-After), 500/502/503/504 and transport errors;
    fail for everything else (4xx, other 5xx, and 3xx: the delivery service follows a merged object's
    301 once itself, and a redirect it cannot or did not follow is final).

    ``now`` (epoch seconds) only serves to turn an HTTP-date Retry-After into seconds.
    """
    if isinstance(outcome, TransportError):
        return Verdict("retry", str(outcome), outcome_unknown=outcome.maybe_sent)
    status = outcome.status
    if 200 <= status < 300:
        return Verdict("success", f"HTTP {status}")
    reason = describe_status(outcome)
    if status in RETRY_STATUSES:
        return Verdict("retry", reason, retry_after_s=parse_retry_after(outcome.header("retry-after"), now()))
    return Verdict("fail", reason)


def describe_status(result: HttpResult) -> str:
    """``HTTP 400 from Gorgias: Failed to create ticket (sender: Missing data for required field.)``."""
    status = result.status
    if 300 <= status < 400:
        location = result.header("location")
        where = f" to {location}" if location else ""
        text = gorgias_error_message(result.body_bytes, result.header("content-type"))
        detail = f": {text}" if text else ""
        return f"HTTP {status} from Gorgias{detail} (redirect{where}: the object was merged)"
    if status == 429:
        retry_after = result.header("retry-after")
        return "HTTP 429 from Gorgias: rate limited" + (f", Retry-After {retry_after}" if retry_after else "")
    text = gorgias_error_message(result.body_bytes, result.header("content-type"))
    return f"HTTP {status} from Gorgias" + (f": {text}" if text else "")


def parse_retry_after(value: str | None, now_epoch: float) -> float | None:
    """Seconds to wait from a Retry-After value: delay-seconds or an HTTP-date. None when unusable."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            return None
        seconds = when.timestamp() - now_epoch
    if math.isnan(seconds) or math.isinf(seconds):
        return None
    return max(0.0, seconds)


@dataclass(slots=True)
class BackoffPolicy:
    """Exponential backoff with full jitter: attempt ``n`` (1-based, the attempt that just failed) waits
    uniformly in ``[0, min(max_s, initial_s * 2 ** (n - 1))]``, raised to Retry-After when one is given.
    """

    initial_s: float
    max_s: float
    rng: random.Random

    def ceiling(self, attempt: int) -> float:
        """The largest pause after attempt ``attempt`` without a Retry-After."""
        exponent = min(max(attempt - 1, 0), 64)
        return min(self.max_s, self.initial_s * 2.0**exponent)

    def delay(self, attempt: int, retry_after_s: float | None = None) -> float:
        pause = self.rng.uniform(0.0, self.ceiling(attempt))
        if retry_after_s is not None:
            pause = max(pause, retry_after_s)
        return pause
