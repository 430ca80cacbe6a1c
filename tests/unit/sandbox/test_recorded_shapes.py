"""Contract tests: the sandbox's answers have the keys and value types recorded from a real Gorgias account.

The fixtures under ``fixtures/`` are our own summaries of recorded real responses (keys and JSON types,
no data; each names the recording it summarises). A key the recording had must be present with one of
its types; a key the sandbox adds must be listed under ``not_recorded`` with the reason.
"""

from __future__ import annotations

import pytest

from tests.support.recorded_shapes import EMAIL_SOURCE, FIXTURES, assert_shape, fixture, shape_problems
from tests.support.sandbox_api import Api, incoming_ticket, new_customer


def test_the_checker_reports_missing_unrecorded_and_mistyped_keys() -> None:
    tag = {"id": "1", "decoration": None, "description": None, "name": "x", "usage": 0, "uri": "/api/tags/1/",
           "created_datetime": "2026-08-26T19:23:52.290160+00:00", "colour": "red"}
    assert shape_problems(tag, "tag") == ["tag: missing deleted_datetime", "tag: unrecorded colour",
                                          "tag.id: string, recorded integer"]


def test_every_fixture_names_its_recording_or_its_source_and_uses_json_types() -> None:
    names = sorted(p.stem for p in FIXTURES.glob("*.json"))
    assert len(names) >= 10
    allowed = {"string", "integer", "number", "boolean", "null", "object", "array"}
    for name in names:
        spec = fixture(name)
        if "recorded" in spec:
            assert "NangoHQ/integration-templates" in spec["recorded"]
        else:  # written from the documented facts where no real answer was recorded
            assert spec["source"].startswith("not recorded") and "DOC" in spec["source"], name
        assert all(set(types) <= allowed and types for types in spec["keys"].values()), name


async def test_ticket_with_messages_customer_and_tags(api: Api) -> None:
    body = incoming_ticket(tags=[{"name": "vip"}], messages=[
        incoming_ticket()["messages"][0],
        {"channel": "email", "via": "api", "from_agent": True, "body_text": "Hello", "source": EMAIL_SOURCE,
         "sent_datetime": "2026-08-26T10:00:00Z"}])
    r = await api.call("POST", "/api/tickets", body)
    assert r.status == 201
    ticket = r.json
    assert_shape(ticket, "ticket")
    assert_shape(ticket["customer"], "ticket_customer")
    assert_shape(ticket["requester"], "ticket_customer")
    assert_shape(ticket["customer"]["channels"][0], "customer_channel")
    for message in ticket["messages"]:
        assert_shape(message, "message")
        assert_shape(message["sender"], "person")
    assert_shape(ticket["messages"][1]["receiver"], "person")
    # tags embedded in a ticket: no recording has one (the recorded ticket had none)
    listed = await api.call("GET", "/api/tickets")
    assert_shape(listed.json, "list_envelope")
    assert all(shape_problems(t, "ticket") == ["ticket: missing messages"] for t in listed.json["data"])


async def test_messages_created_and_listed(api: Api) -> None:
    await api.call("POST", "/api/tickets", incoming_ticket())
    created = await api.call("POST", "/api/tickets/1/messages", {
        "channel": "email", "via": "api", "from_agent": True, "body_text": "Hi", "source": EMAIL_SOURCE})
    assert created.status == 201
    assert_shape(created.json, "message")
    page = await api.call("GET", "/api/tickets/1/messages")
    assert_shape(page.json["meta"], "message_page_meta")
    for message in page.json["data"]:
        assert_shape(message, "message")
    for message in (await api.call("GET", "/api/messages?ticket_id=1")).json["data"]:
        assert_shape(message, "message")


async def test_customer_and_channels(api: Api) -> None:
    r = await api.call("POST", "/api/customers", new_customer(name="Jane Doe"))
    assert r.status == 201
    assert_shape(r.json, "customer")
    assert_shape(r.json["channels"][0], "customer_channel")
    for customer in (await api.call("GET", "/api/customers")).json["data"]:
        assert_shape(customer, "customer")
    assert_shape((await api.call("PUT", "/api/customers/1", {"note": "x"})).json, "customer")


async def test_tags(api: Api) -> None:
    r = await api.call("POST", "/api/tags", {"name": "vip"})
    assert_shape(r.json, "tag")
    await api.call("POST", "/api/tickets", incoming_ticket())
    await api.call("POST", "/api/tickets/1/tags", {"ids": [1]})
    for tag in (await api.call("GET", "/api/tickets/1/tags")).json:
        assert_shape(tag, "tag")


@pytest.mark.parametrize("owner", ["/api/tickets/1", "/api/customers/1"])
async def test_custom_field_values(api: Api, owner: str) -> None:
    await api.call("POST", "/api/tickets", incoming_ticket())
    field = 1 if "tickets" in owner else 5
    bulk = await api.call("PUT", f"{owner}/custom-fields", [{"id": field, "value": "x"}])
    assert set(bulk.json) == {"data"}
    for item in bulk.json["data"]:
        assert_shape(item, "field_value")
        assert_shape(item["field"], "custom_field")
    single = await api.call("PUT", f"{owner}/custom-fields/{field}", "y")
    assert_shape(single.json, "field_value")
    assert_shape(single.json["field"], "custom_field")
