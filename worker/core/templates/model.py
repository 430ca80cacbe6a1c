"""Templates: a catalog entry, template options applied to it, and building request bodies.

The catalog itself is :mod:`worker.core.templates.catalog`; the rules a body goes through,
:mod:`worker.core.templates.rules`; how a group of bodies becomes one, :mod:`worker.core.templates.batch_strategies`.

:class:`Template` is one catalog entry as written; :meth:`Template.configure` applies a destination's
``endpoint.template_options`` and returns a :class:`ConfiguredTemplate`, which turns one record into a
checked body (:meth:`~ConfiguredTemplate.build`) and a group of bodies into one (:meth:`~ConfiguredTemplate.merge`).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from worker.core.config.base import PLACEHOLDER
from worker.core.config.template_options import TemplateOptions
from worker.core.records.record import SourceRef
from worker.core.records.transform import MissingAttribute, get_path
from worker.core.requests.jobs import JobPolling
from worker.core.requests.render_error import RenderError
from worker.core.templates.batch_strategies import STRATEGIES
from worker.core.templates.checks import BodySchema
from worker.core.templates.converters import CONVERTERS
from worker.core.templates.mapping import (
    MISSING,
    From,
    Node,
    parse_body_path,
    remove_field,
    set_constant,
    set_source,
    sources,
)
from worker.core.templates.rules import RULES, messages_of
from worker.core.templates.schema import field_check

__all__ = [
    "BATCH_MODES",
    "OPTION_KEYS",
    "BatchSpec",
    "ConfiguredTemplate",
    "Template",
    "default_external_id",
]

BATCH_MODES: Final = ("none", "conversation", "union", "concat", "latest", "overlay", "update", "job")
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
        if b.mode == "update":
            return (f"a group{per} becomes one update: later records' fields win, their tags are added together "
                    "(tags: replace keeps the last record's)")
        if b.mode == "job":
            return f"a group{per} becomes one job over all their tickets (records of a group must ask the same change)"
        if b.mode == "union":
            return f"a group{per} becomes one call with the union of their {' and '.join(b.fields)}"
        if b.mode == "concat":
            return f"a group{per} becomes one array (the last value of each field id wins)"
        return f"a group{per} becomes one call carrying the record with the latest version (else the last one)"

    def configure(self, options: TemplateOptions, destination: str, *, coalesce: bool = False) -> ConfiguredTemplate:
        """Apply ``endpoint.template_options``; ``ValueError`` naming the option for a bad one. ``coalesce``: the
        destination sends calls as Gorgias jobs (``delivery.coalesce: jobs``), so ``job`` (polling) applies."""
        return ConfiguredTemplate.build_from(self, options, destination, coalesce=coalesce)


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
    job_polling: JobPolling | None = None  # job templates: how the job is followed until it ends
    tags_mode: str | None = None  # ticket updates: add (default) | replace the ticket's tags
    clock: Callable[[], float] = time.time  # the import timestamp when a record has no time of its own

    @property
    def name(self) -> str:
        return self.template.name

    @classmethod
    def build_from(cls, template: Template, options: TemplateOptions, destination: str, *,
                   coalesce: bool = False) -> ConfiguredTemplate:
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
        return cls(template, destination, body, url, stamp, external_from, dedupe, hints, options.mode or "import",
                   _job_polling(template, options, where, coalesce), _tags_mode(template, options, where))

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
        if template.plan == "update_message":
            self._keep_sent(body, record, replayed)
        elif template.sends is not None and (self.mode == "import" or replayed):
            self._import(body, source)
        self.check(body)
        return body

    def _keep_sent(self, body: Any, record: Mapping[str, Any], replayed: bool) -> None:
        """A message update: without a ``sent_datetime`` of the record's own, the plan sends the message's
        own back (Gorgias sends a message updated without one). Only a record asking ``send: true`` in
        ``mode: send`` (and not a replay) gets ``sent_datetime: null``: the plan leaves it out."""
        if not isinstance(body, dict) or body.get("sent_datetime") is not None:
            return
        body.pop("sent_datetime", None)
        if self.mode == "send" and not replayed and CONVERTERS["boolean"](record.get("send")) is True:
            body["sent_datetime"] = None

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
        for _, msg in messages_of(body, self.template):
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
        if self.template.plan == "update_message":
            if "sent_datetime" in body and body["sent_datetime"] is None:
                return ["Gorgias sends the updated message again to its receiver (send: true, mode: send)"]
            return []
        out = []
        for prefix, msg in messages_of(body, self.template):
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
        if self.tags_mode == "replace" and isinstance(body, dict) and "tags" in body:
            body["tags"] = next(b["tags"] for b in reversed(bodies) if "tags" in b)  # as if sent in turn
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

    # complexity: one rule per external_id case (the record's own, from an attribute, stamped, none)
    def _stamp(self, body: Any, record: Mapping[str, Any], source: SourceRef) -> None:  # noqa: C901
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


def _tags_mode(template: Template, options: TemplateOptions, where: str) -> str | None:
    """``template_options.tags`` of a ticket update (add by default); None for other templates."""
    if template.schema.name != "ticket_update":
        if options.tags is not None:
            raise ValueError(f"{where}.tags: only update_ticket takes tags (add or replace); remove tags")
        return None
    return options.tags or "add"


def _job_polling(template: Template, options: TemplateOptions, where: str, coalesce: bool) -> JobPolling | None:
    """How a job template, or a destination whose calls go as jobs (``coalesce``), follows its jobs
    (``template_options.job``); None for the others."""
    if template.batch.mode != "job" and not coalesce:
        if options.job is not None:
            raise ValueError(f"{where}.job: template {template.name} creates no Gorgias job (unless "
                             "delivery.coalesce: jobs); remove job")
        return None
    if options.job is None:
        return JobPolling()
    job = options.job
    return JobPolling(job.first_poll_s, max(job.first_poll_s, job.max_poll_interval_s), job.max_wait_s)


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
