"""The README's settings table, generated from the config models: every setting, its default, its meaning.

The meaning is the field's ``description`` (the same text the JSON Schema carries to editors), so the
table cannot drift from the models: ``gorgias-worker schemas --write`` rewrites it between its markers and
``gorgias-worker schemas`` (and the unit tests) report a table that differs.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Iterator
from enum import Enum
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from worker.core.config.worker_config import Destination, WorkerConfig
from worker.tools.readme_sections import GeneratedSection

BEGIN = "<!-- settings table: generated from the config models by `gorgias-worker schemas --write` -->"
END = "<!-- end of the settings table -->"
HEADER = "| setting | default | meaning |\n| --- | --- | --- |\n"
# Described elsewhere in the README, one row here: the template options (section Templates).
WHOLE = {"endpoint.template_options"}


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The config model a field holds directly (alone or in a union with a plain value), else None."""
    for arg in (annotation, *typing.get_args(annotation)):
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            return arg
    return None


def _is_mapping(annotation: Any) -> bool:
    origin = typing.get_origin(annotation)
    return origin is dict or (origin in (typing.Union, types.UnionType)
                               and any(typing.get_origin(a) is dict for a in typing.get_args(annotation)))


def settings(model: type[BaseModel], prefix: str = "") -> Iterator[tuple[str, FieldInfo]]:
    """Every setting of ``model`` by its dotted path; a nested block by its own settings, and by itself too
    when it has a meaning of its own (a ``credential`` may be a block or a name)."""
    for name, field in model.model_fields.items():
        path = prefix + (field.alias or name)
        if _is_mapping(field.annotation) and _model_in(typing.get_args(field.annotation)[-1]) is not None:
            yield f"{path}.<name>", field
            continue
        nested = _model_in(field.annotation)
        if nested is None or path in WHOLE:
            yield path, field
            continue
        if field.description:
            yield path, field
        yield from settings(nested, path + ".")


def shown_default(field: FieldInfo) -> str:
    """The default as the table shows it: ``required``, ``—`` (not set), or the value."""
    if field.is_required():
        return "required"
    value = field.default_factory() if field.default_factory is not None else field.default  # type: ignore[call-arg]
    if value is None or value is PydanticUndefined:
        return "—"
    if isinstance(value, Enum):
        value = value.value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, BaseModel):
        return "—"
    if isinstance(value, list | tuple | dict) and not value:
        return "`[]`" if not isinstance(value, dict) else "`{}`"
    if isinstance(value, list | tuple):
        return ", ".join(f"`{v}`" for v in value)
    return f"`{value}`"


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def rows() -> list[tuple[str, str, str]]:
    """(setting, default, meaning) for every setting: the worker's, then each destination's."""
    out = []
    for path, field in settings(WorkerConfig):
        if path.startswith("destinations"):
            continue
        out.append((path, shown_default(field), field.description or ""))
    for path, field in settings(Destination):
        out.append((path, shown_default(field), field.description or ""))
    return out


def table() -> str:
    lines = [f"| `{path}` | {_cell(default)} | {_cell(meaning)} |" for path, default, meaning in rows()]
    return HEADER + "\n".join(lines) + "\n"


SECTION = GeneratedSection("settings table", BEGIN, END, table)
