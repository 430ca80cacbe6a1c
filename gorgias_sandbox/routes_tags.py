"""Tags: create, update, delete (one or many), merge, list."""

from __future__ import annotations

from gorgias_sandbox.errors import conflict, invalid
from gorgias_sandbox.inputs import checked, page, require_found
from gorgias_sandbox.routing import Call, Reply, Route
from gorgias_sandbox.schemas import IDS, TAG_CREATE, TAG_MERGE, TAG_UPDATE


def create_tag(call: Call) -> Reply:
    """``POST /api/tags`` → 201 Tag; 409 when the (case-sensitive) name exists (INF)."""
    values = checked(call.body, TAG_CREATE, "Failed to create tag")
    if values["name"] in call.account.tags_by_name:
        raise conflict()
    return Reply(201, call.account.add_tag(values, call.now))


def update_tag(call: Call) -> Reply:
    """``PUT /api/tags/{id}`` → 202 Tag (partial, INF)."""
    account = call.account
    tag = require_found(account.tags.get(call.params[0]))
    values = checked(call.body, TAG_UPDATE, "Failed to update tag", require=False)
    name = values.get("name")
    if name is not None and name != tag["name"]:
        if name in account.tags_by_name:
            raise conflict()
        del account.tags_by_name[tag["name"]]
        account.tags_by_name[name] = tag["id"]
    tag.update(values)
    return Reply(202, tag)


def delete_tag(call: Call) -> Reply:
    """``DELETE /api/tags/{id}`` → 204 (INF status); the tag leaves every ticket."""
    require_found(call.account.tags.get(call.params[0]))
    call.account.delete_tag(call.params[0])
    return Reply(204)


def delete_tags(call: Call) -> Reply:
    """``DELETE /api/tags`` with ``{"ids": [...]}`` → 204; unknown ids are ignored (INF)."""
    values = checked(call.body, IDS, "Failed to delete tags")
    for tid in dict.fromkeys(values["ids"]):
        if tid in call.account.tags:
            call.account.delete_tag(tid)
    return Reply(204)


def merge_tags(call: Call) -> Reply:
    """``PUT /api/tags/{id}/merge`` with ``{"source_tags_ids": [...]}`` → 202 destination Tag.

    Tickets carrying a source tag get the destination tag; the source tags are deleted.
    """
    account = call.account
    destination = require_found(account.tags.get(call.params[0]))
    values = checked(call.body, TAG_MERGE, "Failed to merge tags")
    sources = list(dict.fromkeys(values["source_tags_ids"]))
    errors = {str(i): ["Tag not found."] for i, tid in enumerate(sources) if tid not in account.tags}
    errors.update({str(i): ["Cannot merge a tag into itself."] for i, tid in enumerate(sources)
                   if tid == destination["id"]})
    if errors:
        raise invalid("Failed to merge tags", {"source_tags_ids": errors})
    for ticket in account.tickets.values():
        if any(t in sources for t in ticket.tag_ids):
            account.set_ticket_tags(ticket, [destination["id"] if t in sources else t for t in ticket.tag_ids])
    for tid in sources:
        account.delete_tag(tid)
    return Reply(202, destination)


def list_tags(call: Call) -> Reply:
    """``GET /api/tags``: ``search`` (case-insensitive substring of the name), ``order_by``, ``cursor``,
    ``limit`` (SPEC). There is no ``name`` filter: like any unknown parameter it is a 400."""
    search = call.query.get("search", "").casefold()
    items = [t for t in call.account.tags.values() if search in t["name"].casefold()]
    return Reply(200, page(call.query, call.path, items, filters=("search",),
                           order_fields=("id", "name", "usage", "created_datetime")))


def get_tag(call: Call) -> Reply:
    """``GET /api/tags/{id}``."""
    return Reply(200, require_found(call.account.tags.get(call.params[0])))


ROUTES = [
    Route("POST", "/api/tags", create_tag),
    Route("GET", "/api/tags", list_tags),
    Route("DELETE", "/api/tags", delete_tags),
    Route("PUT", "/api/tags/{id}", update_tag),
    Route("DELETE", "/api/tags/{id}", delete_tag),
    Route("GET", "/api/tags/{id}", get_tag),
    Route("PUT", "/api/tags/{id}/merge", merge_tags),
]
