"""Custom field definitions and their values on tickets and customers: bulk PUTs replace every value."""

from __future__ import annotations

from tests.support.sandbox_api import Api, field_values, incoming_ticket, new_customer


async def test_default_definitions_exist(api: Api) -> None:
    r = await api.call("GET", "/api/custom-fields?object_type=Ticket")
    assert [(d["id"], d["definition"]["data_type"], d["managed_type"]) for d in r.json["data"]] == [
        (1, "text", None), (2, "text", None), (3, "number", None), (4, "boolean", None), (7, "text", "ai_intent"),
        (8, "text", None)]
    assert r.json["data"][-1]["definition"]["input_settings"] == {"input_type": "dropdown",
                                                                 "choices": ["Late", "Damaged", "Lost"]}


async def test_ticket_values_put_answers_data_items_200(api: Api) -> None:
    await api.call("POST", "/api/tickets", incoming_ticket())
    r = await api.call("PUT", "/api/tickets/1/custom-fields",
                       [{"id": 1, "value": "refund"}, {"id": 3, "value": 12.5}, {"id": 4, "value": True}])
    assert r.status == 200
    assert field_values(r.json) == [(1, "refund"), (3, 12.5), (4, True)]
    item = r.json["data"][0]
    assert set(item) == {"field", "prediction", "value"} and item["prediction"] is None
    assert item["field"]["label"] == "Contact reason" and item["field"]["object_type"] == "Ticket"
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


async def test_bulk_put_deletes_every_value_it_leaves_out(api: Api) -> None:
    await api.call("POST", "/api/tickets", incoming_ticket(custom_fields=[{"id": 1, "value": "refund"},
                                                                          {"id": 2, "value": "A-1"}]))
    r = await api.call("PUT", "/api/tickets/1/custom-fields", [{"id": 3, "value": 5}])
    assert r.status == 200 and field_values(r.json) == [(3, 5)]
    assert (await api.call("GET", "/api/tickets/1")).json["custom_fields"] == {"3": {"id": 3, "value": 5}}
    r = await api.call("PUT", "/api/tickets/1/custom-fields", [])
    assert r.status == 200 and r.json == {"data": []}
    assert (await api.state())["ticket_field_values"] == {}


async def test_system_managed_values_can_be_neither_set_nor_removed(api: Api) -> None:
    await api.call("POST", "/api/tickets", incoming_ticket(custom_fields=[{"id": 1, "value": "refund"}]))
    r = await api.call("PUT", "/api/tickets/1/custom-fields/7", "order/status")
    assert r.status == 400 and r.json["error"]["data"] == {
        "7": ["System-managed field values cannot be set through the API."]}
    assert (await api.call("PUT", "/api/tickets/1/custom-fields", [{"id": 7, "value": "x"}])).status == 400
    assert (await api.call("PUT", "/api/tickets/1", {"custom_fields": [{"id": 7, "value": "x"}]})).status == 400
    status, _ = await api.admin("PUT", "tickets/1/custom-fields/7", "order/status")  # Gorgias' AI sets it
    assert status == 200
    r = await api.call("PUT", "/api/tickets/1/custom-fields", [{"id": 1, "value": "other"}])
    assert r.status == 400 and r.json["error"]["data"] == {
        "7": ["System-managed field values cannot be removed through the API."]}
    assert (await api.call("PUT", "/api/tickets/1/custom-fields", [{"id": 7, "value": None}])).status == 400
    assert (await api.call("DELETE", "/api/tickets/1/custom-fields/7")).status == 400
    assert (await api.call("PUT", "/api/tickets/1", {"custom_fields": []})).status == 400
    kept = await api.call("PUT", "/api/tickets/1/custom-fields", [{"id": 7, "value": "order/status"}])
    assert kept.status == 200 and field_values(kept.json) == [(7, "order/status")]  # sent back unchanged: fine


async def test_single_value_put_takes_the_raw_value_and_changes_one_field_only(api: Api) -> None:
    await api.call("POST", "/api/tickets", incoming_ticket(custom_fields=[{"id": 1, "value": "refund"}]))
    raw = await api.call("PUT", "/api/tickets/1/custom-fields/2", "A-100")
    assert raw.status == 200 and raw.json["value"] == "A-100" and raw.json["field"]["id"] == 2
    r = await api.call("PUT", "/api/tickets/1/custom-fields/3", 10)
    assert r.status == 200 and r.json["value"] == 10
    assert (await api.call("PUT", "/api/tickets/1/custom-fields/4", True)).json["value"] is True
    assert (await api.call("GET", "/api/tickets/1")).json["custom_fields"] == {
        "1": {"id": 1, "value": "refund"}, "2": {"id": 2, "value": "A-100"}, "3": {"id": 3, "value": 10},
        "4": {"id": 4, "value": True}}
    assert (await api.call("PUT", "/api/tickets/1/custom-fields/2", 5)).status == 400  # a text field
    for body in ({"id": 3, "value": 9}, {"value": 9}, [9], None, 9.5):
        r = await api.call("PUT", "/api/tickets/1/custom-fields/3", body)
        assert r.status == 400 and "clear a value with DELETE" in r.json["error"]["data"]["_schema"][0], body
    assert (await api.call("GET", "/api/tickets/1")).json["custom_fields"]["3"] == {"id": 3, "value": 10}


async def test_a_dropdown_takes_only_its_choices(api: Api) -> None:
    await api.call("POST", "/api/tickets", incoming_ticket())
    assert (await api.call("PUT", "/api/tickets/1/custom-fields/8", "Late")).status == 200
    r = await api.call("PUT", "/api/tickets/1/custom-fields/8", "late")
    assert r.status == 400 and r.json["error"]["data"] == {"value": ["Must be one of: Late, Damaged, Lost."]}
    bulk = await api.call("PUT", "/api/tickets/1/custom-fields", [{"id": 8, "value": "Stolen"}])
    assert bulk.status == 400
    assert bulk.json["error"]["data"] == {"0": {"value": ["Must be one of: Late, Damaged, Lost."]}}


async def test_single_value_delete(api: Api) -> None:
    await api.call("POST", "/api/tickets", incoming_ticket())
    assert (await api.call("PUT", "/api/tickets/1/custom-fields/2", "A-100")).status == 200
    r = await api.call("DELETE", "/api/tickets/1/custom-fields/2")
    assert r.status == 204 and r.raw == b""
    assert (await api.call("GET", "/api/tickets/1")).json["custom_fields"] == {}
    assert (await api.call("DELETE", "/api/tickets/1/custom-fields/99")).status == 404
    assert (await api.call("PUT", "/api/tickets/9/custom-fields", [])).status == 404


async def test_customer_values(api: Api) -> None:
    await api.call("POST", "/api/customers", new_customer("a@example.com"))
    r = await api.call("PUT", "/api/customers/1/custom-fields", [{"id": 5, "value": "gold"}, {"id": 6, "value": 3}])
    assert r.status == 200 and field_values(r.json) == [(5, "gold"), (6, 3)]
    assert (await api.call("PUT", "/api/customers/1/custom-fields", [{"id": 1, "value": "t"}])).status == 400
    r = await api.call("PUT", "/api/customers/1/custom-fields/6", 4)
    assert r.status == 200 and r.json["value"] == 4
    assert (await api.call("DELETE", "/api/customers/1/custom-fields/5")).status == 204
    c = (await api.call("GET", "/api/customers/1")).json
    assert c["custom_fields"] == {"6": {"id": 6, "value": 4}}
    r = await api.call("GET", "/api/customers/1/custom-fields")
    assert field_values(r.json) == [(6, 4)]
    r = await api.call("PUT", "/api/customers/1/custom-fields", [{"id": 5, "value": "silver"}])
    assert field_values(r.json) == [(5, "silver")]


async def test_null_value_clears(api: Api) -> None:
    await api.call("POST", "/api/tickets", incoming_ticket(custom_fields=[{"id": 1, "value": "x"}]))
    await api.call("PUT", "/api/tickets/1/custom-fields", [{"id": 1, "value": None}])
    assert (await api.call("GET", "/api/tickets/1")).json["custom_fields"] == {}


async def test_definitions_create_update(api: Api) -> None:
    r = await api.call("POST", "/api/custom-fields", {"object_type": "Ticket", "label": "Product",
                                                      "definition": {"data_type": "text"}})
    assert r.status == 201 and r.json["id"] == 9 and r.json["requirement_type"] == "visible"
    r = await api.call("PUT", "/api/custom-fields/9", {"label": "Product line"})
    assert r.status == 202 and r.json["label"] == "Product line"
    r = await api.call("PUT", "/api/custom-fields", [{"id": 8, "priority": 5}, {"id": 1, "required": True}])
    assert r.status == 202 and [(d["id"], d["priority"], d["required"]) for d in r.json] == [
        (8, 5, False), (1, 0, True)]
    r = await api.call("POST", "/api/custom-fields", {"object_type": "Order", "label": ""})
    assert r.status == 400 and set(r.json["error"]["data"]) == {"object_type", "label", "definition"}
