"""Ticket messages: who may send them (the 2023 sender/receiver rules), building them, endpoints."""

from __future__ import annotations

from typing import Any

from gorgias_sandbox import render
from gorgias_sandbox.errors import invalid
from gorgias_sandbox.inputs import checked, numbered_page, page, query_int, require_found
from gorgias_sandbox.routing import Call, Reply, Route
from gorgias_sandbox.schemas import INTERNAL_NOTE, MESSAGE
from gorgias_sandbox.state import AccountState, TicketRecord
from gorgias_sandbox.validation import MISSING

ACTIONS = ("force", "retry", "cancel")
_CARRIED = ("message_id", "external_id", "subject", "body_text", "body_html", "stripped_signature", "attachments",
            "actions", "macros", "mention_ids", "headers", "integration_id", "meta", "failed_datetime",
            "deleted_datetime", "opened_datetime", "last_sending_error")
"""Fields a message update keeps from the previous version unless the body sets them."""


def customer_ref_problem(account: AccountState, ref: dict[str, Any]) -> str | None:
    """Why a customer reference cannot be used (unknown id, email not matching it), or None.

    A reference by an unknown email is fine: the customer gets created.
    """
    if "id" not in ref:
        return None
    customer = account.customers.get(ref["id"])
    if customer is None:
        return "Customer not found."
    email = ref.get("email")
    if email is not None and (customer.get("email") or "").lower() != email.lower():
        return "Does not match the email of the customer with this id."
    return None


def source_errors(msg: dict[str, Any]) -> dict[str, Any]:
    """An email-channel message must carry ``source`` with ``from`` and at least one ``to`` address
    (3P: rejected otherwise; the strict reading, so the client always builds it)."""
    if msg["channel"] != "email":
        return {}
    source = msg.get("source")
    if source is None:
        return {"source": [MISSING]}
    problems: dict[str, list[str]] = {}
    if source.get("from") is None:
        problems["from"] = [MISSING]
    if not source.get("to"):
        problems["to"] = ["Email messages need at least one recipient."]
    return {"source": problems} if problems else {}


# complexity: Gorgias' rules for a message's sender and receiver, one branch each
def people_errors(account: AccountState, msg: dict[str, Any], fallback_customer: bool) -> dict[str, Any]:  # noqa: C901
    """Errors under the sender/receiver rules (Gorgias, since 2023-02-09), and a missing email ``source``.

    * from an agent (``from_agent: true``): ``sender`` must be an existing user (default: the bot user);
      ``receiver``, if given, must be a customer (unknown email → created);
    * incoming (``from_agent: false``): ``sender`` must be a customer (unknown email → created; default:
      the ticket's customer, when there is one - INF), no ``receiver``;
    * internal notes (channel ``internal-note``): ``from_agent: true``, not public, no ``receiver``.
    """
    errors: dict[str, Any] = source_errors(msg)
    note = msg["channel"] == INTERNAL_NOTE
    sender, receiver = msg.get("sender"), msg.get("receiver")
    if note:
        if not msg["from_agent"]:
            errors["from_agent"] = ["Internal notes must be sent by an agent (from_agent: true)."]
        if msg.get("public") is True:
            errors["public"] = ["Internal notes cannot be public."]
        if receiver is not None:
            errors["receiver"] = ["Internal notes cannot have a receiver."]
    if note or msg["from_agent"]:
        if sender is not None and account.find_user(sender) is None:
            errors["sender"] = ["The sender of a message from an agent must be an existing user."]
        if receiver is not None and not note:
            problem = customer_ref_problem(account, receiver)
            if problem:
                errors["receiver"] = [problem]
    else:
        if receiver is not None:
            errors["receiver"] = ["Messages from customers cannot have a receiver."]
        if sender is None:
            if not fallback_customer:
                errors["sender"] = [MISSING]
        else:
            problem = customer_ref_problem(account, sender)
            if problem:
                errors["sender"] = [problem]
    return errors


def _address(person: dict[str, Any] | None) -> dict[str, Any] | None:
    if person is None or not person.get("email"):
        return None
    return {"address": person["email"], "name": person.get("name")}


def build_message(account: AccountState, ticket: TicketRecord, msg: dict[str, Any], now: str,
                  previous: dict[str, Any] | None = None) -> dict[str, Any]:
    """Apply a checked message (new, or an update of ``previous``) and return the stored object.

    Longer than most functions because the stored object is written out as one literal, every field in
    the order a recorded Gorgias answer has them: split up, the shape would be harder to compare."""
    note = msg["channel"] == INTERNAL_NOTE
    from_agent = msg["from_agent"]
    sender, receiver = _parties(account, ticket, msg, now)
    src, ids, created, imported, sent = _identity(account, ticket, msg, now, previous)
    get = src.get
    source = msg.get("source")
    if source is None:
        source = {"type": msg["channel"], "from": _address(sender),
                  "to": [a for a in (_address(receiver),) if a is not None]}
    else:
        source = {"type": msg["channel"], **source}
    body_text = get("body_text")
    body_html = get("body_html")
    message = {
        **ids,
        "message_id": get("message_id"),
        "external_id": get("external_id"),
        "public": msg.get("public", not note),
        "channel": msg["channel"],
        "via": msg["via"],
        "from_agent": from_agent,
        "sender": render.person_summary(sender),
        "receiver": render.person_summary(receiver),
        "auth_customer_identity": None,
        "source": source,
        "subject": get("subject"),
        "body_text": body_text,
        "body_html": body_html,
        "stripped_text": msg.get("stripped_text", body_text),
        "stripped_html": msg.get("stripped_html", body_html),
        "stripped_signature": get("stripped_signature"),
        "attachments": get("attachments") or [],
        "actions": get("actions") or [],
        "macros": get("macros") or [],
        "mention_ids": get("mention_ids") or [],
        "headers": get("headers"),
        "integration_id": get("integration_id"),
        "rule_id": None,
        "intents": [],
        "meta": get("meta"),
        "imported": imported,
        "created_datetime": created,
        "sent_datetime": sent,
        "processed_datetime": now,
        "failed_datetime": get("failed_datetime"),
        "deleted_datetime": get("deleted_datetime"),
        "opened_datetime": get("opened_datetime"),
        "last_sending_error": get("last_sending_error"),
        "is_retriable": False,
        "replied_by": None,
        "replied_to": None,
    }
    account.messages[message["id"]] = message
    if previous is None:
        ticket.message_ids.append(message["id"])
    # DOC: an outgoing message created - or updated - without sent_datetime is sent by Gorgias
    if from_agent and not note and message["public"] and msg.get("sent_datetime") is None:
        account.emailed.append({"message_id": message["id"], "ticket_id": ticket.id, "channel": msg["channel"],
                                "to": [a["address"] for a in source.get("to") or []],
                                "subject": message["subject"], "sent_datetime": sent})
    _refresh_ticket(account, ticket, now)
    return message


def _parties(account: AccountState, ticket: TicketRecord, msg: dict[str, Any],
             now: str) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """The message's sender and receiver: an agent writes to the ticket's customer (unless a note, which
    has no receiver), a customer to nobody in particular; either defaults to the ticket's side."""
    note = msg["channel"] == INTERNAL_NOTE
    ticket_customer = None if ticket.customer_id is None else account.customers.get(ticket.customer_id)
    sender_ref = msg.get("sender")
    if not msg["from_agent"]:
        return (account.get_or_create_customer(sender_ref, now) if sender_ref else ticket_customer), None
    sender = account.find_user(sender_ref) if sender_ref else account.users[account.bot_user_id]
    receiver = None
    if not note:
        receiver_ref = msg.get("receiver")
        receiver = account.get_or_create_customer(receiver_ref, now) if receiver_ref else ticket_customer
    return sender, receiver


def _identity(account: AccountState, ticket: TicketRecord, msg: dict[str, Any], now: str,
              previous: dict[str, Any] | None) -> tuple[dict[str, Any], dict[str, Any], str, bool, str]:
    """``(fields, ids, created, imported, sent)``: where the fields come from (an update keeps what it does
    not change), the ids, and the datetimes and imported flag of a new message or of an updated one."""
    if previous is None:
        mid = account.next_id("message")
        ids: dict[str, Any] = {"id": mid, "uri": f"/api/tickets/{ticket.id}/messages/{mid}/", "ticket_id": ticket.id}
        # DOC: an outgoing message without sent_datetime is really sent to the customer (recorded in
        # account.emailed); with sent_datetime it is stored as imported and nobody is contacted.
        created = msg.get("created_datetime") or now
        return msg, ids, created, msg.get("sent_datetime") is not None, msg.get("sent_datetime") or now
    src = {**{key: previous[key] for key in _CARRIED}, **msg}
    ids = {"id": previous["id"], "uri": previous["uri"], "ticket_id": previous["ticket_id"]}
    created = msg.get("created_datetime") or previous["created_datetime"]
    # DOC (update-ticket-message): "if sent_datetime is omitted, the message will be sent by Gorgias"
    sent = msg.get("sent_datetime")
    imported = sent is not None
    return src, ids, created, imported, sent or now


def _refresh_ticket(account: AccountState, ticket: TicketRecord, now: str) -> None:
    """Recompute the message-derived datetimes of a ticket."""
    last = last_received = None
    for mid in ticket.message_ids:
        m = account.messages[mid]
        stamp = m["sent_datetime"] or m["created_datetime"]
        if last is None or stamp > last:
            last = stamp
        if not m["from_agent"] and (last_received is None or stamp > last_received):
            last_received = stamp
    fields = ticket.fields
    fields["last_message_datetime"] = last
    fields["last_received_message_datetime"] = last_received
    fields["updated_datetime"] = now


def _ticket(call: Call) -> TicketRecord:
    return require_found(call.account.tickets.get(call.params[0]))  # type: ignore[no-any-return]


def _check_action(call: Call) -> None:
    action = call.query.get("action")
    if action is not None and action not in ACTIONS:
        raise invalid("Invalid query parameters.", {"action": [f"Must be one of: {', '.join(ACTIONS)}."]})


def create_message(call: Call) -> Reply:
    """``POST /api/tickets/{ticket_id}/messages`` → 201 TicketMessage."""
    ticket = _ticket(call)
    _check_action(call)
    msg = checked(call.body, MESSAGE, "Failed to create message")
    errors = people_errors(call.account, msg, ticket.customer_id is not None)
    if errors:
        raise invalid("Failed to create message", errors)
    return Reply(201, build_message(call.account, ticket, msg, call.now))


def _message(call: Call) -> dict[str, Any]:
    ticket = _ticket(call)
    message = call.account.messages.get(call.params[1])
    if message is None or message["ticket_id"] != ticket.id:
        require_found(None)
    return message  # type: ignore[return-value]


def update_message(call: Call) -> Reply:
    """``PUT /api/tickets/{ticket_id}/messages/{id}`` → 200 TicketMessage (LIVE; the spec says 202; channel, from_agent
    and via required).

    Like a create, an outgoing public message updated without ``sent_datetime`` is **sent** (DOC: "if
    ``sent_datetime`` is omitted, the message will be sent by Gorgias"): listed under ``emailed`` again.
    ``channel``, ``via`` and ``from_agent`` are what the body says (the message becomes what it is told)."""
    previous = _message(call)
    _check_action(call)
    msg = checked(call.body, MESSAGE, "Failed to update message")
    effective = dict(msg)
    if "sender" not in msg and previous["sender"] is not None:
        effective["sender"] = {"id": previous["sender"]["id"]}
    if "receiver" not in msg and previous["receiver"] is not None and msg["from_agent"]:
        effective["receiver"] = {"id": previous["receiver"]["id"]}
    ticket = _ticket(call)
    errors = people_errors(call.account, effective, ticket.customer_id is not None)
    if errors:
        raise invalid("Failed to update message", errors)
    return Reply(200, build_message(call.account, ticket, effective, call.now, previous))  # LIVE (spec: 202)


def delete_message(call: Call) -> Reply:
    """``DELETE /api/tickets/{ticket_id}/messages/{id}`` → 200 with an empty body (3P-observed status)."""
    message = _message(call)
    ticket = _ticket(call)
    del call.account.messages[message["id"]]
    ticket.message_ids.remove(message["id"])
    _refresh_ticket(call.account, ticket, call.now)
    return Reply(200)


def get_message(call: Call) -> Reply:
    """``GET /api/tickets/{ticket_id}/messages/{id}``."""
    return Reply(200, _message(call))


def _oldest_first(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(messages, key=lambda m: (m["created_datetime"], m["id"]))


def list_ticket_messages(call: Call) -> Reply:
    """``GET /api/tickets/{ticket_id}/messages`` (deprecated by Gorgias, still served): oldest first,
    paged by number (``?page=N``, 30 per page), no cursor (SPEC + LIVE)."""
    ticket = _ticket(call)
    items = _oldest_first([call.account.messages[m] for m in ticket.message_ids])
    return Reply(200, numbered_page(call.query, call.path, items))


def list_messages(call: Call) -> Reply:
    """``GET /api/messages?ticket_id=&order_by=created_datetime:desc&limit=&cursor=`` (all messages without
    the filter): cursor pages, newest first unless ``order_by`` says otherwise (INF default)."""
    ticket_id = query_int(call.query, "ticket_id")
    if ticket_id is None:
        items = list(call.account.messages.values())
    else:
        ticket = call.account.tickets.get(ticket_id)
        items = [] if ticket is None else [call.account.messages[m] for m in ticket.message_ids]
    return Reply(200, page(call.query, call.path, items, filters=("ticket_id",),
                           order_fields=("created_datetime", "id"), default_order="created_datetime:desc"))


ROUTES = [
    Route("POST", "/api/tickets/{ticket_id}/messages", create_message),
    Route("GET", "/api/tickets/{ticket_id}/messages", list_ticket_messages),
    Route("PUT", "/api/tickets/{ticket_id}/messages/{id}", update_message),
    Route("DELETE", "/api/tickets/{ticket_id}/messages/{id}", delete_message),
    Route("GET", "/api/tickets/{ticket_id}/messages/{id}", get_message),
    Route("GET", "/api/messages", list_messages),
]
