"""Ticket messages: create / update / delete / read, and the sender-receiver rules."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.sandbox_api import Api, incoming_ticket


@pytest.fixture
async def ticket(api: Api) -> dict[str, Any]:
    return (await api.call("POST", "/api/tickets", incoming_ticket())).json  # type: ignore[no-any-return]


def msg(**fields: Any) -> dict[str, Any]:
    return {"channel": "chat", "via": "api", "from_agent": True, "body_text": "hello", **fields}


EMAIL_SOURCE = {"type": "email", "from": {"address": "support@acme.com", "name": "Acme"},
                "to": [{"address": "jane@example.com", "name": "Jane Doe"}]}


async def test_agent_reply_defaults_receiver_to_ticket_customer(api: Api, ticket: dict[str, Any]) -> None:
    r = await api.call("POST", "/api/tickets/1/messages", msg(sender={"id": 1}))
    assert r.status == 201
    m = r.json
    assert m["sender"]["email"] == "agent@acme.com"
    assert m["receiver"]["id"] == ticket["customer"]["id"]
    assert m["source"]["to"] == [{"address": "jane@example.com", "name": "Jane Doe"}]


async def test_outgoing_message_without_sent_datetime_is_sent_to_the_customer(api: Api, ticket: dict[str, Any]) -> None:
    r = await api.call("POST", "/api/tickets/1/messages", msg(channel="email", source=EMAIL_SOURCE, subject="Re"))
    assert r.status == 201
    m = r.json
    assert m["sent_datetime"] is not None and m["sent_datetime"].endswith("+00:00") and m["imported"] is False
    emailed = (await api.state())["emailed"]
    assert emailed == [{"message_id": m["id"], "ticket_id": 1, "channel": "email", "to": ["jane@example.com"],
                        "subject": "Re", "sent_datetime": m["sent_datetime"]}]


async def test_imported_incoming_and_internal_messages_are_not_sent(api: Api, ticket: dict[str, Any]) -> None:
    imported = msg(channel="email", source=EMAIL_SOURCE, sent_datetime="2020-01-02T03:04:05")
    assert (await api.call("POST", "/api/tickets/1/messages", imported)).status == 201
    assert (await api.call("POST", "/api/tickets/1/messages", msg(from_agent=False))).status == 201
    note = msg(channel="internal-note", public=False)
    assert (await api.call("POST", "/api/tickets/1/messages", note)).status == 201
    assert (await api.state())["emailed"] == []
    reply = msg(channel="email", source=EMAIL_SOURCE, receiver={"email": "jo@example.com"})
    outgoing = incoming_ticket(messages=[reply])
    created = await api.call("POST", "/api/tickets", outgoing)
    assert created.status == 201
    assert [(e["ticket_id"], e["to"]) for e in (await api.state())["emailed"]] == [(2, ["jane@example.com"])]


async def test_email_messages_need_a_source_with_from_and_to(api: Api, ticket: dict[str, Any]) -> None:
    r = await api.call("POST", "/api/tickets/1/messages", msg(channel="email"))
    assert r.status == 400 and r.json["error"]["data"] == {"source": ["Missing data for required field."]}
    r = await api.call("POST", "/api/tickets/1/messages", msg(channel="email", source={"type": "email", "to": []}))
    assert r.status == 400 and r.json["error"]["data"] == {"source": {
        "from": ["Missing data for required field."], "to": ["Email messages need at least one recipient."]}}
    r = await api.call("POST", "/api/tickets", incoming_ticket(messages=[msg(channel="email", from_agent=False)]))
    assert r.status == 400 and r.json["error"]["data"] == {"messages": {"0": {
        "source": ["Missing data for required field."]}}}
    assert len((await api.state())["messages"]) == 1


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
    assert r.json["imported"] is True and r.json["sent_datetime"] == "2020-01-02T03:04:05.000006+00:00"


async def test_required_fields_and_action_param(api: Api, ticket: dict[str, Any]) -> None:
    r = await api.call("POST", "/api/tickets/1/messages", {"body_text": "x"})
    assert r.json["error"]["data"] == {f: ["Missing data for required field."]
                                       for f in ("channel", "via", "from_agent")}
    assert (await api.call("POST", "/api/tickets/1/messages?action=force", msg())).status == 201
    assert (await api.call("POST", "/api/tickets/1/messages?action=explode", msg())).status == 400


async def test_message_on_unknown_ticket_is_404(api: Api) -> None:
    r = await api.call("POST", "/api/tickets/9/messages", msg())
    assert r.status == 404 and r.json == {"error": {"msg": "Resource not found."}}


async def test_update_message_returns_200_as_recorded(api: Api, ticket: dict[str, Any]) -> None:
    mid = ticket["messages"][0]["id"]
    r = await api.call("PUT", f"/api/tickets/1/messages/{mid}",
                       {"channel": "api", "via": "api", "from_agent": False, "body_text": "edited"})
    assert r.status == 200
    assert r.json["body_text"] == "edited" and r.json["sender"]["id"] == ticket["customer"]["id"]
    assert r.json["id"] == mid and r.json["created_datetime"] == ticket["messages"][0]["created_datetime"]
    r = await api.call("PUT", f"/api/tickets/1/messages/{mid}", {"body_text": "no required fields"})
    assert r.status == 400


async def test_an_imported_reply_updated_without_sent_datetime_is_sent(api: Api, ticket: dict[str, Any]) -> None:
    stamp = "2026-01-02T03:04:05.000000+00:00"
    reply = (await api.call("POST", "/api/tickets/1/messages", msg(channel="email", source=EMAIL_SOURCE,
                                                                    sent_datetime=stamp))).json
    assert reply["imported"] is True and (await api.state())["emailed"] == []
    kept = await api.call("PUT", f"/api/tickets/1/messages/{reply['id']}",
                          msg(channel="email", source=EMAIL_SOURCE, body_text="typo fixed", sent_datetime=stamp))
    assert kept.status == 200 and kept.json["sent_datetime"] == stamp and (await api.state())["emailed"] == []
    sent = await api.call("PUT", f"/api/tickets/1/messages/{reply['id']}",
                          msg(channel="email", source=EMAIL_SOURCE, body_text="typo fixed again"))
    assert sent.status == 200 and sent.json["imported"] is False and sent.json["sent_datetime"] != stamp
    emailed = (await api.state())["emailed"]
    assert [(e["message_id"], e["to"]) for e in emailed] == [(reply["id"], ["jane@example.com"])]


async def test_an_update_makes_the_message_what_it_says(api: Api, ticket: dict[str, Any]) -> None:
    stamp = "2026-01-02T03:04:05.000000+00:00"
    reply = (await api.call("POST", "/api/tickets/1/messages", msg(channel="email", source=EMAIL_SOURCE,
                                                                    sent_datetime=stamp))).json
    r = await api.call("PUT", f"/api/tickets/1/messages/{reply['id']}",
                       {"channel": "api", "via": "api", "from_agent": False, "body_text": "x", "sent_datetime": stamp,
                        "sender": {"email": "jane@example.com"}})
    assert r.status == 200 and (r.json["channel"], r.json["from_agent"]) == ("api", False)  # what the body said


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
    assert r2.json["data"] == list(reversed(r.json["data"]))
    assert len((await api.call("GET", "/api/messages")).json["data"]) == 3
    assert (await api.call("GET", "/api/messages?ticket_id=77")).json["data"] == []


async def test_per_ticket_list_is_oldest_first_and_paged_by_number(api: Api, ticket: dict[str, Any]) -> None:
    imported_early = msg(created_datetime="2020-01-01T00:00:00", sent_datetime="2020-01-01T00:00:00")
    await api.call("POST", "/api/tickets/1/messages", imported_early)
    for _ in range(29):
        await api.call("POST", "/api/tickets/1/messages", msg())
    first = await api.call("GET", "/api/tickets/1/messages")
    assert first.status == 200 and len(first.json["data"]) == 30
    assert first.json["data"][0]["created_datetime"] == "2020-01-01T00:00:00.000000+00:00"
    assert first.json["meta"] == {"page": 1, "per_page": 30, "current_page": "/api/tickets/1/messages/?page=1",
                                  "item_count": 31, "nb_pages": 2}
    second = await api.call("GET", "/api/tickets/1/messages?page=2")
    assert [m["id"] for m in second.json["data"]] == [31] and second.json["meta"]["page"] == 2
    assert [m["id"] for m in first.json["data"]] == [2, 1, *range(3, 31)]
    for bad in ("cursor=abc", "limit=10", "order_by=created_datetime:desc", "page=0"):
        assert (await api.call("GET", f"/api/tickets/1/messages?{bad}")).status == 400, bad


async def test_messages_list_pages_by_cursor_newest_first(api: Api, ticket: dict[str, Any]) -> None:
    for _ in range(4):
        await api.call("POST", "/api/tickets/1/messages", msg())
    seen: list[int] = []
    query = "ticket_id=1&order_by=created_datetime:desc&limit=2"
    r = await api.call("GET", f"/api/messages?{query}")
    while True:
        assert r.status == 200 and len(r.json["data"]) <= 2
        seen += [m["id"] for m in r.json["data"]]
        cursor = r.json["meta"]["next_cursor"]
        if cursor is None:
            break
        r = await api.call("GET", f"/api/messages?{query}&cursor={cursor}")
    assert seen == [5, 4, 3, 2, 1]
    default = await api.call("GET", "/api/messages?ticket_id=1&limit=2")
    assert [m["id"] for m in default.json["data"]] == [5, 4]
    ascending = await api.call("GET", "/api/messages?ticket_id=1&order_by=created_datetime:asc&limit=2")
    cursor = ascending.json["meta"]["next_cursor"]
    assert (await api.call("GET", f"/api/messages?ticket_id=1&cursor={cursor}")).status == 400
    assert (await api.call("GET", "/api/messages?ticket=1")).status == 400
    assert (await api.call("GET", "/api/messages?order_by=subject:asc")).status == 400
