"""Small composable checks of JSON values, and a body schema built from them. Pure.

A check is ``check(value, path, errors)``: it appends ``"<path>: <reason>"`` for every problem found
(at most :data:`MAX_ERRORS`). Values: :func:`text`, :func:`one_of`, :func:`integer`, :func:`email`, ...;
containers: :class:`ListOf` and :class:`ObjectCheck` (known fields, unknown ones refused, then rules).
The Gorgias bodies made of them are :mod:`worker.core.templates.schema`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from worker.core.records.json_types import a_json_type

Check = Callable[[Any, str, list[str]], None]
"""``check(value, path, errors)`` appends ``"<path>: <reason>"`` for every problem found."""

MAX_ERRORS: Final = 8

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?)?(?:Z|[+-]\d{2}:?\d{2})?$")
_SLUG = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")


def join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def add(errors: list[str], path: str, reason: str) -> None:
    if len(errors) < MAX_ERRORS:
        errors.append(f"{path or 'body'}: {reason}")


# --------------------------------------------------------------------------------------------------
# Value checks


@dataclass(frozen=True, slots=True)
class Nullable:
    """``inner``, or null."""

    inner: Check

    def __call__(self, value: Any, path: str, errors: list[str]) -> None:
        if value is not None:
            self.inner(value, path, errors)


nullable = Nullable


def text(max_len: int | None = None, min_len: int = 0, *, max_bytes: int | None = None) -> Check:
    def run(value: Any, path: str, errors: list[str]) -> None:
        if not isinstance(value, str):
            add(errors, path, f"must be a string (got {a_json_type(value)})")
            return
        n = len(value)
        if max_len is not None and n > max_len:
            add(errors, path, f"longer than {max_len} characters (got {n})")
        elif n < min_len:
            add(errors, path, "must not be empty" if min_len == 1 else f"shorter than {min_len} characters")
        elif max_bytes is not None and n * 4 > max_bytes:
            size = len(value.encode("utf-8", "replace"))
            if size > max_bytes:
                add(errors, path, f"larger than {max_bytes:,} bytes (got {size:,}); Gorgias limits it to 1 MB")

    return run


def one_of(choices: Sequence[str]) -> Check:
    allowed = frozenset(choices)
    shown = ", ".join(choices) if len(choices) <= 8 else ", ".join(choices[:8]) + ", ..."

    def run(value: Any, path: str, errors: list[str]) -> None:
        if not isinstance(value, str) or value not in allowed:
            add(errors, path, f"must be one of {shown} (got {value!r})")

    return run


def slug(value: Any, path: str, errors: list[str]) -> None:
    if not isinstance(value, str):
        add(errors, path, f"must be a string (got {a_json_type(value)})")
    elif not _SLUG.match(value):
        add(errors, path, f"must be a channel slug like api, email or internal-note (got {value!r})")


def boolean(value: Any, path: str, errors: list[str]) -> None:
    if not isinstance(value, bool):
        add(errors, path, f"must be true or false (got {a_json_type(value)})")


def integer(minimum: int | None = None, maximum: int | None = None) -> Check:
    def run(value: Any, path: str, errors: list[str]) -> None:
        if isinstance(value, bool) or not isinstance(value, int):
            add(errors, path, f"must be an integer (got {a_json_type(value)})")
        elif minimum is not None and value < minimum:
            add(errors, path, f"must be >= {minimum} (got {value})")
        elif maximum is not None and value > maximum:
            add(errors, path, f"must be <= {maximum} (got {value})")

    return run


identifier = integer(minimum=1)


def anything(value: Any, path: str, errors: list[str]) -> None:
    return None


def json_object(value: Any, path: str, errors: list[str]) -> None:
    if not isinstance(value, Mapping):
        add(errors, path, f"must be an object (got {a_json_type(value)})")


def email(value: Any, path: str, errors: list[str]) -> None:
    if not isinstance(value, str):
        add(errors, path, f"must be a string (got {a_json_type(value)})")
    elif len(value) > 320:
        add(errors, path, f"longer than 320 characters (got {len(value)})")
    elif not _EMAIL.match(value):
        add(errors, path, f"must be an email address (got {value!r})")


def language(value: Any, path: str, errors: list[str]) -> None:
    if not (isinstance(value, str) and len(value) == 2 and value.isalpha() and value.islower()):
        add(errors, path, f"must be an ISO-639-1 code like en (got {value!r})")


def datetime(value: Any, path: str, errors: list[str]) -> None:
    if not isinstance(value, str) or not _DATETIME.match(value):
        add(errors, path, f"must be an ISO-8601 datetime like 2024-05-01T10:00:00 (got {value!r})")


@dataclass(frozen=True, slots=True)
class ListOf:
    """An array of ``min_items``..``max_items`` elements, each passing ``item``."""

    item: Check
    min_items: int = 0
    max_items: int | None = None

    def __call__(self, value: Any, path: str, errors: list[str]) -> None:
        if not isinstance(value, list):
            add(errors, path, f"must be an array (got {a_json_type(value)})")
            return
        n = len(value)
        if n < self.min_items or (self.max_items is not None and n > self.max_items):
            low, high = self.min_items, self.max_items
            bounds = f"{low} to {high}" if high is not None else f"at least {low}"
            add(errors, path, f"needs {bounds} items (got {n})")
        item = self.item
        for i, element in enumerate(value):
            if len(errors) >= MAX_ERRORS:
                return
            item(element, f"{path}[{i}]", errors)


list_of = ListOf


@dataclass(frozen=True, slots=True)
class Field:
    check: Check
    required: bool = False


Rule = Callable[[Mapping[str, Any], str, list[str]], None]


@dataclass(frozen=True)
class ObjectCheck:
    """An object with known fields (unknown ones are refused), then cross-field ``rules``."""

    fields: Mapping[str, Field]
    rules: tuple[Rule, ...] = ()
    what: str = "object"

    def __call__(self, value: Any, path: str, errors: list[str]) -> None:
        if not isinstance(value, Mapping):
            add(errors, path, f"must be an object (got {a_json_type(value)})")
            return
        fields = self.fields
        for name, spec in fields.items():
            if spec.required and name not in value:
                add(errors, join(path, name), "required")
        for name, item in value.items():
            known = fields.get(name)
            if known is None:
                add(errors, join(path, str(name)), f"unknown field (Gorgias refuses it in a {self.what})")
            elif item is None and known.required:
                add(errors, join(path, name), "must not be null")
            else:
                known.check(item, join(path, name), errors)
        if len(errors) < MAX_ERRORS:
            for rule in self.rules:
                rule(value, path, errors)


def obj(fields: Mapping[str, Field], *rules: Rule, what: str = "object") -> ObjectCheck:
    return ObjectCheck(dict(fields), rules, what)


@dataclass(frozen=True)
class BodySchema:
    """The schema of one endpoint's request body: the whole-body check and its field checks by path."""

    name: str
    check: Check
    fields: Mapping[str, Check] = field(default_factory=dict)  # dotted body path (``messages[].x``) -> check

    def validate(self, body: Any) -> list[str]:
        errors: list[str] = []
        self.check(body, "", errors)
        return errors

    def knows(self, path: str) -> bool:
        """A field of these bodies, or a path inside a free-form one (``meta.source``)."""
        if path in self.fields:
            return True
        parts = path.split(".")
        for i in range(len(parts) - 1, 0, -1):
            check = self.fields.get(".".join(parts[:i]))
            if check is not None:
                while isinstance(check, Nullable):
                    check = check.inner
                return check in (anything, json_object)
        return False


def _paths(check: Check, prefix: str) -> dict[str, Check]:
    """Every addressable path under ``check``: ``subject``, ``customer.email``, ``messages[].channel``."""
    out: dict[str, Check] = {}
    while isinstance(check, Nullable):
        check = check.inner
    if isinstance(check, ListOf):
        path = f"{prefix}[]"
        out[path] = check.item
        out.update(_paths(check.item, path))
    elif isinstance(check, ObjectCheck):
        for name, spec in check.fields.items():
            path = join(prefix, name)
            out[path] = spec.check
            out.update(_paths(spec.check, path))
    return out


def body_schema(name: str, check: Check) -> BodySchema:
    return BodySchema(name, check, _paths(check, ""))


