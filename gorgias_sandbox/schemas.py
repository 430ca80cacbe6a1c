"""The request-body schemas of the Gorgias write endpoints (field names, types and size limits).

An independent, hand-written copy of Gorgias' rules, on purpose: the worker's templates have their own
schemas, and this package must not share them (it imports nothing from ``worker``), so that the sandbox
stays an oracle that checks the client's bodies rather than echoing the client's own understanding.
"""

from __future__ import annotations

from typing import Any

from gorgias_sandbox.validation import (
    Field,
    Invalid,
    Schema,
    anything,
    boolean,
    email,
    identifier,
    integer,
    json_object,
    language,
    list_of,
    load,
    nested,
    nullable,
    one_of,
    slug,
    text,
    timestamp,
    timezone,
)

BODY_MAX_BYTES = 1_000_000  # 1 MB limit on body_text / body_html (INF: decimal megabyte of UTF-8)

TICKET_VIA = (
    "aircall", "api", "chat", "contact_form", "email", "facebook", "facebook-mention", "facebook-messenger",
    "facebook-recommendations", "form", "gorgias_chat", "help-center", "helpdesk", "instagram",
    "instagram-ad-comment", "instagram-comment", "instagram-direct-message", "instagram-mention",
    "internal-note", "offline_capture", "phone", "rule", "self_service", "shopify", "sms", "twilio", "twitter",
    "twitter-direct-message", "whatsapp", "yotpo", "yotpo-review", "zendesk",
)
TICKET_STATUS = ("open", "closed")
TICKET_PRIORITY = ("critical", "high", "normal", "low")
USER_ROLES = ("admin", "agent", "basic-agent", "bot", "internal-agent", "lite-agent", "observer-agent")
JOB_TYPES = ("applyMacro", "deleteTicket", "exportTicket", "exportMacro", "importMacro", "updateTicket",
             "exportTicketDrilldown", "exportConvertCampaignSalesDrilldown")
JOB_STATUSES = ("scheduled", "pending", "running", "done", "errored", "fatal_errored", "cancel_requested",
                "canceled")
MANAGED_TYPES = ("contact_reason", "product", "resolution", "ai_intent", "ai_outcome", "ai_sales", "ai_discount",
                 "ai_journey", "managed_sentiment", "call_status")
INTERNAL_NOTE = "internal-note"

_name = nullable(text(255))
_stamp = nullable(timestamp)
_meta = nullable(json_object)
_long_text = nullable(text(max_bytes=BODY_MAX_BYTES))

PERSON_FIELDS: Schema = {
    "id": Field(integer(minimum=0)),
    "email": Field(email),
    "name": Field(_name),
    "firstname": Field(_name),
    "lastname": Field(_name),
}


def person_ref(value: Any) -> dict[str, Any]:
    """A reference to a customer or user: ``{"id": ...}`` and/or ``{"email": ...}`` (+ names)."""
    if value is None:
        raise Invalid(["Field may not be null."])
    cleaned = load(value, PERSON_FIELDS)
    if "id" not in cleaned and "email" not in cleaned:
        raise Invalid({"id": ["Either id or email is required."]})
    return cleaned


ID_REF: Schema = {"id": Field(identifier, required=True)}


def tag_ref(value: Any) -> dict[str, Any]:
    """A tag given by ``id`` or by ``name`` (created when unknown), optionally with ``decoration``."""
    cleaned = load(value, {"id": Field(identifier), "name": Field(text(256, 1)),
                           "decoration": Field(_meta), "description": Field(nullable(text(1024)))})
    if "id" not in cleaned and "name" not in cleaned:
        raise Invalid({"name": ["Missing data for required field."]})
    return cleaned


FIELD_VALUE: Schema = {"id": Field(identifier, required=True), "value": Field(anything, required=True)}

ADDRESS: Schema = {"address": Field(text(320, 1), required=True), "name": Field(_name)}
SOURCE: Schema = {
    "type": Field(nullable(text(64))),
    "from": Field(nullable(nested(ADDRESS))),
    "to": Field(list_of(nested(ADDRESS))),
    "cc": Field(list_of(nested(ADDRESS))),
    "bcc": Field(list_of(nested(ADDRESS))),
    "extra": Field(_meta),
}
ATTACHMENT: Schema = {
    "url": Field(text(2048, 1), required=True),
    "name": Field(text(1024, 1), required=True),
    "content_type": Field(text(255, 1), required=True),
    "size": Field(nullable(integer(minimum=0))),
    "public": Field(boolean),
    "extra": Field(_meta),
}

MESSAGE: Schema = {
    "channel": Field(slug(), required=True),
    "via": Field(one_of(TICKET_VIA), required=True),
    "from_agent": Field(boolean, required=True),
    "public": Field(boolean),
    "sender": Field(nullable(person_ref)),
    "receiver": Field(nullable(person_ref)),
    "source": Field(nullable(nested(SOURCE))),
    "subject": Field(nullable(text(998))),
    "body_text": Field(_long_text),
    "body_html": Field(_long_text),
    "stripped_text": Field(_long_text),
    "stripped_html": Field(_long_text),
    "stripped_signature": Field(_long_text),
    "attachments": Field(list_of(nested(ATTACHMENT))),
    "integration_id": Field(nullable(identifier)),
    "message_id": Field(nullable(text(998))),
    "external_id": Field(nullable(text(255))),
    "created_datetime": Field(_stamp),
    "sent_datetime": Field(_stamp),
    "failed_datetime": Field(_stamp),
    "deleted_datetime": Field(_stamp),
    "opened_datetime": Field(_stamp),
    "headers": Field(_meta),
    "macros": Field(list_of(nested(ID_REF))),
    "mention_ids": Field(list_of(identifier)),
    "meta": Field(_meta),
    "actions": Field(nullable(list_of(json_object))),
    "last_sending_error": Field(_meta),
}

_TICKET_COMMON: Schema = {
    "channel": Field(slug()),
    "via": Field(one_of(TICKET_VIA)),
    "subject": Field(nullable(text(998))),
    "status": Field(one_of(TICKET_STATUS)),
    "priority": Field(one_of(TICKET_PRIORITY)),
    "customer": Field(nullable(person_ref)),
    "assignee_user": Field(nullable(nested(ID_REF))),
    "assignee_team": Field(nullable(nested(ID_REF))),
    "tags": Field(list_of(tag_ref)),
    "custom_fields": Field(list_of(nested(FIELD_VALUE))),
    "external_id": Field(nullable(text(255))),
    "from_agent": Field(boolean),
    "language": Field(nullable(language)),
    "spam": Field(boolean),
    "is_unread": Field(boolean),
    "meta": Field(_meta),
    "opened_datetime": Field(_stamp),
    "closed_datetime": Field(_stamp),
    "trashed_datetime": Field(_stamp),
    "snooze_datetime": Field(_stamp),
    "last_message_datetime": Field(_stamp),
    "last_received_message_datetime": Field(_stamp),
    "updated_datetime": Field(_stamp),
}
TICKET_CREATE: Schema = {
    **_TICKET_COMMON,
    "messages": Field(list_of(nested(MESSAGE), 1, 500), required=True),
    "created_datetime": Field(_stamp),
}
TICKET_UPDATE: Schema = _TICKET_COMMON

TICKET_TAGS: Schema = {"ids": Field(list_of(identifier)), "names": Field(list_of(text(256, 1)))}

CHANNEL: Schema = {
    "id": Field(identifier),
    "type": Field(text(64, 1), required=True),
    "address": Field(text(320, 1), required=True),
    "preferred": Field(boolean),
}
CUSTOMER: Schema = {
    "name": Field(_name),
    "firstname": Field(_name),
    "lastname": Field(_name),
    "email": Field(nullable(email)),
    "external_id": Field(nullable(text(255))),
    "language": Field(nullable(language)),
    "timezone": Field(nullable(timezone)),
    "note": Field(nullable(text(10_000))),
    "meta": Field(_meta),
    "channels": Field(list_of(nested(CHANNEL))),
    "custom_fields": Field(list_of(nested(FIELD_VALUE))),
    "data": Field(nullable(json_object)),
}
CUSTOMER_CREATE: Schema = {
    **{key: field for key, field in CUSTOMER.items() if key not in ("firstname", "lastname")},
    "channels": Field(list_of(nested({**CHANNEL, "preferred": Field(boolean, required=True)}), 1), required=True),
}
"""Create: ``channels`` required, each with ``type``, ``address``, ``preferred`` (SPEC); ``firstname`` /
``lastname`` rejected, ``name`` only (3P)."""
CUSTOMER_DATA: Schema = {"data": Field(json_object, required=True), "version": Field(_stamp)}
"""``PUT /api/customers/{id}/data``: ``data`` must be a JSON object (SPEC)."""
IDS: Schema = {"ids": Field(list_of(identifier, 1), required=True)}

TAG_CREATE: Schema = {
    "name": Field(text(256, 1), required=True),
    "description": Field(nullable(text(1024))),
    "decoration": Field(_meta),
}
TAG_UPDATE: Schema = TAG_CREATE
TAG_MERGE: Schema = {"source_tags_ids": Field(list_of(identifier, 1), required=True)}

SURVEY: Schema = {
    "customer_id": Field(identifier, required=True),
    "ticket_id": Field(identifier, required=True),
    "score": Field(nullable(integer(1, 5))),
    "body_text": Field(nullable(text(1000))),
    "meta": Field(_meta),
    "created_datetime": Field(_stamp),
    "scored_datetime": Field(_stamp),
    "sent_datetime": Field(_stamp),
    "should_send_datetime": Field(_stamp),
}


def _country(value: Any) -> str:
    checked: str = text(2, 2)(value)
    if not checked.isalpha() or not checked.isupper():
        raise Invalid(["Not a valid ISO-3166-1 alpha-2 country code."])
    return checked


USER_CREATE: Schema = {
    "email": Field(email, required=True),
    "name": Field(_name),
    "firstname": Field(_name),
    "lastname": Field(_name),
    "role": Field(nested({"name": Field(one_of(USER_ROLES), required=True)})),
    "active": Field(boolean),
    "bio": Field(nullable(text(1024))),
    "country": Field(nullable(_country)),
    "external_id": Field(nullable(text(255))),
    "language": Field(nullable(one_of(("en", "fr")))),
    "meta": Field(_meta),
    "timezone": Field(nullable(timezone)),
}
USER_UPDATE: Schema = {
    **{key: Field(f.check) for key, f in USER_CREATE.items()},
    "password_confirmation": Field(text(1024)),
    "old_password": Field(text(1024)),
    "new_password": Field(text(1024, 1)),
}

JOB_CREATE: Schema = {
    "type": Field(one_of(JOB_TYPES), required=True),
    "params": Field(json_object, required=True),
    "scheduled_datetime": Field(_stamp),
    "meta": Field(_meta),
}
_TICKET_IDS = Field(list_of(identifier, 1), required=True)
_CONTEXT = Field(_meta)
JOB_TICKET_UPDATES: Schema = {
    **{key: field for key, field in TICKET_UPDATE.items() if key not in ("tags", "assignee_team")},
    "tags": Field(list_of(text(256, 1))),
    "assignee_team_id": Field(nullable(identifier)),
}
"""``updates`` of an ``updateTicket`` job, in the form Gorgias' own helpdesk sends (1P-UI): ``tags`` as
names (added to each ticket, created when missing), the team as ``assignee_team_id``; the rest as a ticket
update (``custom_fields`` replace every value, like ``PUT /api/tickets/{id}``: INF, same family)."""
JOB_PARAMS: dict[str, Schema] = {
    "updateTicket": {"ticket_ids": _TICKET_IDS, "updates": Field(nested(JOB_TICKET_UPDATES), required=True),
                     "context": _CONTEXT},
    "applyMacro": {"ticket_ids": _TICKET_IDS, "macro_id": Field(identifier, required=True),
                   "apply_and_close": Field(boolean), "context": _CONTEXT},
    "deleteTicket": {"ticket_ids": _TICKET_IDS, "context": _CONTEXT},
}
"""Params of the ticket jobs the sandbox runs: by ``ticket_ids`` only (views are not modelled, so
``view_id``/``view`` are unknown fields here); ``nested`` loads ``updates`` as a partial ticket update."""
JOB_UPDATE: Schema = {
    "params": Field(json_object),
    "scheduled_datetime": Field(_stamp),
    "meta": Field(_meta),
    "status": Field(one_of(JOB_STATUSES)),
}

FIELD_DEFINITION: Schema = {
    "data_type": Field(one_of(("text", "number", "boolean")), required=True),
    "input_settings": Field(_meta),
}
CUSTOM_FIELD_CREATE: Schema = {
    "object_type": Field(one_of(("Ticket", "Customer")), required=True),
    "label": Field(text(255, 1), required=True),
    "definition": Field(nested(FIELD_DEFINITION), required=True),
    "description": Field(nullable(text(1024))),
    "external_id": Field(nullable(text(255))),
    "priority": Field(integer(0, 5000)),
    "required": Field(boolean),
    "managed_type": Field(nullable(one_of(MANAGED_TYPES))),
    "requirement_type": Field(one_of(("visible", "required"))),  # INF: the values seen; others unknown
    "deactivated_datetime": Field(_stamp),
}
CUSTOM_FIELD_UPDATE: Schema = {key: Field(f.check) for key, f in CUSTOM_FIELD_CREATE.items()}
CUSTOM_FIELD_BULK_ITEM: Schema = {**CUSTOM_FIELD_UPDATE, "id": Field(identifier, required=True)}
