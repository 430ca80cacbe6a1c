"""Custom field definitions (``/api/custom-fields``) and their values on tickets and customers."""

from __future__ import annotations

from typing import Any

from gorgias_sandbox import render
from gorgias_sandbox.errors import invalid
from gorgias_sandbox.inputs import checked, checked_list, existing_customer, page, reject_unknown, require_found
from gorgias_sandbox.routing import Call, Reply, Route
from gorgias_sandbox.schemas import CUSTOM_FIELD_BULK_ITEM, CUSTOM_FIELD_CREATE, CUSTOM_FIELD_UPDATE, FIELD_VALUE
from gorgias_sandbox.state import AccountState
from gorgias_sandbox.validation import nested

_TYPE_ERRORS = {"text": "Not a valid string.", "number": "Not a valid number.", "boolean": "Not a valid boolean."}


def value_error(account: AccountState, object_type: str, item: dict[str, Any]) -> dict[str, list[str]] | None:
    """Why ``{"id", "value"}`` cannot be stored on an ``object_type`` (``Ticket``/``Customer``), or None.

    The definition must exist for that object type (INF: 400 otherwise) and the value must match its
    ``data_type``; ``null`` is always accepted and clears the value.
    """
    definition = account.field_defs.get(item["id"])
    if definition is None or definition["object_type"] != object_type:
        return {"id": [f"No {object_type.lower()} custom field with this id."]}
    value = item["value"]
    if value is None:
        return None
    data_type = definition["definition"]["data_type"]
    ok = (
        isinstance(value, str) if data_type == "text"
        else type(value) in (int, float) if data_type == "number"
        else isinstance(value, bool)
    )
    if not ok:
        return {"value": [_TYPE_ERRORS[data_type]]}
    choices = dropdown_choices(definition)
    if choices is not None and value not in choices:
        return {"value": [f"Must be one of: {', '.join(str(c) for c in choices)}."]}
    return None


def dropdown_choices(definition: dict[str, Any]) -> list[Any] | None:
    """A dropdown field's choices (``definition.input_settings``), or None for a free field."""
    settings = definition["definition"].get("input_settings")
    if isinstance(settings, dict) and settings.get("input_type") == "dropdown":
        choices = settings.get("choices")
        return list(choices) if isinstance(choices, list) else []
    return None


def values_errors(account: AccountState, object_type: str, items: list[dict[str, Any]]) -> dict[str, Any]:
    """Errors for a list of values, keyed by index (empty when all are fine)."""
    errors: dict[str, Any] = {}
    for index, item in enumerate(items):
        problem = value_error(account, object_type, item)
        if problem:
            errors[str(index)] = problem
    return errors


def store_values(target: dict[int, Any], items: list[dict[str, Any]]) -> None:
    """Set (or, for ``null``, clear) each value."""
    for item in items:
        if item["value"] is None:
            target.pop(item["id"], None)
        else:
            target[item["id"]] = item["value"]


MANAGED = "System-managed field values cannot be removed through the API."
MANAGED_SET = "System-managed field values cannot be set through the API."


def managed_removals(account: AccountState, current: dict[int, Any], kept: dict[int, Any]) -> dict[str, Any]:
    """Errors for system-managed values (``managed_type`` set, e.g. AI intent) that ``kept`` would change:
    API clients can neither remove them (3P: 400) nor set them (DOC, 3P); sending one back unchanged, as a
    read-merge-write does, is fine."""
    errors: dict[str, Any] = {}
    for fid in set(current) | set(kept):
        if not account.field_defs[fid].get("managed_type") or current.get(fid) == kept.get(fid):
            continue
        errors[str(fid)] = [MANAGED if fid not in kept else MANAGED_SET]
    return errors


def value_item(account: AccountState, fid: int, value: Any) -> dict[str, Any]:
    """One field value as the value routes answer it (recorded from real Gorgias)."""
    return {"field": account.field_defs[fid], "prediction": None, "value": value}


def _target(call: Call, object_type: str) -> dict[int, Any]:
    account = call.account
    if object_type == "Ticket":
        return require_found(account.tickets.get(call.params[0])).field_values  # type: ignore[no-any-return]
    existing_customer(account, call.params[0])
    return account.customer_fields[call.params[0]]


def _put_values(call: Call, object_type: str) -> Reply:
    """Bulk PUT: the body is every value the object keeps; values it leaves out are deleted (DOC)."""
    target = _target(call, object_type)
    failure = "Failed to update custom field values"
    items = checked_list(call.body, nested(FIELD_VALUE), failure)
    errors = values_errors(call.account, object_type, items)
    if errors:
        raise invalid(failure, errors)
    kept: dict[int, Any] = {}
    store_values(kept, items)
    removed = managed_removals(call.account, target, kept)
    if removed:
        raise invalid(failure, removed)
    target.clear()
    target.update(kept)
    _touch(call, object_type)
    return Reply(200, {"data": [value_item(call.account, fid, value) for fid, value in target.items()]})


RAW_VALUE = "Expected the value itself: a string, an integer or a boolean (clear a value with DELETE)."


def _single_value(call: Call) -> dict[str, Any]:
    """The body of a single-value PUT: the raw JSON value, a string, an integer or a boolean (SPEC; Gorgias'
    own helpdesk sends it so, 1P-UI). An object such as ``{"id", "value"}``, a list, a number with decimals
    or ``null`` is a 400: a value is cleared with ``DELETE`` on the same route."""
    body = call.body
    if not isinstance(body, str | int):
        raise invalid("Failed to update custom field value", {"_schema": [RAW_VALUE]})
    return {"id": call.params[1], "value": body}


def _put_value(call: Call, object_type: str) -> Reply:
    """Single-value PUT: changes this one field, never the others."""
    target = _target(call, object_type)
    item = _single_value(call)
    problem = value_error(call.account, object_type, item)
    if problem:
        raise invalid("Failed to update custom field value", problem)
    kept = dict(target)
    store_values(kept, [item])
    removed = managed_removals(call.account, target, kept)
    if removed:
        raise invalid("Failed to update custom field value", removed)
    store_values(target, [item])
    _touch(call, object_type)
    return Reply(200, value_item(call.account, item["id"], target.get(item["id"])))


def _delete_value(call: Call, object_type: str) -> Reply:
    target = _target(call, object_type)
    definition = require_found(call.account.field_defs.get(call.params[1]))
    if definition["object_type"] != object_type:
        require_found(None)
    kept = {fid: v for fid, v in target.items() if fid != call.params[1]}
    removed = managed_removals(call.account, target, kept)
    if removed:
        raise invalid("Failed to delete custom field value", removed)
    if target.pop(call.params[1], None) is not None:
        _touch(call, object_type)
    return Reply(204)


def _touch(call: Call, object_type: str) -> None:
    if object_type == "Ticket":
        call.account.tickets[call.params[0]].fields["updated_datetime"] = call.now
    else:
        call.account.customers[call.params[0]]["updated_datetime"] = call.now


def _get_values(call: Call, object_type: str) -> Reply:
    target = _target(call, object_type)
    reject_unknown(call.query, ())
    data = [value_item(call.account, fid, value) for fid, value in target.items()]
    return Reply(200, render.listing(call.path, data))


# -- definitions -------------------------------------------------------------------------------------------

def create_definition(call: Call) -> Reply:
    """``POST /api/custom-fields`` → 201 CustomField."""
    values = checked(call.body, CUSTOM_FIELD_CREATE, "Failed to create custom field")
    return Reply(201, call.account.add_field_definition(values, call.now))


def _apply_definition(call: Call, definition: dict[str, Any], values: dict[str, Any]) -> None:
    for key, value in values.items():
        if key != "id":
            definition[key] = value
    definition["updated_datetime"] = call.now


def update_definition(call: Call) -> Reply:
    """``PUT /api/custom-fields/{id}`` → 202 CustomField (partial, INF)."""
    definition = require_found(call.account.field_defs.get(call.params[0]))
    values = checked(call.body, CUSTOM_FIELD_UPDATE, "Failed to update custom field", require=False)
    _apply_definition(call, definition, values)
    return Reply(202, definition)


def update_definitions(call: Call) -> Reply:
    """``PUT /api/custom-fields`` (bare array, each with ``id``) → 202 array."""
    items = checked_list(call.body, nested(CUSTOM_FIELD_BULK_ITEM), "Failed to update custom fields")
    missing = {str(i): {"id": ["Resource not found."]} for i, item in enumerate(items)
               if item["id"] not in call.account.field_defs}
    if missing:
        raise invalid("Failed to update custom fields", missing)
    out = []
    for item in items:
        definition = call.account.field_defs[item["id"]]
        _apply_definition(call, definition, item)
        out.append(definition)
    return Reply(202, out)


def list_definitions(call: Call) -> Reply:
    """``GET /api/custom-fields`` (filter ``object_type``)."""
    object_type = call.query.get("object_type")
    if object_type is not None and object_type not in ("Ticket", "Customer"):
        raise invalid("Invalid query parameters.", {"object_type": ["Must be one of: Ticket, Customer."]})
    items = [d for d in call.account.field_defs.values() if object_type in (None, d["object_type"])]
    return Reply(200, page(call.query, call.path, items, filters=("object_type",)))


def get_definition(call: Call) -> Reply:
    """``GET /api/custom-fields/{id}``."""
    return Reply(200, require_found(call.account.field_defs.get(call.params[0])))


def _bind(object_type: str, action: Any) -> Any:
    def handler(call: Call) -> Reply:
        return action(call, object_type)  # type: ignore[no-any-return]

    handler.__doc__ = f"{action.__name__} for {object_type}"
    return handler


ROUTES = [
    Route("POST", "/api/custom-fields", create_definition),
    Route("PUT", "/api/custom-fields", update_definitions),
    Route("GET", "/api/custom-fields", list_definitions),
    Route("PUT", "/api/custom-fields/{id}", update_definition),
    Route("GET", "/api/custom-fields/{id}", get_definition),
    Route("PUT", "/api/tickets/{ticket_id}/custom-fields", _bind("Ticket", _put_values)),
    Route("GET", "/api/tickets/{ticket_id}/custom-fields", _bind("Ticket", _get_values)),
    Route("PUT", "/api/tickets/{ticket_id}/custom-fields/{id}", _bind("Ticket", _put_value)),
    Route("DELETE", "/api/tickets/{ticket_id}/custom-fields/{id}", _bind("Ticket", _delete_value)),
    Route("PUT", "/api/customers/{customer_id}/custom-fields", _bind("Customer", _put_values)),
    Route("GET", "/api/customers/{customer_id}/custom-fields", _bind("Customer", _get_values)),
    Route("PUT", "/api/customers/{customer_id}/custom-fields/{id}", _bind("Customer", _put_value)),
    Route("DELETE", "/api/customers/{customer_id}/custom-fields/{id}", _bind("Customer", _delete_value)),
]
