"""Contract tests of the second audit (gorgias-api-corrections.md, "Round two"): for each of its points the
sandbox answers with the recorded shapes and statuses, and behaves as Gorgias is documented or was
observed to. One test per point of issue 20; each names the fact it checks."""

from __future__ import annotations

from typing import Any

from gorgias_sandbox.settings import SandboxSettings
from tests.support.recorded_shapes import EMAIL_SOURCE, assert_shape
from tests.support.sandbox_api import Api, FakeClock, MakeApi, incoming_ticket, new_customer

STAMP = "2026-08-26T10:00:00.000000+00:00"


async def test_1_an_updated_message_keeps_what_the_body_says_and_is_sent_without_sent_datetime(api: Api) -> None:
    """DOC: channel, via, from_agent required; "if sent_datetime is omitted, the message will be sent".
    LIVE: the update answers 200 with the message."""
    await api.call("POST", "/api/tickets", incoming_ticket())
    reply = {"channel": "email", "via": "helpdesk", "from_agent": True, "source": EMAIL_SOURCE, "body_text": "Hi"}
    mid = (await api.call("POST", "/api/tickets/1/messages", {**reply, "sent_datetime": STAMP})).json["id"]
    for missing in ("channel", "via", "from_agent"):
        body = {k: v for k, v in reply.items() if k != missing}
        assert (await api.call("PUT", f"/api/tickets/1/messages/{mid}", body)).status == 400, missing
    kept = await api.call("PUT", f"/api/tickets/1/messages/{mid}", {**reply, "sent_datetime": STAMP})
    assert kept.status == 200 and (await api.state())["emailed"] == []
    assert_shape(kept.json, "message")
    sent = await api.call("PUT", f"/api/tickets/1/messages/{mid}", reply)
    assert sent.status == 200 and [e["message_id"] for e in (await api.state())["emailed"]] == [mid]


async def test_2_a_job_is_pending_when_created_and_ends_later(make_api: MakeApi, clock: FakeClock) -> None:
    """DOC: POST /api/jobs answers the job pending; it ends done, errored or fatal_errored; SPEC: the read
    answers 202. 1P-UI: updates carry tags as names and assignee_team_id."""
    api = await make_api(SandboxSettings(rate_limit="off", job_duration_s=60))
    await api.call("POST", "/api/tickets", incoming_ticket())
    created = await api.call("POST", "/api/jobs", {"type": "updateTicket", "params": {
        "ticket_ids": [1], "updates": {"tags": ["vip"], "assignee_team_id": 3}}})
    assert created.status == 201 and created.json["status"] == "pending"
    assert_shape(created.json, "job")
    clock.advance(60)
    read = await api.call("GET", f"/api/jobs/{created.json['id']}")
    assert read.status == 202 and read.json["status"] == "done"
    assert_shape(read.json, "job")
    ticket = (await api.call("GET", "/api/tickets/1")).json
    assert [t["name"] for t in ticket["tags"]] == ["vip"] and ticket["assignee_team"] == {"id": 3}


async def test_3_custom_fields_in_a_ticket_put_replace_every_value(api: Api) -> None:
    """3P: custom_fields inside PUT /api/tickets/{id} replaces every custom-field value of the ticket."""
    await api.call("POST", "/api/tickets", incoming_ticket(custom_fields=[{"id": 1, "value": "Refund"},
                                                                          {"id": 2, "value": "A-1"}]))
    r = await api.call("PUT", "/api/tickets/1", {"custom_fields": [{"id": 2, "value": "A-2"}]})
    assert r.status == 202
    assert r.json["custom_fields"] == {"2": {"id": 2, "value": "A-2"}}  # the contact reason is lost


async def test_4_a_merge_needs_a_body_answers_200_and_applies_no_field(api: Api) -> None:
    """3P: an empty merge body is refused; LIVE: a merge answered 200 with the target, the body's name not
    applied."""
    for email in ("a@example.com", "b@example.com"):
        await api.call("POST", "/api/customers", new_customer(email, name="Same"))
    assert (await api.call("PUT", "/api/customers/merge?source_id=1&target_id=2", {})).status == 400
    r = await api.call("PUT", "/api/customers/merge?source_id=1&target_id=2", {"name": "Renamed"})
    assert r.status == 200 and r.json["id"] == 2 and r.json["name"] == "Same"
    assert_shape(r.json, "customer")


async def test_5_a_ticket_tag_write_naming_a_missing_tag_is_refused(api: Api) -> None:
    """3P: names must already exist (a tag deleted or merged away does not); LIVE: 200 with an empty body."""
    await api.call("POST", "/api/tickets", incoming_ticket())
    await api.call("POST", "/api/tags", {"name": "vip"})
    ok = await api.call("POST", "/api/tickets/1/tags", {"names": ["vip"]})
    assert ok.status == 200 and ok.raw == b""
    await api.call("DELETE", "/api/tags/1")
    assert (await api.call("POST", "/api/tickets/1/tags", {"names": ["vip"]})).status == 400


async def test_6_a_customer_update_needs_no_contact_data(api: Api) -> None:
    """SPEC: channels are required on create only."""
    assert (await api.call("POST", "/api/customers", {"external_id": "crm-1", "name": "Jane"})).status == 400
    await api.call("POST", "/api/customers", new_customer(external_id="crm-1"))
    r = await api.call("PUT", "/api/customers/1", {"external_id": "crm-1", "note": "VIP"})
    assert r.status == 202 and r.json["note"] == "VIP"
    assert_shape(r.json, "customer")


async def test_7_single_value_routes_take_a_raw_string_integer_or_boolean(api: Api) -> None:
    """SPEC and 1P-UI: the body is the raw value; DOC/3P: dropdown choices only, system-managed values are
    not set by API clients; LIVE: the answer is one {field, prediction, value} item."""
    await api.call("POST", "/api/tickets", incoming_ticket())
    answers: list[Any] = []
    for fid, value in ((1, "Refund"), (3, 12), (4, False), (8, "Late")):
        r = await api.call("PUT", f"/api/tickets/1/custom-fields/{fid}", value)
        assert r.status == 200, fid
        answers.append(r.json)
    for item in answers:
        assert_shape(item, "field_value")
        assert_shape(item["field"], "custom_field")
    for fid, body in ((1, {"id": 1, "value": "x"}), (1, None), (3, 1.5), (8, "Stolen"), (7, "order/status")):
        assert (await api.call("PUT", f"/api/tickets/1/custom-fields/{fid}", body)).status == 400, (fid, body)
    assert (await api.call("DELETE", "/api/tickets/1/custom-fields/1")).status == 204
