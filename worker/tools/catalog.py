"""Describing templates for people: the catalog as a table, one template with an example request."""

from __future__ import annotations

from typing import Any

import orjson

from worker.core.chain.preview import format_items, preview
from worker.core.chain.template_guide import (
    OPTION_HELP,
    PLAN_COST,
    SENDS_HELP,
    body_constants,
    duplicate_safety,
    example_destination,
    example_messages,
)
from worker.core.templates.catalog import get_template, list_templates
from worker.core.templates.mapping import sources
from worker.core.templates.model import OPTION_KEYS

__all__ = ["describe_template", "template_table"]


def _path(url: str) -> str:
    return url.split(".gorgias.com", 1)[-1]


def template_table() -> list[str]:
    """One line per template: name, method, URL path, one-line description."""
    rows = [(t.name, t.method, _path(t.url), t.summary) for t in list_templates()]
    w_name = max(len(r[0]) for r in rows)
    w_method = max(len(r[1]) for r in rows)
    w_path = max(len(r[2]) for r in rows)
    return [f"{n:<{w_name}}  {m:<{w_method}}  {p:<{w_path}}  {s}" for n, m, p, s in rows]


def _json(value: Any) -> list[str]:
    return orjson.dumps(value, option=orjson.OPT_INDENT_2).decode().splitlines()


def _indent(lines: list[str], by: str = "    ") -> list[str]:
    return [f"{by}{line}" if line else "" for line in lines]


# complexity: a template's description, section by section, each optional
def describe_template(name: str) -> list[str]:  # noqa: C901
    """Everything about one template: attributes, body mapping, options, an example record and its request."""
    template = get_template(name)
    lines = [f"{template.name}: {template.summary}", "", f"  {template.method} {template.url}",
             f"  grouping     {template.grouping()}"]
    if template.batch.mode != "none":
        key = ", ".join(template.batch.key or ()) or f"{template.batch.group_by}, e.g. {template.batch.group_example}"
        if template.batch.key != () and not template.batch.key:
            key = "any (arrival_order works)"
        lines.append(f"               batching.attributes must include: {key}")
    lines.append(f"  duplicate-safe  {duplicate_safety(template) or 'not a create'}")
    if template.plan is not None:
        lines.append(f"  requests     {PLAN_COST[template.plan]}")
    if template.sends is not None:
        lines.append(f"  emails       {SENDS_HELP[template.sends]}")
    lines += ["", "Record attributes:"]
    width = max((len(k) for k in template.attributes), default=0)
    lines += [f"  {k:<{width}}  {v}" for k, v in template.attributes.items()]
    lines += ["", "Body fields and where they come from (change with template_options.mapping / fields):"]
    seen: set[str] = set()
    for path, attrs, _node in sources(template.body):
        if path in seen:
            continue
        seen.add(path)
        lines.append(f"  {path or '(body)'} <- {' or '.join(attrs)}")
    constants = [f"{f}={orjson.dumps(v).decode()}" for f, v in body_constants(template)]
    if constants:
        lines.append(f"  constant: {', '.join(constants)}")
    lines += ["", f"Options (endpoint.template_options): {', '.join(OPTION_KEYS)}",
              *(f"  {k:<14}  {v}" for k, v in OPTION_HELP.items())]

    example = template.example.get("record")
    if isinstance(example, dict):
        lines += ["", "Example record:", *_indent(_json(example)), "", "Its request:"]
        lines += _indent(_trim(format_items(preview(example_destination(template), example_messages([example])))))
    batch = template.example.get("batch")
    if isinstance(batch, list) and template.batch.mode != "none":
        batching = template.example.get("batching") or {}
        lines += ["", f"Example group (batching: {orjson.dumps(batching).decode()}):"]
        lines += _indent([orjson.dumps(r).decode() for r in batch])
        lines += ["", "Its request:"]
        batched = example_destination(template, batched=True)
        lines += _indent(_trim(format_items(preview(batched, example_messages(batch)))))
    while lines and not lines[-1]:
        lines.pop()
    return lines


def _trim(lines: list[str]) -> list[str]:
    while lines and not lines[-1]:
        lines = lines[:-1]
    return lines
