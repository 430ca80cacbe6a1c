"""A JSON value in words: its type as messages name it (``got a JSON array``, ``the value is an object``),
and a scalar as JSON writes it (``12``, ``true``). Pure."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import orjson


def json_type(value: Any) -> str:
    """``null``, ``boolean``, ``number``, ``string``, ``array`` or ``object``; Python's name for anything else."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "array"
    if isinstance(value, Mapping):
        return "object"
    return type(value).__name__


def a_json_type(value: Any) -> str:
    """The type with its article, as a sentence says it: ``null``, ``a string``, ``an array``, ``a non-finite
    number`` (NaN and infinities, which JSON cannot carry)."""
    if isinstance(value, float) and not math.isfinite(value):
        return "a non-finite number"
    name = json_type(value)
    if name == "null":
        return name
    return f"{'an' if name[0] in 'aeiou' else 'a'} {name}"


def scalar_text(value: Any) -> str | None:
    """A string, number or boolean as it reads in JSON (``12``, ``1.5``, ``true``); None for anything else."""
    kind = type(value)
    if kind is str:
        return value  # type: ignore[no-any-return]
    if kind is int:
        return str(value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(int(value))
    if isinstance(value, float) and math.isfinite(value):
        return orjson.dumps(value).decode()
    return None
