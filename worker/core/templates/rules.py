"""Template rules: template-specific shaping and checks of a body after it is built from a record.

A catalog entry names its rules (``rules: [email_source, ...]``); each takes the body and the template
and either completes the body or raises :class:`~worker.core.requests.rendering.RenderError` naming the field.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

from worker.core.requests.render_error import RenderError
from worker.core.templates.checks import BodySchema
from worker.core.templates.converters import CONVERTERS


class Template(Protocol):
    """What a rule reads of its template (a :class:`worker.core.templates.model.Template`): its name, for
    the reason, and its body schema's."""

    @property
    def name(self) -> str: ...

    @property
    def schema(self) -> BodySchema: ...


def messages_of(body: Any, template: Template) -> list[tuple[str, dict[str, Any]]]:
    """The messages of a body, each with its path prefix (``messages[0].``; empty for a message body)."""
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
    for _, msg in messages_of(body, template):
        if msg.get("channel") == "internal-note":
            continue
        if msg.get("from_agent") is False and msg.get("sender") is None:
            msg["sender"] = dict(ref)
        elif msg.get("from_agent") is True and msg.get("receiver") is None:
            msg["receiver"] = dict(ref)


def _message_has_content(body: Any, template: Template) -> None:
    for prefix, msg in messages_of(body, template):
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
    for prefix, msg in messages_of(body, template):
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


# complexity: Gorgias' customer shape, rule after rule (name, email channel, preferred channel, phones)
def _customer_shape(body: Any, template: Template, *, new: bool, require_channels: bool = True) -> None:  # noqa: C901
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
    elif new and require_channels:
        raise RenderError(
            f"{template.name}: channels: required: a customer needs an email or a phone (record attribute "
            "email, customer_email or phone) or `channels`"
        )


def _new_customer(body: Any, template: Template) -> None:
    _customer_shape(body, template, new=True)


def _maybe_new_customer(body: Any, template: Template) -> None:
    """upsert_customer: shaped for a create, but channels are needed only if it does create (the plan says)."""
    _customer_shape(body, template, new=True, require_channels=False)


def _customer_update(body: Any, template: Template) -> None:
    _customer_shape(body, template, new=False)


def _upsert_identity(body: Any, template: Template) -> None:
    if isinstance(body, Mapping) and not body.get("email") and not body.get("external_id"):
        raise RenderError(
            f"{template.name}: email: required: upsert_customer looks the customer up by email or external_id "
            "(record attribute email, customer_email or external_id)"
        )


_FIELD_TEMPLATES = "set_ticket_custom_fields (several values, the others kept) or set_ticket_field (one value)"


def _no_custom_fields(body: Any, template: Template) -> None:
    """``custom_fields`` in a ticket update (or a job's ``updates``) would replace every custom-field value
    of the ticket (3P): the record goes to the dead letters naming the templates that set them safely."""
    for where, value in (("", body), ("params.updates.", _job_updates_of(body))):
        if isinstance(value, Mapping) and "custom_fields" in value:
            raise RenderError(
                f"{template.name}: {where}custom_fields: not sent: Gorgias would replace every custom-field value "
                f"of the ticket with these; set them with template {_FIELD_TEMPLATES}"
            )


def _job_updates_of(body: Any) -> Any:
    params = body.get("params") if isinstance(body, Mapping) else None
    return params.get("updates") if isinstance(params, Mapping) else None


def _job_updates(body: Any, template: Template) -> None:
    """A job's ``updates`` in the form Gorgias' own helpdesk sends: ``tags`` as names (added to each
    ticket), the team as ``assignee_team_id``; never ``custom_fields``."""
    _no_custom_fields(body, template)
    updates = _job_updates_of(body)
    if not isinstance(updates, dict):
        return
    if "tags" in updates:
        names = CONVERTERS["tag_names"](updates["tags"])
        if isinstance(names, list) and not names:
            del updates["tags"]  # nothing to add
        else:
            updates["tags"] = names
    if "assignee_team" in updates:
        updates["assignee_team_id"] = CONVERTERS["id_value"](updates.pop("assignee_team"))


RULES: dict[str, Callable[[Any, Template], None]] = {
    "customer_update": _customer_update,
    "job_updates": _job_updates,
    "no_custom_fields": _no_custom_fields,
    "email_source": _email_source,
    "new_customer": _new_customer,
    "maybe_new_customer": _maybe_new_customer,
    "upsert_identity": _upsert_identity,
    "counterpart_from_ticket_customer": _counterpart_from_ticket_customer,
    "message_has_content": _message_has_content,
    "tags_given": _tags_given,
}
