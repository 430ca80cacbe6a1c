"""Reading a call's inputs: bodies checked against schemas, query parameters, list pagination."""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from typing import Any

from gorgias_sandbox.errors import CUSTOMER_MERGED, ApiError, invalid
from gorgias_sandbox.render import listing
from gorgias_sandbox.state import AccountState
from gorgias_sandbox.validation import MISSING, Check, Invalid, Schema, load

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


def _cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode().rstrip("=")


def _offset(cursor: str) -> int:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        kind, _, number = text.partition(":")
        if kind == "offset" and number.isdigit():
            return int(number)
    except (ValueError, UnicodeDecodeError):
        pass
    raise invalid("Invalid query parameters.", {"cursor": ["Not a valid cursor."]})


def page(query: Mapping[str, str], uri: str, items: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One page of ``items`` (id order; ``order_by=...:desc`` reverses) in the list envelope.

    ``limit`` 1-100 (default 30); ``cursor`` is the opaque ``next_cursor``/``prev_cursor`` of a page.
    """
    limit = query_int(query, "limit") or DEFAULT_LIMIT
    if limit > MAX_LIMIT:
        raise invalid("Invalid query parameters.", {"limit": [f"Must be less than or equal to {MAX_LIMIT}."]})
    ordered = list(items)
    order_by = query.get("order_by", "")
    if order_by.endswith(":desc"):
        ordered.reverse()
    elif order_by and not order_by.endswith(":asc"):
        raise invalid("Invalid query parameters.", {"order_by": ["Must end with :asc or :desc."]})
    cursor = query.get("cursor")
    start = _offset(cursor) if cursor else 0
    chunk = ordered[start:start + limit]
    next_cursor = _cursor(start + limit) if start + limit < len(ordered) else None
    prev_cursor = _cursor(max(0, start - limit)) if start > 0 else None
    return listing(uri, chunk, next_cursor, prev_cursor)


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
