"""Host routing, authentication, methods, paths, bodies: the envelope every endpoint shares."""

from __future__ import annotations

import asyncio

import pytest

from gorgias_sandbox.settings import SandboxSettings, parse_account_specs
from tests.support.sandbox_api import AGENT, OAUTH, Api, MakeApi, basic, incoming_ticket


@pytest.mark.parametrize("host", ["nope.gorgias.com", "127.0.0.1", "localhost:8080", "localhost"])
async def test_unknown_host_is_html_404(api: Api, host: str) -> None:
    r = await api.call("GET", "/api/tickets", host=host)
    assert r.status == 404
    assert r.headers["Content-Type"].startswith("text/html")
    assert b"<title>404 Not Found</title>" in r.raw


async def test_account_from_first_label_with_port(api: Api) -> None:
    assert (await api.call("GET", "/api/tickets", host="acme.localhost:8080")).status == 200
    assert (await api.call("GET", "/api/tickets", host="ACME.gorgias.com")).status == 200


async def test_non_api_path_on_account_host_is_html_404(api: Api) -> None:
    r = await api.call("GET", "/app/tickets")
    assert r.status == 404 and r.headers["Content-Type"].startswith("text/html")


@pytest.mark.parametrize("auth", [
    None, "Basic bm9ib2R5OnNlY3JldA==", basic("agent@acme.com", "wrong"), "Bearer nope", "Basic !!!", "Token abc",
    basic("observer@acme.com", "sandbox-api-key"),
])
async def test_bad_credentials_are_401(api: Api, auth: str | None) -> None:
    r = await api.call("POST", "/api/tags", {"name": "x"}, auth=auth)
    assert r.status == 401
    assert r.json == {"error": {"msg": "Unauthorized."}}
    assert (await api.state())["tags"] == []


async def test_basic_email_is_case_insensitive_and_bearer_works(api: Api) -> None:
    assert (await api.call("GET", "/api/tags", auth=basic("Agent@ACME.com", "sandbox-api-key"))).status == 200
    assert (await api.call("GET", "/api/tags", auth=OAUTH)).status == 200
    assert (await api.call("GET", "/api/tags", auth="bearer sandbox-oauth-token")).status == 200


async def test_keys_are_per_account(make_api: MakeApi) -> None:
    accounts = parse_account_specs(["acme:agent@acme.com:k1", "globex:ops@globex.com:k2:agent"])
    api = await make_api(SandboxSettings(accounts=accounts, rate_limit="off"))
    assert (await api.call("GET", "/api/tags", auth=basic("agent@acme.com", "k1"))).status == 200
    r = await api.call("GET", "/api/tags", auth=basic("agent@acme.com", "k1"), host="globex.gorgias.com")
    assert r.status == 401
    assert (await api.call("POST", "/api/tags", {"name": "g"}, auth=basic("ops@globex.com", "k2"),
                           host="globex.gorgias.com")).status == 201
    assert (await api.state("globex"))["tags"][0]["name"] == "g"
    assert (await api.state("acme"))["tags"] == []


@pytest.mark.parametrize("path", ["/api/tickets", "/api/tickets/1", "/api/customers/3", "/api/nowhere"])
async def test_patch_is_always_405(api: Api, path: str) -> None:
    r = await api.call("PATCH", path, {"status": "closed"})
    assert r.status == 405
    assert r.json == {"error": {"msg": "The specified HTTP method is not allowed."}}


async def test_wrong_method_on_known_path_is_405_unknown_path_404(api: Api) -> None:
    assert (await api.call("POST", "/api/tickets/1", {})).status == 405
    assert (await api.call("DELETE", "/api/customers/merge")).status == 405
    r = await api.call("GET", "/api/widgets-that-do-not-exist")
    assert r.status == 404 and r.json == {"error": {"msg": "Resource not found."}}
    assert (await api.call("GET", "/api/tickets/abc")).status == 404


async def test_trailing_slash_is_accepted(api: Api) -> None:
    assert (await api.call("POST", "/api/tickets/", incoming_ticket())).status == 201
    assert (await api.call("GET", "/api/tickets/1/")).status == 200
    assert (await api.call("PUT", "/api/tickets/1/", {"spam": True})).json["spam"] is True


async def test_invalid_json_and_wrong_body_type(api: Api) -> None:
    r = await api.call("POST", "/api/tags", data=b"{nope", headers={"Content-Type": "application/json"})
    assert r.status == 400 and r.json == {"error": {"msg": "Invalid JSON body."}}
    r = await api.call("POST", "/api/tags", ["not", "an", "object"])
    assert r.status == 400 and r.json["error"]["data"] == {"_schema": ["Invalid input type."]}
    r = await api.call("POST", "/api/tags", data=b"<tag/>", headers={"Content-Type": "application/xml"})
    assert r.status == 415


async def test_json_without_content_type_is_accepted(api: Api) -> None:
    assert (await api.call("POST", "/api/tags", data=b'{"name": "a"}')).status == 201


async def test_body_over_the_server_limit_is_413(make_api: MakeApi) -> None:
    api = await make_api(SandboxSettings(rate_limit="off", max_body_bytes=1000))
    r = await api.call("POST", "/api/tags", {"name": "x" * 2000})
    assert r.status == 413 and r.json == {"error": {"msg": "Payload too large."}}


async def test_every_object_uri_and_integer_id(api: Api) -> None:
    await api.call("POST", "/api/tickets", incoming_ticket(tags=[{"name": "t"}]))
    await api.call("POST", "/api/satisfaction-surveys", {"customer_id": 1, "ticket_id": 1})
    await api.call("POST", "/api/jobs", {"type": "exportTicket", "params": {}})
    state = await api.state()
    for kind, prefix in [("tickets", "/api/tickets/"), ("tags", "/api/tags/"),
                         ("users", "/api/users/"), ("jobs", "/api/jobs/"),
                         ("satisfaction_surveys", "/api/satisfaction-surveys/")]:
        for obj in state[kind]:
            assert isinstance(obj["id"], int)
            assert obj["uri"] == f"{prefix}{obj['id']}/", kind
    for kind in ("customers", "custom_fields"):  # recorded without a uri
        assert all(isinstance(obj["id"], int) and "uri" not in obj for obj in state[kind]), kind


async def test_request_without_host_header_is_html_404(api: Api) -> None:
    reader, writer = await asyncio.open_connection(api.client.host, api.client.port)
    writer.write(b"GET /api/tickets HTTP/1.0\r\nAuthorization: " + AGENT.encode() + b"\r\n\r\n")
    await writer.drain()
    answer = await reader.read()
    writer.close()
    await writer.wait_closed()
    assert answer.startswith(b"HTTP/1.0 404") and b"text/html" in answer


async def test_every_answer_carries_a_request_id_and_2xx_the_call_limit(make_api: MakeApi) -> None:
    api = await make_api()
    answers = [await api.call("GET", "/api/account"), await api.call("GET", "/api/nothing"),
               await api.call("GET", "/api/account", auth=None), await api.call("GET", "/", host="unknown.gorgias.com")]
    ids = [a.headers.get("x-request-id") for a in answers]
    assert all(i is not None and len(i) == 32 for i in ids) and len(set(ids)) == 4
    assert answers[0].status == 200 and answers[0].call_limit == "1/40"
