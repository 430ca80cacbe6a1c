"""Bodies are checked against the endpoint's schema before any call: RenderError names the field and why."""

from __future__ import annotations

import timeit
from typing import Any

import pytest

from tests.support.templates import destination, group, one, record
from worker.core.requests.render_error import RenderError
from worker.core.templates import renderer_for
from worker.core.templates.schema import SCHEMAS


def msg(**overrides: Any) -> dict[str, Any]:
    return {"channel": "api", "via": "api", "from_agent": False, "sender": {"email": "a@b.co"},
            "body_text": "hi", **overrides}


def refused(template: str, data: dict[str, Any]) -> str:
    with pytest.raises(RenderError) as caught:
        one(template, data)
    return caught.value.reason


def test_a_message_without_channel_is_named_with_its_index() -> None:
    m = msg()
    del m["channel"]
    assert refused("create_ticket", {"messages": [msg(), m]}) == "create_ticket: messages[1].channel: required"


@pytest.mark.parametrize(("data", "expected"), [
    ({"subject": "x" * 999}, "subject: longer than 998 characters (got 999)"),
    ({"external_id": "e" * 256}, "external_id: longer than 255 characters (got 256)"),
    ({"tags": ["t" * 257]}, "tags[0].name: longer than 256 characters (got 257)"),
    ({"tags": [""]}, "tags[0].name: must not be empty"),
    ({"priority": "urgent"}, "priority: must be one of critical, high, normal, low (got 'urgent')"),
    ({"status": "pending"}, "status: must be one of open, closed (got 'pending')"),
    ({"customer_email": "not-an-email"}, "customer.email: must be an email address (got 'not-an-email')"),
    ({"language": "english"}, "language: must be an ISO-639-1 code like en (got 'english')"),
    ({"created_datetime": "yesterday"}, "created_datetime: must be an ISO-8601 datetime"),
    ({"customer": {"name": "No Id"}}, "customer.email: required (a person is referenced by id or email)"),
    ({"customer": {"email": "a@b.co", "bogus": 1}}, "customer.bogus: unknown field"),
    ({"from_agent": 3}, "from_agent: must be true or false (got a number)"),
])
def test_ticket_field_limits(data: dict[str, Any], expected: str) -> None:
    base = {"body_text": "hello", "customer_email": "a@b.co"}
    assert expected in refused("create_ticket", {**base, **data})


def test_messages_count_between_1_and_500() -> None:
    assert "messages: needs 1 to 500 items (got 0)" in refused("create_ticket", {"messages": []})
    assert "messages: needs 1 to 500 items (got 501)" in refused(
        "create_ticket", {"customer_email": "a@b.co", "messages": [msg()] * 501})


def test_message_body_limited_to_one_megabyte_in_utf8_bytes() -> None:
    ok = "é" * 500_000  # exactly 1,000,000 bytes
    one("add_ticket_message", {"ticket_id": 1, "body_text": ok, "customer_email": "a@b.co"})
    reason = refused("add_ticket_message", {"ticket_id": 1, "body_text": ok + "e", "customer_email": "a@b.co"})
    assert reason == ("add_ticket_message: body_text: larger than 1,000,000 bytes (got 1,000,001); "
                      "Gorgias limits it to 1 MB")


@pytest.mark.parametrize(("data", "expected"), [
    ({"channel": "internal-note", "from_agent": False}, "from_agent: must be true for an internal note"),
    ({"channel": "internal-note", "from_agent": True, "public": True}, "public: an internal note cannot be public"),
    ({"channel": "internal-note", "from_agent": True, "receiver_email": "c@x.io"},
     "receiver: an internal note has no receiver"),
    ({"from_agent": False, "receiver_email": "c@x.io"},
     "receiver: a message from a customer (from_agent false) has no receiver"),
    ({"channel": "Email!"}, "channel: must be a channel slug"),
    ({"via": "carrier-pigeon"}, "via: must be one of aircall, api"),
])
def test_message_sender_and_receiver_rules(data: dict[str, Any], expected: str) -> None:
    assert expected in refused("add_ticket_message", {"ticket_id": 1, "body_text": "x", **data})


def test_several_problems_are_reported_together() -> None:
    reason = refused("create_ticket", {"body_text": "x", "customer_email": "a@b.co", "priority": "p", "status": "s"})
    assert reason.startswith("create_ticket: ")
    assert "status: must be one of" in reason and "priority: must be one of" in reason


def test_a_record_failing_in_a_group_is_refused_alone_in_prepare() -> None:
    renderer = renderer_for(destination("add_ticket_tags", batching={"algorithm": "by_attribute",
                                                                      "attributes": ["ticket_id"]}))
    good = renderer.prepare(record({"ticket_id": 1, "tags": ["a"]}, 0))
    with pytest.raises(RenderError, match=r"names\[0\]: longer than 256"):
        renderer.prepare(record({"ticket_id": 1, "tags": ["x" * 300]}, 1))
    assert renderer.render_batch(good.key, [good]).body == b'{"names":["a"]}'


def test_union_group_bodies_are_checked_again() -> None:
    rows = [{"customer_id": 1}, {"customer_id": 2}]
    assert group("delete_customers", rows, {"algorithm": "arrival_order"}).body == b'{"ids":[1,2]}'


def test_validation_is_cheap() -> None:
    body = {"channel": "api", "via": "api", "from_agent": False, "subject": "s", "customer": {"email": "a@b.co"},
            "external_id": "x", "messages": [msg(external_id="m")]}
    schema = SCHEMAS["ticket_create"]
    assert schema.validate(body) == []
    per_call = min(timeit.repeat(lambda: schema.validate(body), number=2000, repeat=3)) / 2000
    assert per_call < 200e-6  # measured ~9 µs; generous for loaded CI machines
