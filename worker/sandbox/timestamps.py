"""Gorgias-style timestamps: ISO-8601, UTC, microseconds, no offset (``2024-05-01T10:00:00.123456``)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

WallClock = Callable[[], datetime]
"""Returns the current time as an aware datetime; injected so tests can pin it."""


def utc_now() -> datetime:
    """The real wall clock, in UTC."""
    return datetime.now(UTC)


def format_timestamp(moment: datetime) -> str:
    """``moment`` in Gorgias's format; aware datetimes are converted to UTC first."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment.isoformat(timespec="microseconds")


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
    return parse_timestamp(text).isoformat(timespec="microseconds")
