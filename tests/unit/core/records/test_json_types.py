"""Naming a JSON value's type, once for every message that does."""

from __future__ import annotations

from typing import Any

import pytest

from worker.core.records.json_types import a_json_type, json_type


@pytest.mark.parametrize(("value", "name", "said"), [
    (None, "null", "null"), (True, "boolean", "a boolean"), (3, "number", "a number"), (1.5, "number", "a number"),
    ("x", "string", "a string"), ([1], "array", "an array"), ((1,), "array", "an array"),
    ({"a": 1}, "object", "an object"), (float("inf"), "number", "a non-finite number"), (b"x", "bytes", "a bytes"),
])
def test_names(value: Any, name: str, said: str) -> None:
    assert json_type(value) == name
    assert a_json_type(value) == said
