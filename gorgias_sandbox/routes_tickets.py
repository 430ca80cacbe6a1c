"""Tickets: create (with embedded messages), partial update, delete, read, list; and ticket tags."""

from __future__ import annotations

from typing import Any

from gorgias_sandbox import render
from gorgias_sandbox.errors import invalid
from gorgias_sandbox.inputs import checked, multi, page, query_int, reject_unknown, require_found
from gorgias_sandbox.routes_custom_fields import managed_removals, store_values, values_errors
from gorgias_sandbox.routes_messages import build_message, customer_ref_problem, people_errors
from gorgias_sandbox.routing import Call, Reply, Route
from gorgias_sandbox.schemas import TICKET_CREATE, TICKET_TAGS, TICKET_UPDATE
from gorgias_sandbox.state import AccountState, TicketRecord

_PLAIN_FIELDS = ("channel", "via", "subject", "status", "priority", "external_id", "from_agent", "language", "spam",
                 "is_unread", "meta", "opened_datetime", "closed_datetime", "trashed_datetime", "snooze_datetime",
                 "last_message_datetime", "last_received_message_datetime")


def _relation_errors(account: AccountState, values: dict[str, Any]) -> dict[str, Any]:
    """Errors in the references a ticket body makes (customer, assignee, tags, field values)."""
    errors: dict[str, Any] = {}
    customer = values.get("customer")
    if customer is not None:
        problem = customer_ref_problem(account, customer)
        if problem:
            errors["customer"] = [problem]
    assignee = values.get("assignee_user")
    if assignee is not None and assignee["id"] not in account.users:
        errors["assignee_user"] = {"id": ["User not found."]}
    tag_errors = {str(i): {"id": ["Tag not found."]} for i, tag in enumerate(values.get("tags", []))
                  if "id" in tag and tag["id"] not in account.tags}
    if tag_errors:
        errors["tags"] = tag_errors
    field_errors = values_errors(account, "Ticket", values.get("custom_fields", []))
    if field_errors:
        errors["custom_fields"] = field_errors
    return errors


def _tag_ids(account: AccountState, tags: list[dict[str, Any]], now: str) -> list[int]:
    return [t["id"] if "id" in t else account.tag_named(t["name"], now, t.get("decoration")) for t in tags]


def _apply_common(account: AccountState, ticket: TicketRecord, values: dict[str, Any], now: str) -> None:
    fields = ticket.fields
    for key in _PLAIN_FIELDS:
        if key in values:
            fields[key] = values[key]
    if "assignee_user" in values:
        ref = values["assignee_user"]
        fields["assignee_user"] = None if ref is None else render.person_summary(account.users[ref["id"]])
    if "assignee_team" in values:
        fields["assignee_team"] = values["assignee_team"]  # INF: teams are not modelled; any id accepted
    if "customer" in values:
        ref = values["customer"]
        ticket.customer_id = None if ref is None else account.get_or_create_customer(ref, now)["id"]
    if "tags" in values:
        account.set_ticket_tags(ticket, _tag_ids(account, values["tags"], now))
    if "custom_fields" in values:
        ticket.field_values.clear()
        store_values(ticket.field_values, values["custom_fields"])
    if values.get("status") == "closed" and "closed_datetime" not in values and not fields.get("closed_datetime"):
        fields["closed_datetime"] = now  # INF
    if values.get("status") == "open" and "closed_datetime" not in values:
        fields["closed_datetime"] = None  # INF
    fields["updated_datetime"] = values.get("updated_datetime") or now


def create_ticket(call: Call) -> Reply:
    """``POST /api/tickets`` → 201 Ticket with its messages. ``via`` defaults to ``api`` (INF)."""
    account = call.account
    values = checked(call.body, TICKET_CREATE, "Failed to create ticket")
    errors = _relation_errors(account, values)
    messages = values["messages"]
    fallback = values.get("customer") is not None or _derived_customer(messages) is not None
    message_errors = {}
    for index, msg in enumerate(messages):
        problems = people_errors(account, msg, fallback)
        if problems:
            message_errors[str(index)] = problems
    if message_errors:
        errors["messages"] = message_errors
    if errors:
        raise invalid("Failed to create ticket", errors)

    now = call.now
    tid = account.next_id("ticket")
    first = messages[0]
    ticket = TicketRecord(fields={
        "id": tid, "uri": f"/api/tickets/{tid}/", "external_id": None, "status": "open", "priority": "normal",
        "channel": first["channel"], "via": "api", "from_agent": first["from_agent"], "spam": False,
        "language": None, "subject": first.get("subject"), "assignee_user": None, "assignee_team": None,
        "meta": None, "is_unread": True, "created_datetime": values.get("created_datetime") or now,
        "processed_datetime": now, "summary": None,
        "imported": all(m.get("sent_datetime") is not None for m in messages),
        "updated_datetime": now, "opened_datetime": None, "last_received_message_datetime": None,
        "last_message_datetime": None, "closed_datetime": None, "snooze_datetime": None, "trashed_datetime": None,
    })
    customer_ref = values.get("customer") or _derived_customer(messages)
    if customer_ref is not None:
        ticket.customer_id = account.get_or_create_customer(customer_ref, now)["id"]
    values.pop("customer", None)
    _apply_common(account, ticket, values, now)
    account.tickets[tid] = ticket
    for msg in messages:
        build_message(account, ticket, msg, now)
    if "updated_datetime" in values:
        ticket.fields["updated_datetime"] = values["updated_datetime"]
    for key in ("last_message_datetime", "last_received_message_datetime"):
        if key in values:
            ticket.fields[key] = values[key]
    return Reply(201, render.ticket(account, ticket))


def _derived_customer(messages: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The ticket's customer when none is given: the first incoming sender or outgoing receiver (INF)."""
    for msg in messages:
        if not msg["from_agent"] and msg.get("sender"):
            return msg["sender"]  # type: ignore[no-any-return]
        if msg["from_agent"] and msg.get("receiver") and msg["channel"] != "internal-note":
            return msg["receiver"]  # type: ignore[no-any-return]
    return None


def _ticket(call: Call) -> TicketRecord:
    return require_found(call.account.tickets.get(call.params[0]))  # type: ignore[no-any-return]


def ticket_update_errors(account: AccountState, values: dict[str, Any],
                         ticket: TicketRecord | None = None) -> dict[str, Any]:
    """Errors in a checked partial update (references; removed system-managed field values of ``ticket``)."""
    errors = _relation_errors(account, values)
    if "custom_fields" in values and ticket is not None:
        kept: dict[int, Any] = {}
        store_values(kept, values["custom_fields"])
        removed = managed_removals(account, ticket.field_values, kept)
        if removed:
            errors["custom_fields"] = removed
    return errors


def apply_ticket_update(account: AccountState, ticket: TicketRecord, values: dict[str, Any], now: str) -> None:
    """Apply a checked partial update (``PUT /api/tickets/{id}`` and ``updateTicket`` jobs)."""
    _apply_common(account, ticket, values, now)


def update_ticket(call: Call) -> Reply:
    """``PUT /api/tickets/{id}`` → 202 Ticket. Partial; ``tags`` and ``custom_fields`` replace (INF)."""
    ticket = _ticket(call)
    values = checked(call.body, TICKET_UPDATE, "Failed to update ticket", require=False)
    errors = ticket_update_errors(call.account, values, ticket)
    if errors:
        raise invalid("Failed to update ticket", errors)
    apply_ticket_update(call.account, ticket, values, call.now)
    return Reply(202, render.ticket(call.account, ticket))


def delete_ticket(call: Call) -> Reply:
    """``DELETE /api/tickets/{id}`` → 204 (INF status); permanent, messages included."""
    ticket = _ticket(call)
    call.account.delete_ticket(ticket.id)
    return Reply(204)


def get_ticket(call: Call) -> Reply:
    """``GET /api/tickets/{id}``."""
    return Reply(200, render.ticket(call.account, _ticket(call)))


_TICKET_FILTERS = ("external_id", "customer_id", "ticket_ids", "trashed")


def _trashed(query: Any) -> bool:
    raw = str(query.get("trashed", "false")).lower()
    if raw not in ("true", "false"):
        raise invalid("Invalid query parameters.", {"trashed": ["Not a valid boolean."]})
    return raw == "true"


def list_tickets(call: Call) -> Reply:
    """``GET /api/tickets``, newest first (``created_datetime:desc``), no messages (INF).

    Filters (SPEC): ``external_id``, ``customer_id``, ``ticket_ids`` (repeated or comma-separated) and
    ``trashed``. ``trashed`` filters by state (INF, the strict reading: sources disagree on its default):
    ``true`` lists only trashed tickets, ``false`` or absent only the others.
    """
    query = call.query
    external_id = query.get("external_id")
    customer_id = query_int(query, "customer_id")
    wanted_ids = multi(query, "ticket_ids")
    if not all(part.isdigit() for part in wanted_ids):
        raise invalid("Invalid query parameters.", {"ticket_ids": ["Not a valid list of integers."]})
    ticket_ids = {int(part) for part in wanted_ids}
    trashed = _trashed(query)
    records = [
        r for r in call.account.tickets.values()
        if (external_id is None or r.fields["external_id"] == external_id)
        and (customer_id is None or r.customer_id == customer_id)
        and (not ticket_ids or r.id in ticket_ids)
        and (r.fields["trashed_datetime"] is not None) == trashed
    ]
    items = [render.ticket(call.account, r, messages=False) for r in records]
    return Reply(200, page(query, call.path, items, filters=_TICKET_FILTERS, default_order="created_datetime:desc"))


# -- ticket tags -------------------------------------------------------------------------------------------

def _tag_body(call: Call, failure: str, *, names_must_exist: bool = True) -> tuple[TicketRecord, list[int], list[str]]:
    """The ticket and the tag ids and names of a ticket-tag call; unknown ids are a 400, and so are names
    no tag has (3P: names must already exist; a tag deleted or merged away no longer does)."""
    ticket = _ticket(call)
    values = checked(call.body, TICKET_TAGS, failure)
    ids, names = values.get("ids", []), values.get("names", [])
    errors: dict[str, Any] = {}
    unknown = {str(i): ["Tag not found."] for i, tid in enumerate(ids) if tid not in call.account.tags}
    if unknown:
        errors["ids"] = unknown
    missing = {str(i): ["Tag not found."] for i, name in enumerate(names) if name not in call.account.tags_by_name}
    if missing and names_must_exist:
        errors["names"] = missing
    if errors:
        raise invalid(failure, errors)
    return ticket, ids, names


def add_ticket_tags(call: Call) -> Reply:
    """``POST /api/tickets/{ticket_id}/tags`` → 200, empty body (LIVE). Names must be existing tags."""
    ticket, ids, names = _tag_body(call, "Failed to add tags")
    wanted = ticket.tag_ids + ids + [call.account.tags_by_name[n] for n in names]
    call.account.set_ticket_tags(ticket, wanted)
    ticket.fields["updated_datetime"] = call.now
    return Reply(200)


def set_ticket_tags(call: Call) -> Reply:
    """``PUT /api/tickets/{ticket_id}/tags`` → 200, empty body (LIVE); replaces all tags (``{}`` clears).
    Names must be existing tags."""
    ticket, ids, names = _tag_body(call, "Failed to set tags")
    call.account.set_ticket_tags(ticket, ids + [call.account.tags_by_name[n] for n in names])
    ticket.fields["updated_datetime"] = call.now
    return Reply(200)


def remove_ticket_tags(call: Call) -> Reply:
    """``DELETE /api/tickets/{ticket_id}/tags`` → 204; tags not on the ticket, and names no tag has (INF: a
    name that does not exist is on no ticket), are ignored."""
    ticket, ids, names = _tag_body(call, "Failed to remove tags", names_must_exist=False)
    removed = set(ids) | {call.account.tags_by_name[n] for n in names if n in call.account.tags_by_name}
    call.account.set_ticket_tags(ticket, [t for t in ticket.tag_ids if t not in removed])
    ticket.fields["updated_datetime"] = call.now
    return Reply(204)


def list_ticket_tags(call: Call) -> Reply:
    """``GET /api/tickets/{ticket_id}/tags``: a bare JSON array of tags (SPEC)."""
    ticket = _ticket(call)
    reject_unknown(call.query, ())
    return Reply(200, [call.account.tags[t] for t in ticket.tag_ids])


ROUTES = [
    Route("POST", "/api/tickets", create_ticket),
    Route("GET", "/api/tickets", list_tickets),
    Route("PUT", "/api/tickets/{id}", update_ticket),
    Route("DELETE", "/api/tickets/{id}", delete_ticket),
    Route("GET", "/api/tickets/{id}", get_ticket),
    Route("POST", "/api/tickets/{ticket_id}/tags", add_ticket_tags),
    Route("PUT", "/api/tickets/{ticket_id}/tags", set_ticket_tags),
    Route("DELETE", "/api/tickets/{ticket_id}/tags", remove_ticket_tags),
    Route("GET", "/api/tickets/{ticket_id}/tags", list_ticket_tags),
]
