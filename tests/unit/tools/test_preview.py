"""Sample payloads (worker.core.chain.preview), endpoint testing (worker.gorgias.endpoint_trial), their CLI commands
and routes."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from aiohttp.test_utils import TestClient, TestServer
from typer.testing import CliRunner

from gorgias_sandbox.server import RunningSandbox, start_sandbox
from gorgias_sandbox.settings import SandboxSettings
from worker.core.chain.preview import (
    PreviewDeadLetter,
    PreviewRequest,
    format_items,
    masked_headers,
    preview,
    reason_field,
)
from worker.core.config.worker_config import Destination, parse_config
from worker.gorgias.delivery import DeliveryService
from worker.gorgias.endpoint_trial import EndpointTestError, run_test, sample_request
from worker.service.control_api import create_control_app
from worker.tools import cli_trying
from worker.tools.cli import app

runner = CliRunner()
API_KEY = "sandbox-api-key"
CREDENTIAL = {"domain": "acme", "username": "agent@acme.com", "api_key_env": "GORGIAS_API_KEY"}


def destination(endpoint: dict[str, Any], batching: dict[str, Any] | None = None, **credential: Any) -> Destination:
    doc: dict[str, Any] = {"name": "support", "source_topics": ["nexset.support"],
                           "credential": {**CREDENTIAL, **credential}, "endpoint": endpoint}
    if batching is not None:
        doc["batching"] = {"enabled": True, **batching}
    return Destination.model_validate(doc)


def requests_of(items: list[Any]) -> list[PreviewRequest]:
    return [i for i in items if isinstance(i, PreviewRequest)]


# --------------------------------------------------------------------------------------------------
# preview()


def test_preview_groups_a_conversation_into_one_ticket_and_shows_dead_letters_in_order() -> None:
    dest = destination({"template": "create_ticket"}, {"algorithm": "by_attribute", "attributes": ["conversation_id"],
                                                       "batch_size": 2})
    values = [
        {"conversation_id": "a", "subject": "A", "body_text": "a1", "customer_email": "a@x.io"},
        {"conversation_id": "b", "subject": "B", "body_text": "b1", "customer_email": "b@x.io"},
        {"conversation_id": "a", "body_text": "a2", "customer_email": "a@x.io"},  # fills a's batch: sent first
        {"conversation_id": "b", "subject": "no text", "customer_email": "b@x.io"},
        b"{broken",
        {"conversation_id": "a", "body_text": "a3", "customer_email": "a@x.io"},
    ]
    items = preview(dest, values)
    assert [type(i).__name__ for i in items] == [
        "PreviewRequest", "PreviewDeadLetter", "PreviewDeadLetter", "PreviewRequest", "PreviewRequest"]
    first, render, decode, second, third = items
    assert isinstance(first, PreviewRequest) and first.records == [0, 2] and first.group_key == ["a"]
    assert [m["body_text"] for m in first.body["messages"]] == ["a1", "a2"]
    assert isinstance(render, PreviewDeadLetter) and render.stage == "render" and render.records == [3]
    assert "messages[0].body_text: required" in render.reason
    assert isinstance(decode, PreviewDeadLetter) and decode.stage == "decode" and decode.records == [4]
    # flushed at the end, in the grouper's order: b's batch (opened first), then a's new one
    assert isinstance(second, PreviewRequest) and second.records == [1] and second.group_key == ["b"]
    assert isinstance(third, PreviewRequest) and third.records == [5]


def test_preview_arrival_order_splits_on_batch_size_and_unions_ids() -> None:
    dest = destination({"template": "delete_customers"}, {"algorithm": "arrival_order", "batch_size": 2})
    items = requests_of(preview(dest, [{"customer_id": i} for i in range(1, 6)]))
    assert [i.body for i in items] == [{"ids": [1, 2]}, {"ids": [3, 4]}, {"ids": [5]}]
    assert {(i.request.method, i.request.url) for i in items} == {("DELETE", "https://acme.gorgias.com/api/customers")}


def test_preview_of_a_manual_endpoint_batches_a_json_array_and_reads_envelopes() -> None:
    dest = destination({"method": "PUT", "url": "https://{domain}.gorgias.com/api/tickets/{ticket_id}",
                        "headers": "X-Team:cx", "exclude_attributes": ["ticket_id"]},
                       {"algorithm": "by_attribute", "attributes": ["ticket_id"]})
    values = [{"rawMessage": {"ticket_id": 5, "status": "closed"}, "nexlaMetaData": {"x": 1}},
              {"ticket_id": 5, "priority": "high"}]
    (item,) = preview(dest, values)
    assert isinstance(item, PreviewRequest)
    assert item.request.url == "https://acme.gorgias.com/api/tickets/5"
    assert item.body == [{"status": "closed"}, {"priority": "high"}]
    assert item.headers["X-Team"] == "cx"


def test_headers_mask_the_credential_and_show_the_host_with_a_base_url() -> None:
    dest = destination({"template": "create_tag"}, base_url="http://127.0.0.1:8080")
    (item,) = preview(dest, [{"name": "vip"}])
    assert isinstance(item, PreviewRequest)
    assert item.request.url == "http://127.0.0.1:8080/api/tags"
    assert item.headers == {"Host": "acme.gorgias.com", "Authorization": "Basic ***",
                            "Content-Type": "application/json", "Accept": "application/json",
                            "User-Agent": "nexset-gorgias-worker/0.1"}
    oauth = Destination.model_validate({"name": "o", "source_topics": ["t"], "endpoint": {"template": "create_tag"},
                                        "credential": {"domain": "acme", "auth": "oauth", "access_token_env": "T"}})
    assert masked_headers(oauth, item.request)["Authorization"] == "Bearer ***"


def test_preview_items_as_json_and_text() -> None:
    dest = destination({"template": "add_ticket_tags"})
    items = preview(dest, [{"ticket_id": 3, "tags": "a, b"}, {"ticket_id": 3}])
    assert orjson.loads(orjson.dumps([i.as_dict() for i in items])) == [
        {"kind": "request", "records": [0], "method": "POST", "url": "https://acme.gorgias.com/api/tickets/3/tags",
         "headers": {"Authorization": "Basic ***", "Content-Type": "application/json", "Accept": "application/json",
                     "User-Agent": "nexset-gorgias-worker/0.1"},
         "body": {"names": ["a", "b"]},
         "steps": ['POST https://acme.gorgias.com/api/tags {"name": "a"}  (unless known to exist; 400/409 = exists)',
                   'POST https://acme.gorgias.com/api/tags {"name": "b"}  (unless known to exist; 400/409 = exists)',
                   "POST https://acme.gorgias.com/api/tickets/3/tags  (the request above; refused with 400, each "
                   "name is created again and it is sent once more)"],
         "emails": []},
        {"kind": "dead_letter", "records": [1], "stage": "render",
         "reason": "add_ticket_tags: names: required: at least one tag name (or ids)", "field": "names"},
    ]
    text = "\n".join(format_items(items))
    assert "#1  record 0\nPOST https://acme.gorgias.com/api/tickets/3/tags\nAuthorization: Basic ***" in text
    assert "#2  record 1 -> dead letter (render): add_ticket_tags: names: required" in text
    assert "this call sends, in order:\n  POST https://acme.gorgias.com/api/tags" in text


def test_preview_says_which_calls_would_email_someone() -> None:
    reply = {"ticket_id": 3, "body_text": "Shipped.", "from_agent": True, "customer_email": "jane@example.com"}
    sending = destination({"template": "add_ticket_message", "template_options": {"mode": "send"}})
    [item] = preview(sending, [reply])
    assert item.as_dict()["notes"] == ["emails jane@example.com: the message has no sent_datetime (mode: send)"]
    assert "! emails jane@example.com" in "\n".join(format_items([item]))
    [imported] = preview(destination({"template": "add_ticket_message"}), [reply])
    assert "notes" not in imported.as_dict() and imported.as_dict()["body"]["sent_datetime"]


def test_a_bad_template_option_is_a_value_error_naming_it() -> None:
    dest = destination({"template": "create_tag", "template_options": {"fields": {"colour": "red"}}})
    with pytest.raises(ValueError, match=r"endpoint\.template_options\.fields\.colour: colour is not a field"):
        preview(dest, [{"name": "x"}])


# --------------------------------------------------------------------------------------------------
# endpoint testing


def test_the_sample_request_is_the_examples_or_the_records_with_the_payload_as_body() -> None:
    dest = destination({"template": "update_ticket"})
    assert sample_request(dest).request.url == "https://acme.gorgias.com/api/tickets/123"
    sample = sample_request(dest, {"ticket_id": 9, "status": "open"}, {"priority": "low", "anything": True})
    assert sample.request.url == "https://acme.gorgias.com/api/tickets/9"
    assert sample.body == {"priority": "low", "anything": True}  # the user's edit, sent as they wrote it
    with pytest.raises(EndpointTestError, match=r"cannot make a request .*nothing to update"):
        sample_request(dest, {"ticket_id": 9})
    manual = destination({"method": "POST", "url": "https://{domain}.gorgias.com/api/tags"})
    with pytest.raises(EndpointTestError, match="no sample record"):
        sample_request(manual)


@pytest.fixture
def sandbox_thread(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The sandbox in a thread of its own (the CLI runs its own event loop)."""
    monkeypatch.setenv("GORGIAS_API_KEY", API_KEY)
    loop = asyncio.new_event_loop()
    started: list[RunningSandbox] = []
    ready = threading.Event()

    def serve() -> None:
        asyncio.set_event_loop(loop)
        started.append(loop.run_until_complete(start_sandbox(SandboxSettings(rate_limit="off"))))
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    assert ready.wait(10)
    try:
        yield started[0].url
    finally:
        asyncio.run_coroutine_threadsafe(started[0].stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


async def test_run_test_sends_once_and_reports(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GORGIAS_API_KEY", API_KEY)
    running = await start_sandbox(SandboxSettings(rate_limit="off"))
    try:
        dest = destination({"template": "create_tag"}, base_url=running.url)
        result = await run_test(dest, {"name": "vip"})
        assert result.ok and result.status == 201 and result.body["name"] == "vip"
        assert result.headers["content-type"].startswith("application/json")
        again = await run_test(dest, {"name": "vip"})  # a 409 is not retried
        assert not again.ok and again.status == 409
        assert again.error is not None and "409" in again.error
        bad = await run_test(dest, payload={"name": "x", "colour": "red"})
        assert bad.status == 400
        assert bad.as_dict()["response"]["body"]["error"]["data"] == {"colour": ["Unknown field."]}
        assert bad.as_dict()["request"]["body"] == {"name": "x", "colour": "red"}
    finally:
        await running.stop()


def write_config(tmp_path: Path, *destinations: dict[str, Any]) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({"destinations": list(destinations)}))
    return path


def dest_doc(endpoint: dict[str, Any], base_url: str | None = None, **extra: Any) -> dict[str, Any]:
    credential = {**CREDENTIAL, **({"base_url": base_url} if base_url else {})}
    return {"name": "support", "source_topics": ["nexset.support"], "credential": credential,
            "endpoint": endpoint, **extra}


def test_cli_test_prints_the_answer_and_exits_by_status(tmp_path: Path, sandbox_thread: str) -> None:
    config = write_config(tmp_path, dest_doc({"template": "create_customer"}, sandbox_thread))
    record = tmp_path / "record.json"
    record.write_text('{"name": "Jane", "email": "jane@example.com"}')
    result = runner.invoke(app, ["test", "--config", str(config), "--destination", "support", "--record", str(record),
                                 "--yes"])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("POST " + sandbox_thread + "/api/customers\n-> HTTP 201 in ")
    assert '"email": "jane@example.com"' in result.stdout
    # what it did, before sending: it creates a customer; afterwards: how to delete it
    assert result.stderr.startswith("will create a customer on acme.gorgias.com: POST ")
    assert "nobody would be emailed" in result.stderr
    assert "the test created customer " in result.stdout and "to delete it: DELETE " in result.stdout
    again = runner.invoke(app, ["test", "-c", str(config), "-d", "support", "--record", str(record), "--json", "-y"])
    assert again.exit_code == 1
    doc = orjson.loads(again.stdout)
    assert doc["ok"] is False and doc["response"]["status"] == 400  # a taken email
    assert doc["effect"]["creates"] == "customer" and doc["undo"] is None
    payload = tmp_path / "payload.json"
    payload.write_text('{"email": "other@example.com", "note": "edited", '
                       '"channels": [{"type": "email", "address": "other@example.com", "preferred": true}]}')
    edited = runner.invoke(app, ["test", "-c", str(config), "-d", "support", "--payload", str(payload), "--yes"])
    assert edited.exit_code == 0, edited.output
    assert '"note": "edited"' in edited.stdout


def test_cli_test_asks_before_sending(tmp_path: Path, sandbox_thread: str, monkeypatch: pytest.MonkeyPatch) -> None:
    config = write_config(tmp_path, dest_doc({"template": "create_customer"}, sandbox_thread))
    record = tmp_path / "record.json"
    record.write_text('{"name": "Ann", "email": "ann@example.com"}')
    args = ["test", "-c", str(config), "-d", "support", "--record", str(record)]
    piped = runner.invoke(app, args)  # stdin is not a terminal and no --yes: one line, nothing sent
    assert piped.exit_code == 1
    assert piped.stderr.splitlines()[-1] == ("error: test sends a real request: run it on a terminal to confirm, "
                                             "or add --yes")
    assert piped.stdout == ""
    monkeypatch.setattr(cli_trying, "interactive", lambda: True)
    declined = runner.invoke(app, args, input="n\n")
    assert declined.exit_code == 1 and "error: not sent" in declined.stderr
    assert "HTTP" not in declined.stdout  # (the runner echoes the typed answer there)
    accepted = runner.invoke(app, args, input="y\n")
    assert accepted.exit_code == 0, accepted.output
    assert "-> HTTP 201" in accepted.stdout


def test_cli_test_says_whom_a_send_mode_message_would_email(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GORGIAS_API_KEY", API_KEY)
    config = write_config(tmp_path, dest_doc({"template": "add_ticket_message", "template_options": {"mode": "send"}}))
    record = tmp_path / "record.json"
    record.write_text('{"ticket_id": 7, "from_agent": true, "channel": "email", "body_text": "hi", '
                      '"sender_email": "agent@acme.com", "receiver_email": "jane@example.com"}')
    result = runner.invoke(app, ["test", "-c", str(config), "-d", "support", "--record", str(record)])
    assert result.exit_code == 1  # not a terminal, no --yes: nothing sent
    assert "! emails jane@example.com: the message has no sent_datetime (mode: send)" in result.stderr


def test_cli_test_refuses_a_missing_secret(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GORGIAS_API_KEY", raising=False)
    config = write_config(tmp_path, dest_doc({"template": "create_tag"}))
    result = runner.invoke(app, ["test", "-c", str(config), "-d", "support"])
    assert result.exit_code == 1
    assert "destinations.support.credential: environment variable GORGIAS_API_KEY is not set" in result.output


# --------------------------------------------------------------------------------------------------
# CLI: templates, preview


def test_cli_templates_lists_every_template() -> None:
    result = runner.invoke(app, ["templates"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split()[:3] == ["create_ticket", "POST", "/api/tickets"]
    assert any(line.split()[:3] == ["add_ticket_tags", "POST", "/api/tickets/{ticket_id}/tags"] for line in lines)
    assert sum(1 for line in lines if "/api/" in line) == 23


def test_cli_templates_name_shows_attributes_options_and_the_exact_request() -> None:
    result = runner.invoke(app, ["templates", "add_ticket_tags"])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "POST https://{domain}.gorgias.com/api/tickets/{ticket_id}/tags" in out
    assert "batching.attributes must include: ticket_id" in out
    assert "Record attributes:" in out and "Options (endpoint.template_options):" in out
    assert "POST https://mystore.gorgias.com/api/tickets/123/tags\n    Authorization: Basic ***" in out
    assert '"urgent"' in out  # the example group's union
    missing = runner.invoke(app, ["templates", "nope"])
    assert missing.exit_code == 1 and "endpoint.template: unknown template 'nope'" in missing.output


def test_cli_preview_records_file_text_and_json(tmp_path: Path) -> None:
    config = write_config(tmp_path, dest_doc({"template": "set_ticket_tags"}, batching={
        "enabled": True, "algorithm": "by_attribute", "attributes": ["ticket_id"]}))
    records = tmp_path / "records.jsonl"
    records.write_text('{"ticket_id": 1, "tags": ["a"]}\n\n{"ticket_id": 2, "tags": "x"}\n'
                       '{"ticket_id": 1, "tag": "b"}\n')
    result = runner.invoke(app, ["preview", "-c", str(config), "-d", "support", "--records", str(records)])
    assert result.exit_code == 0, result.output
    assert "#1  records 0, 2  group 1\nPUT https://acme.gorgias.com/api/tickets/1/tags" in result.output
    assert result.output.rstrip().endswith("3 record(s) -> 2 request(s), 0 dead letter(s)")
    raw = runner.invoke(app, ["preview", "-c", str(config), "-d", "support", "--records", str(records), "--json"])
    doc = orjson.loads(raw.output)
    assert [i["body"] for i in doc["items"]] == [{"names": ["a", "b"]}, {"names": ["x"]}]


def test_cli_preview_defaults_to_the_example_and_names_config_problems(tmp_path: Path) -> None:
    config = write_config(tmp_path, dest_doc({"template": "create_tag"}))
    result = runner.invoke(app, ["preview", "-c", str(config), "-d", "support"])
    assert result.exit_code == 0, result.output
    assert '"name": "vip"' in result.output
    (tmp_path / "bad").mkdir()
    bad = write_config(tmp_path / "bad", dest_doc({"template": "create_tag", "template_options": {"bogus": 1}}))
    result = runner.invoke(app, ["preview", "-c", str(bad), "-d", "support"])
    assert result.exit_code == 1
    assert "destinations[0].endpoint.template_options.bogus: is not a known setting" in result.output
    result = runner.invoke(app, ["preview", "-c", str(config), "-d", "nope"])
    assert result.exit_code == 1 and "no destination named 'nope'" in result.output


# --------------------------------------------------------------------------------------------------
# HTTP routes


class FakeRuntime:
    def __init__(self, doc: dict[str, Any], delivery: DeliveryService | None) -> None:
        self.config = parse_config(doc)
        self.pipelines: dict[str, Any] = {}
        self.delivery = delivery

    def destination(self, name: str) -> Any:
        return self.config.destination(name)


async def test_routes_preview_and_test(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GORGIAS_API_KEY", API_KEY)
    running = await start_sandbox(SandboxSettings(rate_limit="off"))
    delivery = DeliveryService()
    runtime = FakeRuntime({"destinations": [dest_doc({"template": "create_tag"}, running.url)]}, delivery)
    client = TestClient(TestServer(create_control_app(runtime)))  # type: ignore[arg-type]
    await client.start_server()
    try:
        r = await client.post("/destinations/support/preview", json={"records": [{"name": "a"}, {"nom": "b"}]})
        assert r.status == 200
        doc = await r.json()
        assert [i["kind"] for i in doc["items"]] == ["request", "dead_letter"]
        assert doc["items"][0]["body"] == {"name": "a"} and doc["items"][0]["headers"]["Authorization"] == "Basic ***"
        assert (await client.post("/destinations/support/preview", json={"rec": []})).status == 400
        assert (await client.post("/destinations/nope/preview", json={"records": []})).status == 404
        assert (await client.post("/destinations/support/preview", data=b"{")).status == 400

        r = await client.post("/destinations/support/test", json={"record": {"name": "vip"}})
        described = await r.json()  # without confirm: what it would do, nothing sent
        assert described["sent"] is False and described["creates"] == "tag" and described["emails"] == []
        assert described["summary"] == f"will create a tag on acme.gorgias.com: POST {running.url}/api/tags"
        r = await client.post("/destinations/support/test", json={"record": {"name": "vip"}, "confirm": True})
        doc = await r.json()
        assert r.status == 200 and doc["sent"] is True and doc["ok"] is True and doc["response"]["status"] == 201
        assert doc["undo"]["kind"] == "tag" and doc["undo"]["method"] == "DELETE"
        r = await client.post("/destinations/support/test", json={"payload": {"name": "vip"}, "confirm": True})
        doc = await r.json()
        assert doc["ok"] is False and doc["response"]["status"] == 409 and doc["undo"] is None
        r = await client.post("/destinations/support/test", json={"confirm": True})  # the template's example record
        assert (await r.json())["response"]["status"] == 409  # the example is vip too
        assert (await client.post("/destinations/support/test", json={"bogus": 1})).status == 400
    finally:
        await client.close()
        await delivery.aclose()
        await running.stop()


@pytest.mark.parametrize(("reason", "field"), [
    ("URL placeholder {ticket_id}: the record has no attribute ticket_id", "ticket_id"),
    ("grouping attribute conversation_id: the record has no attribute conversation_id", "conversation_id"),
    ("create_ticket: messages[0].channel: required (record attribute message_channel or channel: absent)",
     "message_channel"),
    ("create_ticket: messages[0].channel: must be one of 'email', 'api'", "messages[0].channel"),
    ("create_ticket: external_id: the record has no attribute case.id (endpoint.template_options.external_id.from)",
     "case.id"),
    ("the record is not a JSON object (got array)", None),
])
def test_a_dead_letter_names_the_field_its_reason_names(reason: str, field: str | None) -> None:
    assert reason_field(reason) == field
    assert PreviewDeadLetter("render", reason, [0]).as_dict()["field"] == field


def test_a_request_that_would_email_says_whom() -> None:
    dest = destination({"template": "add_ticket_message", "template_options": {"mode": "send"}})
    record = {"ticket_id": 7, "from_agent": True, "channel": "email", "body_text": "hello",
              "sender_email": "agent@acme.com", "receiver_email": "jane@example.com"}
    (item,) = preview(dest, [record])
    assert isinstance(item, PreviewRequest)
    assert item.as_dict()["emails"] == ["emails jane@example.com: the message has no sent_datetime (mode: send)"]
    imported = destination({"template": "add_ticket_message"})
    (quiet,) = preview(imported, [record])
    assert isinstance(quiet, PreviewRequest) and quiet.as_dict()["emails"] == []
