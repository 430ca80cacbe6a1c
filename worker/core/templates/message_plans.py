"""The plan of ``update_ticket_message``: read the message, then write it back as it is with the record's changes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from worker.core.requests.request import Plan, PlanError, RenderedRequest, Step, StepResult
from worker.core.templates.plan_steps import json_request, short

__all__ = ["UpdateMessage", "update_message"]


_IDENTITY = ("channel", "via", "from_agent")
_ADDRESS_KEYS = ("address", "name")


def _person_ref(person: Any) -> dict[str, Any] | None:
    """A sender or receiver as read back, as a reference Gorgias takes (``id`` and ``email``)."""
    if not isinstance(person, Mapping):
        return None
    ref = {k: person[k] for k in ("id", "email") if person.get(k) is not None}
    return ref or None


def _address(value: Any) -> Any:
    if not isinstance(value, Mapping):
        return value
    return {k: value[k] for k in _ADDRESS_KEYS if k in value}


def _source(source: Any) -> dict[str, Any] | None:
    """A message's ``source`` as read back, keeping the documented keys (type, from, to, cc, bcc, extra)."""
    if not isinstance(source, Mapping):
        return None
    out: dict[str, Any] = {}
    for key in ("type", "from", "to", "cc", "bcc", "extra"):
        if key not in source:
            continue
        value = source[key]
        out[key] = [_address(a) for a in value] if isinstance(value, list) else \
            (_address(value) if key == "from" else value)
    return out


@dataclass(frozen=True)
class UpdateMessage(Plan):
    """GET the message, then PUT it back as it is (channel, via, from_agent, sender, receiver, source,
    sent_datetime) with the record's changes laid over it: Gorgias needs channel, via and from_agent on
    every update and *sends* an outgoing message updated without ``sent_datetime`` (DOC)."""

    write: RenderedRequest
    changes: Mapping[str, Any]

    def next_step(self, done: Sequence[StepResult]) -> Step | None:
        if not done:
            return Step(json_request(self.write, "GET", self.write.url, None),
                        "read the message (its channel, people, source and sent_datetime are sent back)")
        last = done[-1]
        if last.step.final:
            return None
        message = last.body
        if not isinstance(message, Mapping) or not all(k in message for k in _IDENTITY):
            raise PlanError(f"unexpected message in the answer: {short(message)}")
        body = self.merged(message)
        kept = "sending it" if "sent_datetime" not in body else "its sent_datetime kept, nobody emailed"
        return Step(json_request(self.write, "PUT", self.write.url, body), f"write the message back changed ({kept})",
                    final=True)

    def merged(self, message: Mapping[str, Any]) -> dict[str, Any]:
        """The PUT body: the message's own identity and people, the record's changes over them."""
        body: dict[str, Any] = {k: message[k] for k in _IDENTITY}
        for key in ("sender", "receiver"):
            ref = _person_ref(message.get(key))
            if ref is not None:
                body[key] = ref
        source = _source(message.get("source"))
        if source is not None:
            body["source"] = source
        body.update(self.changes)
        if "sent_datetime" not in self.changes:  # never left out by accident: Gorgias would send it
            body["sent_datetime"] = message.get("sent_datetime") or message.get("created_datetime")
        if body.get("sent_datetime") is None:
            body.pop("sent_datetime", None)  # asked to send (mode: send)
        return body

    def describe(self) -> list[str]:
        sent = "left out: Gorgias sends it" if self.changes.get("sent_datetime", 0) is None \
            else "its own kept unless the record gives one"
        return [f"GET {self.write.url}  (read the message)",
                f"PUT {self.write.url}  (its channel, via, from_agent, sender, receiver and source with the changes "
                f"above laid over them; sent_datetime {sent})"]




def update_message(write: RenderedRequest, body: Any) -> Plan | None:
    return UpdateMessage(write, dict(body) if isinstance(body, Mapping) else {})
