"""Reading a call's inputs: bodies checked against schemas, query parameters, list pagination."""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from gorgias_sandbox.errors import CUSTOMER_MERGED, ApiError, invalid
from gorgias_sandbox.render import listing
from gorgias_sandbox.state import AccountState
from gorgias_sandbox.validation import MISSING, UNKNOWN, Check, Invalid, Schema, load

DEFAULT_LIMIT = 30
MAX_LIMIT = 100


def checked(body: Any, schema: Schema, failure: str, *, require: bool = True) -> dict[str, Any]:
    """``body`` validated against ``schema``; 400 ``failure`` with field errors otherwise."""
    try:
        return load({} if body is None else body, schema, require=require)
    except Invalid as exc:
        raise invalid(failure, _as_data(exc.errors)) from None


def checked_list(body: Any, item: Check, failure: str) -> list[Any]:
    """A bare JSON array body whose items pass ``item``."""
    if not isinstance(body, list):
        raise invalid(failure, {"_schema": ["Invalid input type: a JSON array is expected."]})
    out, errors = [], {}
    for index, element in enumerate(body):
        try:
            out.append(item(element))
        except Invalid as exc:
            errors[str(index)] = exc.errors
    if errors:
        raise invalid(failure, errors)
    return out


def _as_data(errors: list[str] | dict[str, Any]) -> dict[str, Any]:
    return errors if isinstance(errors, dict) else {"_schema": errors}


def query_int(query: Mapping[str, str], name: str, *, required: bool = False, minimum: int = 1) -> int | None:
    """An integer query parameter; 400 when malformed (or missing and ``required``)."""
    raw = query.get(name)
    if raw is None or raw == "":
        if required:
            raise invalid("Invalid query parameters.", {name: [MISSING]})
        return None
    if not raw.isdigit() or int(raw) < minimum:
        raise invalid("Invalid query parameters.", {name: ["Not a valid integer."]})
    return int(raw)


LIST_PARAMETERS = frozenset({"limit", "cursor", "order_by"})
ORDER_FIELDS = ("id", "created_datetime", "updated_datetime")


def reject_unknown(query: Mapping[str, str], allowed: Iterable[str]) -> None:
    """400 naming every query parameter a list route does not take (Gorgias' errors page: unknown
    parameters are rejected; the sandbox never ignores them)."""
    unknown = sorted(set(query) - set(allowed))
    if unknown:
        raise invalid("Invalid query parameters.", {name: [UNKNOWN] for name in unknown})


def _cursor(order_by: str, offset: int) -> str:
    return base64.urlsafe_b64encode(f"{order_by}|{offset}".encode()).decode().rstrip("=")


def _offset(cursor: str, order_by: str) -> int:
    """The offset a cursor stands for; a cursor is only valid with the ordering it was made for."""
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        made_for, _, number = text.rpartition("|")
        if made_for == order_by and number.isdigit():
            return int(number)
    except (ValueError, UnicodeDecodeError):
        pass
    raise invalid("Invalid query parameters.", {"cursor": ["Not a valid cursor."]})


def _ordered(query: Mapping[str, str], items: Sequence[dict[str, Any]], fields: Sequence[str],
             default: str) -> tuple[str, list[dict[str, Any]]]:
    order_by = query.get("order_by") or default
    field, _, direction = order_by.partition(":")
    if field not in fields or direction not in ("asc", "desc"):
        choices = ", ".join(f"{f}:asc|desc" for f in fields)
        raise invalid("Invalid query parameters.", {"order_by": [f"Must be one of: {choices}."]})

    def key(item: dict[str, Any]) -> tuple[bool, Any, int]:
        value = item.get(field)
        return value is None, "" if value is None else value, item["id"]

    return order_by, sorted(items, key=key, reverse=direction == "desc")


def page(query: Mapping[str, str], uri: str, items: Sequence[dict[str, Any]], *,
         filters: Iterable[str] = (), order_fields: Sequence[str] = ORDER_FIELDS,
         default_order: str = "id:asc") -> dict[str, Any]:
    """One page of ``items`` in the list envelope, paged by an opaque cursor.

    Takes ``limit`` 1-100 (default 30), ``cursor`` (the ``next_cursor``/``prev_cursor`` of a page made
    with the same ``order_by``), ``order_by=<field>:asc|desc`` over ``order_fields``, and the route's
    ``filters``; any other parameter is a 400.
    """
    reject_unknown(query, LIST_PARAMETERS | set(filters))
    limit = query_int(query, "limit") or DEFAULT_LIMIT
    if limit > MAX_LIMIT:
        raise invalid("Invalid query parameters.", {"limit": [f"Must be less than or equal to {MAX_LIMIT}."]})
    order_by, ordered = _ordered(query, items, order_fields, default_order)
    cursor = query.get("cursor")
    start = _offset(cursor, order_by) if cursor else 0
    chunk = ordered[start:start + limit]
    next_cursor = _cursor(order_by, start + limit) if start + limit < len(ordered) else None
    prev_cursor = _cursor(order_by, max(0, start - limit)) if start > 0 else None
    return listing(uri, chunk, next_cursor, prev_cursor)


PER_PAGE = 30


def numbered_page(query: Mapping[str, str], uri: str, items: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One page of ``items`` (in the given order) paged by number, as the deprecated per-ticket message
    list does: ``?page=N`` (from 1), 30 per page, ``meta: {page, per_page, current_page, item_count,
    nb_pages}``, no cursor. Any other query parameter is a 400."""
    reject_unknown(query, ("page",))
    number = query_int(query, "page") or 1
    start = (number - 1) * PER_PAGE
    meta = {"page": number, "per_page": PER_PAGE, "current_page": f"{uri.rstrip('/')}/?page={number}",
            "item_count": len(items), "nb_pages": max(1, -(-len(items) // PER_PAGE))}
    return {"object": "list", "uri": uri, "data": list(items[start:start + PER_PAGE]), "meta": meta}


def require_found(value: Any) -> Any:
    """``value`` unless it is ``None`` (→ 404 ``Resource not found.``)."""
    if value is None:
        raise ApiError(404, "Resource not found.")
    return value


def existing_customer(account: AccountState, cid: int) -> dict[str, Any]:
    """The customer ``cid``: 301 to the target when it was merged away, 404 when unknown."""
    found = account.customers.get(cid)
    if found is not None:
        return found
    target = account.merged_customers.get(cid)
    if target is not None:
        raise ApiError(301, CUSTOMER_MERGED, headers={"Location": f"/api/customers/{target}/"})
    raise ApiError(404, "Resource not found.")


def multi(query: Mapping[str, str], name: str) -> list[str]:
    """Every value of a query parameter given repeatedly and/or comma-separated."""
    getall = getattr(query, "getall", None)
    raw = getall(name, []) if getall is not None else ([query[name]] if name in query else [])
    return [part for value in raw for part in value.split(",") if part]
