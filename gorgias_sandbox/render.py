"""How stored objects look in API responses (and in ``GET /__admin/state``)."""

from __future__ import annotations

from typing import Any

from gorgias_sandbox.state import AccountState, TicketRecord


def person_summary(person: dict[str, Any] | None) -> dict[str, Any] | None:
    """The short form of a customer or user embedded in tickets and messages."""
    if person is None:
        return None
    return {"id": person["id"], "email": person.get("email"), "name": person.get("name"),
            "firstname": person.get("firstname"), "lastname": person.get("lastname"), "meta": person.get("meta")}


def field_values(values: dict[int, Any]) -> dict[str, dict[str, Any]]:
    """Custom field values as embedded in a ticket or customer: ``{"3": {"id": 3, "value": ...}}``."""
    return {str(fid): {"id": fid, "value": value} for fid, value in values.items()}


def tag_summary(tag: dict[str, Any]) -> dict[str, Any]:
    """A tag as embedded in a ticket."""
    return {"id": tag["id"], "name": tag["name"], "uri": tag["uri"], "decoration": tag["decoration"]}


def survey_summary(survey: dict[str, Any] | None) -> dict[str, Any] | None:
    """A satisfaction survey as embedded in a ticket."""
    if survey is None:
        return None
    return {"id": survey["id"], "uri": survey["uri"], "score": survey["score"],
            "body_text": survey["body_text"], "scored_datetime": survey["scored_datetime"]}


_TICKET_CUSTOMER_KEYS = ("id", "email", "name", "firstname", "lastname", "meta", "channels", "data", "customer",
                         "integrations", "external_id", "note")


def ticket_customer(customer: dict[str, Any] | None) -> dict[str, Any] | None:
    """The customer as embedded in a ticket (``customer`` and ``requester``): the recorded shape, with channels."""
    if customer is None:
        return None
    return {key: customer.get(key) for key in _TICKET_CUSTOMER_KEYS}


def ticket(account: AccountState, record: TicketRecord, *, messages: bool = True) -> dict[str, Any]:
    """A full ticket in the shape recorded from real Gorgias; list endpoints leave out ``messages`` (INF)."""
    out = dict(record.fields)
    customer = None if record.customer_id is None else account.customers.get(record.customer_id)
    out["customer"] = out["requester"] = ticket_customer(customer)
    out["assignee_user_id"] = None if out["assignee_user"] is None else out["assignee_user"]["id"]
    out["assignee_team_id"] = None if out["assignee_team"] is None else out["assignee_team"]["id"]
    out["events"] = []
    out["reply_options"] = {out["channel"]: {"answerable": True}, "internal-note": {"answerable": True}}
    out["tags"] = [tag_summary(account.tags[t]) for t in record.tag_ids]
    out["custom_fields"] = field_values(record.field_values)
    survey_id = account.survey_by_ticket.get(record.id)
    out["satisfaction_survey"] = survey_summary(None if survey_id is None else account.surveys[survey_id])
    if messages:
        out["messages"] = [account.messages[m] for m in record.message_ids]
    return out


def customer(account: AccountState, cid: int) -> dict[str, Any]:
    """A full customer."""
    out = dict(account.customers[cid])
    out["custom_fields"] = field_values(account.customer_fields.get(cid, {}))
    return out


def listing(uri: str, data: list[dict[str, Any]], next_cursor: str | None = None,
            prev_cursor: str | None = None) -> dict[str, Any]:
    """The list envelope of read endpoints."""
    return {"object": "list", "uri": uri, "data": data,
            "meta": {"prev_cursor": prev_cursor, "next_cursor": next_cursor}}


def account_state(account: AccountState) -> dict[str, Any]:
    """Everything an account holds, for ``GET /__admin/state``."""
    return {
        "account": account.domain,
        "tickets": [ticket(account, r) for r in account.tickets.values()],
        "messages": list(account.messages.values()),
        "customers": [customer(account, cid) for cid in account.customers],
        "merged_customers": {str(k): v for k, v in account.merged_customers.items()},
        "merged_tickets": {str(k): v for k, v in account.merged_tickets.items()},
        "emailed": account.emailed,
        "applied_macros": account.applied_macros,
        "customer_data_versions": {str(k): v for k, v in account.customer_data_versions.items()},
        "tags": list(account.tags.values()),
        "custom_fields": list(account.field_defs.values()),
        "ticket_field_values": {str(r.id): field_values(r.field_values) for r in account.tickets.values()
                                if r.field_values},
        "customer_field_values": {str(cid): field_values(v) for cid, v in account.customer_fields.items() if v},
        "satisfaction_surveys": list(account.surveys.values()),
        "users": list(account.users.values()),
        "jobs": list(account.jobs.values()),
    }
