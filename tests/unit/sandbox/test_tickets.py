"""Tickets: create, update, delete, read, list."""

from __future__ import annotations

import re

from tests.support.sandbox_api import Api, incoming_ticket

STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00$")


async def test_create_returns_201_with_full_ticket_and_messages(api: Api) -> None:
    r = await api.call("POST", "/api/tickets", incoming_ticket(tags=[{"name": "order-status"}], external_id="crm-1"))
    assert r.status == 201
    assert r.headers["Content-Type"].startswith("application/json")
    t = r.json
    assert t["id"] == 1 and t["uri"] == "/api/tickets/1/"
    assert (t["status"], t["priority"], t["channel"], t["via"], t["external_id"]) == ("open", "normal", "api", "api",
                                                                                        "crm-1")
    assert t["customer"]["email"] == "jane@example.com" and t["customer"]["firstname"] == "Jane"
    assert [tag["name"] for tag in t["tags"]] == ["order-status"]
    assert t["tags"][0]["uri"] == f"/api/tags/{t['tags'][0]['id']}/"
    (m,) = t["messages"]
    assert m["uri"] == f"/api/tickets/1/messages/{m['id']}/" and m["ticket_id"] == 1
    assert m["sender"]["id"] == t["customer"]["id"] and m["receiver"] is None
    assert m["source"] == {"type": "api", "from": {"address": "jane@example.com", "name": "Jane Doe"}, "to": []}
    assert m["public"] is True and m["imported"] is False
    for key in ("created_datetime", "updated_datetime", "last_message_datetime", "last_received_message_datetime"):
        assert STAMP.match(t[key]), key
    assert STAMP.match(m["sent_datetime"])  # incoming: set at once
    assert t["custom_fields"] == {} and t["satisfaction_survey"] is None


async def test_unknown_customer_email_creates_customer_once(api: Api) -> None:
    await api.call("POST", "/api/tickets", incoming_ticket("new@example.com"))
    await api.call("POST", "/api/tickets", incoming_ticket("NEW@example.com"))
    state = await api.state()
    assert [c["email"] for c in state["customers"]] == ["new@example.com"]
    assert {t["customer"]["id"] for t in state["tickets"]} == {state["customers"][0]["id"]}


async def test_via_defaults_to_api_and_channel_to_first_message(api: Api) -> None:
    body = incoming_ticket()
    del body["via"], body["channel"]
    r = await api.call("POST", "/api/tickets", body)
    assert r.status == 201 and r.json["via"] == "api" and r.json["channel"] == "api"


async def test_customer_derived_from_first_incoming_sender(api: Api) -> None:
    body = incoming_ticket("li@example.com")
    del body["customer"]
    r = await api.call("POST", "/api/tickets", body)
    assert r.status == 201 and r.json["customer"]["email"] == "li@example.com"


async def test_validation_errors_nest_per_message_and_field(api: Api) -> None:
    body = {"messages": [{"channel": "api", "via": "api", "from_agent": False, "sender": {"email": "a@b.co"}},
                         {"via": "carrier-pigeon", "from_agent": "no"}],
            "status": "pending", "subject": "x" * 999, "external_id": "e" * 256, "bogus": 1}
    r = await api.call("POST", "/api/tickets", body)
    assert r.status == 400
    assert r.json == {"error": {"msg": "Failed to create ticket", "data": {
        "messages": {"1": {"channel": ["Missing data for required field."],
                           "via": [r.json["error"]["data"]["messages"]["1"]["via"][0]],
                           "from_agent": ["Not a valid boolean."]}},
        "status": ["Must be one of: open, closed."],
        "subject": ["Longer than maximum length 998."],
        "external_id": ["Longer than maximum length 255."],
        "bogus": ["Unknown field."],
    }}}
    assert r.json["error"]["data"]["messages"]["1"]["via"][0].startswith("Must be one of: aircall, api")
    assert (await api.state())["tickets"] == []


async def test_messages_must_have_1_to_500_items(api: Api) -> None:
    r = await api.call("POST", "/api/tickets", {**incoming_ticket(), "messages": []})
    assert r.json["error"]["data"] == {"messages": ["Length must be between 1 and 500."]}
    message = incoming_ticket()["messages"][0]
    r = await api.call("POST", "/api/tickets", {**incoming_ticket(), "messages": [message] * 501})
    assert r.status == 400
    r = await api.call("POST", "/api/tickets", {**incoming_ticket(), "messages": [message] * 500})
    assert r.status == 201 and len(r.json["messages"]) == 500


async def test_missing_messages_is_400(api: Api) -> None:
    r = await api.call("POST", "/api/tickets", {"subject": "no messages"})
    assert r.status == 400
    assert r.json["error"]["data"] == {"messages": ["Missing data for required field."]}


async def test_body_text_limit_is_one_megabyte(api: Api) -> None:
    big = incoming_ticket()
    big["messages"][0]["body_text"] = "é" * 500_001  # 1,000,002 bytes of UTF-8
    r = await api.call("POST", "/api/tickets", big)
    assert r.status == 400
    assert r.json["error"]["data"]["messages"]["0"]["body_text"] == ["Longer than maximum size 1000000 bytes."]
    big["messages"][0]["body_text"] = "a" * 1_000_000
    big["messages"][0]["body_html"] = "b" * 1_000_000
    assert (await api.call("POST", "/api/tickets", big)).status == 201


async def test_unknown_customer_id_and_tag_id_are_400_and_nothing_is_created(api: Api) -> None:
    body = incoming_ticket(tags=[{"name": "fresh"}, {"id": 99}])
    body["customer"] = {"id": 42}
    r = await api.call("POST", "/api/tickets", body)
    assert r.status == 400
    assert r.json["error"]["data"] == {"customer": ["Customer not found."], "tags": {"1": {"id": ["Tag not found."]}}}
    state = await api.state()
    assert state["tags"] == [] and state["customers"] == [] and state["tickets"] == []


async def test_update_is_partial_and_returns_202(api: Api) -> None:
    created = (await api.call("POST", "/api/tickets", incoming_ticket(tags=[{"name": "a"}]))).json
    r = await api.call("PUT", "/api/tickets/1/", {"status": "closed", "tags": [{"name": "b"}], "priority": "high"})
    assert r.status == 202
    t = r.json
    assert (t["status"], t["priority"], t["subject"]) == ("closed", "high", created["subject"])
    assert [x["name"] for x in t["tags"]] == ["b"]
    assert STAMP.match(t["closed_datetime"])
    assert len(t["messages"]) == 1
    tags = {x["name"]: x["usage"] for x in (await api.state())["tags"]}
    assert tags == {"a": 0, "b": 1}


async def test_update_rejects_read_only_and_unknown_fields(api: Api) -> None:
    await api.call("POST", "/api/tickets", incoming_ticket())
    r = await api.call("PUT", "/api/tickets/1", {"created_datetime": "2024-01-01T00:00:00", "messages": []})
    assert r.status == 400
    assert r.json["error"]["data"] == {"created_datetime": ["Unknown field."], "messages": ["Unknown field."]}


async def test_trash_and_untrash_with_trashed_datetime(api: Api) -> None:
    await api.call("POST", "/api/tickets", incoming_ticket())
    r = await api.call("PUT", "/api/tickets/1", {"trashed_datetime": "2024-05-01T10:00:00Z"})
    assert r.json["trashed_datetime"] == "2024-05-01T10:00:00.000000+00:00"
    r = await api.call("PUT", "/api/tickets/1", {"trashed_datetime": None})
    assert r.json["trashed_datetime"] is None


async def test_delete_then_404(api: Api) -> None:
    await api.call("POST", "/api/tickets", incoming_ticket())
    r = await api.call("DELETE", "/api/tickets/1")
    assert r.status == 204 and r.raw == b""
    r = await api.call("DELETE", "/api/tickets/1")
    assert r.status == 404 and r.json == {"error": {"msg": "Resource not found."}}
    assert (await api.call("GET", "/api/tickets/1")).status == 404
    state = await api.state()
    assert state["tickets"] == [] and state["messages"] == []


async def test_get_and_list_with_filters(api: Api) -> None:
    await api.call("POST", "/api/tickets", incoming_ticket("a@example.com", external_id="x-1"))
    await api.call("POST", "/api/tickets", incoming_ticket("b@example.com", external_id="x-2"))
    await api.call("POST", "/api/tickets", incoming_ticket("a@example.com", external_id="x-1"))
    r = await api.call("GET", "/api/tickets/2")
    assert r.status == 200 and r.json["external_id"] == "x-2" and len(r.json["messages"]) == 1
    r = await api.call("GET", "/api/tickets?external_id=x-1")
    body = r.json
    assert body["object"] == "list" and body["uri"] == "/api/tickets"
    assert body["meta"] == {"prev_cursor": None, "next_cursor": None}
    assert [t["id"] for t in body["data"]] == [3, 1]  # newest first
    assert "messages" not in body["data"][0]
    customer_b = body["data"][0]["customer"]["id"] + 1
    r = await api.call("GET", f"/api/tickets?customer_id={customer_b}")
    assert [t["id"] for t in r.json["data"]] == [2]


async def test_list_pagination_with_cursor(api: Api) -> None:
    for i in range(5):
        await api.call("POST", "/api/tickets", incoming_ticket(external_id=f"p{i}"))
    first = (await api.call("GET", "/api/tickets?limit=2&order_by=created_datetime:asc")).json
    assert [t["id"] for t in first["data"]] == [1, 2] and first["meta"]["prev_cursor"] is None
    query = "limit=2&order_by=created_datetime:asc&cursor="
    second = (await api.call("GET", f"/api/tickets?{query}{first['meta']['next_cursor']}")).json
    assert [t["id"] for t in second["data"]] == [3, 4]
    third = (await api.call("GET", f"/api/tickets?{query}{second['meta']['next_cursor']}")).json
    assert [t["id"] for t in third["data"]] == [5] and third["meta"]["next_cursor"] is None
    desc = (await api.call("GET", "/api/tickets?limit=2")).json
    assert [t["id"] for t in desc["data"]] == [5, 4]
    assert (await api.call("GET", "/api/tickets?limit=101")).status == 400
    assert (await api.call("GET", "/api/tickets?cursor=nonsense")).status == 400


async def test_closed_status_on_create_sets_closed_datetime(api: Api) -> None:
    r = await api.call("POST", "/api/tickets", incoming_ticket(status="closed"))
    assert r.json["status"] == "closed" and STAMP.match(r.json["closed_datetime"])


async def test_assignee_user_must_exist(api: Api) -> None:
    r = await api.call("POST", "/api/tickets", incoming_ticket(assignee_user={"id": 77}))
    assert r.status == 400 and r.json["error"]["data"] == {"assignee_user": {"id": ["User not found."]}}
    r = await api.call("POST", "/api/tickets", incoming_ticket(assignee_user={"id": 1}))
    assert r.json["assignee_user"]["email"] == "agent@acme.com"


async def test_list_filters_ticket_ids_trashed_and_unknown_parameters(api: Api) -> None:
    for _ in range(4):
        await api.call("POST", "/api/tickets", incoming_ticket())
    await api.call("PUT", "/api/tickets/2", {"trashed_datetime": "2024-05-01T10:00:00Z"})
    r = await api.call("GET", "/api/tickets?ticket_ids=1,2&ticket_ids=3")
    assert [t["id"] for t in r.json["data"]] == [3, 1]  # trashed ticket 2 left out by default
    r = await api.call("GET", "/api/tickets?trashed=true")
    assert [t["id"] for t in r.json["data"]] == [2]
    r = await api.call("GET", "/api/tickets?trashed=false&ticket_ids=2")
    assert r.json["data"] == []
    for bad, field in [("trashed=maybe", "trashed"), ("ticket_ids=1,x", "ticket_ids"), ("status=open", "status"),
                       ("order_by=subject:asc", "order_by")]:
        r = await api.call("GET", f"/api/tickets?{bad}")
        assert r.status == 400 and set(r.json["error"]["data"]) == {field}, bad


async def test_merged_ticket_answers_301_with_empty_body_and_location(api: Api) -> None:
    await api.call("POST", "/api/tickets", incoming_ticket(tags=[{"name": "a"}]))
    await api.call("POST", "/api/tickets", incoming_ticket(tags=[{"name": "b"}]))
    status, body = await api.admin("PUT", "tickets/merge?source_id=1&target_id=2")
    assert status == 200 and body == {"source_id": 1, "target_id": 2}
    for method, path, payload in [("GET", "/api/tickets/1", None), ("PUT", "/api/tickets/1", {"priority": "high"}),
                                  ("DELETE", "/api/tickets/1", None), ("GET", "/api/tickets/1/messages", None),
                                  ("POST", "/api/tickets/1/tags", {"names": ["c"]}),
                                  ("PUT", "/api/tickets/1/custom-fields/1", "x")]:
        r = await api.call(method, path, payload)
        assert r.status == 301 and r.raw == b"", (method, path)
        assert r.headers["Location"] == path.replace("/tickets/1", "/tickets/2")
    target = (await api.call("GET", "/api/tickets/2")).json
    assert [t["name"] for t in target["tags"]] == ["b", "a"] and len(target["messages"]) == 2
    assert target["priority"] == "normal"
    state = await api.state()
    assert state["merged_tickets"] == {"1": 2} and [t["id"] for t in state["tickets"]] == [2]
    assert (await api.admin("PUT", "tickets/merge?source_id=2&target_id=2"))[0] == 400
    assert (await api.admin("PUT", "tickets/merge?source_id=1&target_id=2"))[0] == 404
