"""Custom field definitions and their values on tickets and customers (bare JSON arrays)."""

from __future__ import annotations

from tests.unit.sandbox.conftest import Api, incoming_ticket


async def test_default_definitions_exist(api: Api) -> None:
    r = await api.call("GET", "/api/custom-fields?object_type=Ticket")
    assert [(d["id"], d["definition"]["data_type"]) for d in r.json["data"]] == [
        (1, "text"), (2, "text"), (3, "number"), (4, "boolean")]


async def test_ticket_values_put_bare_array_200(api: Api) -> None:
    await api.call("POST", "/api/tickets", incoming_ticket())
    r = await api.call("PUT", "/api/tickets/1/custom-fields",
                       [{"id": 1, "value": "refund"}, {"id": 3, "value": 12.5}, {"id": 4, "value": True}])
    assert r.status == 200
    assert r.json == [{"id": 1, "value": "refund"}, {"id": 3, "value": 12.5}, {"id": 4, "value": True}]
    t = (await api.call("GET", "/api/tickets/1")).json
    assert t["custom_fields"] == {"1": {"id": 1, "value": "refund"}, "3": {"id": 3, "value": 12.5},
                                  "4": {"id": 4, "value": True}}


async def test_value_type_and_definition_are_checked(api: Api) -> None:
    await api.call("POST", "/api/tickets", incoming_ticket())
    r = await api.call("PUT", "/api/tickets/1/custom-fields",
                       [{"id": 1, "value": 5}, {"id": 5, "value": "x"}, {"id": 4, "value": "yes"}, {"value": 1}])
    assert r.status == 400
    assert r.json["error"]["data"] == {"3": {"id": ["Missing data for required field."]}}
    r = await api.call("PUT", "/api/tickets/1/custom-fields",
                       [{"id": 1, "value": 5}, {"id": 5, "value": "x"}, {"id": 4, "value": "yes"}])
    assert r.json["error"]["data"] == {"0": {"value": ["Not a valid string."]},
                                       "1": {"id": ["No ticket custom field with this id."]},
                                       "2": {"value": ["Not a valid boolean."]}}
    r = await api.call("PUT", "/api/tickets/1/custom-fields", {"id": 1, "value": "x"})
    assert r.status == 400
    assert (await api.state())["ticket_field_values"] == {}


async def test_single_value_put_and_delete(api: Api) -> None:
    await api.call("POST", "/api/tickets", incoming_ticket())
    r = await api.call("PUT", "/api/tickets/1/custom-fields/2", {"id": 2, "value": "A-100"})
    assert r.status == 200 and r.json == {"id": 2, "value": "A-100"}
    r = await api.call("PUT", "/api/tickets/1/custom-fields/2", {"id": 1, "value": "A-100"})
    assert r.status == 400
    r = await api.call("DELETE", "/api/tickets/1/custom-fields/2")
    assert r.status == 204 and r.raw == b""
    assert (await api.call("GET", "/api/tickets/1")).json["custom_fields"] == {}
    assert (await api.call("DELETE", "/api/tickets/1/custom-fields/99")).status == 404
    assert (await api.call("PUT", "/api/tickets/9/custom-fields", [])).status == 404


async def test_customer_values(api: Api) -> None:
    await api.call("POST", "/api/customers", {"email": "a@example.com"})
    r = await api.call("PUT", "/api/customers/1/custom-fields", [{"id": 5, "value": "gold"}, {"id": 6, "value": 3}])
    assert r.status == 200 and r.json == [{"id": 5, "value": "gold"}, {"id": 6, "value": 3}]
    assert (await api.call("PUT", "/api/customers/1/custom-fields", [{"id": 1, "value": "t"}])).status == 400
    r = await api.call("PUT", "/api/customers/1/custom-fields/6", {"value": 4})
    assert r.status == 200 and r.json == {"id": 6, "value": 4}
    assert (await api.call("DELETE", "/api/customers/1/custom-fields/5")).status == 204
    c = (await api.call("GET", "/api/customers/1")).json
    assert c["custom_fields"] == {"6": {"id": 6, "value": 4}}
    r = await api.call("GET", "/api/customers/1/custom-fields")
    assert r.json["data"] == [{"id": 6, "value": 4}]


async def test_null_value_clears(api: Api) -> None:
    await api.call("POST", "/api/tickets", incoming_ticket(custom_fields=[{"id": 1, "value": "x"}]))
    await api.call("PUT", "/api/tickets/1/custom-fields", [{"id": 1, "value": None}])
    assert (await api.call("GET", "/api/tickets/1")).json["custom_fields"] == {}


async def test_definitions_create_update(api: Api) -> None:
    r = await api.call("POST", "/api/custom-fields", {"object_type": "Ticket", "label": "Product",
                                                      "definition": {"data_type": "text"}})
    assert r.status == 201 and r.json["id"] == 7 and r.json["uri"] == "/api/custom-fields/7/"
    r = await api.call("PUT", "/api/custom-fields/7", {"label": "Product line"})
    assert r.status == 202 and r.json["label"] == "Product line"
    r = await api.call("PUT", "/api/custom-fields", [{"id": 7, "priority": 5}, {"id": 1, "required": True}])
    assert r.status == 202 and [(d["id"], d["priority"], d["required"]) for d in r.json] == [
        (7, 5, False), (1, 0, True)]
    r = await api.call("POST", "/api/custom-fields", {"object_type": "Order", "label": ""})
    assert r.status == 400 and set(r.json["error"]["data"]) == {"object_type", "label", "definition"}
