"""Ticket messages: create / update / delete / read, and the sender-receiver rules."""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.sandbox.conftest import Api, incoming_ticket


@pytest.fixture
async def ticket(api: Api) -> dict[str, Any]:
    return (await api.call("POST", "/api/tickets", incoming_ticket())).json  # type: ignore[no-any-return]


def msg(**fields: Any) -> dict[str, Any]:
    return {"channel": "email", "via": "api", "from_agent": True, "body_text": "hello", **fields}


async def test_agent_reply_defaults_receiver_to_ticket_customer(api: Api, ticket: dict[str, Any]) -> None:
    r = await api.call("POST", "/api/tickets/1/messages", msg(sender={"id": 1}))
    assert r.status == 201
    m = r.json
    assert m["sender"]["email"] == "agent@acme.com"
    assert m["receiver"]["id"] == ticket["customer"]["id"]
    assert m["sent_datetime"] is None  # outgoing: sent asynchronously
    assert m["source"]["to"] == [{"address": "jane@example.com", "name": "Jane Doe"}]


async def test_agent_message_without_sender_comes_from_the_bot(api: Api, ticket: dict[str, Any]) -> None:
    m = (await api.call("POST", "/api/tickets/1/messages", msg())).json
    assert m["sender"]["email"] == "bot@acme.gorgias.io"


async def test_agent_sender_must_be_an_existing_user(api: Api, ticket: dict[str, Any]) -> None:
    r = await api.call("POST", "/api/tickets/1/messages", msg(sender={"email": "jane@example.com"}))
    assert r.status == 400
    assert r.json["error"] == {"msg": "Failed to create message", "data": {
        "sender": ["The sender of a message from an agent must be an existing user."]}}


async def test_agent_receiver_must_be_a_customer(api: Api, ticket: dict[str, Any]) -> None:
    r = await api.call("POST", "/api/tickets/1/messages", msg(receiver={"id": 999}))
    assert r.status == 400 and r.json["error"]["data"] == {"receiver": ["Customer not found."]}
    r = await api.call("POST", "/api/tickets/1/messages", msg(receiver={"email": "other@example.com"}))
    assert r.status == 201 and r.json["receiver"]["email"] == "other@example.com"


async def test_incoming_sender_must_be_a_customer_and_receiver_absent(api: Api, ticket: dict[str, Any]) -> None:
    r = await api.call("POST", "/api/tickets/1/messages",
                       msg(from_agent=False, sender={"email": "jane@example.com"}, receiver={"id": 1}))
    assert r.status == 400
    assert r.json["error"]["data"] == {"receiver": ["Messages from customers cannot have a receiver."]}
    r = await api.call("POST", "/api/tickets/1/messages", msg(from_agent=False, sender={"id": 55}))
    assert r.json["error"]["data"] == {"sender": ["Customer not found."]}


async def test_incoming_without_sender_uses_ticket_customer(api: Api, ticket: dict[str, Any]) -> None:
    r = await api.call("POST", "/api/tickets/1/messages", msg(from_agent=False))
    assert r.status == 201 and r.json["sender"]["id"] == ticket["customer"]["id"]


async def test_incoming_without_sender_on_new_ticket_is_missing(api: Api) -> None:
    body = {"messages": [msg(from_agent=False)]}
    r = await api.call("POST", "/api/tickets", body)
    assert r.status == 400
    assert r.json["error"]["data"] == {"messages": {"0": {"sender": ["Missing data for required field."]}}}


async def test_internal_note_rules(api: Api, ticket: dict[str, Any]) -> None:
    note = msg(channel="internal-note", via="internal-note", sender={"id": 1}, mention_ids=[1])
    r = await api.call("POST", "/api/tickets/1/messages", note)
    assert r.status == 201 and r.json["public"] is False and r.json["receiver"] is None
    assert r.json["sent_datetime"] is not None
    r = await api.call("POST", "/api/tickets/1/messages", {**note, "from_agent": False, "public": True,
                                                           "receiver": {"id": 1}})
    assert r.status == 400
    assert r.json["error"]["data"] == {
        "from_agent": ["Internal notes must be sent by an agent (from_agent: true)."],
        "public": ["Internal notes cannot be public."],
        "receiver": ["Internal notes cannot have a receiver."],
    }


async def test_sent_datetime_given_means_imported(api: Api, ticket: dict[str, Any]) -> None:
    r = await api.call("POST", "/api/tickets/1/messages", msg(sent_datetime="2020-01-02T03:04:05.000006"))
    assert r.json["imported"] is True and r.json["sent_datetime"] == "2020-01-02T03:04:05.000006"


async def test_required_fields_and_action_param(api: Api, ticket: dict[str, Any]) -> None:
    r = await api.call("POST", "/api/tickets/1/messages", {"body_text": "x"})
    assert r.json["error"]["data"] == {f: ["Missing data for required field."]
                                       for f in ("channel", "via", "from_agent")}
    assert (await api.call("POST", "/api/tickets/1/messages?action=force", msg())).status == 201
    assert (await api.call("POST", "/api/tickets/1/messages?action=explode", msg())).status == 400


async def test_message_on_unknown_ticket_is_404(api: Api) -> None:
    r = await api.call("POST", "/api/tickets/9/messages", msg())
    assert r.status == 404 and r.json == {"error": {"msg": "Resource not found."}}


async def test_update_message_returns_202(api: Api, ticket: dict[str, Any]) -> None:
    mid = ticket["messages"][0]["id"]
    r = await api.call("PUT", f"/api/tickets/1/messages/{mid}",
                       {"channel": "api", "via": "api", "from_agent": False, "body_text": "edited"})
    assert r.status == 202
    assert r.json["body_text"] == "edited" and r.json["sender"]["id"] == ticket["customer"]["id"]
    assert r.json["id"] == mid and r.json["created_datetime"] == ticket["messages"][0]["created_datetime"]
    r = await api.call("PUT", f"/api/tickets/1/messages/{mid}", {"body_text": "no required fields"})
    assert r.status == 400


async def test_delete_message_200_empty_then_404(api: Api, ticket: dict[str, Any]) -> None:
    mid = ticket["messages"][0]["id"]
    r = await api.call("DELETE", f"/api/tickets/1/messages/{mid}")
    assert r.status == 200 and r.raw == b""
    assert (await api.call("DELETE", f"/api/tickets/1/messages/{mid}")).status == 404
    assert (await api.state())["tickets"][0]["messages"] == []


async def test_message_of_another_ticket_is_404(api: Api, ticket: dict[str, Any]) -> None:
    await api.call("POST", "/api/tickets", incoming_ticket())
    mid = ticket["messages"][0]["id"]
    assert (await api.call("GET", f"/api/tickets/2/messages/{mid}")).status == 404
    assert (await api.call("GET", f"/api/tickets/1/messages/{mid}")).status == 200


async def test_list_messages_both_ways(api: Api, ticket: dict[str, Any]) -> None:
    await api.call("POST", "/api/tickets/1/messages", msg())
    await api.call("POST", "/api/tickets", incoming_ticket())
    r = await api.call("GET", "/api/messages?ticket_id=1")
    assert r.json["object"] == "list" and [m["ticket_id"] for m in r.json["data"]] == [1, 1]
    r2 = await api.call("GET", "/api/tickets/1/messages")
    assert r2.json["data"] == r.json["data"]
    assert len((await api.call("GET", "/api/messages")).json["data"]) == 3
    assert (await api.call("GET", "/api/messages?ticket_id=77")).json["data"] == []
