"""Templates: the catalog loaded from ``catalog.yaml``, template options, and building request bodies.

:class:`Template` is one catalog entry as written; :meth:`Template.configure` applies a destination's
``endpoint.template_options`` and returns a :class:`ConfiguredTemplate`, which turns one record into a
checked body (:meth:`~ConfiguredTemplate.build`) and a group of bodies into one (:meth:`~ConfiguredTemplate.merge`).
"""

from __future__ import annotations

import difflib
import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any, Final

import yaml

from worker.records import SourceRef
from worker.rendering import RenderError
from worker.templates.mapping import (
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
from worker.templates.schema import SCHEMAS, BodySchema, field_check
from worker.transform import MissingAttribute, get_path, split_path

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

BATCH_MODES: Final = ("none", "conversation", "union", "concat", "latest")
OPTION_KEYS: Final = ("fields", "mapping", "external_id", "url_attributes", "dedupe")
DEDUPE_POLICIES: Final = ("replayed", "always", "never")
CREATES: Final = ("ticket", "customer", "message", "tag", "survey")  # resources worker.dedupe can look up
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

    @property
    def placeholders(self) -> list[str]:
        from worker.config import PLACEHOLDER

        return [p for p in PLACEHOLDER.findall(self.url) if p != "domain"]

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
        if b.mode == "union":
            return f"a group{per} becomes one call with the union of their {' and '.join(b.fields)}"
        if b.mode == "concat":
            return f"a group{per} becomes one array (the last value of each field id wins)"
        return f"a group{per} becomes one call carrying the record with the latest version (else the last one)"

    def configure(self, options: Mapping[str, Any], destination: str) -> ConfiguredTemplate:
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


RULES: dict[str, Callable[[Any, Template], None]] = {
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


STRATEGIES: dict[str, Callable[[Sequence[Any], BatchSpec], Any]] = {
    "conversation": _conversation,
    "union": _union,
    "concat": _concat,
    "latest": _latest,
}


# --------------------------------------------------------------------------------------------------
# Configured template


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

    @property
    def name(self) -> str:
        return self.template.name

    @classmethod
    def build_from(cls, template: Template, options: Mapping[str, Any], destination: str) -> ConfiguredTemplate:
        where = "endpoint.template_options"
        if not isinstance(options, Mapping):
            raise ValueError(f"{where}: must be a mapping of options ({', '.join(OPTION_KEYS)})")
        unknown = [k for k in options if k not in OPTION_KEYS]
        if unknown:
            raise ValueError(f"{where}.{unknown[0]}: unknown option for template {template.name} "
                             f"(known: {', '.join(OPTION_KEYS)})")
        schema = template.schema
        body = template.body

        mapping = options.get("mapping") or {}
        if not isinstance(mapping, Mapping):
            raise ValueError(f"{where}.mapping: must map body fields to record attributes, "
                             "e.g. {customer.email: contact.email}")
        for path, attrs in mapping.items():
            here = f"{where}.mapping.{path}"
            _check_body_path(template, str(path), here)
            if attrs is None:
                body = remove_field(body, str(path))
                continue
            names = [attrs] if isinstance(attrs, str) else attrs
            if not isinstance(names, list) or not names or not all(isinstance(a, str) for a in names):
                raise ValueError(f"{here}: must be a record attribute path (or a list of them, or null to "
                                 f"leave the field out), got {attrs!r}")
            for name in names:
                try:
                    split_path(name)
                except ValueError as exc:
                    raise ValueError(f"{here}: {exc}") from None
            body = set_source(body, str(path), names)

        constants = options.get("fields") or {}
        if not isinstance(constants, Mapping):
            raise ValueError(f"{where}.fields: must map body fields to constant values, e.g. {{channel: email}}")
        for path, value in constants.items():
            here = f"{where}.fields.{path}"
            _check_body_path(template, str(path), here)
            check = field_check(schema, _schema_path(str(path)))
            if check is not None:
                errors: list[str] = []
                check(value, "", errors)
                if errors:
                    raise ValueError(f"{here}: {errors[0].removeprefix('body: ')}")
            body = set_constant(body, str(path), value)

        stamp, external_from = True, None
        ext = options.get("external_id")
        if ext is not None:
            if not template.external_id:
                raise ValueError(f"{where}.external_id: template {template.name} sends no external_id "
                                 f"({template.schema.name} bodies have none)")
            if not isinstance(ext, Mapping) or set(ext) - {"from", "stamp"}:
                raise ValueError(f"{where}.external_id: must be {{from: <record attribute>}} or {{stamp: false}}")
            if "from" in ext:
                if not isinstance(ext["from"], str):
                    raise ValueError(f"{where}.external_id.from: must be a record attribute path")
                try:
                    split_path(ext["from"])
                except ValueError as exc:
                    raise ValueError(f"{where}.external_id.from: {exc}") from None
                external_from = ext["from"]
            if "stamp" in ext:
                if not isinstance(ext["stamp"], bool):
                    raise ValueError(f"{where}.external_id.stamp: must be true or false")
                stamp = ext["stamp"]

        url = template.url
        renames = options.get("url_attributes") or {}
        if not isinstance(renames, Mapping):
            raise ValueError(f"{where}.url_attributes: must map URL placeholders to record attributes, "
                             "e.g. {ticket_id: ticket.id}")
        for placeholder, attr in renames.items():
            if placeholder not in template.placeholders:
                known = ", ".join(template.placeholders) or "none"
                raise ValueError(f"{where}.url_attributes.{placeholder}: not a placeholder of {template.url} "
                                 f"(placeholders: {known})")
            if not isinstance(attr, str):
                raise ValueError(f"{where}.url_attributes.{placeholder}: must be a record attribute path")
            try:
                split_path(attr)
            except ValueError as exc:
                raise ValueError(f"{where}.url_attributes.{placeholder}: {exc}") from None
            url = url.replace("{" + placeholder + "}", "{" + attr + "}")

        dedupe = DedupeSettings()
        raw = options.get("dedupe")
        if raw is not None:
            if not template.creates:
                raise ValueError(f"{where}.dedupe: template {template.name} does not create anything; "
                                 "only create templates are made duplicate-safe")
            if not isinstance(raw, Mapping) or set(raw) - {"lookup_before_create", "on_unknown_outcome"}:
                raise ValueError(f"{where}.dedupe: must be {{lookup_before_create: replayed|always|never, "
                                 "on_unknown_outcome: true|false}}")
            policy = raw.get("lookup_before_create", "replayed")
            if policy not in DEDUPE_POLICIES:
                raise ValueError(f"{where}.dedupe.lookup_before_create: must be one of "
                                 f"{', '.join(DEDUPE_POLICIES)} (got {policy!r})")
            unknown_outcome = raw.get("on_unknown_outcome", True)
            if not isinstance(unknown_outcome, bool):
                raise ValueError(f"{where}.dedupe.on_unknown_outcome: must be true or false")
            dedupe = DedupeSettings(policy, unknown_outcome)

        hints: dict[str, tuple[str, ...]] = {}  # body path -> the record attributes it comes from
        for path, attrs, node in sources(body):
            if not (isinstance(node, From) and node.default is not MISSING):  # a default is never absent
                hints.setdefault(path, attrs)
        return cls(template, destination, body, url, stamp, external_from, dedupe, hints)

    # ---------------------------------------------------------------------------------------------

    def build(self, record: Mapping[str, Any], source: SourceRef) -> Any:
        """The checked request body of one record; :class:`RenderError` naming the field otherwise."""
        template = self.template
        body = self.body.eval(record, {})
        if body is MISSING:
            body = [] if template.schema.name == "field_values" else {}
        if template.external_id:
            self._stamp(body, record, source)
        for rule in template.rules:
            RULES[rule](body, template)
        self.check(body)
        return body

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

    def identity_path(self) -> str | None:
        return self.template.external_id[0] if self.template.external_id else None


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
                      str(batch_doc.get("reason") or ""))
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
    )


@cache
def _catalog() -> dict[str, Template]:
    text = resources.files("worker.templates").joinpath("catalog.yaml").read_text(encoding="utf-8")
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
