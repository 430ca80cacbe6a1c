"""Plans of the customer templates: ``upsert_customer`` (look up, then update or create) and
``merge_customers`` (never an empty body; the record's fields set on the customer kept)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from worker.core.requests.request import Plan, PlanError, RenderedRequest, Step, StepResult
from worker.core.templates.plan_steps import EXISTS, LOOKUP_LIMIT, json_request, list_items, origin, short

__all__ = ["MergeCustomers", "UpsertCustomer", "merge_customers"]


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
                            f"({short(done[1].body)}) and no customer has {self.by} {self.key!r}")
        if not self.body.get("channels"):  # create-only rule (Gorgias requires channels on create, SPEC)
            raise PlanError(f"no customer has {self.by} {self.key!r}, and creating one needs an email or a phone "
                            "(record attribute email, customer_email or phone) or `channels`")
        return Step(self.write, "create the customer (none found)", accept=EXISTS)

    def _lookup(self, purpose: str) -> Step:
        query = urlencode({self.by: self.key, "limit": LOOKUP_LIMIT})
        return Step(json_request(self.write, "GET", f"{origin(self.write.url)}/api/customers?{query}", None), purpose)

    def _found(self, answer: Any) -> Mapping[str, Any] | None:
        found = [c for c in list_items(answer)[0] if isinstance(c, Mapping) and self._matches(c)]
        if len(found) > 1:
            ids = ", ".join(str(c.get("id")) for c in found)
            raise PlanError(f"{len(found)} customers have {self.by} {self.key!r} (ids {ids}); "
                            "upsert_customer needs at most one: merge them (template merge_customers)")
        return found[0] if found else None

    def _update(self, customer: Mapping[str, Any]) -> Step:
        update = {k: v for k, v in self.body.items() if k != "channels"}  # its channels stay as they are
        cid = customer.get("id")
        return Step(json_request(self.write, "PUT", f"{origin(self.write.url)}/api/customers/{cid}", update),
                    f"update customer {cid}", final=True)

    def _matches(self, customer: Mapping[str, Any]) -> bool:
        if self.by == "email":
            emails = [customer.get("email")]
            emails += [c.get("address") for c in customer.get("channels") or () if isinstance(c, Mapping)
                       and c.get("type") == "email"]
            return any(isinstance(e, str) and e.lower() == self.key.lower() for e in emails)
        return str(customer.get("external_id")) == self.key

    def describe(self) -> list[str]:
        base = origin(self.write.url)
        return [f"GET {base}/api/customers?{urlencode({self.by: self.key})}  (look the customer up)",
                f"PUT {base}/api/customers/<id>  (when found: these fields, channels left as they are)",
                f"POST {base}/api/customers  (when not found: the body above; 400/409 = created meanwhile: "
                "look up again and PUT)"]




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
        customer_url = f"{origin(self.write.url)}/api/customers/{self.target}"
        if self.fields:
            if not done:
                return Step(self.write, "merge the customers, with the record's fields for the one kept")
            if len(done) == 1:
                return Step(json_request(self.write, "PUT", customer_url, dict(self.fields)),
                            "set the record's fields on the customer kept", final=True)
            return None
        if not done:
            return Step(json_request(self.write, "GET", customer_url, None),
                        "read the customer kept (its own name is the merge's body: an empty one is refused)")
        if len(done) == 1:
            own = _own_fields(done[0].body)
            return Step(json_request(self.write, "PUT", self.write.url, own), "merge the customers", final=True)
        return None

    def describe(self) -> list[str]:
        base = origin(self.write.url)
        if self.fields:
            return [f"PUT {self.write.url}  (the fields above)",
                    f"PUT {base}/api/customers/{self.target}  (the same fields on the customer kept)"]
        return [f"GET {base}/api/customers/{self.target}  (read the customer kept)",
                f"PUT {self.write.url}  (its own name: Gorgias refuses an empty body)"]


def _own_fields(customer: Any) -> dict[str, Any]:
    """The fields of a customer sent back as a merge's body (so that it is not empty)."""
    if isinstance(customer, Mapping):
        for key in ("name", "email"):
            if isinstance(customer.get(key), str) and customer[key]:
                return {key: customer[key]}
    raise PlanError(f"the customer to keep has no name or email to send as the merge's body (Gorgias refuses an "
                    f"empty one); give the record a field to set on it, e.g. name: {short(customer)}")


def merge_customers(write: RenderedRequest, body: Any) -> Plan | None:
    return MergeCustomers(write, dict(body) if isinstance(body, Mapping) else {})
