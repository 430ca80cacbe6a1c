"""Batch strategies: the checked bodies of a group of records -> the body of one call.

A catalog entry's ``batch.mode`` names its strategy (``conversation``: one ticket with a message per
record, ``union`` of tags, ``concat`` of field values, ``latest`` version, ``overlay`` of customer
fields, one ticket ``update``, one ``job``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from worker.core.requests.render_error import RenderError


class BatchSpec(Protocol):
    """What a strategy reads of a template's batch spec (:class:`worker.core.templates.model.BatchSpec`)."""

    @property
    def fields(self) -> tuple[str, ...]: ...


def _union_list(lists: Sequence[Any]) -> list[Any]:
    seen: set[Any] = set()
    out: list[Any] = []
    for items in lists:
        if not isinstance(items, list):
            continue
        for item in items:
            marker = item if isinstance(item, str | int | float | bool) else repr(item)
            if marker not in seen:
                seen.add(marker)
                out.append(item)
    return out


def _tag_key(tag: Any) -> Any:
    if isinstance(tag, Mapping):
        return ("id", tag["id"]) if "id" in tag else ("name", tag.get("name"))
    return ("raw", repr(tag))


def _tags_together(bodies: Sequence[Any]) -> list[Any]:
    """Every body's tags, each once (by id, else by name), in the order they first appear."""
    seen: set[Any] = set()
    tags: list[Any] = []
    for body in bodies:
        for tag in body.get("tags") or ():
            key = _tag_key(tag)
            if key not in seen:
                seen.add(key)
                tags.append(tag)
    return tags


def _conversation(bodies: Sequence[Any], spec: BatchSpec) -> Any:
    first = bodies[0]
    out = dict(first)
    messages: list[Any] = []
    for body in bodies:
        messages.extend(body.get("messages") or ())
    out["messages"] = messages
    if any("tags" in b for b in bodies):
        out["tags"] = _tags_together(bodies)
    return out


def _union(bodies: Sequence[Any], spec: BatchSpec) -> Any:
    out = dict(bodies[0])
    for name in spec.fields:
        present = [b[name] for b in bodies if name in b]
        if present:
            out[name] = _union_list(present)
    return out


def _concat(bodies: Sequence[Any], spec: BatchSpec) -> Any:
    by_id: dict[Any, Any] = {}
    loose: list[Any] = []
    for body in bodies:
        for item in body:
            if isinstance(item, Mapping) and isinstance(item.get("id"), int | str):
                by_id.pop(item["id"], None)  # the last value wins, placed where it was set last
                by_id[item["id"]] = item
            else:
                loose.append(item)
    return [*by_id.values(), *loose]


def _latest(bodies: Sequence[Any], spec: BatchSpec) -> Any:
    best = bodies[0]
    for body in bodies[1:]:
        new, old = body.get("version"), best.get("version")
        if new is None or old is None or str(new) >= str(old):
            best = body
    return best


def _identity(body: Mapping[str, Any]) -> tuple[str, Any]:
    return ("email", str(body["email"]).lower()) if body.get("email") else ("external_id", body.get("external_id"))


def _overlay(bodies: Sequence[Any], spec: BatchSpec) -> Any:
    """One customer's records: fields of later records override earlier ones; channels are unioned."""
    who = {_identity(b) for b in bodies}
    if len(who) > 1:
        raise RenderError("a group mixes customers (" + ", ".join(f"{k} {v}" for k, v in sorted(who, key=str))
                          + "): group by the lookup attribute, e.g. batching.attributes: [email]")
    out: dict[str, Any] = {}
    channels: list[Any] = []
    for body in bodies:
        for c in body.get("channels") or ():
            if not any(isinstance(o, Mapping) and isinstance(c, Mapping) and (o.get("type"), o.get("address"))
                       == (c.get("type"), c.get("address")) for o in channels):
                channels.append(c)
        out.update(body)
    if channels:
        preferred = False
        for c in channels:  # one preferred channel: the first that says so
            if isinstance(c, dict):
                c["preferred"] = bool(c.get("preferred")) and not preferred
                preferred = preferred or c["preferred"]
        out["channels"] = channels
    return out


def _update(bodies: Sequence[Any], spec: BatchSpec) -> Any:
    """One ticket's updates as one: later records' fields win (as if each were sent in turn); ``tags`` are
    added together (``template_options.tags: replace`` keeps the last record's, see ``ConfiguredTemplate.merge``)."""
    out: dict[str, Any] = {}
    for body in bodies:
        out.update(body)
    if any("tags" in b for b in bodies):
        out["tags"] = _tags_together(bodies)
    return out


def _job(bodies: Sequence[Any], spec: BatchSpec) -> Any:
    """Records asking the same change: one job over the union of their tickets."""
    first = bodies[0]
    same = {k: v for k, v in first.items() if k != "params"}
    params = {k: v for k, v in first["params"].items() if k != "ticket_ids"}
    ids: list[Any] = []
    for body in bodies:
        other = {k: v for k, v in body["params"].items() if k != "ticket_ids"}
        if {k: v for k, v in body.items() if k != "params"} != same or other != params:
            raise RenderError("the records of a group ask different changes (type, updates, macro_id...): "
                              "group by the attributes that decide the change, e.g. batching.attributes: [status]")
        ids.append(body["params"]["ticket_ids"])
    return {**same, "params": {**params, "ticket_ids": _union_list(ids)}}


STRATEGIES: dict[str, Callable[[Sequence[Any], BatchSpec], Any]] = {
    "overlay": _overlay,
    "update": _update,
    "job": _job,
    "conversation": _conversation,
    "union": _union,
    "concat": _concat,
    "latest": _latest,
}
