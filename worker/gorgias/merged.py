"""Merged objects: where a call aimed at a merged ticket or customer goes instead.

Gorgias answers a request for a merged customer (``/api/customers/{id}/*``, changelog 2024-05-06) or a
merged ticket with ``301`` and a ``Location`` naming the object it was merged into, often with an empty
body. The delivery service follows that answer once, with the same method and body. ``Location`` may
name the object itself (``/api/customers/9/``) while the request was for one of its sub-resources
(``/api/customers/5/data``): the sub-path and the query of the original request are then carried over,
so that the follow-up changes the same thing on the surviving object. Pure functions, no I/O.
"""

from __future__ import annotations

from urllib.parse import urljoin, urlsplit, urlunsplit

from worker.core.outcomes.call_outcome import MergedRedirect

FOLLOWED_STATUSES = frozenset({301, 307, 308})
"""Redirects that keep the method and body; 302/303 would change them and are not followed."""


def _object(path: str) -> tuple[str, str, str] | None:
    """``/api/customers/5/data`` -> (``/api/customers/5``, ``5``, ``/data``); None without an object id."""
    parts = path.split("/")
    if len(parts) < 4 or parts[:2] != ["", "api"] or not parts[2] or not parts[3]:
        return None
    return "/".join(parts[:4]), parts[3], path[len("/".join(parts[:4])):]


def _id(text: str) -> int | str:
    return int(text) if text.isdigit() else text


def merged_target(url: str, location: str | None) -> MergedRedirect | None:
    """Where to send a request for ``url`` that was answered with ``Location: location``; None when the
    location is missing, elsewhere (another origin), or names the same URL again."""
    if not location or not location.strip():
        return None
    asked = urlsplit(url)
    target = urlsplit(urljoin(url, location.strip()))
    if (target.scheme, target.netloc) != (asked.scheme, asked.netloc):
        return None
    path, query = target.path, target.query
    old, new = _object(asked.path), _object(target.path)
    if old is not None and new is not None and new[2].strip("/") == "" and old[2].strip("/"):
        path = new[0] + old[2]  # Location names the object: keep the sub-resource asked for
    if not query:
        query = asked.query
    to_url = urlunsplit((target.scheme, target.netloc, path, query, ""))
    if to_url == url:
        return None
    return MergedRedirect(
        from_url=url,
        to_url=to_url,
        original_id=_id(old[1]) if old is not None else None,
        merged_into_id=_id(new[1]) if new is not None else None,
    )
