"""The template catalog: ``catalog.yaml`` loaded and checked once, templates found by name."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from functools import cache
from importlib import resources
from typing import Any

import yaml

from worker.core.templates.mapping import compile_spec
from worker.core.templates.model import BATCH_MODES, CREATES, SENDS, BatchSpec, Template
from worker.core.templates.plans import PLANS
from worker.core.templates.rules import RULES
from worker.core.templates.schema import SCHEMAS

__all__ = ["get_template", "list_templates"]


def _load_template(doc: Mapping[str, Any]) -> Template:
    name = doc["name"]
    schema = SCHEMAS[doc["schema"]]
    batch_doc = dict(doc.get("batch") or {"mode": "none"})
    mode = batch_doc.get("mode", "none")
    if mode not in BATCH_MODES:
        raise ValueError(f"template {name}: unknown batch mode {mode!r}")
    key_doc = batch_doc.get("key")
    key: tuple[str, ...] | None
    if key_doc is None:
        key = None
    elif key_doc == "any":
        key = ()
    else:
        key = tuple(key_doc)
    batch = BatchSpec(mode, key, tuple(batch_doc.get("fields") or ()), batch_doc.get("max_items"),
                      str(batch_doc.get("reason") or ""),
                      str(batch_doc.get("group_by") or BatchSpec.group_by),
                      str(batch_doc.get("group_example") or BatchSpec.group_example))
    creates = doc.get("creates")
    if creates not in (None, *CREATES):
        raise ValueError(f"template {name}: unknown created resource {creates!r}")
    rules = tuple(doc.get("rules") or ())
    for rule in rules:
        if rule not in RULES:
            raise ValueError(f"template {name}: unknown rule {rule!r}")
    return Template(
        name=name,
        summary=str(doc["summary"]),
        method=str(doc["method"]),
        url=str(doc["url"]),
        schema=schema,
        body=compile_spec(doc["body"], f"{name}.body"),
        batch=batch,
        creates=creates,
        external_id=tuple(doc.get("external_id") or ()),
        rules=rules,
        attributes={str(k): str(v) for k, v in (doc.get("attributes") or {}).items()},
        example=dict(doc.get("example") or {}),
        plan=_known(doc.get("plan"), name, "plan"),
        sends=_known(doc.get("sends"), name, "sends"),
    )


def _known(value: Any, name: str, key: str) -> str | None:
    allowed = {"plan": tuple(PLANS), "sends": SENDS}[key]
    if value is not None and value not in allowed:
        raise ValueError(f"template {name}: unknown {key} {value!r} (known: {', '.join(allowed)})")
    return None if value is None else str(value)


@cache
def _catalog() -> dict[str, Template]:
    text = resources.files("worker.core.templates").joinpath("catalog.yaml").read_text(encoding="utf-8")
    doc = yaml.safe_load(text)
    out: dict[str, Template] = {}
    for entry in doc["templates"]:
        template = _load_template(entry)
        if template.name in out:
            raise ValueError(f"template {template.name} is defined twice in catalog.yaml")
        out[template.name] = template
    return out


def list_templates() -> list[Template]:
    """Every template, in catalog order."""
    return list(_catalog().values())


def get_template(name: str) -> Template:
    """The template called ``name``; ``ValueError("endpoint.template: ...")`` naming the known ones."""
    found = _catalog().get(name)
    if found is None:
        known = ", ".join(_catalog())
        guess = difflib.get_close_matches(name, list(_catalog()), n=1)
        hint = f"; did you mean {guess[0]!r}?" if guess else ""
        raise ValueError(f"endpoint.template: unknown template {name!r} (known: {known}){hint}")
    return found
