"""Gorgias-style timestamps: ISO-8601, UTC, microseconds, with the offset (``2024-05-01T10:00:00.123456+00:00``),
as recorded from a real account."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

UTC_OFFSET = "+00:00"

WallClock = Callable[[], datetime]
"""Returns the current time as an aware datetime; injected so tests can pin it."""


def format_timestamp(moment: datetime) -> str:
    """``moment`` in Gorgias's format; aware datetimes are converted to UTC first."""
    if moment.tzinfo is not None:
        if moment.tzinfo is not UTC:
            moment = moment.astimezone(UTC)
        moment = moment.replace(tzinfo=None)
    return moment.isoformat(timespec="microseconds") + UTC_OFFSET


def parse_timestamp(text: str) -> datetime:
    """Parse an ISO-8601 datetime (with or without offset) to a naive UTC datetime.

    Raises ``ValueError`` when ``text`` is not a datetime.
    """
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment


def normalize_timestamp(text: str) -> str:
    """Re-render a client-supplied ISO datetime in Gorgias's format (``ValueError`` when invalid)."""
    return parse_timestamp(text).isoformat(timespec="microseconds") + UTC_OFFSET


class Timestamps:
    """Produces "now" in Gorgias's format: from ``wall`` when given, else quickly from ``time.time()``
    (the date-and-seconds part is formatted once per second)."""

    def __init__(self, wall: WallClock | None = None) -> None:
        self._wall = wall
        self._second = -1
        self._prefix = ""

    def now(self) -> str:
        """The current time, e.g. ``2024-05-01T10:00:00.123456+00:00``."""
        if self._wall is not None:
            return format_timestamp(self._wall())
        moment = time.time()
        second = int(moment)
        if second != self._second:
            self._second = second
            self._prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        return f"{self._prefix}.{int((moment - second) * 1_000_000):06d}{UTC_OFFSET}"
