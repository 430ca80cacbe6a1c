"""The in-memory helpdesk of each account: tickets, messages, customers, tags, users, ...

Objects are kept as dicts of their public fields (what the API returns), except the relations of a
ticket (customer, tags, messages, field values), which are rendered when read so they stay current.
Mutating helpers here never validate: callers check everything first, then apply.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gorgias_sandbox.settings import AccountSettings


@dataclass(slots=True)
class TicketRecord:
    """A ticket: its scalar public ``fields`` plus relations by id."""

    fields: dict[str, Any]
    customer_id: int | None = None
    tag_ids: list[int] = field(default_factory=list)
    message_ids: list[int] = field(default_factory=list)
    field_values: dict[int, Any] = field(default_factory=dict)

    @property
    def id(self) -> int:
        """The ticket id."""
        return int(self.fields["id"])


def split_name(name: str | None) -> tuple[str | None, str | None]:
    """``"Jane Doe"`` → ``("Jane", "Doe")`` (INF: how Gorgias derives first/last names)."""
    if not name:
        return None, None
    first, _, last = name.strip().partition(" ")
    return first or None, last.strip() or None


class AccountState:
    """Everything one account holds. Ids are integers from per-resource sequences starting at 1."""

    def __init__(self, settings: AccountSettings, now: str) -> None:
        self.domain = settings.domain
        self._seq: dict[str, int] = {}
        self.users: dict[int, dict[str, Any]] = {}
        self.users_by_email: dict[str, int] = {}
        self.customers: dict[int, dict[str, Any]] = {}
        self.customers_by_email: dict[str, int] = {}
        self.customer_fields: dict[int, dict[int, Any]] = {}
        self.customer_data_versions: dict[int, str] = {}
        self.merged_customers: dict[int, int] = {}
        self.tickets: dict[int, TicketRecord] = {}
        self.messages: dict[int, dict[str, Any]] = {}
        self.tags: dict[int, dict[str, Any]] = {}
        self.tags_by_name: dict[str, int] = {}
        self.field_defs: dict[int, dict[str, Any]] = {}
        self.surveys: dict[int, dict[str, Any]] = {}
        self.survey_by_ticket: dict[int, int] = {}
        self.jobs: dict[int, dict[str, Any]] = {}
        self.merged_tickets: dict[int, int] = {}
        self.emailed: list[dict[str, Any]] = []
        """Outgoing messages created without ``sent_datetime``: real Gorgias would have sent them."""
        self.applied_macros: list[dict[str, Any]] = []
        for user in settings.users:
            self.add_user({"email": user.email, "name": user.name, "role": {"name": user.role}}, now)
        self.bot_user_id = self.add_user(
            {"email": f"bot@{self.domain}.gorgias.io", "name": "Gorgias Bot", "role": {"name": "bot"}}, now
        )["id"]
        for seed in settings.custom_fields:
            definition: dict[str, Any] = {"data_type": seed.data_type}
            if seed.choices is not None:
                definition["input_settings"] = {"input_type": "dropdown", "choices": list(seed.choices)}
            self.add_field_definition(
                {"object_type": seed.object_type, "label": seed.label, "definition": definition,
                 "managed_type": seed.managed_type},
                now,
            )

    def next_id(self, kind: str) -> int:
        """The next id of ``kind`` (``ticket``, ``customer``, ...)."""
        value = self._seq.get(kind, 0) + 1
        self._seq[kind] = value
        return value

    # -- users -------------------------------------------------------------------------------------------

    def add_user(self, values: dict[str, Any], now: str) -> dict[str, Any]:
        """Create a user from validated ``values``."""
        uid = self.next_id("user")
        first, last = split_name(values.get("name"))
        user = {
            "id": uid, "uri": f"/api/users/{uid}/", "email": values["email"], "name": values.get("name"),
            "firstname": values.get("firstname", first), "lastname": values.get("lastname", last),
            "role": values.get("role") or {"name": "agent"}, "active": values.get("active", True),
            "bio": values.get("bio"), "country": values.get("country"), "external_id": values.get("external_id"),
            "language": values.get("language"), "meta": values.get("meta"), "timezone": values.get("timezone", "UTC"),
            "created_datetime": now, "updated_datetime": now, "deactivated_datetime": None,
        }
        self.users[uid] = user
        self.users_by_email[values["email"].lower()] = uid
        return user

    def find_user(self, ref: dict[str, Any]) -> dict[str, Any] | None:
        """The user a ``{"id"}``/``{"email"}`` reference points to."""
        if "id" in ref:
            return self.users.get(ref["id"])
        uid = self.users_by_email.get(ref["email"].lower())
        return None if uid is None else self.users[uid]

    # -- customers ---------------------------------------------------------------------------------------

    def add_customer(self, values: dict[str, Any], now: str) -> dict[str, Any]:
        """Create a customer from validated ``values`` (email uniqueness checked by the caller)."""
        cid = self.next_id("customer")
        name = values.get("name")
        first, last = split_name(name)
        customer: dict[str, Any] = {
            "id": cid, "active": True, "customer": None,
            "email": values.get("email"), "name": name,
            "firstname": values.get("firstname", first), "lastname": values.get("lastname", last),
            "external_id": values.get("external_id"), "language": values.get("language"),
            "timezone": values.get("timezone") or "UTC", "note": values.get("note"), "meta": values.get("meta"),
            "data": values.get("data"), "integrations": {}, "channels": [],
            "created_datetime": now, "updated_datetime": now,
        }
        self.customers[cid] = customer
        self.customer_fields[cid] = {}
        self.set_customer_channels(customer, values.get("channels", []))
        if customer["email"]:
            self.customers_by_email[customer["email"].lower()] = cid
        return customer

    def set_customer_channels(self, customer: dict[str, Any], channels: list[dict[str, Any]]) -> None:
        """Replace the channels; the primary ``email`` is always present as a preferred email channel."""
        out = []
        for channel in channels:
            out.append(self._channel(customer, channel.get("id"), channel["type"], channel["address"],
                                     channel.get("preferred", False)))
        email = customer.get("email")
        if email and not any(c["type"] == "email" and c["address"].lower() == email.lower() for c in out):
            out.insert(0, self._channel(customer, None, "email", email, True))
        customer["channels"] = out

    def _channel(self, customer: dict[str, Any], cid: int | None, kind: str, address: str,
                 preferred: bool) -> dict[str, Any]:
        """A customer channel as real Gorgias renders it (recorded shape)."""
        owner = {"id": customer["id"], "name": customer.get("name")}
        stamp = customer["updated_datetime"]
        return {"id": cid or self.next_id("channel"), "type": kind, "address": address, "preferred": preferred,
                "created_datetime": stamp, "updated_datetime": stamp, "deleted_datetime": None,
                "user": owner, "customer": owner}

    def customer_by_email(self, email: str) -> dict[str, Any] | None:
        """The customer whose primary email is ``email`` (case-insensitive)."""
        cid = self.customers_by_email.get(email.lower())
        return None if cid is None else self.customers[cid]

    def get_or_create_customer(self, ref: dict[str, Any], now: str) -> dict[str, Any]:
        """Resolve a validated ``{"id"}``/``{"email", "name"}`` reference, creating unknown emails.

        Name fields sent along update the customer (a nested reference with more fields updates it).
        """
        if "id" in ref:
            customer = self.customers[ref["id"]]
        else:
            found = self.customer_by_email(ref["email"])
            if found is None:
                return self.add_customer(ref, now)
            customer = found
        changed = False
        for key in ("name", "firstname", "lastname"):
            if key in ref and customer.get(key) != ref[key]:
                customer[key] = ref[key]
                changed = True
        if changed:
            customer["updated_datetime"] = now
        return customer

    def delete_customer(self, cid: int) -> None:
        """Remove a customer; its tickets stay, without a customer (INF)."""
        customer = self.customers.pop(cid)
        self.customer_fields.pop(cid, None)
        self.customer_data_versions.pop(cid, None)
        email = customer.get("email")
        if email and self.customers_by_email.get(email.lower()) == cid:
            del self.customers_by_email[email.lower()]
        for ticket in self.tickets.values():
            if ticket.customer_id == cid:
                ticket.customer_id = None

    # -- tags --------------------------------------------------------------------------------------------

    def add_tag(self, values: dict[str, Any], now: str) -> dict[str, Any]:
        """Create a tag (name uniqueness checked by the caller)."""
        tid = self.next_id("tag")
        tag = {"id": tid, "uri": f"/api/tags/{tid}/", "name": values["name"],
               "description": values.get("description"), "decoration": values.get("decoration"),
               "usage": 0, "created_datetime": now, "deleted_datetime": None}
        self.tags[tid] = tag
        self.tags_by_name[tag["name"]] = tid
        return tag

    def tag_named(self, name: str, now: str, decoration: dict[str, Any] | None = None) -> int:
        """The id of the tag called ``name`` (case-sensitive), created when missing."""
        tid = self.tags_by_name.get(name)
        if tid is None:
            tid = int(self.add_tag({"name": name, "decoration": decoration}, now)["id"])
        return tid

    def set_ticket_tags(self, ticket: TicketRecord, tag_ids: list[int]) -> None:
        """Replace the ticket's tags (deduplicated, order kept), keeping each tag's ``usage`` right."""
        wanted = list(dict.fromkeys(tag_ids))
        for tid in set(ticket.tag_ids) - set(wanted):
            self.tags[tid]["usage"] -= 1
        for tid in set(wanted) - set(ticket.tag_ids):
            self.tags[tid]["usage"] += 1
        ticket.tag_ids = wanted

    def delete_tag(self, tid: int) -> None:
        """Remove a tag and take it off every ticket."""
        tag = self.tags.pop(tid)
        if self.tags_by_name.get(tag["name"]) == tid:
            del self.tags_by_name[tag["name"]]
        for ticket in self.tickets.values():
            if tid in ticket.tag_ids:
                ticket.tag_ids = [t for t in ticket.tag_ids if t != tid]

    # -- tickets -----------------------------------------------------------------------------------------

    def delete_ticket(self, tid: int) -> None:
        """Remove a ticket with its messages, tags and field values."""
        ticket = self.tickets.pop(tid)
        for mid in ticket.message_ids:
            self.messages.pop(mid, None)
        for tag_id in ticket.tag_ids:
            self.tags[tag_id]["usage"] -= 1

    def merge_tickets(self, source_id: int, target_id: int, now: str) -> None:
        """Merge ticket ``source_id`` into ``target_id``: its messages and tags move to the target (field
        values the target lacks too), the source disappears and its id redirects to the target (INF)."""
        source, target = self.tickets.pop(source_id), self.tickets[target_id]
        for mid in source.message_ids:
            self.messages[mid]["ticket_id"] = target_id
            self.messages[mid]["uri"] = f"/api/tickets/{target_id}/messages/{mid}/"
        target.message_ids = sorted(target.message_ids + source.message_ids)
        for tag_id in source.tag_ids:
            self.tags[tag_id]["usage"] -= 1
        self.set_ticket_tags(target, target.tag_ids + source.tag_ids)
        for fid, value in source.field_values.items():
            target.field_values.setdefault(fid, value)
        survey = self.survey_by_ticket.pop(source_id, None)
        if survey is not None and target_id not in self.survey_by_ticket:
            self.survey_by_ticket[target_id] = survey
            self.surveys[survey]["ticket_id"] = target_id
        self.merged_tickets[source_id] = target_id
        for old, new in list(self.merged_tickets.items()):
            if new == source_id:
                self.merged_tickets[old] = target_id
        target.fields["updated_datetime"] = now

    # -- custom fields -----------------------------------------------------------------------------------

    def add_field_definition(self, values: dict[str, Any], now: str) -> dict[str, Any]:
        """Create a custom field definition."""
        fid = self.next_id("custom_field")
        definition = {
            "id": fid, "external_id": values.get("external_id"), "object_type": values["object_type"],
            "label": values["label"], "description": values.get("description"),
            "priority": values.get("priority", 0), "required": values.get("required", False),
            "requirement_type": values.get("requirement_type", "visible"),
            "managed_type": values.get("managed_type"), "definition": values["definition"],
            "created_datetime": now, "updated_datetime": now,
            "deactivated_datetime": values.get("deactivated_datetime"),
        }
        self.field_defs[fid] = definition
        return definition


class SandboxState:
    """All accounts, by domain."""

    def __init__(self, accounts: list[AccountSettings], now: str) -> None:
        self._settings = accounts
        self.accounts: dict[str, AccountState] = {}
        self.reset(now)

    def reset(self, now: str) -> None:
        """Back to the configured starting point (users and field definitions only)."""
        self.accounts = {a.domain: AccountState(a, now) for a in self._settings}
