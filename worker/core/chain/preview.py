"""Sample payloads: the exact requests a destination's current settings would send for some records.

:func:`preview` is pure: record values in, an ordered list of :class:`PreviewRequest` (method, URL,
headers with the secret masked, body, which records it carries) and :class:`PreviewDeadLetter` (records
the worker would dead-letter, with the stage and reason) out. It drives the worker's own record chain
(:mod:`worker.core.chain.record_chain`: decoding, the destination's renderer, its grouper and open batches). All
records are taken as arriving at the same moment (as a backlog is consumed), and every open batch is
flushed at the end, so batches close on size and bytes only.

Reading a sample from a topic is the shell's part: :func:`worker.kafka.topic_sample.read_sample`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from worker.core.chain.record_chain import RecordChain, Rejected
from worker.core.config.account import AuthType
from worker.core.config.worker_config import Destination
from worker.core.records.record import SourceRef
from worker.core.requests.call import RenderedCall
from worker.core.requests.rendering import RequestRenderer
from worker.core.requests.request import RenderedRequest
from worker.core.requests.wire_headers import wire_headers

__all__ = [
    "PreviewDeadLetter",
    "PreviewRequest",
    "SampleMessage",
    "format_items",
    "masked_headers",
    "preview",
    "reason_field",
]

MASK = "***"


@dataclass(frozen=True, slots=True)
class SampleMessage:
    """A record value as it sits in Kafka, with its coordinates."""

    value: bytes | None
    source: SourceRef
    headers: tuple[tuple[str, bytes], ...] = ()


@dataclass(frozen=True)
class PreviewRequest:
    """One request the worker would send, with the records it carries (their index in the input)."""

    request: RenderedRequest
    headers: dict[str, str]  # as sent, the credential masked
    records: list[int]
    group_key: list[Any] | None = None

    @property
    def body(self) -> Any:
        body = self.request.body
        if body is None:
            return None
        if self.request.content_type == "application/json":
            return orjson.loads(body)
        return body.decode("utf-8", "replace")

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kind": "request",
            "records": self.records,
            "method": self.request.method,
            "url": self.request.url,
            "headers": self.headers,
            "body": self.body,
        }
        if self.group_key is not None:
            out["group_key"] = self.group_key
        if self.request.plan is not None:
            out["steps"] = self.request.plan.describe()
        if self.request.notes:
            out["notes"] = list(self.request.notes)
        out["emails"] = list(self.request.notes)  # the renderer's notes say whom Gorgias would email
        return out


@dataclass(frozen=True)
class PreviewDeadLetter:
    """Records that would go to the dead-letter topic instead of Gorgias."""

    stage: str  # decode | render
    reason: str
    records: list[int] = field(default_factory=list)

    @property
    def field(self) -> str | None:
        return reason_field(self.reason)

    def as_dict(self) -> dict[str, Any]:
        return {"kind": "dead_letter", "records": self.records, "stage": self.stage, "reason": self.reason,
                "field": self.field}


# The forms a render error names its field in (worker.core.requests and worker.core.templates raise them).
_FIELD_PATTERNS = (
    re.compile(r"record attribute ([\w.\-\[\]]+)(?: or [\w.\-\[\]]+)*: absent"),
    re.compile(r"^URL placeholder \{([^}]+)\}"),
    re.compile(r"^grouping attribute ([^:]+):"),
    re.compile(r"the record has no attribute ([\w.\-\[\]]+)"),
    re.compile(r"^[a-z_]+: ([\w.\-\[\]]+): "),
)


def reason_field(reason: str) -> str | None:
    """The record attribute (or, failing that, the body field) a dead letter's reason names, if any:
    ``URL placeholder {ticket_id}: ...`` -> ``ticket_id``; ``create_ticket: messages[0].channel: required``
    -> ``messages[0].channel``."""
    for pattern in _FIELD_PATTERNS:
        match = pattern.search(reason)
        if match:
            return match.group(1)
    return None


PreviewItem = PreviewRequest | PreviewDeadLetter


def masked_headers(dest: Destination, request: RenderedRequest) -> dict[str, str]:
    """The headers the client sends with ``request``, the credential shown as ``Basic ***`` / ``Bearer ***``."""
    cred = dest.credential
    authorization = f"{'Basic' if cred.auth is AuthType.BASIC else 'Bearer'} {MASK}"
    return wire_headers(request, authorization, cred.host if cred.base_url is not None else None)


def _messages(dest: Destination, values: Iterable[Any]) -> list[SampleMessage]:
    topic = dest.source_topics[0]
    out: list[SampleMessage] = []
    for i, value in enumerate(values):
        if isinstance(value, SampleMessage):
            out.append(value)
            continue
        raw = value if isinstance(value, bytes) or value is None else orjson.dumps(value)
        out.append(SampleMessage(raw, SourceRef(topic, 0, i)))
    return out


def preview(
    dest: Destination, values: Sequence[Any], renderer: RequestRenderer | None = None, max_record_bytes: int = 1_048_576
) -> list[PreviewItem]:
    """The requests (and dead letters) ``values`` would make, in the order the worker would send them.

    ``values`` are record values: JSON-compatible objects (a record or a Nexla envelope), raw bytes,
    or :class:`SampleMessage` (bytes with their Kafka coordinates). Configuration problems raise
    ``ValueError`` (from building the renderer); record problems become dead letters.
    """
    chain = RecordChain(dest, max_record_bytes, renderer)
    messages = _messages(dest, values)
    position = {m.source: i for i, m in enumerate(messages)}
    items: list[PreviewItem] = []

    def show(made: RenderedCall | Rejected) -> None:
        numbers = [position.get(s, -1) for s in made.sources]
        if isinstance(made, Rejected):
            items.append(PreviewDeadLetter(made.stage.value, made.reason, numbers))
            return
        key = list(made.batch.key) if made.batch is not None else None
        items.append(PreviewRequest(made.request, masked_headers(dest, made.request), numbers, key))

    now = 0.0  # every record arrives at once; open batches are flushed at the end
    for msg in messages:
        rejected = chain.take_in(msg.value, msg.source, msg.headers, now)
        if rejected is not None:
            show(rejected)
        for made in chain.take_ready():
            show(made)
    chain.flush(now)
    for made in chain.take_ready():
        show(made)
    return items


def format_items(items: Sequence[PreviewItem]) -> list[str]:
    """Readable lines: each request with its headers and pretty body; each dead letter with its reason."""
    lines: list[str] = []
    for n, item in enumerate(items, 1):
        which = ", ".join(str(i) for i in item.records)
        plural = "s" if len(item.records) != 1 else ""
        if isinstance(item, PreviewDeadLetter):
            lines.append(f"#{n}  record{plural} {which} -> dead letter ({item.stage}): {item.reason}")
            lines.append("")
            continue
        group = f"  group {', '.join(map(str, item.group_key))}" if item.group_key else ""
        lines.append(f"#{n}  record{plural} {which}{group}")
        lines.append(f"{item.request.method} {item.request.url}")
        lines.extend(f"{k}: {v}" for k, v in item.headers.items())
        body = item.body
        if body is not None:
            lines.append("")
            if isinstance(body, str):
                lines.append(body)
            else:
                lines.extend(orjson.dumps(body, option=orjson.OPT_INDENT_2).decode().splitlines())
        plan = item.request.plan
        if plan is not None:
            lines += ["", "this call sends, in order:", *(f"  {step}" for step in plan.describe())]
        if item.request.notes:  # e.g. who Gorgias would email
            lines += ["", *(f"! {note}" for note in item.request.notes)]
        lines.append("")
    return lines
