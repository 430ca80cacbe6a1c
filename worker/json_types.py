"""Naming a JSON value's type in messages: ``got a JSON array``, ``the value is an object``. Pure."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any


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
