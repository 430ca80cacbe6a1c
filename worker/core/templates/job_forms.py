"""The Gorgias ticket job a per-ticket call can become (``delivery.coalesce: jobs``), and which templates have one.

A ticket job (``POST /api/jobs``) changes many tickets in one call (DOC): ``updateTicket`` with
``updates``, ``deleteTicket``. Its ``updates`` take what Gorgias' own helpdesk sends in bulk (1P-UI):
``status``, ``priority``, the assignee user, ``assignee_team_id``, ``tags`` as names **added** to each
ticket; its "move to trash" sets ``trashed_datetime`` (INF: the UI's trash action, same field as the
ticket PUT). A call of ``update_ticket``, ``add_ticket_tags`` or ``delete_ticket`` that asks nothing more
than that has a :class:`JobForm`: its ticket and its :class:`JobChange`. Calls whose changes are equal
(the same ``key``) may share one job over their ``ticket_ids``. Anything else (a subject, a customer, tag
ids, tags that replace) has no job form: such a call goes ticket by ticket.

Pure: the forms are read from the request the template rendered for the call.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit

import orjson

from worker.core.requests.request import RenderedRequest

__all__ = ["JOB_TEMPLATES", "JobChange", "JobForm", "check_coalescing", "job_form", "job_request"]

JOB_TEMPLATES: Final = ("add_ticket_tags", "delete_ticket", "update_ticket")
"""The templates whose calls a ticket job can express (``delivery.coalesce: jobs``)."""

UPDATE_FIELDS: Final = frozenset({"status", "priority", "assignee_user", "assignee_team", "tags", "trashed_datetime"})
"""``update_ticket`` body fields an ``updateTicket`` job carries (in its own form: see :func:`_updates`)."""

_TICKET_PATH: Final = re.compile(r"/api/tickets/(\d+)(/tags)?/?$")


@dataclass(frozen=True, slots=True)
class JobChange:
    """What a job does to each of its tickets: its ``type`` and, for ``updateTicket``, its ``updates``."""

    kind: str  # updateTicket | deleteTicket
    updates: Mapping[str, Any] | None
    key: bytes  # equal for equal changes (canonical JSON of kind and updates, tag names sorted)


@dataclass(frozen=True, slots=True)
class JobForm:
    """A per-ticket call as a job would make it: the ticket and the change."""

    ticket_id: int
    change: JobChange


def _change(kind: str, updates: Mapping[str, Any] | None) -> JobChange:
    return JobChange(kind, updates, orjson.dumps([kind, updates], option=orjson.OPT_SORT_KEYS))


def _tag_names(tags: Any) -> list[str] | None:
    """Tag references ``[{"name": ...}]`` (or names) as sorted names; None when one is known only by id."""
    if not isinstance(tags, list):
        return None
    names: set[str] = set()
    for tag in tags:
        name = tag.get("name") if isinstance(tag, Mapping) else tag
        if not isinstance(name, str) or not name:
            return None
        names.add(name)
    return sorted(names)


def _updates(body: Any) -> dict[str, Any] | None:
    """An ``update_ticket`` body as ``updateTicket`` updates, or None when a field has no job form."""
    if not isinstance(body, Mapping) or not body or not set(body) <= UPDATE_FIELDS:
        return None
    out: dict[str, Any] = {}
    for name, value in body.items():
        if name == "tags":
            names = _tag_names(value)
            if names is None:
                return None
            if names:
                out["tags"] = names
        elif name == "assignee_team":
            team = value.get("id") if isinstance(value, Mapping) else value
            if team is not None and (not isinstance(team, int) or isinstance(team, bool)):
                return None
            out["assignee_team_id"] = team
        else:
            out[name] = value
    return out or None


def _tag_updates(body: Any) -> dict[str, Any] | None:
    """An ``add_ticket_tags`` body (``names``; ``ids`` have no job form) as ``updateTicket`` updates."""
    if not isinstance(body, Mapping) or body.get("ids"):
        return None
    names = _tag_names(body.get("names"))
    return {"tags": names} if names else None


def job_form(template: str, request: RenderedRequest) -> JobForm | None:
    """The job form of a call of ``template`` that rendered ``request``; None when a job cannot make it."""
    match = _TICKET_PATH.search(urlsplit(request.url).path)
    if match is None or template not in JOB_TEMPLATES:
        return None
    ticket_id = int(match.group(1))
    if template == "delete_ticket":
        return JobForm(ticket_id, _change("deleteTicket", None)) if request.method == "DELETE" else None
    try:
        body = orjson.loads(request.body) if request.body is not None else None
    except orjson.JSONDecodeError:
        return None
    tags_route = match.group(2) is not None
    if template == "add_ticket_tags" and tags_route and request.method == "POST":
        updates = _tag_updates(body)
    elif template == "update_ticket" and not tags_route and request.method == "PUT":
        updates = _updates(body)
    else:
        return None
    return None if updates is None else JobForm(ticket_id, _change("updateTicket", updates))


def job_request(like: RenderedRequest, change: JobChange, ticket_ids: Iterable[int]) -> RenderedRequest:
    """``POST /api/jobs`` making ``change`` to ``ticket_ids``, on the origin and with the headers of ``like`` (a
    member call's request)."""
    parts = urlsplit(like.url)
    params: dict[str, Any] = {"ticket_ids": list(dict.fromkeys(ticket_ids))}
    if change.updates is not None:
        params["updates"] = dict(change.updates)
    body = orjson.dumps({"type": change.kind, "params": params})
    headers = {k: v for k, v in like.headers.items() if k.lower() != "content-type"}
    headers["Content-Type"] = "application/json"
    return RenderedRequest("POST", f"{parts.scheme}://{parts.netloc}/api/jobs", headers, body, "application/json")


def check_coalescing(template: str, tags_mode: str | None) -> None:
    """``delivery.coalesce: jobs`` on a templated destination: ``ValueError`` naming the setting when the
    template's calls cannot be jobs (a manual endpoint is refused by the config model itself)."""
    can = ", ".join(JOB_TEMPLATES)
    if template == "ticket_job":
        raise ValueError("delivery.coalesce: ticket_job sends every call as a job already; remove coalesce")
    if template not in JOB_TEMPLATES:
        raise ValueError(f"delivery.coalesce: a Gorgias ticket job cannot make what template {template} does (a job "
                         f"sets status, priority, assignee user or team, trash, adds tags, or deletes); templates "
                         f"that can: {can}. Remove coalesce")
    if template == "update_ticket" and tags_mode == "replace":
        raise ValueError("delivery.coalesce: a job adds tags to its tickets and cannot replace them "
                         "(endpoint.template_options.tags: replace); use tags: add or remove coalesce")
