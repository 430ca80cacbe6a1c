"""The plans of templates that need more than one request per call (see :mod:`worker.core.requests.request`).

* ``merge_field_values`` (``set_ticket_custom_fields``, ``set_customer_custom_fields``): Gorgias' bulk
  PUT deletes every value it is not given, so the plan reads the current values (GET, following
  cursors), lays the records' values over them and PUTs the full list: 2 requests per ticket or
  customer however many fields the group sets.
* ``ensure_tags`` (``add_ticket_tags``, ``set_ticket_tags``, ``create_ticket``, ``update_ticket``): each
  tag name is created first
  (``POST /api/tags``; 400 or 409 means it exists) unless this process already knows it exists on the
  account, then the tag write: 1 extra request per new name per account, none after.
* ``upsert_customer``: look the customer up by email (or external_id), then PUT the one found or POST
  a new one: 2 requests per group (4 when the create answers that the customer exists after all).
* ``update_message`` (``update_ticket_message``): read the message, then PUT it back with its own channel,
  via, from_agent, sender, receiver, source and ``sent_datetime`` under the record's changes: 2 requests.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import parse_qs, urlencode, urlsplit

import orjson

from worker.core.requests.request import Plan, PlanError, RenderedRequest, Step, StepResult

__all__ = ["PLANS", "ClearValue", "EnsureTags", "MergeCustomers", "MergeFieldValues", "UpdateMessage", "UpsertCustomer",
           "plan_for", "update_adding_tags"]

EXISTS: Final = frozenset({400, 409})  # a duplicate answer: the tag (or customer) is there already
REFUSED_NAME: Final = frozenset({400})  # a ticket-tag write naming a tag that no longer exists
LOOKUP_LIMIT: Final = 30


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _json(base: RenderedRequest, method: str, url: str, body: Any) -> RenderedRequest:
    headers = {k: v for k, v in base.headers.items() if k.lower() != "content-type"}
    if body is None:
        return RenderedRequest(method, url, headers, None, None)
    headers["Content-Type"] = "application/json"
    return RenderedRequest(method, url, headers, orjson.dumps(body), "application/json")


def _items(body: Any) -> tuple[list[Any], str | None]:
    """The items of a list answer (``{"data": [...], "meta": {...}}`` or a bare array) and its next cursor."""
    if isinstance(body, list):
        return body, None
    if isinstance(body, Mapping) and isinstance(body.get("data"), list):
        meta = body.get("meta")
        cursor = meta.get("next_cursor") if isinstance(meta, Mapping) else None
        return body["data"], cursor if isinstance(cursor, str) and cursor else None
    raise PlanError(f"unexpected list answer: {_short(body)}")


def _short(value: Any) -> str:
    text = orjson.dumps(value).decode() if not isinstance(value, str) else value
    return text if len(text) <= 200 else text[:200] + "..."


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
        _, cursor = _items(last.body)
        if cursor is not None:
            return self._read(f"{self.write.url}?{urlencode({'cursor': cursor})}")
        current: dict[Any, Any] = {}
        for result in done:
            for item in _items(result.body)[0]:
                fid, value = _field_value(item)
                if fid is not None and value is not None:
                    current[fid] = value
        for item in self.values:
            current.pop(item["id"], None)  # a new value goes where the records put it, after the kept ones
            current[item["id"]] = item["value"]
        merged = [{"id": fid, "value": value} for fid, value in current.items()]
        kept = len(merged) - len(self.values)
        return Step(_json(self.write, "PUT", self.write.url, merged),
                    f"write {len(self.values)} value(s), keeping {kept} other value(s) of the {self.owner}",
                    final=True)

    def _read(self, url: str) -> Step:
        return Step(_json(self.write, "GET", url, None), f"read the {self.owner}'s current custom-field values")

    def describe(self) -> list[str]:
        return [f"GET {self.write.url}  (read the {self.owner}'s current values, every page)",
                f"PUT {self.write.url}  (those values with the {len(self.values)} set here laid over them)"]


def _field_value(item: Any) -> tuple[Any, Any]:
    """``{"id", "value"}`` or the recorded ``{"field": {"id", ...}, "value"}``."""
    if not isinstance(item, Mapping):
        raise PlanError(f"unexpected custom-field value in the answer: {_short(item)}")
    field = item.get("field")
    fid = field.get("id") if isinstance(field, Mapping) else item.get("id")
    if fid is None:
        raise PlanError(f"a custom-field value without a field id in the answer: {_short(item)}")
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
        url = _origin(self.write.url) + "/api/tags"
        purpose = (f"create tag {name!r} again (the write was refused: a name may no longer exist)" if again
                   else f"make sure tag {name!r} exists")
        return Step(_json(self.write, "POST", url, {"name": name}), purpose, accept=EXISTS, known_as=f"tag:{name}",
                    forget=again)

    def _write(self, *, first: bool) -> Step:
        accept = REFUSED_NAME if first and self.names else frozenset()
        purpose = "the write naming them" if first else "the write naming them, once more"
        return Step(self.write, purpose, accept=accept, final=self.then is None)

    def _then(self, k: int, at: int) -> Step | None:
        if self.then is None or k != at:
            return None
        return Step(self.then, "the ticket's other fields", final=True)

    def describe(self) -> list[str]:
        url = _origin(self.write.url) + "/api/tags"
        lines = [f"POST {url} {{\"name\": {orjson.dumps(n).decode()}}}  (unless known to exist; 400/409 = exists)"
                 for n in self.names]
        lines.append(f"{self.write.method} {self.write.url}  (the request above; refused with 400, each name is "
                     "created again and it is sent once more)")
        if self.then is not None:
            lines.append(f"{self.then.method} {self.then.url}  (the other fields, without tags)")
        return lines


# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class UpsertCustomer(Plan):
    """Look the customer up by email (else external_id); PUT the one found, or POST a new one."""

    write: RenderedRequest  # POST /api/customers with the full body
    body: Mapping[str, Any]
    by: str  # "email" or "external_id"

    @property
    def key(self) -> str:
        return str(self.body[self.by])

    def next_step(self, done: Sequence[StepResult]) -> Step | None:
        """Look up; then update the one found, or create. A create answered "exists" (400/409: created
        meanwhile, or not yet listed by the lookup) is looked up once more and updated."""
        if not done:
            return self._lookup("look the customer up by " + self.by)
        last = done[-1]
        if last.step.final:
            return None
        if len(done) == 2:  # the create: done, or refused as a duplicate
            if last.status is not None and 200 <= last.status < 300:
                return None
            return self._lookup(f"look the customer up again (the create answered {last.status})")
        found = self._found(last.body)
        if found is not None:
            return self._update(found)
        if len(done) == 3:
            raise PlanError(f"creating the customer answered {done[1].status} "
                            f"({_short(done[1].body)}) and no customer has {self.by} {self.key!r}")
        if not self.body.get("channels"):  # create-only rule (Gorgias requires channels on create, SPEC)
            raise PlanError(f"no customer has {self.by} {self.key!r}, and creating one needs an email or a phone "
                            "(record attribute email, customer_email or phone) or `channels`")
        return Step(self.write, "create the customer (none found)", accept=EXISTS)

    def _lookup(self, purpose: str) -> Step:
        query = urlencode({self.by: self.key, "limit": LOOKUP_LIMIT})
        return Step(_json(self.write, "GET", f"{_origin(self.write.url)}/api/customers?{query}", None), purpose)

    def _found(self, answer: Any) -> Mapping[str, Any] | None:
        found = [c for c in _items(answer)[0] if isinstance(c, Mapping) and self._matches(c)]
        if len(found) > 1:
            ids = ", ".join(str(c.get("id")) for c in found)
            raise PlanError(f"{len(found)} customers have {self.by} {self.key!r} (ids {ids}); "
                            "upsert_customer needs at most one: merge them (template merge_customers)")
        return found[0] if found else None

    def _update(self, customer: Mapping[str, Any]) -> Step:
        update = {k: v for k, v in self.body.items() if k != "channels"}  # its channels stay as they are
        cid = customer.get("id")
        return Step(_json(self.write, "PUT", f"{_origin(self.write.url)}/api/customers/{cid}", update),
                    f"update customer {cid}", final=True)

    def _matches(self, customer: Mapping[str, Any]) -> bool:
        if self.by == "email":
            emails = [customer.get("email")]
            emails += [c.get("address") for c in customer.get("channels") or () if isinstance(c, Mapping)
                       and c.get("type") == "email"]
            return any(isinstance(e, str) and e.lower() == self.key.lower() for e in emails)
        return str(customer.get("external_id")) == self.key

    def describe(self) -> list[str]:
        origin = _origin(self.write.url)
        return [f"GET {origin}/api/customers?{urlencode({self.by: self.key})}  (look the customer up)",
                f"PUT {origin}/api/customers/<id>  (when found: these fields, channels left as they are)",
                f"POST {origin}/api/customers  (when not found: the body above; 400/409 = created meanwhile: "
                "look up again and PUT)"]


# --------------------------------------------------------------------------------------------------


_IDENTITY = ("channel", "via", "from_agent")
_ADDRESS_KEYS = ("address", "name")


def _person_ref(person: Any) -> dict[str, Any] | None:
    """A sender or receiver as read back, as a reference Gorgias takes (``id`` and ``email``)."""
    if not isinstance(person, Mapping):
        return None
    ref = {k: person[k] for k in ("id", "email") if person.get(k) is not None}
    return ref or None


def _address(value: Any) -> Any:
    if not isinstance(value, Mapping):
        return value
    return {k: value[k] for k in _ADDRESS_KEYS if k in value}


def _source(source: Any) -> dict[str, Any] | None:
    """A message's ``source`` as read back, keeping the documented keys (type, from, to, cc, bcc, extra)."""
    if not isinstance(source, Mapping):
        return None
    out: dict[str, Any] = {}
    for key in ("type", "from", "to", "cc", "bcc", "extra"):
        if key not in source:
            continue
        value = source[key]
        out[key] = [_address(a) for a in value] if isinstance(value, list) else \
            (_address(value) if key == "from" else value)
    return out


@dataclass(frozen=True)
class UpdateMessage(Plan):
    """GET the message, then PUT it back as it is (channel, via, from_agent, sender, receiver, source,
    sent_datetime) with the record's changes laid over it: Gorgias needs channel, via and from_agent on
    every update and *sends* an outgoing message updated without ``sent_datetime`` (DOC)."""

    write: RenderedRequest
    changes: Mapping[str, Any]

    def next_step(self, done: Sequence[StepResult]) -> Step | None:
        if not done:
            return Step(_json(self.write, "GET", self.write.url, None),
                        "read the message (its channel, people, source and sent_datetime are sent back)")
        last = done[-1]
        if last.step.final:
            return None
        message = last.body
        if not isinstance(message, Mapping) or not all(k in message for k in _IDENTITY):
            raise PlanError(f"unexpected message in the answer: {_short(message)}")
        body = self.merged(message)
        kept = "sending it" if "sent_datetime" not in body else "its sent_datetime kept, nobody emailed"
        return Step(_json(self.write, "PUT", self.write.url, body), f"write the message back changed ({kept})",
                    final=True)

    def merged(self, message: Mapping[str, Any]) -> dict[str, Any]:
        """The PUT body: the message's own identity and people, the record's changes over them."""
        body: dict[str, Any] = {k: message[k] for k in _IDENTITY}
        for key in ("sender", "receiver"):
            ref = _person_ref(message.get(key))
            if ref is not None:
                body[key] = ref
        source = _source(message.get("source"))
        if source is not None:
            body["source"] = source
        body.update(self.changes)
        if "sent_datetime" not in self.changes:  # never left out by accident: Gorgias would send it
            body["sent_datetime"] = message.get("sent_datetime") or message.get("created_datetime")
        if body.get("sent_datetime") is None:
            body.pop("sent_datetime", None)  # asked to send (mode: send)
        return body

    def describe(self) -> list[str]:
        sent = "left out: Gorgias sends it" if self.changes.get("sent_datetime", 0) is None \
            else "its own kept unless the record gives one"
        return [f"GET {self.write.url}  (read the message)",
                f"PUT {self.write.url}  (its channel, via, from_agent, sender, receiver and source with the changes "
                f"above laid over them; sent_datetime {sent})"]


@dataclass(frozen=True)
class ClearValue(Plan):
    """A single-value custom-field write whose value is ``null``: Gorgias clears a value with ``DELETE`` on
    the same route (its ``PUT`` takes a string, an integer or a boolean only)."""

    write: RenderedRequest

    def next_step(self, done: Sequence[StepResult]) -> Step | None:
        if done:
            return None
        return Step(_json(self.write, "DELETE", self.write.url, None), "clear the value (null)", final=True)

    def describe(self) -> list[str]:
        return [f"DELETE {self.write.url}  (the value is null: it is cleared)"]


def _clear_on_null(write: RenderedRequest, body: Any) -> Plan | None:
    return ClearValue(write) if body is None else None


def _query_id(url: str, name: str) -> str:
    values = parse_qs(urlsplit(url).query).get(name) or [""]
    return values[0]


@dataclass(frozen=True)
class MergeCustomers(Plan):
    """Merge the source customer into the target without an empty body (Gorgias refuses one, 3P):

    * the record gives fields for the target: the merge carries them, then ``PUT /api/customers/{target}``
      sets them (a real merge was seen not to apply a body's ``name``, LIVE; which fields it applies is
      undocumented), whose answer - the kept customer - is the call's;
    * it gives none: the target is read first and its own ``name`` (else ``email``) is the body."""

    write: RenderedRequest
    fields: Mapping[str, Any]

    @property
    def target(self) -> str:
        return _query_id(self.write.url, "target_id")

    def next_step(self, done: Sequence[StepResult]) -> Step | None:
        customer_url = f"{_origin(self.write.url)}/api/customers/{self.target}"
        if self.fields:
            if not done:
                return Step(self.write, "merge the customers, with the record's fields for the one kept")
            if len(done) == 1:
                return Step(_json(self.write, "PUT", customer_url, dict(self.fields)),
                            "set the record's fields on the customer kept", final=True)
            return None
        if not done:
            return Step(_json(self.write, "GET", customer_url, None),
                        "read the customer kept (its own name is the merge's body: an empty one is refused)")
        if len(done) == 1:
            own = _own_fields(done[0].body)
            return Step(_json(self.write, "PUT", self.write.url, own), "merge the customers", final=True)
        return None

    def describe(self) -> list[str]:
        origin = _origin(self.write.url)
        if self.fields:
            return [f"PUT {self.write.url}  (the fields above)",
                    f"PUT {origin}/api/customers/{self.target}  (the same fields on the customer kept)"]
        return [f"GET {origin}/api/customers/{self.target}  (read the customer kept)",
                f"PUT {self.write.url}  (its own name: Gorgias refuses an empty body)"]


def _own_fields(customer: Any) -> dict[str, Any]:
    """The fields of a customer sent back as a merge's body (so that it is not empty)."""
    if isinstance(customer, Mapping):
        for key in ("name", "email"):
            if isinstance(customer.get(key), str) and customer[key]:
                return {key: customer[key]}
    raise PlanError(f"the customer to keep has no name or email to send as the merge's body (Gorgias refuses an "
                    f"empty one); give the record a field to set on it, e.g. name: {_short(customer)}")


def _merge_customers(write: RenderedRequest, body: Any) -> Plan | None:
    return MergeCustomers(write, dict(body) if isinstance(body, Mapping) else {})


def _update_message(write: RenderedRequest, body: Any) -> Plan | None:
    return UpdateMessage(write, dict(body) if isinstance(body, Mapping) else {})


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
    then = _json(write, "PUT", write.url, rest) if rest else None
    if not names and not ids:
        return None if then is None else EnsureTags(then, ())
    add = {"names": list(names), **({"ids": ids} if ids else {})}
    return EnsureTags(_json(write, "POST", write.url.rstrip("/") + "/tags", add), names, then)


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
    "update_message": _update_message,
    "clear_on_null": _clear_on_null,
    "merge_customers": _merge_customers,
}


def plan_for(kind: str, write: RenderedRequest, body: Any) -> Plan | None:
    """The plan of a request built by a template whose catalog entry names plan ``kind``."""
    return PLANS[kind](write, body)
