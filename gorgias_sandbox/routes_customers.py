"""Customers: create, update, delete (one or many), merge, ``/data``, read and list."""

from __future__ import annotations

from typing import Any

from gorgias_sandbox import render
from gorgias_sandbox.errors import ApiError, invalid
from gorgias_sandbox.inputs import checked, existing_customer, page, query_int
from gorgias_sandbox.routes_custom_fields import store_values, values_errors
from gorgias_sandbox.routing import Call, Reply, Route
from gorgias_sandbox.schemas import CUSTOMER, CUSTOMER_CREATE, CUSTOMER_DATA, IDS
from gorgias_sandbox.state import AccountState, split_name
from gorgias_sandbox.timestamps import parse_timestamp

DUPLICATE_EMAIL = "A customer with this email address already exists."

_PLAIN_FIELDS = ("name", "firstname", "lastname", "external_id", "language", "timezone", "note", "meta", "data")


def _field_errors(account: AccountState, values: dict[str, Any], failure: str) -> None:
    errors = values_errors(account, "Customer", values.get("custom_fields", []))
    if errors:
        raise invalid(failure, {"custom_fields": errors})


def _email_taken(account: AccountState, email: str | None, by: int | None = None) -> bool:
    if not email:
        return False
    owner = account.customers_by_email.get(email.lower())
    return owner is not None and owner != by


def _duplicate_email(failure: str) -> ApiError:
    """A used email answers 400, not 409 (3P: the strict reading; clients treat both as "exists")."""
    return invalid(failure, {"email": [DUPLICATE_EMAIL]})


def create_customer(call: Call) -> Reply:
    """``POST /api/customers`` → 201 Customer; ``channels`` required, ``firstname``/``lastname`` rejected,
    400 when the primary email is already used."""
    values = checked(call.body, CUSTOMER_CREATE, "Failed to create customer")
    _field_errors(call.account, values, "Failed to create customer")
    if _email_taken(call.account, values.get("email")):
        raise _duplicate_email("Failed to create customer")
    customer = call.account.add_customer(values, call.now)
    store_values(call.account.customer_fields[customer["id"]], values.get("custom_fields", []))
    return Reply(201, render.customer(call.account, customer["id"]))


def _apply(account: AccountState, customer: dict[str, Any], values: dict[str, Any], now: str) -> None:
    for key in _PLAIN_FIELDS:
        if key in values:
            customer[key] = values[key]
    if "timezone" in values and values["timezone"] is None:
        customer["timezone"] = "UTC"
    if "name" in values and not {"firstname", "lastname"} & values.keys():
        customer["firstname"], customer["lastname"] = split_name(values["name"])
    if "email" in values:
        old = customer.get("email")
        if old and account.customers_by_email.get(old.lower()) == customer["id"]:
            del account.customers_by_email[old.lower()]
        customer["email"] = values["email"]
        if values["email"]:
            account.customers_by_email[values["email"].lower()] = customer["id"]
    if "channels" in values or "email" in values:
        channels = values.get("channels", customer["channels"])
        account.set_customer_channels(customer, channels)
    if "custom_fields" in values:
        store_values(account.customer_fields[customer["id"]], values["custom_fields"])
    customer["updated_datetime"] = now


def update_customer(call: Call) -> Reply:
    """``PUT /api/customers/{id}`` → 202 Customer (partial; ``null`` clears)."""
    customer = existing_customer(call.account, call.params[0])
    values = checked(call.body, CUSTOMER, "Failed to update customer", require=False)
    _field_errors(call.account, values, "Failed to update customer")
    if _email_taken(call.account, values.get("email"), by=customer["id"]):
        raise _duplicate_email("Failed to update customer")
    _apply(call.account, customer, values, call.now)
    return Reply(202, render.customer(call.account, customer["id"]))


def delete_customer(call: Call) -> Reply:
    """``DELETE /api/customers/{id}`` → 204 (301 when merged away)."""
    customer = existing_customer(call.account, call.params[0])
    call.account.delete_customer(customer["id"])
    return Reply(204)


def delete_customers(call: Call) -> Reply:
    """``DELETE /api/customers`` with ``{"ids": [...]}`` → 204; unknown ids are ignored (INF)."""
    values = checked(call.body, IDS, "Failed to delete customers")
    for cid in dict.fromkeys(values["ids"]):
        if cid in call.account.customers:
            call.account.delete_customer(cid)
    return Reply(204)


MERGE_BODY = "The fields to set on the target are required (an empty body is refused)."


def merge_customers(call: Call) -> Reply:
    """``PUT /api/customers/merge?source_id=&target_id=`` → **200** target Customer (LIVE; the spec says 202).

    The body must hold fields for the target: an empty one is refused (3P). It is validated but **not
    applied**: the recorded real merge answered the target without the body's ``name`` (LIVE), and which
    body fields Gorgias does apply is undocumented, so none is (a client that needs them set updates the
    target afterwards). The source's tickets, channels and field values move to the target (INF), then
    the source is deleted; its id answers 301 afterwards.
    """
    source_id = query_int(call.query, "source_id", required=True)
    target_id = query_int(call.query, "target_id", required=True)
    assert source_id is not None and target_id is not None
    failure = "Failed to merge customers"
    if source_id == target_id:
        raise invalid(failure, {"source_id": ["Source and target must differ."]})
    account = call.account
    source = existing_customer(account, source_id)
    target = existing_customer(account, target_id)
    if not call.body:
        raise invalid(failure, {"_schema": [MERGE_BODY]})
    values = checked(call.body, CUSTOMER, failure, require=False)
    _field_errors(account, values, failure)
    for ticket in account.tickets.values():
        if ticket.customer_id == source_id:
            ticket.customer_id = target_id
    moved_channels = [c for c in source["channels"]
                      if not any(c["type"] == t["type"] and c["address"] == t["address"] for t in target["channels"])]
    for fid, value in account.customer_fields.get(source_id, {}).items():
        account.customer_fields[target_id].setdefault(fid, value)
    account.delete_customer(source_id)
    account.merged_customers[source_id] = target_id
    for old, new in list(account.merged_customers.items()):
        if new == source_id:
            account.merged_customers[old] = target_id
    target["channels"] = target["channels"] + [{**c, "preferred": False} for c in moved_channels]
    target["updated_datetime"] = call.now
    return Reply(200, render.customer(account, target_id))


def set_customer_data(call: Call) -> Reply:
    """``PUT /api/customers/{id}/data`` → 202, empty body. A ``version`` older than the stored one is
    silently ignored (still 202); an equal or newer one, or none, overwrites ``data``."""
    customer = existing_customer(call.account, call.params[0])
    values = checked(call.body, CUSTOMER_DATA, "Failed to update customer data")
    version = values.get("version")
    stored = call.account.customer_data_versions.get(customer["id"])
    if version is not None and stored is not None and parse_timestamp(version) < parse_timestamp(stored):
        return Reply(202)
    customer["data"] = values["data"]
    customer["updated_datetime"] = call.now
    if version is not None:
        call.account.customer_data_versions[customer["id"]] = version
    return Reply(202)


def get_customer(call: Call) -> Reply:
    """``GET /api/customers/{id}``."""
    customer = existing_customer(call.account, call.params[0])
    return Reply(200, render.customer(call.account, customer["id"]))


def list_customers(call: Call) -> Reply:
    """``GET /api/customers`` with optional ``email=`` (case-insensitive), ``external_id=``, and
    ``channel_type=`` / ``channel_address=`` filters."""
    email = call.query.get("email")
    external_id = call.query.get("external_id")
    channel_type = call.query.get("channel_type")
    channel_address = (call.query.get("channel_address") or "").lower() or None
    account = call.account
    if email is not None:
        cid = account.customers_by_email.get(email.lower())
        ids = [] if cid is None else [cid]
    else:
        ids = list(account.customers)
    items = [render.customer(account, cid) for cid in ids
             if (external_id is None or account.customers[cid]["external_id"] == external_id)
             and _has_channel(account.customers[cid], channel_type, channel_address)]
    return Reply(200, page(call.query, call.path, items, filters=_CUSTOMER_FILTERS))


_CUSTOMER_FILTERS = ("email", "external_id", "channel_type", "channel_address")


def _has_channel(customer: dict[str, Any], kind: str | None, address: str | None) -> bool:
    if kind is None and address is None:
        return True
    return any((kind is None or c["type"] == kind) and (address is None or c["address"].lower() == address)
               for c in customer["channels"])


ROUTES = [
    Route("POST", "/api/customers", create_customer),
    Route("GET", "/api/customers", list_customers),
    Route("DELETE", "/api/customers", delete_customers),
    Route("PUT", "/api/customers/merge", merge_customers),
    Route("PUT", "/api/customers/{id}", update_customer),
    Route("DELETE", "/api/customers/{id}", delete_customer),
    Route("GET", "/api/customers/{id}", get_customer),
    Route("PUT", "/api/customers/{customer_id}/data", set_customer_data),
]
