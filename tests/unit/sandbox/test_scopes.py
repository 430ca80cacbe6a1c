"""OAuth scopes on /api: an access token may call only the routes its grant's scope covers (RFC 6750 §3.1
insufficient_scope); write:all allows everything; API keys are not scope-checked."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import pytest

from gorgias_sandbox.api_requests import ALL_ROUTES
from gorgias_sandbox.scopes import needed_scope, scope_refusal
from tests.support.sandbox_api import AGENT, HOST, Api


async def token(api: Api, refresh: str = "sandbox-refresh-token") -> tuple[int, dict[str, Any]]:
    form = {"grant_type": "refresh_token", "refresh_token": refresh, "client_id": "sandbox-client",
            "client_secret": "sandbox-client-secret"}
    headers = {"Host": HOST, "Content-Type": "application/x-www-form-urlencoded"}
    async with api.client.post("/oauth/token", data=urlencode(form).encode(), headers=headers) as resp:
        return resp.status, await resp.json()


def test_every_route_of_the_sandbox_has_a_scope() -> None:
    unknown = [f"{r.method} {r.template}" for r in ALL_ROUTES if needed_scope(r.method, r.template) is None]
    assert unknown == []


@pytest.mark.parametrize(("method", "template", "scope"), [
    ("GET", "/api/account", "account:read"),
    ("POST", "/api/tickets", "tickets:write"),
    ("GET", "/api/tickets/{id}", "tickets:read"),
    ("PUT", "/api/tickets/{ticket_id}/tags", "tickets:write"),
    ("DELETE", "/api/tickets/{ticket_id}/messages/{id}", "tickets:write"),
    ("GET", "/api/messages", "tickets:read"),
    ("PUT", "/api/customers/{customer_id}/custom-fields", "customers:write"),
    ("GET", "/api/custom-fields", "custom_fields:read"),
    ("POST", "/api/satisfaction-surveys", "satisfaction_survey:write"),
    ("POST", "/api/jobs", "jobs:write"),
    ("PUT", "/api/tags/{id}/merge", "tags:write"),
])
def test_a_route_needs_its_resource_scope_read_for_get_write_otherwise(method: str, template: str, scope: str) -> None:
    assert needed_scope(method, template) == scope


def test_an_unknown_route_is_refused_unless_write_all() -> None:
    assert needed_scope("GET", "/api/integrations") is None
    refusal = scope_refusal("openid tickets:read", "GET", "/api/integrations")
    assert refusal is not None and refusal.status == 403 and "write:all" in refusal.msg
    assert scope_refusal("openid write:all", "GET", "/api/integrations") is None
    assert scope_refusal("tickets:read", "GET", "/api/tickets") is None


async def test_a_token_without_the_scope_gets_403_insufficient_scope_naming_it(api: Api) -> None:
    _, authorized = await api.admin("POST", "oauth/authorize", {"client_id": "sandbox-client",
                                                                "scope": "openid offline account:read tickets:read"})
    status, answer = await token(api, authorized["refresh_token"])
    assert status == 200 and answer["scope"] == "openid offline account:read tickets:read"
    bearer = f"Bearer {answer['access_token']}"
    assert (await api.call("GET", "/api/tickets", auth=bearer)).status == 200
    refused = await api.call("POST", "/api/tickets", {"messages": []}, auth=bearer)
    assert refused.status == 403
    assert refused.headers["WWW-Authenticate"] == 'Bearer error="insufficient_scope", scope="tickets:write"'
    assert refused.json["error"]["data"] == {"error": "insufficient_scope", "scope": "tickets:write"}
    assert "tickets:write" in refused.json["error"]["msg"]
    _, described = await api.admin("GET", "state")
    assert described["tickets"] == []  # nothing applied


async def test_write_all_allows_every_route_and_api_keys_are_not_scope_checked(api: Api) -> None:
    _, legacy = await api.admin("POST", "oauth/authorize", {"client_id": "sandbox-client",
                                                            "scope": "openid offline write:all"})
    _, answer = await token(api, legacy["refresh_token"])
    bearer = f"Bearer {answer['access_token']}"
    assert (await api.call("GET", "/api/users", auth=bearer)).status == 200
    assert (await api.call("POST", "/api/tags", {"name": "vip"}, auth=bearer)).status == 201
    assert (await api.call("GET", "/api/users", auth=AGENT)).status == 200  # Basic: the user's role only


async def test_the_default_app_scope_covers_what_the_templates_touch(api: Api) -> None:
    _, answer = await token(api)
    bearer = f"Bearer {answer['access_token']}"
    assert (await api.call("POST", "/api/tags", {"name": "vip"}, auth=bearer)).status == 201
    users = await api.call("GET", "/api/users", auth=bearer)  # not a template's: not in the default scope
    assert users.status == 403 and 'scope="users:read"' in users.headers["WWW-Authenticate"]
