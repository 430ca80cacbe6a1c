"""What sending a sample request would do to the helpdesk, said before it is sent, and how to undo a create.

``test`` (the command and ``POST /test``) sends one real request: it may create a ticket or a customer,
change or delete one, and Gorgias may email a customer. :func:`describe_effect` says which, in one
line, and lists whom it would email; :func:`undo_for` reads a create's answer and names the request
that deletes what it created (Gorgias has no delete for satisfaction surveys).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from worker.core.chain.preview import PreviewRequest
from worker.core.config.worker_config import Destination
from worker.core.templates.catalog import get_template

__all__ = ["Effect", "Undo", "describe_effect", "undo_for", "undo_url"]

_MANUAL_CREATES = (
    (re.compile(r"^/api/tickets/?$"), "ticket"),
    (re.compile(r"^/api/customers/?$"), "customer"),
    (re.compile(r"^/api/tags/?$"), "tag"),
    (re.compile(r"^/api/tickets/(?P<ticket_id>[^/]+)/messages/?$"), "message"),
)
_VERBS = {"POST": "creates or adds", "PUT": "replaces or changes", "PATCH": "changes", "DELETE": "deletes"}
_MESSAGE_PATH = re.compile(r"/messages(/|$)")


@dataclass(frozen=True)
class Undo:
    """The request that deletes what a test created: ``DELETE`` of one ticket, customer, tag or message."""

    kind: str  # ticket | customer | tag | message
    id: int | str
    ticket_id: int | str | None = None  # a message's ticket

    @property
    def what(self) -> str:
        return f"{self.kind} {self.id}" + (f" (ticket {self.ticket_id})" if self.ticket_id is not None else "")

    def path(self) -> str:
        if self.kind == "message":
            return f"/api/tickets/{self.ticket_id}/messages/{self.id}"
        return f"/api/{self.kind}s/{self.id}"

    def as_dict(self, origin: str) -> dict[str, Any]:
        return {"kind": self.kind, "id": self.id, "ticket_id": self.ticket_id, "what": self.what,
                "method": "DELETE", "url": origin + self.path()}


@dataclass(frozen=True)
class Effect:
    """What a request will do, said before it is sent."""

    summary: str  # one line: what it creates or changes, where
    creates: str | None  # ticket | customer | tag | message | survey, when it creates something
    emails: list[str]  # whom Gorgias would email (the renderer's notes)
    caution: str | None  # what the worker cannot tell (a manual endpoint writing messages)

    def as_dict(self) -> dict[str, Any]:
        return {"summary": self.summary, "creates": self.creates, "emails": self.emails, "caution": self.caution}

    def lines(self) -> list[str]:
        out = [self.summary]
        out += [f"! {who}" for who in self.emails] or ["nobody would be emailed"]
        if self.caution:
            out.append(f"! {self.caution}")
        return out


def _manual_creates(method: str, path: str) -> str | None:
    if method != "POST":
        return None
    return next((kind for pattern, kind in _MANUAL_CREATES if pattern.match(path)), None)


def describe_effect(dest: Destination, sample: PreviewRequest) -> Effect:
    """What sending ``sample`` with ``dest``'s settings will create or change, and whom it would email."""
    req = sample.request
    where = f"{req.method} {req.url}"
    emails = list(req.notes)
    caution = None
    if dest.endpoint.template is not None:
        template = get_template(dest.endpoint.template)
        creates = template.creates
        summary = f"{template.summary} ({template.name}): {where}"
        if creates:
            summary = f"will create a {creates} on {dest.credential.host}: {where}"
    else:
        path = urlsplit(req.url).path
        creates = _manual_creates(req.method, path)
        verb = f"will create a {creates}" if creates else f"{_VERBS.get(req.method, 'sends')} what the URL names"
        summary = f"{verb} on {dest.credential.host}: {where}"
        if _MESSAGE_PATH.search(path) and req.method in ("POST", "PUT"):
            caution = ("a manual endpoint: the worker cannot tell whom Gorgias would email; Gorgias sends an "
                       "outgoing message that has no sent_datetime")
    return Effect(summary, creates, emails, caution)


def _ident(value: Any) -> int | str | None:
    return value if isinstance(value, int | str) and not isinstance(value, bool) and str(value) else None


def undo_for(effect: Effect, sample: PreviewRequest, status: int | None, body: Any) -> Undo | None:
    """The delete that undoes a successful create, from its answer's ``id`` (None: nothing to undo)."""
    if effect.creates not in ("ticket", "customer", "tag", "message") or status not in (200, 201):
        return None
    if not isinstance(body, dict) or _ident(body.get("id")) is None:
        return None
    ticket_id = None
    if effect.creates == "message":
        ticket_id = _ident(body.get("ticket_id"))
        if ticket_id is None:
            match = re.search(r"/api/tickets/([^/]+)/messages", urlsplit(sample.request.url).path)
            ticket_id = match.group(1) if match else None
        if ticket_id is None:
            return None
    return Undo(effect.creates, body["id"], ticket_id)


_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def undo_url(origin: str, kind: Any, ident: Any, ticket_id: Any = None) -> str:
    """The delete URL of an :class:`Undo` a client sends back; ``ValueError`` unless it is one of ours
    (a known kind and plain ids: no path, query or host can be smuggled in)."""
    if kind not in ("ticket", "customer", "tag", "message"):
        raise ValueError("undo.kind must be ticket, customer, tag or message")
    ids = [ident, ticket_id] if kind == "message" else [ident]
    if not all(isinstance(i, int | str) and not isinstance(i, bool) and _ID.match(str(i)) for i in ids):
        raise ValueError("undo.id (and a message's undo.ticket_id) must be plain ids")
    return origin + Undo(kind, ident, ticket_id if kind == "message" else None).path()
