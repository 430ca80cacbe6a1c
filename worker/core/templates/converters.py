"""Converters: lenient shaping of common record forms into what a Gorgias body wants (``as:`` in a
template's body spec): ``"a, b"`` into tag references, ``"12"`` into an id, an email into a person.

Anything a converter does not recognise passes through unchanged, and the body schema then says what
is wrong with it. Pure.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["CONVERTERS"]


def _boolean(value: Any) -> Any:
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in ("true", "yes", "1"):
            return True
        if lowered in ("false", "no", "0"):
            return False
    if type(value) is int and value in (0, 1):
        return bool(value)
    return value


def _integer(value: Any) -> Any:
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        return int(value.strip())
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _split(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def _tag_refs(value: Any) -> Any:
    """``"a, b"`` / ``["a", 5, {"name": "c"}]`` -> ``[{"name": "a"}, {"id": 5}, {"name": "c"}]``."""
    if isinstance(value, str):
        return [{"name": name} for name in _split(value)]
    if isinstance(value, list):
        out: list[Any] = []
        for item in value:
            if isinstance(item, str):
                out.append({"name": item})
            elif isinstance(item, int) and not isinstance(item, bool):
                out.append({"id": item})
            else:
                out.append(item)
        return out
    return value


def _tag_names(value: Any) -> Any:
    """The tag names in ``"a, b"``, ``"a"``, ``["a", {"name": "b"}]`` (ids are left to :func:`_tag_ids`)."""
    if isinstance(value, str):
        return _split(value)
    if isinstance(value, list):
        out: list[Any] = []
        for item in value:
            if isinstance(item, str):
                out.append(item)
            elif isinstance(item, Mapping):
                if "name" in item:
                    out.append(item["name"])
            elif not isinstance(item, int) or isinstance(item, bool):
                out.append(item)  # not a name nor an id: the schema will say so
        return out
    return value


def _tag_ids(value: Any) -> Any:
    """The tag ids in ``5``, ``[5, "a", {"id": 6}]`` (names are left to :func:`_tag_names`)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return [value]
    if isinstance(value, str):
        return [_integer(value)] if value.strip().isdigit() else []
    if isinstance(value, list):
        out: list[Any] = []
        for item in value:
            if isinstance(item, int) and not isinstance(item, bool):
                out.append(item)
            elif isinstance(item, Mapping) and "id" in item:
                out.append(_integer(item["id"]))
        return out
    return value


def _id_list(value: Any) -> Any:
    if isinstance(value, list):
        return [_integer(item) for item in value]
    if isinstance(value, str) and "," in value:
        return [_integer(item) for item in _split(value)]
    return [_integer(value)]


def _id_ref(value: Any) -> Any:
    if value is None or isinstance(value, Mapping):
        return value
    return {"id": _integer(value)}


def _id_value(value: Any) -> Any:
    """``{"id": 5}`` / ``"5"`` / ``5`` -> ``5`` (``null`` stays: it clears)."""
    if isinstance(value, Mapping) and "id" in value:
        return _integer(value["id"])
    return value if value is None else _integer(value)


def _field_value(value: Any) -> Any:
    """A whole number written with decimals (``12.0``) is an integer; everything else as it is."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _person(value: Any) -> Any:
    """``"jane@example.com"`` -> ``{"email": ...}``, ``12`` -> ``{"id": 12}``; objects as they are."""
    if isinstance(value, str):
        return {"email": value.strip()}
    if isinstance(value, int) and not isinstance(value, bool):
        return {"id": value}
    return value


def _phone_channels(value: Any) -> Any:
    if isinstance(value, str):
        return [{"type": "phone", "address": value.strip()}]
    return value


def _color(value: Any) -> Any:
    return {"color": value} if isinstance(value, str) else value


CONVERTERS: dict[str, Callable[[Any], Any]] = {
    "boolean": _boolean,
    "integer": _integer,
    "tag_refs": _tag_refs,
    "tag_names": _tag_names,
    "tag_ids": _tag_ids,
    "id_list": _id_list,
    "id_ref": _id_ref,
    "id_value": _id_value,
    "field_value": _field_value,
    "person": _person,
    "phone_channels": _phone_channels,
    "color": _color,
}


