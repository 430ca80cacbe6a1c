"""What the plans of :mod:`worker.core.templates.plans` share: building their requests and reading answers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import urlsplit

import orjson

from worker.core.requests.request import PlanError, RenderedRequest

__all__ = ["EXISTS", "LOOKUP_LIMIT", "REFUSED_NAME", "json_request", "list_items", "origin", "short"]

EXISTS: Final = frozenset({400, 409})  # a duplicate answer: the tag (or customer) is there already
REFUSED_NAME: Final = frozenset({400})  # a ticket-tag write naming a tag that no longer exists
LOOKUP_LIMIT: Final = 30


def origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def json_request(base: RenderedRequest, method: str, url: str, body: Any) -> RenderedRequest:
    headers = {k: v for k, v in base.headers.items() if k.lower() != "content-type"}
    if body is None:
        return RenderedRequest(method, url, headers, None, None)
    headers["Content-Type"] = "application/json"
    return RenderedRequest(method, url, headers, orjson.dumps(body), "application/json")


def list_items(body: Any) -> tuple[list[Any], str | None]:
    """The items of a list answer (``{"data": [...], "meta": {...}}`` or a bare array) and its next cursor."""
    if isinstance(body, list):
        return body, None
    if isinstance(body, Mapping) and isinstance(body.get("data"), list):
        meta = body.get("meta")
        cursor = meta.get("next_cursor") if isinstance(meta, Mapping) else None
        return body["data"], cursor if isinstance(cursor, str) and cursor else None
    raise PlanError(f"unexpected list answer: {short(body)}")


def short(value: Any) -> str:
    text = orjson.dumps(value).decode() if not isinstance(value, str) else value
    return text if len(text) <= 200 else text[:200] + "..."
