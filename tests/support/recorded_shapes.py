"""Responses recorded from a real Gorgias account (tests/unit/sandbox/fixtures/*.json) and a checker that an
answer has their shape."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).parents[1] / "unit" / "sandbox" / "fixtures"


@cache
def fixture(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"{name}.json").read_text())  # type: ignore[no-any-return]


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def shape_problems(obj: dict[str, Any], name: str) -> list[str]:
    """Every way ``obj`` differs from the recorded shape ``name`` (empty when it matches)."""
    spec = fixture(name)
    keys: dict[str, list[str]] = spec["keys"]
    optional = set(spec.get("optional", ()))
    problems = [f"{name}: missing {key}" for key in keys if key not in obj and key not in optional]
    unrecorded = spec.get("not_recorded", {})
    problems += [f"{name}: unrecorded {key}" for key in obj if key not in keys and key not in unrecorded]
    problems += [f"{name}.{key}: {json_type(obj[key])}, recorded {'|'.join(types)}"
                 for key, types in keys.items() if key in obj and json_type(obj[key]) not in types]
    return problems


EMAIL_SOURCE = {"type": "email", "from": {"address": "support@acme.com", "name": "Acme"},
                "to": [{"address": "jane@example.com", "name": "Jane Doe"}]}


def assert_shape(obj: Any, name: str) -> None:
    assert isinstance(obj, dict), f"{name}: not an object"
    assert shape_problems(obj, name) == []
