"""The template catalog explained, as data: what each template does, the record fields it reads, its
options, its batching behaviour, whether it may email, and an example record with the exact request
it makes (``GET /templates``, ``templates --json``; ``templates NAME`` prints the same as text).

Pure: the example requests come from :func:`worker.core.chain.preview.preview` on an example account.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson

from worker.core.chain.preview import SampleMessage, preview
from worker.core.config.template_options import TemplateOptions
from worker.core.config.worker_config import Destination
from worker.core.records.record import SourceRef
from worker.core.templates.catalog import get_template, list_templates
from worker.core.templates.mapping import Const, Obj, sources
from worker.core.templates.model import Template

__all__ = [
    "EXAMPLE_DOMAIN",
    "OPTION_HELP",
    "PLAN_COST",
    "SENDS_HELP",
    "body_constants",
    "duplicate_safety",
    "example_destination",
    "example_messages",
    "guide",
    "template_guide",
]

EXAMPLE_DOMAIN = "mystore"
EXAMPLE_TOPIC = "nexset.example"
EXAMPLE_TIMESTAMP_MS = 1_780_000_000_000  # the example records' Kafka timestamp: examples read the same every time

PLAN_COST = {
    "merge_field_values": "2 per call (GET the current values, PUT them merged with the records'): "
                          "values the records do not mention are kept",
    "ensure_tags": "1 + one POST /api/tags per tag name this worker has not yet seen on the account "
                   "(400/409 = exists)",
    "upsert_customer": "2 per call (GET /api/customers?email= or ?external_id=, then PUT the one found or POST)",
    "clear_on_null": "1 per call (a null value is a DELETE of that value)",
    "merge_customers": "2 per call (GET the customer kept then the merge with its own name; or the merge with the "
                       "record's fields, then PUT them on the customer kept)",
    "update_message": "2 per call (GET the message, PUT it back with its own channel, people, source and "
                      "sent_datetime under the record's changes)",
}
SENDS_HELP = {
    "message": "nobody by default (mode: import stamps sent_datetime); mode: send lets Gorgias email outgoing "
               "messages, except replayed records",
    "survey": "nobody by default (should_send_datetime: null); mode: send lets Gorgias send the survey",
}
OPTION_HELP = {
    "fields": "constant body fields, e.g. {channel: email, \"messages[].channel\": email}",
    "mapping": "body field <- record attribute, e.g. {customer.email: contact.email}; null leaves it out",
    "external_id": "{from: <record attribute>} or {stamp: false} (create templates)",
    "url_attributes": "URL placeholder <- record attribute, e.g. {ticket_id: ticket.id}",
    "dedupe": "{lookup_before_create: replayed|always|never, on_unknown_outcome: true|false}",
    "mode": "import (default: nothing is sent to customers) | send (message and survey templates)",
    "job": "{first_poll_s: 2, max_poll_interval_s: 60, max_wait_s: 1800} (job templates: polling the job)",
    "tags": "add (default: the record's tags join the ticket's) | replace (update_ticket)",
}
_LOOKUPS = {
    "ticket": "GET /api/tickets?external_id= (then with trashed=true)",
    "customer": "GET /api/customers?external_id=",
    "message": "GET /api/messages?ticket_id= (newest first, cursor pages), matched on external_id",
    "tag": "GET /api/tags?search= (pages), matched on the exact name (tag names are unique)",
    "survey": "GET /api/satisfaction-surveys?ticket_id= (one survey per ticket)",
}


def example_destination(template: Template, batched: bool = False) -> Destination:
    """A destination using ``template`` on an example account (``mystore.gorgias.com``)."""
    doc: dict[str, Any] = {
        "name": "example",
        "source_topics": [EXAMPLE_TOPIC],
        "credential": {"domain": EXAMPLE_DOMAIN, "username": f"agent@{EXAMPLE_DOMAIN}.com",
                       "api_key_env": "GORGIAS_API_KEY"},
        "endpoint": {"template": template.name},
    }
    if batched:
        doc["batching"] = {"enabled": True, **dict(template.example.get("batching") or {})}
    return Destination.model_validate(doc)


def duplicate_safety(template: Template) -> str | None:
    """How a create is kept from happening twice (None: the template creates nothing)."""
    if not template.creates:
        return None
    stamp = (f"external_id stamped on {', '.join(template.external_id)} "
             "(the record's own, else nx-<hash of destination|topic|partition|offset>); "
             if template.external_id else "")
    return (f"yes: {stamp}looked up with {_LOOKUPS[template.creates]} before retrying a create whose answer "
            "was lost")


def body_constants(template: Template) -> list[tuple[str, Any]]:
    """The body fields the template always sends with the same value."""
    out: list[tuple[str, Any]] = []

    def walk(node: Any, prefix: str) -> None:
        if isinstance(node, Const):
            out.append((prefix, node.value))
        elif isinstance(node, Obj):
            for name, child in node.fields:
                walk(child, f"{prefix}.{name}" if prefix else name)

    walk(template.body, "")
    return out


def _body_fields(template: Template) -> Iterator[dict[str, Any]]:
    seen: set[str] = set()
    for path, attrs, _node in sources(template.body):
        if path not in seen:
            seen.add(path)
            yield {"field": path or "(body)", "from": list(attrs)}


def _option_applies(template: Template, name: str) -> bool:
    if name in ("external_id", "dedupe"):
        return bool(template.creates)
    if name == "mode":
        return template.sends is not None
    if name == "job":
        return template.batch.mode == "job"
    if name == "tags":
        return template.schema.name == "ticket_update"
    if name == "url_attributes":
        return bool(template.placeholders)
    return True


def _options(template: Template) -> list[dict[str, Any]]:
    schema = TemplateOptions.model_json_schema()["properties"]
    out = []
    for name, info in TemplateOptions.model_fields.items():
        key = info.alias or name
        if not _option_applies(template, key):
            continue
        prop = schema.get(key, {})
        kind = prop.get("type") or ("string" if key == "mode" else "object")
        out.append({"name": key, "type": kind, "default": None if info.default_factory else info.default,
                    "values": ["import", "send"] if key == "mode" else None,
                    "description": OPTION_HELP.get(key, info.description or "")})
    return out


def _batching(template: Template) -> dict[str, Any]:
    spec = template.batch
    return {
        "batchable": template.batchable,
        "mode": spec.mode,
        "description": template.grouping(),
        "key": list(spec.key) if spec.key else None,
        "any_key": spec.key == () and template.batchable,
        "group_by": spec.group_by if spec.key == () and template.batchable else None,
        "group_example": spec.group_example if spec.key == () and template.batchable else None,
        "max_items": spec.max_items,
    }


def example_messages(records: list[Any]) -> list[SampleMessage]:
    """Example records as Kafka messages with a fixed timestamp (so an imported message's sent_datetime
    is the same every time)."""
    return [SampleMessage(orjson.dumps(r), SourceRef(EXAMPLE_TOPIC, 0, i, None, EXAMPLE_TIMESTAMP_MS))
            for i, r in enumerate(records)]


def _example(template: Template) -> dict[str, Any]:
    out: dict[str, Any] = {}
    record = template.example.get("record")
    if isinstance(record, dict):
        out["record"] = record
        out["requests"] = [i.as_dict() for i in preview(example_destination(template), example_messages([record]))]
    batch = template.example.get("batch")
    if isinstance(batch, list) and template.batchable:
        out["batching"] = dict(template.example.get("batching") or {})
        out["batch"] = batch
        batched = example_destination(template, batched=True)
        out["batch_requests"] = [i.as_dict() for i in preview(batched, example_messages(batch))]
    return out


def template_guide(name: str) -> dict[str, Any]:
    """One template, explained (``ValueError`` for an unknown name)."""
    template = get_template(name)
    return {
        "name": template.name,
        "summary": template.summary,
        "method": template.method,
        "url": template.url,
        "path": template.url.split(".gorgias.com", 1)[-1],
        "placeholders": template.placeholders,
        "attributes": dict(template.attributes),
        "body_fields": list(_body_fields(template)),
        "constants": [{"field": f, "value": v} for f, v in body_constants(template)],
        "options": _options(template),
        "batching": _batching(template),
        "creates": template.creates,
        "duplicate_safe": duplicate_safety(template),
        "requests": PLAN_COST.get(template.plan) if template.plan else None,
        "may_email": template.sends is not None,
        "emails": SENDS_HELP.get(template.sends) if template.sends else None,
        "example": _example(template),
    }


def guide() -> dict[str, Any]:
    """Every template, explained: ``{"templates": [...]}`` in catalog order."""
    return {"templates": [template_guide(t.name) for t in list_templates()]}
