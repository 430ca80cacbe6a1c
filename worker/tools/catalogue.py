"""Describing templates for people: the catalog as a table, one template with an example request."""

from __future__ import annotations

from typing import Any

import orjson

from worker.core.chain.preview import format_items, preview
from worker.core.config.worker_config import Destination
from worker.core.templates.catalog import get_template, list_templates
from worker.core.templates.mapping import Const, Obj, sources
from worker.core.templates.model import OPTION_KEYS, Template

__all__ = ["describe_template", "example_destination", "template_table"]

EXAMPLE_DOMAIN = "mystore"


def _path(url: str) -> str:
    return url.split(".gorgias.com", 1)[-1]


def template_table() -> list[str]:
    """One line per template: name, method, URL path, one-line description."""
    rows = [(t.name, t.method, _path(t.url), t.summary) for t in list_templates()]
    w_name = max(len(r[0]) for r in rows)
    w_method = max(len(r[1]) for r in rows)
    w_path = max(len(r[2]) for r in rows)
    return [f"{n:<{w_name}}  {m:<{w_method}}  {p:<{w_path}}  {s}" for n, m, p, s in rows]


def example_destination(template: Template, batched: bool = False) -> Destination:
    """A destination using ``template`` on an example account (``mystore.gorgias.com``)."""
    doc: dict[str, Any] = {
        "name": "example",
        "source_topics": ["nexset.example"],
        "credential": {"domain": EXAMPLE_DOMAIN, "username": f"agent@{EXAMPLE_DOMAIN}.com",
                       "api_key_env": "GORGIAS_API_KEY"},
        "endpoint": {"template": template.name},
    }
    if batched:
        doc["batching"] = {"enabled": True, **dict(template.example.get("batching") or {})}
    return Destination.model_validate(doc)


def _json(value: Any) -> list[str]:
    return orjson.dumps(value, option=orjson.OPT_INDENT_2).decode().splitlines()


def _indent(lines: list[str], by: str = "    ") -> list[str]:
    return [f"{by}{line}" if line else "" for line in lines]


def _dedupe(template: Template) -> str:
    how = {
        "ticket": "GET /api/tickets?external_id= (then with trashed=true)",
        "customer": "GET /api/customers?external_id=",
        "message": "GET /api/messages?ticket_id= (newest first, cursor pages), matched on external_id",
        "tag": "GET /api/tags?search= (pages), matched on the exact name (tag names are unique)",
        "survey": "GET /api/satisfaction-surveys?ticket_id= (one survey per ticket)",
    }[template.creates or ""]
    stamp = (f"external_id stamped on {', '.join(template.external_id)} "
             "(the record's own, else nx-<hash of destination|topic|partition|offset>); "
             if template.external_id else "")
    return f"yes: {stamp}looked up with {how} before retrying a create whose answer was lost"


def describe_template(name: str) -> list[str]:
    """Everything about one template: attributes, body mapping, options, an example record and its request."""
    template = get_template(name)
    lines = [f"{template.name}: {template.summary}", "", f"  {template.method} {template.url}",
             f"  grouping     {template.grouping()}"]
    if template.batch.mode != "none":
        key = ", ".join(template.batch.key or ()) or f"{template.batch.group_by}, e.g. {template.batch.group_example}"
        if template.batch.key != () and not template.batch.key:
            key = "any (arrival_order works)"
        lines.append(f"               batching.attributes must include: {key}")
    lines.append(f"  duplicate-safe  {_dedupe(template) if template.creates else 'not a create'}")
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
    constants = _constants(template)
    if constants:
        lines.append(f"  constant: {', '.join(constants)}")
    lines += ["", f"Options (endpoint.template_options): {', '.join(OPTION_KEYS)}", *_OPTIONS_HELP]

    example = template.example.get("record")
    if isinstance(example, dict):
        lines += ["", "Example record:", *_indent(_json(example)), "", "Its request:"]
        lines += _indent(_trim(format_items(preview(example_destination(template), [example]))))
    batch = template.example.get("batch")
    if isinstance(batch, list) and template.batch.mode != "none":
        batching = template.example.get("batching") or {}
        lines += ["", f"Example group (batching: {orjson.dumps(batching).decode()}):"]
        lines += _indent([orjson.dumps(r).decode() for r in batch])
        lines += ["", "Its request:"]
        lines += _indent(_trim(format_items(preview(example_destination(template, batched=True), batch))))
    while lines and not lines[-1]:
        lines.pop()
    return lines


def _trim(lines: list[str]) -> list[str]:
    while lines and not lines[-1]:
        lines = lines[:-1]
    return lines


def _constants(template: Template) -> list[str]:
    out: list[str] = []

    def walk(node: Any, prefix: str) -> None:
        if isinstance(node, Const):
            out.append(f"{prefix}={orjson.dumps(node.value).decode()}")
        elif isinstance(node, Obj):
            for name, child in node.fields:
                walk(child, f"{prefix}.{name}" if prefix else name)

    walk(template.body, "")
    return out


PLAN_COST = {
    "merge_field_values": "2 per call (GET the current values, PUT them merged with the records'): "
                          "values the records do not mention are kept",
    "ensure_tags": "1 + one POST /api/tags per tag name this worker has not yet seen on the account "
                   "(400/409 = exists)",
    "upsert_customer": "2 per call (GET /api/customers?email= or ?external_id=, then PUT the one found or POST)",
}
SENDS_HELP = {
    "message": "nobody by default (mode: import stamps sent_datetime); mode: send lets Gorgias email outgoing "
               "messages, except replayed records",
    "survey": "nobody by default (should_send_datetime: null); mode: send lets Gorgias send the survey",
}

_OPTIONS_HELP = [
    "  fields          constant body fields, e.g. {channel: email, \"messages[].channel\": email}",
    "  mapping         body field <- record attribute, e.g. {customer.email: contact.email}; null leaves it out",
    "  external_id     {from: <record attribute>} or {stamp: false} (create templates)",
    "  url_attributes  URL placeholder <- record attribute, e.g. {ticket_id: ticket.id}",
    "  dedupe          {lookup_before_create: replayed|always|never, on_unknown_outcome: true|false}",
    "  mode            import (default: nothing is sent to customers) | send (message and survey templates)",
    "  job             {first_poll_s: 2, max_poll_interval_s: 60, max_wait_s: 1800} (job templates: polling)",
]
