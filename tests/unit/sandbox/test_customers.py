"""Customers: create, update, delete (one / bulk), merge, /data versions, read and list."""

from __future__ import annotations

from tests.support.sandbox_api import Api, incoming_ticket, new_customer


async def test_create_returns_201_with_channels(api: Api) -> None:
    r = await api.call("POST", "/api/customers", {
        "name": "Jane Doe", "email": "jane@example.com", "external_id": "shop-1", "language": "en",
        "timezone": "America/New_York", "channels": [{"type": "phone", "address": "+14155550100", "preferred": False}]})
    assert r.status == 201
    c = r.json
    assert c["id"] == 1 and "uri" not in c
    assert (c["firstname"], c["lastname"], c["timezone"]) == ("Jane", "Doe", "America/New_York")
    assert [(ch["type"], ch["address"], ch["preferred"]) for ch in c["channels"]] == [
        ("email", "jane@example.com", True), ("phone", "+14155550100", False)]
    assert c["custom_fields"] == {} and c["data"] is None
    assert c["created_datetime"].endswith("+00:00")
    assert set(c["channels"][1]) == {"id", "type", "address", "preferred", "created_datetime", "updated_datetime",
                                     "deleted_datetime", "user", "customer"}


async def test_create_needs_channels_each_with_type_address_preferred(api: Api) -> None:
    r = await api.call("POST", "/api/customers", {"email": "jane@example.com", "name": "Jane"})
    assert r.status == 400 and r.json["error"]["data"] == {"channels": ["Missing data for required field."]}
    r = await api.call("POST", "/api/customers", {"email": "jane@example.com", "channels": []})
    assert r.status == 400 and "channels" in r.json["error"]["data"]
    r = await api.call("POST", "/api/customers", {"channels": [{"type": "email", "address": "j@example.com"}]})
    assert r.status == 400 and r.json["error"]["data"] == {
        "channels": {"0": {"preferred": ["Missing data for required field."]}}}
    assert (await api.state())["customers"] == []


async def test_create_rejects_firstname_and_lastname(api: Api) -> None:
    r = await api.call("POST", "/api/customers", new_customer(firstname="Jane", lastname="Doe"))
    assert r.status == 400 and r.json["error"]["data"] == {"firstname": ["Unknown field."],
                                                           "lastname": ["Unknown field."]}
    r = await api.call("POST", "/api/customers", new_customer(name="Jane Doe"))
    assert r.status == 201 and (r.json["firstname"], r.json["lastname"]) == ("Jane", "Doe")


async def test_duplicate_primary_email_is_400(api: Api) -> None:
    await api.call("POST", "/api/customers", new_customer("jane@example.com"))
    r = await api.call("POST", "/api/customers", new_customer("JANE@example.com"))
    assert r.status == 400 and r.json["error"]["data"] == {
        "email": ["A customer with this email address already exists."]}
    assert len((await api.state())["customers"]) == 1


async def test_invalid_values_are_400(api: Api) -> None:
    r = await api.call("POST", "/api/customers", new_customer("not-an-email", language="english",
                                                              timezone="Mars/Olympus", colour="red"))
    assert r.status == 400
    assert r.json["error"]["data"] == {"email": ["Not a valid email address."],
                                       "language": ["Not a valid ISO-639-1 language code."],
                                       "timezone": ["Not a valid timezone."], "colour": ["Unknown field."]}
    long_email = "a" * 310 + "@example.com"
    r = await api.call("POST", "/api/customers", {**new_customer(), "email": long_email})
    assert r.json["error"]["data"] == {"email": ["Longer than maximum length 320."]}


async def test_update_is_partial_202_and_email_conflict_400(api: Api) -> None:
    await api.call("POST", "/api/customers", new_customer("a@example.com", name="A A"))
    await api.call("POST", "/api/customers", new_customer("b@example.com"))
    r = await api.call("PUT", "/api/customers/1/", {"note": "VIP"})
    assert r.status == 202 and r.json["note"] == "VIP" and r.json["name"] == "A A"
    assert (await api.call("PUT", "/api/customers/1", {"email": "b@example.com"})).status == 400
    r = await api.call("PUT", "/api/customers/1", {"email": "c@example.com"})
    assert r.status == 202 and r.json["email"] == "c@example.com"
    assert (await api.call("GET", "/api/customers?email=a@example.com")).json["data"] == []
    assert (await api.call("GET", "/api/customers?email=C@example.com")).json["data"][0]["id"] == 1


async def test_delete_and_bulk_delete(api: Api) -> None:
    for i in range(4):
        await api.call("POST", "/api/customers", new_customer(f"c{i}@example.com"))
    r = await api.call("DELETE", "/api/customers/1")
    assert r.status == 204 and r.raw == b""
    assert (await api.call("DELETE", "/api/customers/1")).status == 404
    r = await api.call("DELETE", "/api/customers", {"ids": [2, 3, 99]})
    assert r.status == 204
    assert [c["id"] for c in (await api.state())["customers"]] == [4]
    r = await api.call("DELETE", "/api/customers", {})
    assert r.status == 400 and r.json["error"]["data"] == {"ids": ["Missing data for required field."]}
    # the email of a deleted customer is free again
    assert (await api.call("POST", "/api/customers", new_customer("c1@example.com"))).status == 201


async def test_merge_moves_tickets_and_source_answers_301(api: Api) -> None:
    await api.call("POST", "/api/tickets", incoming_ticket("source@example.com"))
    await api.call("POST", "/api/customers", new_customer("target@example.com"))
    r = await api.call("PUT", "/api/customers/merge?source_id=1&target_id=2", {"note": "merged", "name": "Jo"})
    assert r.status == 200  # LIVE (the spec says 202)
    assert r.json["id"] == 2 and r.json["note"] is None and r.json["name"] is None  # the body is not applied
    assert {ch["address"] for ch in r.json["channels"]} == {"source@example.com", "target@example.com"}
    state = await api.state()
    assert [c["id"] for c in state["customers"]] == [2]
    assert state["tickets"][0]["customer"]["id"] == 2
    moved = await api.call("GET", "/api/customers/1")
    assert moved.status == 301 and moved.headers["Location"] == "/api/customers/2" and moved.raw == b""
    for method, path, body in [("PUT", "/api/customers/1", {"note": "x"}), ("DELETE", "/api/customers/1", None),
                               ("PUT", "/api/customers/1/data", {"data": {}}),
                               ("PUT", "/api/customers/1/custom-fields/5", "gold"),
                               ("GET", "/api/customers/1/custom-fields", None)]:
        r = await api.call(method, path, body)
        assert r.status == 301 and r.raw == b"", (method, path)
        assert r.headers["Location"] == path.replace("/customers/1", "/customers/2")
    assert (await api.call("GET", "/api/customers/2")).json["note"] is None


async def test_merge_refuses_an_empty_body_and_changes_nothing(api: Api) -> None:
    for email in ("a@example.com", "b@example.com"):
        await api.call("POST", "/api/customers", new_customer(email))
    for body in ({}, None):
        r = await api.call("PUT", "/api/customers/merge?source_id=1&target_id=2", body)
        assert r.status == 400 and "empty body is refused" in r.json["error"]["data"]["_schema"][0]
    assert [c["id"] for c in (await api.state())["customers"]] == [1, 2]


async def test_merge_needs_both_ids(api: Api) -> None:
    await api.call("POST", "/api/customers", new_customer("a@example.com"))
    r = await api.call("PUT", "/api/customers/merge?source_id=1", {})
    assert r.status == 400 and r.json["error"]["data"] == {"target_id": ["Missing data for required field."]}
    assert (await api.call("PUT", "/api/customers/merge?source_id=1&target_id=1", {})).status == 400
    assert (await api.call("PUT", "/api/customers/merge?source_id=1&target_id=9", {})).status == 404


async def test_data_version_rule(api: Api) -> None:
    await api.call("POST", "/api/customers", new_customer("a@example.com"))
    r = await api.call("PUT", "/api/customers/1/data", {"data": {"tier": "gold"}, "version": "2024-05-01T10:05:00"})
    assert r.status == 202 and r.raw == b""
    stale = await api.call("PUT", "/api/customers/1/data", {"data": {"tier": "bronze"},
                                                             "version": "2024-05-01T10:04:59"})
    assert stale.status == 202 and stale.raw == b""
    assert (await api.call("GET", "/api/customers/1")).json["data"] == {"tier": "gold"}
    await api.call("PUT", "/api/customers/1/data", {"data": {"tier": "platinum"}, "version": "2024-06-01T00:00:00"})
    assert (await api.call("GET", "/api/customers/1")).json["data"] == {"tier": "platinum"}
    not_object = await api.call("PUT", "/api/customers/1/data", {"data": [1, 2]})
    assert not_object.status == 400 and set(not_object.json["error"]["data"]) == {"data"}
    assert (await api.call("GET", "/api/customers/1")).json["data"] == {"tier": "platinum"}
    bad = await api.call("PUT", "/api/customers/1/data", {"data": {}, "version": "yesterday"})
    assert bad.status == 400 and bad.json["error"]["data"] == {"version": ["Not a valid datetime."]}
    assert (await api.call("PUT", "/api/customers/1/data", {"version": "2025-01-01T00:00:00"})).status == 400
    assert (await api.call("PUT", "/api/customers/7/data", {"data": {}})).status == 404


async def test_list_filters(api: Api) -> None:
    await api.call("POST", "/api/customers", new_customer("a@example.com", external_id="e1"))
    await api.call("POST", "/api/customers", {**new_customer("b@example.com", external_id="e2"), "channels": [
        {"type": "email", "address": "b@example.com", "preferred": True},
        {"type": "phone", "address": "+14155550100", "preferred": False}]})
    r = await api.call("GET", "/api/customers?external_id=e2")
    assert r.json["object"] == "list" and [c["email"] for c in r.json["data"]] == ["b@example.com"]
    assert len((await api.call("GET", "/api/customers")).json["data"]) == 2
    r = await api.call("GET", "/api/customers?channel_type=phone&channel_address=%2B14155550100")
    assert [c["id"] for c in r.json["data"]] == [2]
    r = await api.call("GET", "/api/customers?name=b")
    assert r.status == 400 and r.json["error"]["data"] == {"name": ["Unknown field."]}
    assert (await api.call("GET", "/api/customers/2")).json["external_id"] == "e2"
