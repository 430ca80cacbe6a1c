"""The console's routes without Kafka: the template catalog, preview and test of an unsaved destination
(against the sandbox), structured validation errors, the page's assets and its security headers."""

from __future__ import annotations

import copy
import re
import tomllib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer
from pydantic import SecretStr
from typer.testing import CliRunner

import worker
from gorgias_sandbox.server import RunningSandbox, start_sandbox
from gorgias_sandbox.settings import SandboxSettings
from worker.core.config.delivery import BatchingSettings
from worker.core.config.worker_config import parse_config
from worker.core.grouping.batching import GroupingAlgorithm
from worker.gorgias.delivery import DeliveryService
from worker.service.console_page import ASSETS
from worker.service.control_api import create_control_app
from worker.service.runtime import Runtime
from worker.tools.cli import app as cli

TOKEN = "console-token-5d1e"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
API_KEY = "sandbox-api-key"


def unsaved(base_url: str | None = None, **changes: Any) -> dict[str, Any]:
    credential: dict[str, Any] = {"domain": "acme", "username": "agent@acme.com", "api_key_env": "GORGIAS_API_KEY"}
    if base_url:
        credential["base_url"] = base_url
    doc: dict[str, Any] = {"name": "tags", "source_topics": ["nexset.tags"], "credential": credential,
                           "endpoint": {"template": "add_ticket_tags"}}
    doc.update(changes)
    return doc


@pytest.fixture
async def sandbox(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[RunningSandbox]:
    monkeypatch.setenv("GORGIAS_API_KEY", API_KEY)
    running = await start_sandbox(SandboxSettings(rate_limit="off"))
    try:
        yield running
    finally:
        await running.stop()


@pytest.fixture
async def client(sandbox: RunningSandbox) -> AsyncIterator[TestClient[Any, Any]]:
    """The control API of a worker whose one destination uses the sandbox's account (not started: no Kafka)."""
    named = {"domain": "acme", "username": "agent@acme.com", "api_key_env": "GORGIAS_API_KEY", "base_url": sandbox.url}
    config = parse_config({"worker": {"control_token_env": "CTL_TOKEN"}, "credentials": {"sandbox": named},
                           "destinations": [unsaved(sandbox.url)]})
    runtime = Runtime(config)
    async with DeliveryService() as delivery:
        runtime.delivery = delivery
        async with TestClient(TestServer(create_control_app(runtime, token=SecretStr(TOKEN)))) as test_client:
            yield test_client


async def state(sandbox: RunningSandbox) -> dict[str, Any]:
    async with httpx.AsyncClient() as http:
        answer: dict[str, Any] = (await http.get(f"{sandbox.url}/__admin/state")).json()
        return answer


# --------------------------------------------------------------------------------------------------
# the catalog


async def test_about_says_whether_writes_need_the_token(client: TestClient[Any, Any]) -> None:
    about = await (await client.get("/about")).json()
    assert about["control_token"] is True and about["version"] and about["deployment"] == "gorgias-worker"
    assert TOKEN not in orjson.dumps(about).decode()


async def test_about_lists_the_grouping_algorithms_from_the_enum(client: TestClient[Any, Any]) -> None:
    """The console's algorithm list comes from here: every GroupingAlgorithm, each with settings that exist."""
    about = await (await client.get("/about")).json()
    assert [a["name"] for a in about["algorithms"]] == [a.value for a in GroupingAlgorithm]
    for algorithm in about["algorithms"]:
        assert algorithm["summary"] and algorithm["settings"]
        assert set(algorithm["settings"]) <= set(BatchingSettings.model_fields)


async def test_templates_route_explains_every_template(client: TestClient[Any, Any]) -> None:
    resp = await client.get("/templates")
    assert resp.status == 200
    doc = await resp.json()
    names = [t["name"] for t in doc["templates"]]
    assert len(names) == 23 and names[0] == "create_ticket"
    tags = next(t for t in doc["templates"] if t["name"] == "add_ticket_tags")
    assert tags["method"] == "POST" and tags["path"] == "/api/tickets/{ticket_id}/tags"
    assert "ticket_id" in tags["attributes"] and tags["batching"]["batchable"] is True
    assert tags["batching"]["key"] == ["ticket_id"] and tags["may_email"] is False
    assert {o["name"] for o in tags["options"]} == {"fields", "mapping", "url_attributes"}
    (request,) = tags["example"]["requests"]
    assert request["url"] == "https://mystore.gorgias.com/api/tickets/123/tags"
    message = next(t for t in doc["templates"] if t["name"] == "add_ticket_message")
    assert message["may_email"] is True and "mode: send" in message["emails"]
    mode = next(o for o in message["options"] if o["name"] == "mode")
    assert mode["values"] == ["import", "send"]
    ticket = next(t for t in doc["templates"] if t["name"] == "create_ticket")
    assert ticket["creates"] == "ticket" and ticket["duplicate_safe"].startswith("yes: external_id stamped")


async def test_templates_json_prints_what_the_route_answers(client: TestClient[Any, Any]) -> None:
    route = await (await client.get("/templates")).json()
    printed = CliRunner().invoke(cli, ["templates", "--json"])
    assert printed.exit_code == 0
    assert orjson.loads(printed.stdout) == route
    one = CliRunner().invoke(cli, ["templates", "set_ticket_tags", "--json"])
    assert orjson.loads(one.stdout) == next(t for t in route["templates"] if t["name"] == "set_ticket_tags")
    bad = CliRunner().invoke(cli, ["templates", "nope", "--json"])
    assert bad.exit_code == 1 and bad.stderr.startswith("error: endpoint.template: unknown template 'nope'")


# --------------------------------------------------------------------------------------------------
# preview of an unsaved destination


RECORDS = [{"ticket_id": 1, "tags": ["vip"], "score": 3}, {"ticket_id": 1, "tags": ["late"], "score": 4},
           {"ticket_id": 2, "tags": ["vip"]}, {"tags": ["orphan"]}]


async def test_preview_of_an_unsaved_destination_follows_its_settings(client: TestClient[Any, Any]) -> None:
    single = await client.post("/preview", json={"destination": unsaved(), "records": RECORDS}, headers=AUTH)
    assert single.status == 200, await single.text()
    items = (await single.json())["items"]
    assert [i["kind"] for i in items] == ["request", "request", "request", "dead_letter"]
    assert items[3]["field"] == "ticket_id" and items[3]["records"] == [3]
    assert items[0]["headers"]["Authorization"] == "Basic ***"
    batched = unsaved(batching={"enabled": True, "algorithm": "by_attribute", "attributes": ["ticket_id"]})
    grouped = await (await client.post("/preview", json={"destination": batched, "records": RECORDS},
                                       headers=AUTH)).json()
    calls = [i for i in grouped["items"] if i["kind"] == "request"]
    assert [c["records"] for c in calls] == [[0, 1], [2]]
    assert calls[0]["body"] == {"names": ["vip", "late"]}
    small = copy.deepcopy(batched)
    small["batching"]["batch_size"] = 1
    split = await (await client.post("/preview", json={"destination": small, "records": RECORDS},
                                     headers=AUTH)).json()
    assert [i["records"] for i in split["items"] if i["kind"] == "request"] == [[0], [1], [2]]


async def test_preview_without_a_credential_uses_an_example_account(client: TestClient[Any, Any]) -> None:
    doc = unsaved()
    del doc["credential"]
    resp = await client.post("/preview", json={"destination": doc, "records": RECORDS[:1]}, headers=AUTH)
    answer = await resp.json()
    assert answer["example_credential"] is True
    assert answer["items"][0]["url"] == "https://your-domain.gorgias.com/api/tickets/1/tags"


async def test_manual_preview_excludes_attributes_and_sends_the_typed_headers(client: TestClient[Any, Any]) -> None:
    doc = unsaved(endpoint={"method": "PUT", "url": "https://{domain}.gorgias.com/api/tickets/{ticket_id}",
                            "headers": "X-Source:nexla,X-Team:cx", "exclude_attributes": ["score"]})
    answer = await (await client.post("/preview", json={"destination": doc, "records": RECORDS[:1]},
                                      headers=AUTH)).json()
    (item,) = answer["items"]
    assert item["method"] == "PUT" and item["body"] == {"ticket_id": 1, "tags": ["vip"]}
    assert item["headers"]["X-Source"] == "nexla" and item["headers"]["X-Team"] == "cx"


@pytest.mark.parametrize(("change", "path", "suggestion"), [
    ({"batching": {"enabled": True, "batch_size": 0}}, "batching.batch_size", None),
    ({"batching": {"enabled": True, "algorithm": "by_atribute"}}, "batching.algorithm", "did you mean `by_attribute`?"),
    ({"batchng": {}}, "batchng", "did you mean `batching`?"),
    ({"endpoint": {"template": "add_ticket_tags", "template_options": {"fields": {"colour": "red"}}}},
     "endpoint.template_options.fields.colour", None),
    ({"credential": "nobody"}, "credential", None),
    ({"name": "Not A Name"}, "name", None),
])
async def test_invalid_settings_are_named_by_their_path(
    client: TestClient[Any, Any], change: dict[str, Any], path: str, suggestion: str | None,
) -> None:
    # preview answers them (a form asks after every keystroke): 200, no requests, the errors
    resp = await client.post("/preview", json={"destination": unsaved(**change), "records": RECORDS}, headers=AUTH)
    assert resp.status == 200
    doc = await resp.json()
    assert doc["items"] == []
    item = doc["errors"][0]
    assert item["path"] == path, doc
    assert item["message"] and item["suggestion"] == suggestion
    # test refuses them: 400 with the same errors
    resp = await client.post("/test", json={"destination": unsaved(**change)}, headers=AUTH)
    assert resp.status == 400
    refused = await resp.json()
    assert refused["error"].startswith("the settings are not valid: ")
    assert refused["errors"][0]["path"] == path


async def test_validate_route_answers_structured_errors(client: TestClient[Any, Any]) -> None:
    bad = orjson.dumps({"destinations": [unsaved(batching={"enabled": True, "batch_size": -1})]})
    doc = await (await client.post("/validate", data=bad, headers=AUTH)).json()
    assert doc["ok"] is False
    assert doc["errors"] == [{"path": "destinations[0].batching.batch_size", "message": "must be >= 1 (got -1)",
                              "suggestion": None,
                              "line": "destinations[0].batching.batch_size: must be >= 1 (got -1) (request body:1)"}]


# --------------------------------------------------------------------------------------------------
# test of an unsaved destination


async def test_test_says_what_it_will_do_and_sends_only_when_confirmed(
    client: TestClient[Any, Any], sandbox: RunningSandbox,
) -> None:
    doc = unsaved(sandbox.url, endpoint={"template": "create_ticket"})
    record = {"subject": "Order late", "body_text": "Where is it?", "customer_email": "jane@example.com"}
    plan = await client.post("/test", json={"destination": doc, "record": record}, headers=AUTH)
    assert plan.status == 200, await plan.text()
    described = await plan.json()
    assert described["sent"] is False and described["creates"] == "ticket"
    assert described["summary"] == f"will create a ticket on acme.gorgias.com: POST {sandbox.url}/api/tickets"
    assert described["emails"] == [] and described["request"]["body"]["subject"] == "Order late"
    assert (await state(sandbox))["tickets"] == []  # nothing sent
    sent = await (await client.post("/test", json={"destination": doc, "record": record, "confirm": True},
                                    headers=AUTH)).json()
    assert sent["sent"] is True and sent["ok"] is True and sent["response"]["status"] == 201
    ticket_id = sent["response"]["body"]["id"]
    assert sent["undo"] == {"kind": "ticket", "id": ticket_id, "ticket_id": None, "what": f"ticket {ticket_id}",
                            "method": "DELETE", "url": f"{sandbox.url}/api/tickets/{ticket_id}"}
    assert [t["id"] for t in (await state(sandbox))["tickets"]] == [ticket_id]
    undone = await client.post("/test/undo", json={"destination": doc, "undo": sent["undo"]}, headers=AUTH)
    assert (await undone.json())["ok"] is True
    assert (await state(sandbox))["tickets"] == []


async def test_test_names_whom_a_send_mode_message_would_email(client: TestClient[Any, Any],
                                                               sandbox: RunningSandbox) -> None:
    doc = unsaved(sandbox.url, endpoint={"template": "add_ticket_message", "template_options": {"mode": "send"}})
    record = {"ticket_id": 7, "from_agent": True, "channel": "email", "body_text": "hi",
              "sender_email": "agent@acme.com", "receiver_email": "jane@example.com"}
    described = await (await client.post("/test", json={"destination": doc, "record": record}, headers=AUTH)).json()
    assert described["emails"] == ["emails jane@example.com: the message has no sent_datetime (mode: send)"]
    assert described["sent"] is False


@pytest.mark.parametrize("undo", [
    {"kind": "ticket", "id": "1/../../customers/2"},
    {"kind": "ticket", "id": "1?x=y"},
    {"kind": "user", "id": 1},
    {"kind": "message", "id": 3},
    {"kind": "ticket", "id": True},
])
async def test_undo_deletes_only_what_a_test_can_create(client: TestClient[Any, Any], sandbox: RunningSandbox,
                                                        undo: dict[str, Any]) -> None:
    resp = await client.post("/test/undo", json={"destination": unsaved(sandbox.url), "undo": undo}, headers=AUTH)
    assert resp.status == 400
    assert (await client.get("/templates")).status == 200


async def test_a_credential_is_named_as_in_the_config(client: TestClient[Any, Any], sandbox: RunningSandbox) -> None:
    doc = unsaved(credential="sandbox")
    answer = await (await client.post("/preview", json={"destination": doc, "records": RECORDS[:1]},
                                      headers=AUTH)).json()
    assert answer["items"][0]["url"] == f"{sandbox.url}/api/tickets/1/tags"
    unknown = await (await client.post("/preview", json={"destination": unsaved(credential="nobody"),
                                                         "records": RECORDS[:1]}, headers=AUTH)).json()
    (problem,) = unknown["errors"]
    assert problem["path"] == "credential" and "no credential named 'nobody' (known: sandbox)" in problem["message"]
    sent = await (await client.post("/test", json={"destination": doc, "record": RECORDS[2], "confirm": True},
                                    headers=AUTH)).json()
    assert sent["response"]["status"] == 404  # ticket 2 does not exist in the sandbox: Gorgias' own answer


async def test_a_test_may_only_send_with_a_credential_the_worker_uses(client: TestClient[Any, Any],
                                                                      sandbox: RunningSandbox) -> None:
    elsewhere = unsaved("http://127.0.0.1:9")  # another origin: refused before anything is sent
    resp = await client.post("/test", json={"destination": elsewhere, "record": {"ticket_id": 1, "tags": ["a"]},
                                            "confirm": True}, headers=AUTH)
    assert resp.status == 400
    assert (await resp.json())["errors"][0]["path"] == "credential"
    no_credential = unsaved()
    del no_credential["credential"]
    resp = await client.post("/test", json={"destination": no_credential}, headers=AUTH)
    assert resp.status == 400 and (await resp.json())["errors"][0]["path"] == "credential"


@pytest.mark.parametrize(("method", "route"), [
    ("POST", "/preview"), ("POST", "/test"), ("POST", "/test/undo"), ("GET", "/topics/nexset.tags/sample"),
])
async def test_console_routes_that_act_or_read_records_need_the_token(
    client: TestClient[Any, Any], method: str, route: str,
) -> None:
    resp = await client.request(method, route, json={})
    assert resp.status == 401
    resp = await client.request(method, route, json={}, headers={"Authorization": "Bearer wrong"})
    assert resp.status == 403


# --------------------------------------------------------------------------------------------------
# the page


@pytest.mark.parametrize("path", ["/", "/console", "/console/"])
async def test_the_page_is_served_with_a_strict_policy(client: TestClient[Any, Any], path: str) -> None:
    resp = await client.get(path)
    assert resp.status == 200 and resp.content_type == "text/html"
    policy = resp.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy and "unsafe" not in policy
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    html = await resp.text()
    assert "<script>" not in html and " style=" not in html and not re.search(r"\son[a-z]+=", html)
    for ref in re.findall(r'(?:src|href)="(/console/[^"]+)"', html):
        assert (await client.get(ref)).status == 200, ref


async def test_every_answer_carries_the_security_headers(client: TestClient[Any, Any]) -> None:
    for path in ("/destinations", "/health/live", "/console/js/nope.js", "/templates"):
        resp = await client.get(path)
        assert resp.headers["X-Content-Type-Options"] == "nosniff", path
        assert "frame-ancestors 'none'" in resp.headers["Content-Security-Policy"], path
    missing = await client.get("/console/../pyproject.toml")
    assert missing.status == 404


async def test_assets_have_their_types_and_no_inline_code(client: TestClient[Any, Any]) -> None:
    assert {"index.html", "console.css", "js/main.js"} <= set(ASSETS)
    for name in ASSETS:
        resp = await client.get(f"/console/{name}")
        assert resp.status == 200
        expected = {"js": "text/javascript", "css": "text/css", "html": "text/html"}[name.rsplit(".", 1)[1]]
        assert resp.content_type == expected
        text = await resp.text()
        assert "innerHTML" not in text and "insertAdjacentHTML" not in text and "eval(" not in text, name
        assert "http://" not in text and "https://cdn" not in text, name  # nothing from the network


def test_every_file_of_the_page_ships_in_the_package() -> None:
    """The page is served from package data: a file the globs in pyproject.toml miss would be absent
    from an installed worker (the image), though present in a checkout."""
    root = Path(worker.__file__).resolve().parents[1]
    patterns = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["worker"]
    shipped = {p.relative_to(root / "worker") for pattern in patterns for p in (root / "worker").glob(pattern)}
    page = {p.relative_to(root / "worker") for p in (root / "worker/service/console").rglob("*") if p.is_file()}
    assert page and page <= shipped, sorted(map(str, page - shipped))
    assert {str(p.relative_to("service/console")) for p in page} == set(ASSETS)  # and every one is served
