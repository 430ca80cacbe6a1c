"""The plans of templates that need more than one request per call (see :mod:`worker.core.requests.request`).

* ``merge_field_values`` (``set_ticket_custom_fields``, ``set_customer_custom_fields``): Gorgias' bulk
  PUT deletes every value it is not given, so the plan reads the current values (GET, following
  cursors), lays the records' values over them and PUTs the full list: 2 requests per ticket or
  customer however many fields the group sets.
* ``ensure_tags`` (``add_ticket_tags``, ``set_ticket_tags``, ``create_ticket``, ``update_ticket``): each
  tag name is created first
  (``POST /api/tags``; 400 or 409 means it exists) unless this process already knows it exists on the
  account, then the tag write: 1 extra request per new name per account, none after.
  A tag write refused with a 400 (a name that no longer exists) creates its names again and is retried once.
  ``update_ticket`` adds its tags (``update_adding_tags``: the tag write, then the PUT without ``tags``).
* ``clear_on_null`` (``set_ticket_field``, ``set_customer_field``): a ``null`` value is a ``DELETE``.
* ``upsert_customer``, ``merge_customers``: :mod:`worker.core.templates.customer_plans`.
* ``update_message`` (``update_ticket_message``): :mod:`worker.core.templates.message_plans`.

What they share (building requests, reading list answers) is :mod:`worker.core.templates.plan_steps`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import orjson

from worker.core.requests.request import Plan, PlanError, RenderedRequest, Step, StepResult
from worker.core.templates.customer_plans import MergeCustomers, UpsertCustomer, merge_customers
from worker.core.templates.message_plans import UpdateMessage, update_message
from worker.core.templates.plan_steps import EXISTS, REFUSED_NAME, json_request, list_items, origin, short

__all__ = ["PLANS", "ClearValue", "EnsureTags", "MergeCustomers", "MergeFieldValues", "UpdateMessage", "UpsertCustomer",
           "plan_for", "update_adding_tags"]

# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MergeFieldValues(Plan):
    """GET the current custom-field values (all pages), merge the records' values, PUT the full list."""

    write: RenderedRequest
    values: tuple[Mapping[str, Any], ...]
    owner: str  # "ticket" or "customer"

    def next_step(self, done: Sequence[StepResult]) -> Step | None:
        if not done:
            return self._read(self.write.url)
        last = done[-1]
        if last.step.final:
            return None
        _, cursor = list_items(last.body)
        if cursor is not None:
            return self._read(f"{self.write.url}?{urlencode({'cursor': cursor})}")
        current: dict[Any, Any] = {}
        for result in done:
            for item in list_items(result.body)[0]:
                fid, value = _field_value(item)
                if fid is not None and value is not None:
                    current[fid] = value
        for item in self.values:
            current.pop(item["id"], None)  # a new value goes where the records put it, after the kept ones
            current[item["id"]] = item["value"]
        merged = [{"id": fid, "value": value} for fid, value in current.items()]
        kept = len(merged) - len(self.values)
        return Step(json_request(self.write, "PUT", self.write.url, merged),
                    f"write {len(self.values)} value(s), keeping {kept} other value(s) of the {self.owner}",
                    final=True)

    def _read(self, url: str) -> Step:
        return Step(json_request(self.write, "GET", url, None), f"read the {self.owner}'s current custom-field values")

    def describe(self) -> list[str]:
        return [f"GET {self.write.url}  (read the {self.owner}'s current values, every page)",
                f"PUT {self.write.url}  (those values with the {len(self.values)} set here laid over them)"]


def _field_value(item: Any) -> tuple[Any, Any]:
    """``{"id", "value"}`` or the recorded ``{"field": {"id", ...}, "value"}``."""
    if not isinstance(item, Mapping):
        raise PlanError(f"unexpected custom-field value in the answer: {short(item)}")
    field = item.get("field")
    fid = field.get("id") if isinstance(field, Mapping) else item.get("id")
    if fid is None:
        raise PlanError(f"a custom-field value without a field id in the answer: {short(item)}")
    return fid, item.get("value")


# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EnsureTags(Plan):
    """Create each named tag unless known to exist (a duplicate answer counts as existing), then the write
    naming them, then ``then`` if any (``update_ticket`` adding tags: the ticket's PUT without them).

    A name known to exist may have stopped existing since (deleted, merged away): Gorgias refuses a ticket-tag
    write naming it. So a tag write refused with a 400 re-creates every name once, forgetting what was known
    about them, and is sent once more; a second refusal fails the call."""

    write: RenderedRequest
    names: tuple[str, ...]
    then: RenderedRequest | None = None

    def next_step(self, done: Sequence[StepResult]) -> Step | None:
        n, k = len(self.names), len(done)
        if k < n:
            return self._create(self.names[k], again=False)
        if k == n:
            return self._write(first=True)
        if not (n and done[n].status == 400):  # the write went through
            return self._then(k, n + 1)
        if k < 2 * n + 1:
            return self._create(self.names[k - n - 1], again=True)
        if k == 2 * n + 1:
            return self._write(first=False)
        return self._then(k, 2 * n + 2)

    def _create(self, name: str, *, again: bool) -> Step:
        url = origin(self.write.url) + "/api/tags"
        purpose = (f"create tag {name!r} again (the write was refused: a name may no longer exist)" if again
                   else f"make sure tag {name!r} exists")
        create = json_request(self.write, "POST", url, {"name": name})
        return Step(create, purpose, accept=EXISTS, known_as=f"tag:{name}", forget=again)

    def _write(self, *, first: bool) -> Step:
        accept = REFUSED_NAME if first and self.names else frozenset()
        purpose = "the write naming them" if first else "the write naming them, once more"
        return Step(self.write, purpose, accept=accept, final=self.then is None)

    def _then(self, k: int, at: int) -> Step | None:
        if self.then is None or k != at:
            return None
        return Step(self.then, "the ticket's other fields", final=True)

    def describe(self) -> list[str]:
        url = origin(self.write.url) + "/api/tags"
        lines = [f"POST {url} {{\"name\": {orjson.dumps(n).decode()}}}  (unless known to exist; 400/409 = exists)"
                 for n in self.names]
        lines.append(f"{self.write.method} {self.write.url}  (the request above; refused with 400, each name is "
                     "created again and it is sent once more)")
        if self.then is not None:
            lines.append(f"{self.then.method} {self.then.url}  (the other fields, without tags)")
        return lines


@dataclass(frozen=True)
class ClearValue(Plan):
    """A single-value custom-field write whose value is ``null``: Gorgias clears a value with ``DELETE`` on
    the same route (its ``PUT`` takes a string, an integer or a boolean only)."""

    write: RenderedRequest

    def next_step(self, done: Sequence[StepResult]) -> Step | None:
        if done:
            return None
        return Step(json_request(self.write, "DELETE", self.write.url, None), "clear the value (null)", final=True)

    def describe(self) -> list[str]:
        return [f"DELETE {self.write.url}  (the value is null: it is cleared)"]


def _clear_on_null(write: RenderedRequest, body: Any) -> Plan | None:
    return ClearValue(write) if body is None else None


def _merge_field_values(write: RenderedRequest, body: Any) -> Plan | None:
    owner = "ticket" if "/api/tickets/" in write.url else "customer"
    return MergeFieldValues(write, tuple(body), owner)


def update_adding_tags(write: RenderedRequest, body: Any) -> Plan | None:
    """``update_ticket`` with ``template_options.tags: add`` (the default): the record's tags are *added*
    (``POST .../tags``, names created first) and the ticket's other fields go in a PUT without ``tags``,
    which would replace them all."""
    if not isinstance(body, Mapping) or "tags" not in body:
        return _ensure_tags(write, body)
    tags = [t for t in body["tags"] or () if isinstance(t, Mapping)]
    names = tuple(dict.fromkeys(t["name"] for t in tags if isinstance(t.get("name"), str)))
    ids = list(dict.fromkeys(t["id"] for t in tags if "id" in t))
    rest = {k: v for k, v in body.items() if k != "tags"}
    then = json_request(write, "PUT", write.url, rest) if rest else None
    if not names and not ids:
        return None if then is None else EnsureTags(then, ())
    add = {"names": list(names), **({"ids": ids} if ids else {})}
    return EnsureTags(json_request(write, "POST", write.url.rstrip("/") + "/tags", add), names, then)


def _ensure_tags(write: RenderedRequest, body: Any) -> Plan | None:
    """Tag names of a ticket-tag body (``names``) or of a ticket body (``tags: [{"name": ...}]``)."""
    if not isinstance(body, Mapping):
        return None
    found = list(body.get("names") or ())
    found += [t.get("name") for t in body.get("tags") or () if isinstance(t, Mapping)]
    names = tuple(dict.fromkeys(n for n in found if isinstance(n, str)))
    return EnsureTags(write, names) if names else None


def _upsert_customer(write: RenderedRequest, body: Any) -> Plan | None:
    by = "email" if body.get("email") else "external_id"
    return UpsertCustomer(write, body, by)


PLANS: dict[str, Callable[[RenderedRequest, Any], Plan | None]] = {
    "merge_field_values": _merge_field_values,
    "ensure_tags": _ensure_tags,
    "upsert_customer": _upsert_customer,
    "update_message": update_message,
    "clear_on_null": _clear_on_null,
    "merge_customers": merge_customers,
}


def plan_for(kind: str, write: RenderedRequest, body: Any) -> Plan | None:
    """The plan of a request built by a template whose catalog entry names plan ``kind``."""
    return PLANS[kind](write, body)
