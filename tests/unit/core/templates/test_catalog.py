"""Every template: its method and URL, an example record's exact body, a group's exact body."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.templates import SENT, body, group, one, stamp
from worker.core.requests.render_error import RenderError
from worker.core.templates import get_template, list_templates

NAMES = [
    "create_ticket", "update_ticket", "add_ticket_message", "create_customer", "update_customer",
    "set_customer_data", "add_ticket_tags", "set_ticket_tags", "remove_ticket_tags", "set_ticket_custom_fields",
    "set_customer_custom_fields", "delete_customers", "create_satisfaction_survey", "update_satisfaction_survey",
    "create_tag", "upsert_customer", "set_ticket_field", "set_customer_field", "delete_ticket",
    "update_ticket_message", "delete_ticket_message", "merge_customers", "ticket_job",
]


def test_the_catalog_has_every_template_in_order() -> None:
    assert [t.name for t in list_templates()] == NAMES
    for t in list_templates():
        assert t.summary and t.url.startswith("https://{domain}.gorgias.com/api/")
        assert t.example.get("record"), f"{t.name} needs an example record"


def test_an_unknown_template_names_the_setting_and_the_known_ones() -> None:
    expected = r"^endpoint.template: unknown template 'create_tickets' \(known: create_ticket,"
    with pytest.raises(ValueError, match=expected):
        get_template("create_tickets")
    with pytest.raises(ValueError, match=r"did you mean 'create_ticket'\?$"):
        get_template("create_tickets")
    with pytest.raises(ValueError) as far:
        get_template("zzzz")
    assert "did you mean" not in str(far.value)


EXAMPLES: dict[str, tuple[str, str, Any]] = {
    "create_ticket": ("POST", "https://acme.gorgias.com/api/tickets", {
        "subject": "Where is my order #1234?",
        "customer": {"email": "jane@example.com", "name": "Jane Doe"},
        "tags": [{"name": "order-status"}],
        "channel": "api", "via": "api", "from_agent": False,
        "messages": [{
            "channel": "api", "via": "api", "from_agent": False, "sender": {"email": "jane@example.com"},
            "subject": "Where is my order #1234?", "body_text": "Hi, my order hasn't arrived yet.",
            "external_id": stamp(0), "sent_datetime": SENT,
        }],
        "external_id": stamp(0),
    }),
    "update_ticket": ("PUT", "https://acme.gorgias.com/api/tickets/123",
                      {"status": "closed", "priority": "high", "assignee_user": {"id": 7}}),
    "add_ticket_message": ("POST", "https://acme.gorgias.com/api/tickets/123/messages", {
        "channel": "internal-note", "via": "api", "from_agent": True, "body_text": "It ships today.",
        "external_id": stamp(0), "sent_datetime": SENT,
    }),
    "create_customer": ("POST", "https://acme.gorgias.com/api/customers", {
        "language": "en", "name": "Jane Doe", "email": "jane@example.com",
        "channels": [{"type": "email", "address": "jane@example.com", "preferred": True},
                     {"type": "phone", "address": "+14155550100", "preferred": False}],
        "external_id": stamp(0),
    }),
    "update_customer": ("PUT", "https://acme.gorgias.com/api/customers/3924",
                        {"timezone": "America/New_York", "note": "VIP"}),
    "set_customer_data": ("PUT", "https://acme.gorgias.com/api/customers/3924/data",
                          {"data": {"tier": "gold", "orders": 12}, "version": "2024-05-01T10:05:00"}),
    "add_ticket_tags": ("POST", "https://acme.gorgias.com/api/tickets/123/tags", {"names": ["vip", "refund"]}),
    "set_ticket_tags": ("PUT", "https://acme.gorgias.com/api/tickets/123/tags", {"names": ["vip", "refund"]}),
    "remove_ticket_tags": ("DELETE", "https://acme.gorgias.com/api/tickets/123/tags", {"names": ["vip", "refund"]}),
    "set_ticket_custom_fields": ("PUT", "https://acme.gorgias.com/api/tickets/123/custom-fields",
                                 [{"id": 2, "value": "1234"}]),
    "set_customer_custom_fields": ("PUT", "https://acme.gorgias.com/api/customers/3924/custom-fields",
                                   [{"id": 5, "value": "gold"}]),
    "delete_customers": ("DELETE", "https://acme.gorgias.com/api/customers", {"ids": [3924]}),
    "create_satisfaction_survey": ("POST", "https://acme.gorgias.com/api/satisfaction-surveys",
                                   {"score": 5, "body_text": "Great help!", "customer_id": 3924, "ticket_id": 123,
                                    "should_send_datetime": None}),
    "update_satisfaction_survey": ("PUT", "https://acme.gorgias.com/api/satisfaction-surveys/17",
                                   {"score": 4, "body_text": "Quick answer."}),
    "create_tag": ("POST", "https://acme.gorgias.com/api/tags",
                   {"name": "vip", "description": "Very important customers", "decoration": {"color": "#F58D86"}}),
    "upsert_customer": ("POST", "https://acme.gorgias.com/api/customers", {
        "note": "VIP", "name": "Jane Doe", "email": "jane@example.com",
        "channels": [{"type": "email", "address": "jane@example.com", "preferred": True}],
    }),
    "set_ticket_field": ("PUT", "https://acme.gorgias.com/api/tickets/123/custom-fields/2", "Shipping"),
    "set_customer_field": ("PUT", "https://acme.gorgias.com/api/customers/3924/custom-fields/5", "gold"),
    "delete_ticket": ("DELETE", "https://acme.gorgias.com/api/tickets/123", None),
    "update_ticket_message": ("PUT", "https://acme.gorgias.com/api/tickets/123/messages/456", {
        "body_text": "It ships on Tuesday.",  # the changes; the plan reads the message and sends it back under them
    }),
    "delete_ticket_message": ("DELETE", "https://acme.gorgias.com/api/tickets/123/messages/456", None),
    "merge_customers": ("PUT", "https://acme.gorgias.com/api/customers/merge?source_id=3925&target_id=3924", {}),
    "ticket_job": ("POST", "https://acme.gorgias.com/api/jobs",
                   {"type": "updateTicket", "params": {"ticket_ids": [123], "updates": {"status": "closed"}}}),
}


@pytest.mark.parametrize("name", NAMES)
def test_the_example_record_makes_the_exact_request(name: str) -> None:
    method, url, expected = EXAMPLES[name]
    request = one(name, get_template(name).example["record"])
    assert (request.method, request.url) == (method, url)
    if expected is None:  # a DELETE of one object: no body at all
        assert request.body is None and request.content_type is None
        return
    assert request.content_type == "application/json"
    assert request.headers["Content-Type"] == "application/json"
    assert body(request) == expected


GROUPS: dict[str, Any] = {
    "create_ticket": {
        "subject": "Where is my order #1234?",
        "customer": {"email": "jane@example.com"},
        "channel": "api", "via": "api", "from_agent": False,
        "messages": [
            {"channel": "api", "via": "api", "from_agent": False, "sender": {"email": "jane@example.com"},
             "subject": "Where is my order #1234?", "body_text": "Hi, my order hasn't arrived yet.",
             "external_id": stamp(0), "sent_datetime": SENT},
            {"channel": "api", "via": "api", "from_agent": False, "sender": {"email": "jane@example.com"},
             "body_text": "It was due on Monday.", "external_id": stamp(1), "sent_datetime": SENT},
        ],
        "external_id": stamp(0),
        "tags": [{"name": "urgent"}],
    },
    "update_ticket": {"status": "closed", "priority": "high", "tags": [{"name": "refund"}, {"name": "vip"}]},
    "set_customer_data": {"data": {"tier": "gold"}, "version": "2024-05-01T10:05:00"},
    "add_ticket_tags": {"names": ["vip", "refund", "urgent", "late"]},
    "set_ticket_tags": {"names": ["vip", "refund", "urgent", "late"]},
    "remove_ticket_tags": {"names": ["vip", "refund", "urgent", "late"]},
    "set_ticket_custom_fields": [{"id": 1, "value": "Shipping"}, {"id": 2, "value": "1234"}, {"id": 4, "value": True}],
    "set_customer_custom_fields": [{"id": 5, "value": "gold"}, {"id": 6, "value": 12}],
    "delete_customers": {"ids": [3924, 3925, 3926]},
    "upsert_customer": {"name": "Jane Doe", "email": "jane@example.com", "note": "VIP", "language": "en",
                        "channels": [{"type": "email", "address": "jane@example.com", "preferred": True}]},
    "ticket_job": {"type": "updateTicket", "params": {"ticket_ids": [123, 124, 125, 126],
                                                      "updates": {"status": "closed"}}},
}


@pytest.mark.parametrize("name", NAMES)
def test_a_group_makes_one_call_or_batching_is_refused(name: str) -> None:
    template = get_template(name)
    if name not in GROUPS:
        assert not template.batchable
        assert "batch" not in template.example
        return
    request = group(name, template.example["batch"], template.example["batching"])
    assert request.method == template.method
    assert body(request) == GROUPS[name]


# --------------------------------------------------------------------------------------------------
# create_ticket


def test_create_ticket_agent_message_goes_to_the_customer() -> None:
    got = body(one("create_ticket", {"subject": "Hello", "body_text": "We shipped it.", "from_agent": "true",
                                     "customer_email": "jane@example.com", "channel": "api"}))
    msg = got["messages"][0]
    assert got["from_agent"] is True and got["channel"] == "api"
    assert msg["from_agent"] is True and msg["channel"] == "api"
    assert msg["receiver"] == {"email": "jane@example.com"}
    assert "sender" not in msg  # Gorgias uses the bot user
    with pytest.raises(RenderError, match=r"messages\[0\]\.source: required for an email message.*no sender_email"):
        one("create_ticket", {"body_text": "x", "from_agent": True, "customer_email": "j@x.io", "channel": "email"})


def test_create_ticket_takes_a_full_messages_array_and_stamps_each_message() -> None:
    messages = [
        {"channel": "api", "via": "api", "from_agent": False, "body_text": "a"},
        {"channel": "api", "via": "api", "from_agent": False, "body_text": "b", "external_id": "kept"},
    ]
    got = body(one("create_ticket", {"customer": {"id": 5}, "messages": messages, "external_id": "crm-1"}, offset=3))
    assert got["external_id"] == "crm-1"  # the record's own external_id is kept
    assert [m["external_id"] for m in got["messages"]] == [f"{stamp(3)}-0", "kept"]
    assert got["messages"][0]["sender"] == {"id": 5}  # from the ticket's customer
    assert got["customer"] == {"id": 5}


def test_create_ticket_tags_from_a_comma_separated_string_and_ids() -> None:
    got = body(one("create_ticket", {"body_text": "x", "customer_email": "a@b.co", "tags": "vip, refund"}))
    assert got["tags"] == [{"name": "vip"}, {"name": "refund"}]
    got = body(one("create_ticket", {"body_text": "x", "customer_email": "a@b.co", "tags": [3, {"name": "z"}]}))
    assert got["tags"] == [{"id": 3}, {"name": "z"}]


def test_create_ticket_without_a_message_text_is_refused_naming_the_field() -> None:
    with pytest.raises(RenderError, match=r"messages\[0\]\.body_text: required"):
        one("create_ticket", {"subject": "no body", "customer_email": "a@b.co"})


def test_create_ticket_incoming_message_without_anyone_is_refused() -> None:
    with pytest.raises(RenderError, match=r"messages\[0\]\.sender: required for a message from a customer"):
        one("create_ticket", {"body_text": "who am I?"})


def test_create_ticket_group_merges_tags_and_keeps_the_first_records_ticket_fields() -> None:
    rows: list[dict[str, Any]] = [
        {"conversation_id": "c1", "subject": "First", "body_text": "1", "customer_email": "a@b.co", "tags": ["x"]},
        {"conversation_id": "c1", "subject": "Second", "body_text": "2", "customer_email": "a@b.co",
         "tags": ["x", "y"], "from_agent": True, "sender_email": "agent@acme.com"},
    ]
    got = body(group("create_ticket", rows, {"algorithm": "by_attribute", "attributes": ["conversation_id"]}))
    assert got["subject"] == "First"
    assert got["tags"] == [{"name": "x"}, {"name": "y"}]
    assert [m["body_text"] for m in got["messages"]] == ["1", "2"]
    assert got["messages"][1]["sender"] == {"email": "agent@acme.com"}
    assert got["messages"][1]["receiver"] == {"email": "a@b.co"}


# --------------------------------------------------------------------------------------------------
# the others


def test_update_ticket_unassigns_with_null_and_replaces_tags() -> None:
    got = body(one("update_ticket", {"ticket_id": 9, "assignee_user_id": None, "tags": ["a"], "unrelated": 1}))
    assert got == {"assignee_user": None, "tags": [{"name": "a"}]}


def test_update_ticket_with_nothing_to_update_is_refused() -> None:
    with pytest.raises(RenderError, match="update_ticket: body: empty: nothing to update"):
        one("update_ticket", {"ticket_id": 9, "stauts": "closed"})


def test_add_ticket_message_incoming_and_outgoing_counterparts() -> None:
    incoming = body(one("add_ticket_message", {"ticket_id": 1, "body_text": "hi", "customer_email": "c@x.io"}))
    assert incoming["sender"] == {"email": "c@x.io"} and "receiver" not in incoming
    reply = body(one("add_ticket_message", {"ticket_id": 1, "body_text": "yo", "from_agent": True,
                                            "customer_email": "c@x.io", "sender_email": "agent@acme.com"}))
    assert reply["sender"] == {"email": "agent@acme.com"} and reply["receiver"] == {"email": "c@x.io"}


def test_add_ticket_message_keeps_the_records_external_id() -> None:
    got = body(one("add_ticket_message", {"ticket_id": 1, "body_text": "hi", "customer_email": "c@x.io",
                                          "external_id": "msg-7"}))
    assert got["external_id"] == "msg-7"


def test_set_customer_data_sends_the_rest_of_the_record_without_a_data_attribute() -> None:
    got = body(one("set_customer_data", {"customer_id": 4, "tier": "gold", "orders": 3, "version": "2024-01-01"}))
    assert got == {"data": {"tier": "gold", "orders": 3}, "version": "2024-01-01"}


def test_set_customer_data_group_keeps_the_latest_version_whatever_the_order() -> None:
    rows = [{"customer_id": 4, "data": {"v": 2}, "version": "2024-05-02T00:00:00"},
            {"customer_id": 4, "data": {"v": 1}, "version": "2024-05-01T00:00:00"}]
    assert body(group("set_customer_data", rows, {"algorithm": "by_attribute", "attributes": ["customer_id"]})) == {
        "data": {"v": 2}, "version": "2024-05-02T00:00:00"}
    rows = [{"customer_id": 4, "data": {"v": 1}}, {"customer_id": 4, "data": {"v": 2}}]
    assert body(group("set_customer_data", rows, {"algorithm": "by_attribute", "attributes": ["customer_id"]})) == {
        "data": {"v": 2}}


def test_ticket_tags_take_ids_too_and_a_group_unions_them() -> None:
    assert body(one("add_ticket_tags", {"ticket_id": 1, "tags": [5, "a", {"id": 6}]})) == {
        "names": ["a"], "ids": [5, 6]}
    rows = [{"ticket_id": 1, "ids": [5]}, {"ticket_id": 1, "tag_ids": "6"}, {"ticket_id": 1, "names": ["a"]}]
    assert body(group("remove_ticket_tags", rows, {"algorithm": "by_attribute", "attributes": ["ticket_id"]})) == {
        "ids": [5, 6], "names": ["a"]}


def test_set_ticket_tags_with_an_empty_list_clears_but_a_missing_one_is_refused() -> None:
    assert body(one("set_ticket_tags", {"ticket_id": 1, "tags": []})) == {"names": []}
    with pytest.raises(RenderError, match="set_ticket_tags: names: required"):
        one("set_ticket_tags", {"ticket_id": 1, "labels": ["a"]})


def test_add_ticket_tags_needs_at_least_one_tag() -> None:
    with pytest.raises(RenderError, match=r"add_ticket_tags: names: required: at least one tag name"):
        one("add_ticket_tags", {"ticket_id": 1, "tags": []})


def test_custom_fields_from_flat_records_with_string_ids_and_the_last_value_wins() -> None:
    assert body(one("set_ticket_custom_fields", {"ticket_id": 1, "field_id": "3", "value": 12.5})) == [
        {"id": 3, "value": 12.5}]
    rows = [{"ticket_id": 1, "field_id": 1, "value": "a"}, {"ticket_id": 1, "field_id": 2, "value": "b"},
            {"ticket_id": 1, "field_id": 1, "value": "c"}]
    got = body(group("set_ticket_custom_fields", rows, {"algorithm": "by_attribute", "attributes": ["ticket_id"]}))
    assert got == [{"id": 2, "value": "b"}, {"id": 1, "value": "c"}]


def test_delete_customers_accepts_an_id_list_in_a_string() -> None:
    assert body(one("delete_customers", {"ids": "4, 5"})) == {"ids": [4, 5]}
    with pytest.raises(RenderError, match=r"delete_customers: ids\[0\]: must be an integer \(got a string\)"):
        one("delete_customers", {"customer_id": "x"})


def test_satisfaction_survey_ids_from_strings_and_score_bounds() -> None:
    got = body(one("create_satisfaction_survey", {"ticket_id": "12", "customer_id": "3", "score": 4}))
    assert got == {"score": 4, "customer_id": 3, "ticket_id": 12, "should_send_datetime": None}
    with pytest.raises(RenderError, match=r"score: must be <= 5 \(got 6\)"):
        one("create_satisfaction_survey", {"ticket_id": 12, "customer_id": 3, "score": 6})
    with pytest.raises(RenderError, match=r"customer_id: required \(record attribute customer_id: absent\)"):
        one("create_satisfaction_survey", {"ticket_id": 12})


def test_create_tag_needs_a_name() -> None:
    with pytest.raises(RenderError, match=r"create_tag: name: required \(record attribute name or tag: absent\)"):
        one("create_tag", {"description": "nameless"})
    assert body(one("create_tag", {"tag": "vip"})) == {"name": "vip"}
