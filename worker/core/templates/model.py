"""Templates: the catalog loaded from ``catalog.yaml``, template options, and building request bodies.

:class:`Template` is one catalog entry as written; :meth:`Template.configure` applies a destination's
``endpoint.template_options`` and returns a :class:`ConfiguredTemplate`, which turns one record into a
checked body (:meth:`~ConfiguredTemplate.build`) and a group of bodies into one (:meth:`~ConfiguredTemplate.merge`).
"""

from __future__ import annotations

import difflib
import hashlib
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from importlib import resources
from typing import Any, Final

import yaml

from worker.core.config import PLACEHOLDER
from worker.core.config_template_options import TemplateOptions
from worker.core.records import SourceRef
from worker.core.rendering import RenderError
from worker.core.templates.mapping import (
    MISSING,
    From,
    Node,
    compile_spec,
    parse_body_path,
    remove_field,
    set_constant,
    set_source,
    sources,
)
from worker.core.templates.plans import PLANS
from worker.core.templates.schema import SCHEMAS, BodySchema, field_check
from worker.core.transform import MissingAttribute, get_path

__all__ = [
    "BATCH_MODES",
    "OPTION_KEYS",
    "BatchSpec",
    "ConfiguredTemplate",
    "Template",
    "default_external_id",
    "get_template",
    "list_templates",
]

BATCH_MODES: Final = ("none", "conversation", "union", "concat", "latest", "overlay", "job")
OPTION_KEYS: Final = tuple(TemplateOptions.model_fields)  # fields, mapping, external_id, url_attributes, dedupe, mode
SENDS: Final = ("message", "survey")  # what a template creates that Gorgias may send to a customer
CREATES: Final = ("ticket", "customer", "message", "tag", "survey")  # resources worker.gorgias.dedupe can look up
EXTERNAL_ID_PREFIX: Final = "nx-"


def default_external_id(destination: str, source: SourceRef) -> str:
    """``nx-`` + the first 24 hex digits of sha256(destination|topic|partition|offset): stable across replays."""
    key = f"{destination}|{source.topic}|{source.partition}|{source.offset}".encode()
    return EXTERNAL_ID_PREFIX + hashlib.sha256(key).hexdigest()[:24]


@dataclass(frozen=True)
class BatchSpec:
    """How a group of records becomes one call."""

    mode: str = "none"
    key: tuple[str, ...] | None = None  # grouping attributes batching must include; () = any key; None = no key
    fields: tuple[str, ...] = ()  # union: the list fields merged
    max_items: int | None = None  # conversation: most messages in one ticket
    reason: str = ""  # none: why Gorgias has no batch form
    group_by: str = "a conversation key"  # key any: what the records of a group must share
    group_example: str = "conversation_id"  # ... and an attribute that usually carries it


@dataclass(frozen=True)
class Template:
    """One catalog entry."""

    name: str
    summary: str
    method: str
    url: str
    schema: BodySchema
    body: Node
    batch: BatchSpec
    creates: str | None = None  # ticket | customer | message | tag | survey: a create made duplicate-safe
    external_id: tuple[str, ...] = ()  # body paths stamped with an external id; the first is the identity
    rules: tuple[str, ...] = ()
    attributes: Mapping[str, str] = field(default_factory=dict)
    example: Mapping[str, Any] = field(default_factory=dict)
    plan: str | None = None  # several requests per call (worker.core.templates.plans)
    sends: str | None = None  # message | survey: what Gorgias may send to a customer (template_options.mode)

    @property
    def placeholders(self) -> list[str]:
        return [p for p in PLACEHOLDER.findall(self.url) if p != "domain"]

    @property
    def grouping_target(self) -> str:
        """What one group of records becomes (for messages about grouping)."""
        return {"conversation": "one ticket", "overlay": "one customer's write", "job": "one job"}.get(
            self.batch.mode, "one call")

    @property
    def batchable(self) -> bool:
        return self.batch.mode != "none"

    def grouping(self) -> str:
        """One line on what a group of records becomes."""
        b = self.batch
        if b.mode == "none":
            return f"one record per call: {b.reason}" if b.reason else "one record per call"
        per = f" per {', '.join(b.key)}" if b.key else ""
        if b.mode == "conversation":
            return f"a group (by a conversation key) becomes one ticket with one message per record (≤ {b.max_items})"
        if b.mode == "overlay":
            return (f"a group{per} (one customer) becomes one write: later records' fields override earlier "
                    "ones")
        if b.mode == "job":
            return f"a group{per} becomes one job over all their tickets (records of a group must ask the same change)"
        if b.mode == "union":
            return f"a group{per} becomes one call with the union of their {' and '.join(b.fields)}"
        if b.mode == "concat":
            return f"a group{per} becomes one array (the last value of each field id wins)"
        return f"a group{per} becomes one call carrying the record with the latest version (else the last one)"

    def configure(self, options: TemplateOptions, destination: str) -> ConfiguredTemplate:
        """Apply ``endpoint.template_options``; ``ValueError`` naming the option for a bad one."""
        return ConfiguredTemplate.build_from(self, options, destination)


# --------------------------------------------------------------------------------------------------
# Rules: template-specific shaping and checks after the body is built


def _messages(body: Any, template: Template) -> list[tuple[str, dict[str, Any]]]:
    if template.schema.name == "message":
        return [("", body)] if isinstance(body, dict) else []
    items = body.get("messages") if isinstance(body, dict) else None
    if not isinstance(items, list):
        return []
    return [(f"messages[{i}].", m) for i, m in enumerate(items) if isinstance(m, dict)]


def _counterpart_from_ticket_customer(body: Any, template: Template) -> None:
    """A message from the customer is sent by the ticket's customer; an agent reply goes to them."""
    customer = body.get("customer") if isinstance(body, dict) else None
    if not isinstance(customer, Mapping):
        return
    ref = {k: customer[k] for k in ("id", "email") if k in customer}
    if not ref:
        return
    for _, msg in _messages(body, template):
        if msg.get("channel") == "internal-note":
            continue
        if msg.get("from_agent") is False and msg.get("sender") is None:
            msg["sender"] = dict(ref)
        elif msg.get("from_agent") is True and msg.get("receiver") is None:
            msg["receiver"] = dict(ref)


def _message_has_content(body: Any, template: Template) -> None:
    for prefix, msg in _messages(body, template):
        if not msg.get("body_text") and not msg.get("body_html") and not msg.get("attachments"):
            raise RenderError(
                f"{template.name}: {prefix}body_text: required: a message needs a text, an HTML body or "
                "attachments (record attribute body_text, body or body_html)"
            )


def _tags_given(body: Any, template: Template) -> None:
    if isinstance(body, dict) and "names" not in body and "ids" not in body:
        raise RenderError(
            f"{template.name}: names: required: the record has none of tags, names, tag, ids, tag_ids "
            "(an empty list clears the ticket's tags; a missing one is refused so that nothing is cleared by mistake)"
        )


def _address(person: Any) -> dict[str, Any] | None:
    if not isinstance(person, Mapping) or not isinstance(person.get("email"), str):
        return None
    out: dict[str, Any] = {"address": person["email"]}
    if isinstance(person.get("name"), str):
        out["name"] = person["name"]
    return out


def _email_source(body: Any, template: Template) -> None:
    """An email message carries ``source`` (Gorgias refuses one without it), built from sender and receiver."""
    for prefix, msg in _messages(body, template):
        if msg.get("channel") != "email" or msg.get("source"):
            continue
        sender, receiver = _address(msg.get("sender")), _address(msg.get("receiver"))
        if sender is None or receiver is None:
            missing = "sender_email" if sender is None else "receiver_email"
            raise RenderError(
                f"{template.name}: {prefix}source: required for an email message, built from the sender's and the "
                f"receiver's email: the record has no {missing} (nor customer_email for the customer's side); "
                "or give `source`"
            )
        msg["source"] = {"type": "email", "from": sender, "to": [receiver]}
        if msg.get("from_agent") is False:
            del msg["receiver"]  # a customer's message names no receiver (Gorgias' rule); its address is in `to`


def _customer_shape(body: Any, template: Template, *, new: bool) -> None:
    """``name`` instead of firstname/lastname; a new customer's email (preferred) and phones as ``channels``.

    An update sends ``channels`` only when the record gives them (or a phone): Gorgias may replace a
    customer's channels with the list it is given, so an email alone must not become the only one."""
    if not isinstance(body, dict):
        return
    first, last = body.pop("firstname", None), body.pop("lastname", None)
    if not body.get("name") and (first or last):
        body["name"] = " ".join(str(p) for p in (first, last) if p)
    channels = body.get("channels")
    if channels is None:
        channels = []
    if not isinstance(channels, list):
        return  # the schema says what is wrong
    email = body.get("email")
    has_email = any(isinstance(c, Mapping) and c.get("type") == "email" for c in channels)
    if new and isinstance(email, str) and email and not has_email:
        channels.insert(0, {"type": "email", "address": email, "preferred": True})
    if channels:
        if not any(isinstance(c, Mapping) and c.get("preferred") is True for c in channels):
            preferred = next((c for c in channels if isinstance(c, Mapping) and c.get("type") == "email"),
                             channels[0])
            if isinstance(preferred, dict):
                preferred["preferred"] = True
        for c in channels:
            if isinstance(c, dict):
                c.setdefault("preferred", False)
        body["channels"] = channels
    elif new:
        raise RenderError(
            f"{template.name}: channels: required: a customer needs an email or a phone (record attribute "
            "email, customer_email or phone) or `channels`"
        )


def _new_customer(body: Any, template: Template) -> None:
    _customer_shape(body, template, new=True)


def _customer_update(body: Any, template: Template) -> None:
    _customer_shape(body, template, new=False)


def _upsert_identity(body: Any, template: Template) -> None:
    if isinstance(body, Mapping) and not body.get("email") and not body.get("external_id"):
        raise RenderError(
            f"{template.name}: email: required: upsert_customer looks the customer up by email or external_id "
            "(record attribute email, customer_email or external_id)"
        )


RULES: dict[str, Callable[[Any, Template], None]] = {
    "customer_update": _customer_update,
    "email_source": _email_source,
    "new_customer": _new_customer,
    "upsert_identity": _upsert_identity,
    "counterpart_from_ticket_customer": _counterpart_from_ticket_customer,
    "message_has_content": _message_has_content,
    "tags_given": _tags_given,
}


# --------------------------------------------------------------------------------------------------
# Batch strategies: bodies of single records (already checked) -> the body of one call


def _union_list(lists: Sequence[Any]) -> list[Any]:
    seen: set[Any] = set()
    out: list[Any] = []
    for items in lists:
        if not isinstance(items, list):
            continue
        for item in items:
            marker = item if isinstance(item, str | int | float | bool) else repr(item)
            if marker not in seen:
                seen.add(marker)
                out.append(item)
    return out


def _tag_key(tag: Any) -> Any:
    if isinstance(tag, Mapping):
        return ("id", tag["id"]) if "id" in tag else ("name", tag.get("name"))
    return ("raw", repr(tag))


def _conversation(bodies: Sequence[Any], spec: BatchSpec) -> Any:
    first = bodies[0]
    out = dict(first)
    messages: list[Any] = []
    for body in bodies:
        messages.extend(body.get("messages") or ())
    out["messages"] = messages
    if any("tags" in b for b in bodies):
        seen: set[Any] = set()
        tags: list[Any] = []
        for body in bodies:
            for tag in body.get("tags") or ():
                key = _tag_key(tag)
                if key not in seen:
                    seen.add(key)
                    tags.append(tag)
        out["tags"] = tags
    return out


def _union(bodies: Sequence[Any], spec: BatchSpec) -> Any:
    out = dict(bodies[0])
    for name in spec.fields:
        present = [b[name] for b in bodies if name in b]
        if present:
            out[name] = _union_list(present)
    return out


def _concat(bodies: Sequence[Any], spec: BatchSpec) -> Any:
    by_id: dict[Any, Any] = {}
    loose: list[Any] = []
    for body in bodies:
        for item in body:
            if isinstance(item, Mapping) and isinstance(item.get("id"), int | str):
                by_id.pop(item["id"], None)  # the last value wins, placed where it was set last
                by_id[item["id"]] = item
            else:
                loose.append(item)
    return [*by_id.values(), *loose]


def _latest(bodies: Sequence[Any], spec: BatchSpec) -> Any:
    best = bodies[0]
    for body in bodies[1:]:
        new, old = body.get("version"), best.get("version")
        if new is None or old is None or str(new) >= str(old):
            best = body
    return best


def _identity(body: Mapping[str, Any]) -> tuple[str, Any]:
    return ("email", str(body["email"]).lower()) if body.get("email") else ("external_id", body.get("external_id"))


def _overlay(bodies: Sequence[Any], spec: BatchSpec) -> Any:
    """One customer's records: fields of later records override earlier ones; channels are unioned."""
    who = {_identity(b) for b in bodies}
    if len(who) > 1:
        raise RenderError("a group mixes customers (" + ", ".join(f"{k} {v}" for k, v in sorted(who, key=str))
                          + "): group by the lookup attribute, e.g. batching.attributes: [email]")
    out: dict[str, Any] = {}
    channels: list[Any] = []
    for body in bodies:
        for c in body.get("channels") or ():
            if not any(isinstance(o, Mapping) and isinstance(c, Mapping) and (o.get("type"), o.get("address"))
                       == (c.get("type"), c.get("address")) for o in channels):
                channels.append(c)
        out.update(body)
    if channels:
        preferred = False
        for c in channels:  # one preferred channel: the first that says so
            if isinstance(c, dict):
                c["preferred"] = bool(c.get("preferred")) and not preferred
                preferred = preferred or c["preferred"]
        out["channels"] = channels
    return out


def _job(bodies: Sequence[Any], spec: BatchSpec) -> Any:
    """Records asking the same change: one job over the union of their tickets."""
    first = bodies[0]
    same = {k: v for k, v in first.items() if k != "params"}
    params = {k: v for k, v in first["params"].items() if k != "ticket_ids"}
    ids: list[Any] = []
    for body in bodies:
        other = {k: v for k, v in body["params"].items() if k != "ticket_ids"}
        if {k: v for k, v in body.items() if k != "params"} != same or other != params:
            raise RenderError("the records of a group ask different changes (type, updates, macro_id...): "
                              "group by the attributes that decide the change, e.g. batching.attributes: [status]")
        ids.append(body["params"]["ticket_ids"])
    return {**same, "params": {**params, "ticket_ids": _union_list(ids)}}


STRATEGIES: dict[str, Callable[[Sequence[Any], BatchSpec], Any]] = {
    "overlay": _overlay,
    "job": _job,
    "conversation": _conversation,
    "union": _union,
    "concat": _concat,
    "latest": _latest,
}


# --------------------------------------------------------------------------------------------------
# Configured template


def _mapped_body(template: Template, options: TemplateOptions, where: str) -> Node:
    """The template's body with ``mapping`` (record attributes) and ``fields`` (constants) applied."""
    body = template.body
    for path, attrs in options.mapping.items():
        _check_body_path(template, path, f"{where}.mapping.{path}")
        if attrs is None:
            body = remove_field(body, path)
        else:
            body = set_source(body, path, [attrs] if isinstance(attrs, str) else attrs)
    for path, value in options.fields.items():
        here = f"{where}.fields.{path}"
        _check_body_path(template, path, here)
        check = field_check(template.schema, _schema_path(path))
        if check is not None:
            errors: list[str] = []
            check(value, "", errors)
            if errors:
                raise ValueError(f"{here}: {errors[0].removeprefix('body: ')}")
        body = set_constant(body, path, value)
    return body


@dataclass(frozen=True)
class DedupeSettings:
    """``template_options.dedupe``: when to look a create up before sending it."""

    lookup_before_create: str = "replayed"  # replayed | always | never
    on_unknown_outcome: bool = True


@dataclass(frozen=True)
class ConfiguredTemplate:
    """A template with a destination's options applied: builds and checks request bodies."""

    template: Template
    destination: str
    body: Node
    url: str
    stamp: bool = True
    external_id_from: str | None = None
    dedupe: DedupeSettings = field(default_factory=DedupeSettings)
    hints: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    mode: str = "import"  # import | send: templates whose creations Gorgias may send (template.sends)
    clock: Callable[[], float] = time.time  # the import timestamp when a record has no time of its own

    @property
    def name(self) -> str:
        return self.template.name

    @classmethod
    def build_from(cls, template: Template, options: TemplateOptions, destination: str) -> ConfiguredTemplate:
        """``template`` with ``options`` applied. Their shape is checked by :class:`TemplateOptions`; here
        what depends on the template: its body fields, URL placeholders, what it creates or sends."""
        where = "endpoint.template_options"
        body = _mapped_body(template, options, where)
        stamp, external_from = True, None
        if options.external_id is not None:
            if not template.external_id:
                raise ValueError(f"{where}.external_id: template {template.name} sends no external_id "
                                 f"({template.schema.name} bodies have none)")
            stamp, external_from = options.external_id.stamp, options.external_id.from_
        url = template.url
        for placeholder, attr in options.url_attributes.items():
            if placeholder not in template.placeholders:
                known = ", ".join(template.placeholders) or "none"
                raise ValueError(f"{where}.url_attributes.{placeholder}: not a placeholder of {template.url} "
                                 f"(placeholders: {known})")
            url = url.replace("{" + placeholder + "}", "{" + attr + "}")
        dedupe = DedupeSettings()
        if options.dedupe is not None:
            if not template.creates:
                raise ValueError(f"{where}.dedupe: template {template.name} does not create anything; "
                                 "only create templates are made duplicate-safe")
            dedupe = DedupeSettings(options.dedupe.lookup_before_create, options.dedupe.on_unknown_outcome)
        if options.mode is not None and template.sends is None:
            raise ValueError(f"{where}.mode: template {template.name} creates nothing Gorgias sends to a customer; "
                             "remove mode")
        hints: dict[str, tuple[str, ...]] = {}  # body path -> the record attributes it comes from
        for path, attrs, node in sources(body):
            if not (isinstance(node, From) and node.default is not MISSING):  # a default is never absent
                hints.setdefault(path, attrs)
        return cls(template, destination, body, url, stamp, external_from, dedupe, hints, options.mode or "import")

    # ---------------------------------------------------------------------------------------------

    def build(self, record: Mapping[str, Any], source: SourceRef, *, replayed: bool = False) -> Any:
        """The checked request body of one record; :class:`RenderError` naming the field otherwise.

        ``replayed``: the record is a replay or may have been delivered before a restart; in ``send``
        mode its messages are imported all the same, so that nobody is emailed twice."""
        template = self.template
        body = self.body.eval(record, {})
        if body is MISSING:
            if template.schema.name == "field_value":
                attrs = " or ".join(self.hints.get("", ("value",)))
                raise RenderError(f"{self.name}: value: required (record attribute {attrs}: absent)")
            body = [] if template.schema.name == "field_values" else {}
        if template.external_id:
            self._stamp(body, record, source)
        for rule in template.rules:
            RULES[rule](body, template)
        if template.sends is not None and (self.mode == "import" or replayed):
            self._import(body, source)
        self.check(body)
        return body

    def _import(self, body: Any, source: SourceRef) -> None:
        """Stamp what Gorgias would send as already sent: ``sent_datetime`` on messages (their own
        ``created_datetime``, else the Kafka record's timestamp), ``should_send_datetime: null`` on surveys."""
        if not isinstance(body, dict):
            return
        if self.template.sends == "survey":
            body["should_send_datetime"] = None
            return
        ms = source.timestamp_ms
        fallback = datetime.fromtimestamp((ms / 1000) if ms is not None else self.clock(), tz=UTC).isoformat()
        for _, msg in _messages(body, self.template):
            if msg.get("sent_datetime") is None:
                msg["sent_datetime"] = msg.get("created_datetime") or body.get("created_datetime") or fallback

    def emails(self, body: Any) -> list[str]:
        """Who Gorgias would send something to if ``body`` were sent: one line per message or survey."""
        if self.template.sends is None or not isinstance(body, Mapping):
            return []
        if self.template.sends == "survey":
            if "should_send_datetime" in body and body["should_send_datetime"] is None:
                return []
            return [f"Gorgias may send the satisfaction survey of ticket {body.get('ticket_id')} to customer "
                    f"{body.get('customer_id')}"]
        out = []
        for prefix, msg in _messages(body, self.template):
            if msg.get("sent_datetime") is not None or msg.get("from_agent") is not True \
                    or msg.get("channel") == "internal-note":
                continue
            receiver = msg.get("receiver")
            if isinstance(receiver, Mapping):
                who = receiver.get("email") or f"customer {receiver.get('id')}"
            else:
                who = "the ticket's customer"
            out.append(f"emails {who}: {prefix.rstrip('.') or 'the message'} has no sent_datetime (mode: send)")
        return out

    def merge(self, bodies: Sequence[Any]) -> Any:
        """The checked body of one call carrying a group of records."""
        spec = self.template.batch
        if spec.mode == "none":
            raise RenderError(f"{self.name}: Gorgias has no batch form of this endpoint; turn batching off")
        if len(bodies) == 1:
            return bodies[0]
        body = STRATEGIES[spec.mode](bodies, spec)
        self.check(body)
        return body

    def check(self, body: Any) -> None:
        errors = self.template.schema.validate(body)
        if errors:
            raise RenderError(f"{self.name}: " + "; ".join(self._explain(e) for e in errors))

    def _explain(self, error: str) -> str:
        path, _, reason = error.partition(": ")
        if reason == "required":
            attrs = self.hints.get(_schema_path(path))
            if attrs:
                return f"{error} (record attribute {' or '.join(attrs)}: absent)"
        return error

    def _stamp(self, body: Any, record: Mapping[str, Any], source: SourceRef) -> None:
        if not isinstance(body, dict):
            return
        stamp = default_external_id(self.destination, source)
        identity, *others = self.template.external_id
        if body.get(identity) is None:  # an external_id the record brings is kept
            if self.external_id_from is not None:
                try:
                    value = get_path(record, self.external_id_from)
                except MissingAttribute:
                    raise RenderError(
                        f"{self.name}: {identity}: the record has no attribute {self.external_id_from} "
                        "(endpoint.template_options.external_id.from)"
                    ) from None
                body[identity] = value if isinstance(value, str) else str(value)
            elif self.stamp:
                body[identity] = stamp
        if not self.stamp:
            return
        for path in others:  # e.g. messages[].external_id: each record's messages
            steps = parse_body_path(path)
            if len(steps) != 3 or steps[1] != "[]":
                continue
            items = body.get(steps[0])
            if not isinstance(items, list):
                continue
            many = len(items) > 1
            for i, item in enumerate(items):
                if isinstance(item, dict) and item.get(steps[2]) is None:
                    item[steps[2]] = f"{stamp}-{i}" if many else stamp


def _schema_path(path: str) -> str:
    """``messages[3].sender.email`` -> ``messages[].sender.email`` (the schema's form)."""
    out = []
    i = 0
    while i < len(path):
        c = path[i]
        if c == "[":
            j = path.index("]", i)
            out.append("[]")
            i = j + 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def _check_body_path(template: Template, path: str, where: str) -> None:
    try:
        parse_body_path(path)
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None
    if not template.schema.knows(path):
        top = sorted({p.split(".")[0].split("[")[0] for p in template.schema.fields if p})
        raise ValueError(f"{where}: {path} is not a field of {template.method} {_short(template.url)} bodies "
                         f"(fields: {', '.join(top)})")


def _short(url: str) -> str:
    return url.split(".gorgias.com", 1)[-1]


# --------------------------------------------------------------------------------------------------
# Catalog


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
