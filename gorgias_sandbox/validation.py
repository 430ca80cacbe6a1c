"""A small, fast request-body validator producing marshmallow-style field errors.

A schema maps field names to :class:`Field` (a check function plus ``required``). :func:`load` returns
the cleaned fields or raises :class:`Invalid` whose ``errors`` nest like Gorgias's 400 ``data``:
``{"subject": ["Longer than maximum length 998."], "messages": {"0": {"channel": [...]}}}``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from gorgias_sandbox.timestamps import normalize_timestamp

Errors = list[str] | dict[str, Any]
Check = Callable[[Any], Any]

MISSING = "Missing data for required field."
UNKNOWN = "Unknown field."
NULL = "Field may not be null."
BAD_OBJECT = "Invalid input type."

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class Invalid(Exception):
    """Validation failed; ``errors`` is a list of messages or a dict of nested field errors."""

    def __init__(self, errors: Errors) -> None:
        super().__init__(errors)
        self.errors = errors


@dataclass(frozen=True, slots=True)
class Field:
    """A field of a schema: its ``check`` (returns the cleaned value or raises :class:`Invalid`)."""

    check: Check
    required: bool = False


Schema = Mapping[str, Field]
_REQUIRED: dict[int, tuple[str, ...]] = {}  # required field names by schema (schemas are module constants)


def load(data: Any, schema: Schema, *, require: bool = True) -> dict[str, Any]:
    """Validate ``data`` (a JSON object) against ``schema``; unknown fields are errors.

    With ``require=False`` (partial updates) required fields may be absent.
    """
    if not isinstance(data, dict):
        raise Invalid({"_schema": [BAD_OBJECT]})
    out: dict[str, Any] = {}
    errors: dict[str, Any] = {}
    for key, value in data.items():
        field = schema.get(key)
        if field is None:
            errors[key] = [UNKNOWN]
            continue
        try:
            out[key] = field.check(value)
        except Invalid as exc:
            errors[key] = exc.errors
    if require:
        required = _REQUIRED.get(id(schema))
        if required is None:
            required = _REQUIRED[id(schema)] = tuple(k for k, f in schema.items() if f.required)
        for key in required:
            if key not in data:
                errors[key] = [MISSING]
    if errors:
        raise Invalid(errors)
    return out


def nullable(check: Check) -> Check:
    """``check`` that also lets ``null`` through."""

    def run(value: Any) -> Any:
        return None if value is None else check(value)

    return run


def _not_null(value: Any) -> None:
    if value is None:
        raise Invalid([NULL])


def text(max_len: int | None = None, min_len: int = 0, *, max_bytes: int | None = None) -> Check:
    """A string of ``min_len``..``max_len`` characters (and at most ``max_bytes`` UTF-8 bytes)."""

    def run(value: Any) -> str:
        if not isinstance(value, str):
            _not_null(value)
            raise Invalid(["Not a valid string."])
        n = len(value)
        if max_len is not None and n > max_len:
            raise Invalid([f"Longer than maximum length {max_len}."])
        if n < min_len:
            raise Invalid([f"Shorter than minimum length {min_len}."])
        if max_bytes is not None and n * 4 > max_bytes and len(value.encode()) > max_bytes:
            raise Invalid([f"Longer than maximum size {max_bytes} bytes."])
        return value

    return run


def one_of(choices: Sequence[str]) -> Check:
    """One of ``choices`` (a string)."""
    allowed = frozenset(choices)
    message = f"Must be one of: {', '.join(choices)}."

    def run(value: Any) -> str:
        if value not in allowed or not isinstance(value, str):
            _not_null(value)
            raise Invalid([message])
        return value

    return run


def slug(max_len: int = 64) -> Check:
    """A lower-case slug such as a channel name (``api``, ``email``, ``my-custom-channel``)."""
    pattern = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")
    seen: set[str] = set()

    def run(value: Any) -> str:
        if value in seen:
            return value  # type: ignore[no-any-return]
        if not isinstance(value, str):
            _not_null(value)
            raise Invalid(["Not a valid string."])
        if not pattern.match(value) or len(value) > max_len:
            raise Invalid(["Not a valid channel."])
        if len(seen) < 1024:
            seen.add(value)
        return value

    return run


def boolean(value: Any) -> bool:
    """A JSON boolean."""
    if value is True or value is False:
        return value
    _not_null(value)
    raise Invalid(["Not a valid boolean."])


def integer(minimum: int | None = None, maximum: int | None = None) -> Check:
    """A JSON integer (not a boolean) within bounds."""

    def run(value: Any) -> int:
        if type(value) is not int:
            _not_null(value)
            raise Invalid(["Not a valid integer."])
        if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
            if minimum is not None and maximum is not None:
                raise Invalid([f"Must be greater than or equal to {minimum} and less than or equal to {maximum}."])
            if minimum is not None:
                raise Invalid([f"Must be greater than or equal to {minimum}."])
            raise Invalid([f"Must be less than or equal to {maximum}."])
        return value

    return run


identifier = integer(minimum=1)
"""A resource id."""


def number(value: Any) -> float | int:
    """A JSON number (not a boolean)."""
    if type(value) in (int, float):
        return value  # type: ignore[no-any-return]
    _not_null(value)
    raise Invalid(["Not a valid number."])


def json_object(value: Any) -> dict[str, Any]:
    """Any JSON object."""
    if isinstance(value, dict):
        return value
    _not_null(value)
    raise Invalid(["Not a valid mapping type."])


def anything(value: Any) -> Any:
    """Any JSON value, ``null`` included."""
    return value


def timestamp(value: Any) -> str:
    """An ISO-8601 datetime, returned in Gorgias's format."""
    if not isinstance(value, str):
        _not_null(value)
        raise Invalid(["Not a valid datetime."])
    try:
        return normalize_timestamp(value)
    except ValueError:
        raise Invalid(["Not a valid datetime."]) from None


def email(value: Any) -> str:
    """An e-mail address of at most 320 characters."""
    if not isinstance(value, str):
        _not_null(value)
        raise Invalid(["Not a valid string."])
    if len(value) > 320:
        raise Invalid(["Longer than maximum length 320."])
    if not _EMAIL.match(value):
        raise Invalid(["Not a valid email address."])
    return value


def language(value: Any) -> str:
    """An ISO-639-1 code (two lower-case letters)."""
    if not isinstance(value, str):
        _not_null(value)
        raise Invalid(["Not a valid string."])
    if len(value) != 2 or not value.isalpha() or not value.islower():
        raise Invalid(["Not a valid ISO-639-1 language code."])
    return value


@lru_cache(maxsize=1024)
def _known_zone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def timezone(value: Any) -> str:
    """An IANA time zone name (``UTC``, ``America/New_York``)."""
    if not isinstance(value, str):
        _not_null(value)
        raise Invalid(["Not a valid string."])
    if not _known_zone(value):
        raise Invalid(["Not a valid timezone."])
    return value


def nested(schema: Schema) -> Check:
    """A JSON object validated against ``schema``."""

    def run(value: Any) -> dict[str, Any]:
        _not_null(value)
        return load(value, schema)

    return run


def list_of(item: Check, min_items: int = 0, max_items: int | None = None) -> Check:
    """A JSON array whose items pass ``item``; item errors are keyed by index (``{"0": ...}``)."""

    def run(value: Any) -> list[Any]:
        if not isinstance(value, list):
            _not_null(value)
            raise Invalid(["Not a valid list."])
        n = len(value)
        if n < min_items or (max_items is not None and n > max_items):
            if max_items is None:
                raise Invalid([f"Shorter than minimum length {min_items}."])
            raise Invalid([f"Length must be between {min_items} and {max_items}."])
        out: list[Any] = []
        errors: dict[str, Any] = {}
        for index, element in enumerate(value):
            try:
                out.append(item(element))
            except Invalid as exc:
                errors[str(index)] = exc.errors
        if errors:
            raise Invalid(errors)
        return out

    return run
