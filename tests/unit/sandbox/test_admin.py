"""The /__admin API: health, state, counters, reset, faults, routes."""

from __future__ import annotations

from tests.support.sandbox_api import OAUTH, OBSERVER, Api, basic, incoming_ticket


async def test_health_needs_no_auth_and_any_host(api: Api) -> None:
    async with api.client.get("/__admin/health", headers={"Host": "whatever.example"}) as r:
        assert r.status == 200 and await r.json() == {"status": "ok"}


async def test_state_lists_everything_and_shows_duplicates(api: Api) -> None:
    for _ in range(2):
        await api.call("POST", "/api/tickets", incoming_ticket(external_id="same", tags=[{"name": "t"}],
                                                               custom_fields=[{"id": 1, "value": "v"}]))
    await api.call("POST", "/api/satisfaction-surveys", {"customer_id": 1, "ticket_id": 1, "score": 4})
    await api.call("PUT", "/api/customers/1/custom-fields", [{"id": 5, "value": "gold"}])
    state = await api.state()
    assert state["account"] == "acme" and state["accounts"] == ["acme"]
    assert [t["external_id"] for t in state["tickets"]] == ["same", "same"]
    assert [len(t["messages"]) for t in state["tickets"]] == [1, 1]
    assert state["tickets"][0]["tags"][0]["name"] == "t"
    assert state["tickets"][0]["custom_fields"] == {"1": {"id": 1, "value": "v"}}
    assert [m["ticket_id"] for m in state["messages"]] == [1, 2]
    assert [c["email"] for c in state["customers"]] == ["jane@example.com"]
    assert state["ticket_field_values"] == {"1": {"1": {"id": 1, "value": "v"}}, "2": {"1": {"id": 1, "value": "v"}}}
    assert state["customer_field_values"] == {"1": {"5": {"id": 5, "value": "gold"}}}
    assert state["satisfaction_surveys"][0]["score"] == 4
    assert [u["email"] for u in state["users"]] == ["agent@acme.com", "observer@acme.com", "bot@acme.gorgias.io"]
    assert state["jobs"] == [] and len(state["custom_fields"]) == 8
    status, _ = await api.admin("GET", "state?account=nope")
    assert status == 404


async def test_counters_by_route_and_status(api: Api) -> None:
    await api.call("POST", "/api/tickets", incoming_ticket())
    await api.call("GET", "/api/tickets/1")
    await api.call("GET", "/api/tickets/2")
    await api.call("GET", "/api/tickets", auth=None)
    await api.call("GET", "/api/tickets", host="unknown.gorgias.com")
    _, counters = await api.admin("GET", "counters")
    assert counters == {
        "total": 5, "rate_limited": 0, "faults": {},
        "requests": {"(unknown host)": {"404": 1}, "GET /api/tickets": {"401": 1},
                     "GET /api/tickets/{id}": {"200": 1, "404": 1}, "POST /api/tickets": {"201": 1}},
    }


async def test_reset_clears_state_and_counters_but_keeps_faults(api: Api) -> None:
    await api.call("POST", "/api/tickets", incoming_ticket())
    await api.admin("PUT", "faults", {"spec": "500=0"})
    status, _ = await api.admin("POST", "reset")
    assert status == 200
    state = await api.state()
    assert state["tickets"] == [] and state["customers"] == [] and state["messages"] == []
    assert len(state["users"]) == 3
    _, counters = await api.admin("GET", "counters")
    assert counters["total"] == 0
    _, faults = await api.admin("GET", "faults")
    assert len(faults["rules"]) == 1
    r = await api.call("POST", "/api/tickets", incoming_ticket())
    assert r.json["id"] == 1  # ids restart


async def test_faults_round_trip_with_seed(api: Api) -> None:
    status, body = await api.admin("PUT", "faults", {"rules": [{"kind": "drop", "probability": 0.25,
                                                                "route": "/api/tickets/"}], "seed": 3})
    assert status == 200
    assert body == {"rules": [{"kind": "drop", "probability": 0.25, "route": "/api/tickets"}], "seed": 3,
                    "injected": {}}
    assert (await api.admin("GET", "faults"))[1] == body


async def test_routes_lists_templates(api: Api) -> None:
    _, routes = await api.admin("GET", "routes")
    assert "POST /api/tickets" in routes and "PUT /api/customers/{customer_id}/data" in routes
    assert len(routes) == len(set(routes)) > 50


async def test_a_users_api_key_can_be_replaced_and_revoked_while_it_runs(api: Api) -> None:
    """As when a key is reset in Gorgias' settings: the old one is refused at once, the new one works."""
    assert (await api.call("GET", "/api/account")).status == 200
    status, body = await api.admin("PUT", "credentials", {"email": "agent@acme.com", "api_key": "rotated-key"})
    assert status == 200 and body["changed"] == ["api_key"]
    refused = await api.call("GET", "/api/account")
    assert refused.status == 401 and refused.json == {"error": {"msg": "Unauthorized."}}
    assert (await api.call("GET", "/api/account", auth=basic("agent@acme.com", "rotated-key"))).status == 200
    assert (await api.call("GET", "/api/account", auth=OAUTH)).status == 200  # the token is left alone
    await api.admin("PUT", "credentials", {"email": "agent@acme.com", "api_key": None, "oauth_token": None})
    for auth in (basic("agent@acme.com", "rotated-key"), OAUTH):
        assert (await api.call("GET", "/api/account", auth=auth)).status == 401
    assert (await api.call("GET", "/api/account", auth=OBSERVER)).status == 200  # other users keep theirs
    await api.admin("POST", "reset")
    assert (await api.call("GET", "/api/account")).status == 200  # the configured key again


async def test_changing_credentials_names_what_is_wrong(api: Api) -> None:
    assert (await api.admin("PUT", "credentials", {"email": "nobody@acme.com", "api_key": "k"}))[0] == 404
    assert (await api.admin("PUT", "credentials", {"email": "agent@acme.com"}))[0] == 400
    assert (await api.admin("PUT", "credentials", {"email": "agent@acme.com", "api_key": 7}))[0] == 400
    status, _ = await api.admin("PUT", "credentials", {"email": "agent@acme.com", "api_key": "k", "account": "x"})
    assert status == 404
