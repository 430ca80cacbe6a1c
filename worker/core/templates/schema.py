"""Request-body schemas of the Gorgias write endpoints the templates use, checked before any call.

Built from ``shared/reference/gorgias-api.md`` (§3): required fields, types, enums, size limits
(subject ≤ 998, external_id ≤ 255, tag name 1-256, email ≤ 320, ``messages`` 1-500, message bodies
≤ 1 MB) and the message sender/receiver rules that can be checked without the account's data.
Unknown fields are refused too: Gorgias answers 400 to them, so a call would be wasted.

The sandbox (``gorgias_sandbox/schemas.py``) checks the same bodies with its own copy, written
separately on purpose: the sandbox plays Gorgias strictly, and a mistake shared by one common copy
would pass both the worker's check and the sandbox's unseen. Keep them independent.

The checks (:mod:`worker.core.templates.checks`) are small callables over dicts and lists, built once per
schema; each problem is reported as ``<path>: <reason>`` (``messages[0].channel: required``). Measured with timeit
(CPython 3.11, shared 2-core VM, best of 5): a one-message ``create_ticket`` body ~11 µs, a
500-message one ~3.6 ms (~7 µs a message), ``{"names": [...]}`` with 10 tags ~3 µs. A reduced
JSON Schema of the same ticket compiled once with ``jsonschema`` (Draft 2020-12, ``iter_errors``) took
~180 µs for the one-message body, so the hand-written form is kept. Whole ``prepare()`` +
``render_one()`` of a flat ``create_ticket`` record (mapping, stamping, checking, encoding): ~50 µs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from worker.core.records.json_types import a_json_type
from worker.core.templates.checks import (
    BodySchema,
    Check,
    Field,
    Rule,
    add,
    anything,
    body_schema,
    boolean,
    datetime,
    email,
    identifier,
    integer,
    join,
    json_object,
    language,
    list_of,
    nullable,
    obj,
    one_of,
    slug,
    text,
)

__all__ = [
    "SCHEMAS",
    "BodySchema",
    "Check",
    "Field",
    "field_check",
]

BODY_MAX_BYTES: Final = 1_000_000
INTERNAL_NOTE: Final = "internal-note"

TICKET_VIA: Final = (
    "aircall", "api", "chat", "contact_form", "email", "facebook", "facebook-mention", "facebook-messenger",
    "facebook-recommendations", "form", "gorgias_chat", "help-center", "helpdesk", "instagram",
    "instagram-ad-comment", "instagram-comment", "instagram-direct-message", "instagram-mention",
    "internal-note", "offline_capture", "phone", "rule", "self_service", "shopify", "sms", "twilio", "twitter",
    "twitter-direct-message", "whatsapp", "yotpo", "yotpo-review", "zendesk",
)
TICKET_STATUS: Final = ("open", "closed")
TICKET_PRIORITY: Final = ("critical", "high", "normal", "low")


def _id_or_email(value: Mapping[str, Any], path: str, errors: list[str]) -> None:
    if "id" not in value and "email" not in value:
        add(errors, join(path, "email"), "required (a person is referenced by id or email)")


def _id_or_name(value: Mapping[str, Any], path: str, errors: list[str]) -> None:
    if "id" not in value and "name" not in value:
        add(errors, join(path, "name"), "required (a tag is referenced by id or name)")


_name = nullable(text(255))
_stamp = nullable(datetime)
_meta = nullable(json_object)
_long_text = nullable(text(max_bytes=BODY_MAX_BYTES))
_external_id = nullable(text(255))

PERSON = obj({
    "id": Field(integer(minimum=0)),
    "email": Field(email),
    "name": Field(_name),
    "firstname": Field(_name),
    "lastname": Field(_name),
}, _id_or_email, what="person reference")
ID_REF = obj({"id": Field(identifier, required=True)}, what="reference")
TAG_REF = obj({
    "id": Field(identifier), "name": Field(text(256, 1)), "decoration": Field(_meta),
    "description": Field(nullable(text(1024))),
}, _id_or_name, what="tag reference")
FIELD_VALUE = obj({"id": Field(identifier, required=True), "value": Field(anything, required=True)},
                  what="custom field value")
ADDRESS = obj({"address": Field(text(320, 1), required=True), "name": Field(_name)}, what="address")
SOURCE = obj({
    "type": Field(nullable(text(64))),
    "from": Field(nullable(ADDRESS)),
    "to": Field(list_of(ADDRESS)),
    "cc": Field(list_of(ADDRESS)),
    "bcc": Field(list_of(ADDRESS)),
    "extra": Field(_meta),
}, what="message source")
ATTACHMENT = obj({
    "url": Field(text(2048, 1), required=True),
    "name": Field(text(1024, 1), required=True),
    "content_type": Field(text(255, 1), required=True),
    "size": Field(nullable(integer(minimum=0))),
    "public": Field(boolean),
    "extra": Field(_meta),
}, what="attachment")


def _message_people(msg: Mapping[str, Any], path: str, errors: list[str]) -> None:
    """The sender/receiver rules Gorgias enforces since 2023-02-09, as far as the body alone tells."""
    from_agent = msg.get("from_agent")
    if msg.get("channel") == INTERNAL_NOTE:
        if from_agent is False:
            add(errors, join(path, "from_agent"), "must be true for an internal note")
        if msg.get("public") is True:
            add(errors, join(path, "public"), "an internal note cannot be public")
        if msg.get("receiver") is not None:
            add(errors, join(path, "receiver"), "an internal note has no receiver")
    elif from_agent is False and msg.get("receiver") is not None:
        add(errors, join(path, "receiver"), "a message from a customer (from_agent false) has no receiver")


MESSAGE_FIELDS: dict[str, Field] = {
    "channel": Field(slug, required=True),
    "via": Field(one_of(TICKET_VIA), required=True),
    "from_agent": Field(boolean, required=True),
    "public": Field(boolean),
    "sender": Field(nullable(PERSON)),
    "receiver": Field(nullable(PERSON)),
    "source": Field(nullable(SOURCE)),
    "subject": Field(nullable(text(998))),
    "body_text": Field(_long_text),
    "body_html": Field(_long_text),
    "stripped_text": Field(_long_text),
    "stripped_html": Field(_long_text),
    "stripped_signature": Field(_long_text),
    "attachments": Field(list_of(ATTACHMENT)),
    "integration_id": Field(nullable(identifier)),
    "message_id": Field(nullable(text(998))),
    "external_id": Field(_external_id),
    "created_datetime": Field(_stamp),
    "sent_datetime": Field(_stamp),
    "failed_datetime": Field(_stamp),
    "deleted_datetime": Field(_stamp),
    "opened_datetime": Field(_stamp),
    "headers": Field(_meta),
    "macros": Field(list_of(ID_REF)),
    "mention_ids": Field(list_of(identifier)),
    "meta": Field(_meta),
    "actions": Field(nullable(list_of(json_object))),
    "last_sending_error": Field(_meta),
}
MESSAGE = obj(MESSAGE_FIELDS, _message_people, what="ticket message")

_TICKET_COMMON: dict[str, Field] = {
    "channel": Field(slug),
    "via": Field(one_of(TICKET_VIA)),
    "subject": Field(nullable(text(998))),
    "status": Field(one_of(TICKET_STATUS)),
    "priority": Field(one_of(TICKET_PRIORITY)),
    "customer": Field(nullable(PERSON)),
    "assignee_user": Field(nullable(ID_REF)),
    "assignee_team": Field(nullable(ID_REF)),
    "tags": Field(list_of(TAG_REF)),
    "custom_fields": Field(list_of(FIELD_VALUE)),
    "external_id": Field(_external_id),
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


def _incoming_needs_someone(ticket: Mapping[str, Any], path: str, errors: list[str]) -> None:
    """An incoming message needs a sender; without one Gorgias can only fall back on the ticket's customer."""
    if ticket.get("customer") is not None:
        return
    messages = ticket.get("messages")
    if not isinstance(messages, list):
        return
    for i, msg in enumerate(messages):
        if isinstance(msg, Mapping) and msg.get("from_agent") is False and msg.get("channel") != INTERNAL_NOTE \
                and msg.get("sender") is None:
            add(errors, f"{join(path, 'messages')}[{i}].sender",
                 "required for a message from a customer when the ticket has no customer")
            return


def _not_empty(what: str) -> Rule:
    def rule(value: Mapping[str, Any], path: str, errors: list[str]) -> None:
        if not value:
            add(errors, path, f"empty: nothing to {what}")

    return rule


def _ids_or_names(value: Mapping[str, Any], path: str, errors: list[str]) -> None:
    if not value.get("ids") and not value.get("names"):
        add(errors, join(path, "names"), "required: at least one tag name (or ids)")


TICKET_CREATE = obj({
    **_TICKET_COMMON,
    "messages": Field(list_of(MESSAGE, 1, 500), required=True),
    "created_datetime": Field(_stamp),
}, _incoming_needs_someone, what="ticket")
TICKET_UPDATE = obj(_TICKET_COMMON, _not_empty("update"), what="ticket update")
MESSAGE_UPDATE = obj({k: Field(f.check) for k, f in MESSAGE_FIELDS.items()}, _not_empty("update"),
                     what="ticket message update")
"""A message update as a record gives it: only what changes (the message's own channel, via, from_agent,
people, source and sent_datetime are read first and sent back by the plan; ``sent_datetime: null`` means
"let Gorgias send it", mode send only)."""
TICKET_TAGS = obj({"ids": Field(list_of(identifier)), "names": Field(list_of(text(256, 1)))}, what="tag list")
TICKET_TAGS_CHANGE = obj({"ids": Field(list_of(identifier)), "names": Field(list_of(text(256, 1)))},
                         _ids_or_names, what="tag list")
FIELD_VALUES = list_of(FIELD_VALUE, 1)

CHANNEL = obj({
    "id": Field(identifier),
    "type": Field(text(64, 1), required=True),
    "address": Field(text(320, 1), required=True),
    "preferred": Field(boolean),
}, what="customer channel")
_CUSTOMER_FIELDS: dict[str, Field] = {
    "name": Field(_name),
    "firstname": Field(_name),
    "lastname": Field(_name),
    "email": Field(nullable(email)),
    "external_id": Field(_external_id),
    "language": Field(nullable(language)),
    "timezone": Field(nullable(text(64, 1))),
    "note": Field(nullable(text(10_000))),
    "meta": Field(_meta),
    "channels": Field(list_of(CHANNEL)),
    "custom_fields": Field(list_of(FIELD_VALUE)),
}
CUSTOMER_CREATE = obj(_CUSTOMER_FIELDS, _not_empty("create"), what="customer")
CUSTOMER_UPDATE = obj(_CUSTOMER_FIELDS, _not_empty("update"), what="customer update")
CUSTOMER_MERGE = obj(_CUSTOMER_FIELDS, what="customer merge")  # fields set on the target; {} allowed
CUSTOMER_DATA = obj({"data": Field(json_object, required=True), "version": Field(_stamp)}, what="customer data")
IDS = obj({"ids": Field(list_of(identifier, 1), required=True)}, what="id list")
TAG_CREATE = obj({
    "name": Field(text(256, 1), required=True),
    "description": Field(nullable(text(1024))),
    "decoration": Field(_meta),
}, what="tag")
JOB_TYPES: Final = ("updateTicket", "applyMacro", "deleteTicket")  # the ticket jobs that take ticket_ids


def _job_needs(value: Mapping[str, Any], path: str, errors: list[str]) -> None:
    params = value.get("params")
    if not isinstance(params, Mapping):
        return
    kind = value.get("type")
    if kind == "updateTicket" and not params.get("updates"):
        add(errors, join(path, "params.updates"), "required for an updateTicket job (record attribute updates, "
                                                     "or status, priority, assignee_user_id...)")
    if kind == "applyMacro" and "macro_id" not in params:
        add(errors, join(path, "params.macro_id"), "required for an applyMacro job")


JOB_UPDATES = obj({
    **{k: f for k, f in _TICKET_COMMON.items() if k not in ("tags", "assignee_team", "custom_fields")},
    "tags": Field(list_of(text(256, 1))),
    "assignee_team_id": Field(nullable(identifier)),
}, what="job's ticket updates")
"""What Gorgias' helpdesk sends in a job (1P-UI): tag names (added), ``assignee_team_id``; no custom fields."""
JOB_PARAMS = obj({
    "ticket_ids": Field(list_of(identifier, 1), required=True),
    "updates": Field(JOB_UPDATES),
    "macro_id": Field(identifier),
    "apply_and_close": Field(boolean),
}, what="ticket job's params")
JOB_CREATE = obj({
    "type": Field(one_of(JOB_TYPES), required=True),
    "params": Field(JOB_PARAMS, required=True),
    "scheduled_datetime": Field(_stamp),
    "meta": Field(_meta),
}, _job_needs, what="ticket job")
NO_BODY = obj({}, what="request without a body")


def raw_value(value: Any, path: str, errors: list[str]) -> None:
    """The body of a single-value custom-field route: a string, an integer or a boolean (SPEC; Gorgias'
    helpdesk sends nothing else); ``null`` is not sent but becomes a ``DELETE`` of the value."""
    if isinstance(value, float):
        add(errors, path, f"{value!r} has decimals: the single-value route takes a string, an integer or a "
                          "boolean; set it with set_ticket_custom_fields / set_customer_custom_fields")
    elif value is not None and not isinstance(value, str | int):
        add(errors, path, f"must be a string, an integer, a boolean, or null to clear it (got {a_json_type(value)})")


_SURVEY_FIELDS: dict[str, Field] = {
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
SURVEY_CREATE = obj(_SURVEY_FIELDS, what="satisfaction survey")
SURVEY_UPDATE = obj({k: Field(f.check) for k, f in _SURVEY_FIELDS.items()}, _not_empty("update"),
                    what="satisfaction survey update")


SCHEMAS: dict[str, BodySchema] = {
    s.name: s
    for s in (
        body_schema("ticket_create", TICKET_CREATE),
        body_schema("ticket_update", TICKET_UPDATE),
        body_schema("message", MESSAGE),
        body_schema("message_update", MESSAGE_UPDATE),
        body_schema("ticket_tags", TICKET_TAGS),
        body_schema("ticket_tags_change", TICKET_TAGS_CHANGE),
        body_schema("field_values", FIELD_VALUES),
        body_schema("customer_create", CUSTOMER_CREATE),
        body_schema("customer_update", CUSTOMER_UPDATE),
        body_schema("customer_data", CUSTOMER_DATA),
        body_schema("customer_merge", CUSTOMER_MERGE),
        body_schema("field_value", raw_value),
        body_schema("ticket_job", JOB_CREATE),
        body_schema("no_body", NO_BODY),
        body_schema("ids", IDS),
        body_schema("tag_create", TAG_CREATE),
        body_schema("survey_create", SURVEY_CREATE),
        body_schema("survey_update", SURVEY_UPDATE),
    )
}


def field_check(schema: BodySchema, path: str) -> Check | None:
    """The check of one body path (``priority``, ``messages[].channel``), or None when unknown."""
    return schema.fields.get(path)
