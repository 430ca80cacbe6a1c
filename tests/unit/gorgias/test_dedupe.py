"""Duplicate-safe creates against the sandbox (in process): lookups by external_id, the unknown-outcome
hook through the real delivery service with ``apply_then_drop``, the lookup before a first attempt and
before every replay, and (same sandbox) an update of a merged customer followed to its target."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest

from gorgias_sandbox.server import RunningSandbox
from tests.support.dedupe import TICKET, destination, prepared
from tests.support.sandbox_client import SandboxClient
from worker.core.config.worker_config import Destination
from worker.core.records.record import REPLAY_HEADER, Record, SourceRef, parse_replay_header
from worker.core.requests.request import RenderedRequest
from worker.gorgias.calls import HookDecision, UnknownOutcomeAttempt
from worker.gorgias.client import HttpResult
from worker.gorgias.dedupe import DEDUPE_HEADER, POSSIBLY_DELIVERED, Deduper, hook_for
from worker.gorgias.delivery import DeliveryService
from worker.gorgias.errors import TransportError, TransportKind
from worker.tools.replay import replay_headers

API_KEY = "sandbox-api-key"


@pytest.fixture(autouse=True)
def api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GORGIAS_API_KEY", API_KEY)


@pytest.fixture
async def delivery() -> AsyncIterator[DeliveryService]:
    async with DeliveryService() as service:
        yield service


class Sandbox(SandboxClient):
    def __init__(self, running: RunningSandbox) -> None:
        super().__init__(running.url)


def dropped(request: RenderedRequest, kind: TransportKind = "protocol") -> UnknownOutcomeAttempt:
    return UnknownOutcomeAttempt(request, None, 1, TransportError(kind, True, "server disconnected"))  # type: ignore[arg-type]


def customer(email: str, **extra: Any) -> dict[str, Any]:
    return {"email": email, "channels": [{"type": "email", "address": email, "preferred": True}], **extra}


async def test_hook_finds_a_ticket_by_external_id_and_answers_with_the_full_ticket(
    sandbox: RunningSandbox, delivery: DeliveryService
) -> None:
    s = Sandbox(sandbox)
    dest = destination(sandbox.url, "create_ticket")
    _, request = prepared(dest, TICKET)
    hook = hook_for(dest, delivery)
    assert isinstance(hook, Deduper)
    assert (await hook(dropped(request))).action == "retry"  # nothing created yet
    created = await s.api("POST", "/api/tickets", orjson.loads(request.body or b""))
    decision = await hook(dropped(request))
    assert decision.action == "done"
    result = decision.result
    assert isinstance(result, HttpResult) and result.status == 201
    found = orjson.loads(result.body_bytes)
    assert found["id"] == created["id"] and found["messages"][0]["body_text"] == "Hi"
    note = f"existing ticket {created['id']} found by external_id={found['external_id']}"
    assert result.header(DEDUPE_HEADER) == note
    assert hook.lookups == 4  # list and trashed list (nothing); list + full ticket


@pytest.mark.parametrize(("template", "data", "path"), [
    ("create_ticket", TICKET, "/api/tickets"),
    ("create_customer", customer("jane@example.com", name="Jane"), "/api/customers"),
    ("create_tag", {"name": "vip"}, "/api/tags"),
])
async def test_apply_then_drop_creates_once_with_the_hook_and_several_times_without(
    sandbox: RunningSandbox, delivery: DeliveryService, template: str, data: dict[str, Any], path: str
) -> None:
    s = Sandbox(sandbox)
    dest = destination(sandbox.url, template)
    _, request = prepared(dest, data)
    await s.faults(f"apply_then_drop=1@POST {path}")
    outcome = await delivery.call(request, dest.credential, dest.delivery,
                                  unknown_outcome_hook=hook_for(dest, delivery))
    assert outcome.ok and outcome.resolved_by_hook and outcome.status == 201
    assert outcome.attempts == 1
    key = {"/api/tickets": "tickets", "/api/customers": "customers", "/api/tags": "tags"}[path]
    assert len((await s.state())[key]) == 1
    assert outcome.response_body["id"] == (await s.state())[key][0]["id"]

    if template == "create_ticket":  # without the hook: every attempt makes another ticket
        _, again = prepared(dest, data, offset=1)
        outcome = await delivery.call(again, dest.credential, dest.delivery)
        assert not outcome.ok and outcome.outcome_unknown
        assert len((await s.state())["tickets"]) == 1 + 3


async def test_a_message_is_found_among_its_tickets_messages(
    sandbox: RunningSandbox, delivery: DeliveryService
) -> None:
    s = Sandbox(sandbox)
    ticket = await s.api("POST", "/api/tickets", {"customer": {"email": "c@x.io"}, "messages": [
        {"channel": "api", "via": "api", "from_agent": False, "body_text": f"m{i}"} for i in range(3)]})
    dest = destination(sandbox.url, "add_ticket_message")
    _, request = prepared(dest, {"ticket_id": ticket["id"], "body_text": "late", "customer_email": "c@x.io"})
    await s.faults("apply_then_drop=1@POST /api/tickets/{ticket_id}/messages")
    outcome = await delivery.call(request, dest.credential, dest.delivery,
                                  unknown_outcome_hook=hook_for(dest, delivery))
    assert outcome.ok and outcome.resolved_by_hook
    assert outcome.response_body["body_text"] == "late"
    state = await s.state()
    assert [m["body_text"] for m in state["messages"]] == ["m0", "m1", "m2", "late"]


async def test_a_survey_is_found_by_its_ticket(sandbox: RunningSandbox, delivery: DeliveryService) -> None:
    s = Sandbox(sandbox)
    ticket = await s.api("POST", "/api/tickets", {"customer": {"email": "c@x.io"}, "messages": [
        {"channel": "api", "via": "api", "from_agent": False, "body_text": "x"}]})
    dest = destination(sandbox.url, "create_satisfaction_survey")
    _, request = prepared(dest, {"ticket_id": ticket["id"], "customer_id": ticket["customer"]["id"], "score": 5})
    await s.faults("apply_then_drop=1@POST /api/satisfaction-surveys")
    outcome = await delivery.call(request, dest.credential, dest.delivery,
                                  unknown_outcome_hook=hook_for(dest, delivery))
    assert outcome.ok and outcome.response_body["score"] == 5
    assert len((await s.state())["satisfaction_surveys"]) == 1


async def test_lookup_before_the_first_attempt_follows_the_policy(
    sandbox: RunningSandbox, delivery: DeliveryService
) -> None:
    s = Sandbox(sandbox)
    dest = destination(sandbox.url, "create_customer")
    item, request = prepared(dest, customer("jane@example.com"))
    await s.api("POST", "/api/customers", orjson.loads(request.body or b""))  # delivered before a crash
    hook = hook_for(dest, delivery)
    assert hook is not None
    assert await hook.before_first_attempt(request, [item]) is None  # not flagged: no lookup
    assert hook.lookups == 0
    flagged, _ = prepared(dest, customer("jane@example.com"), **{POSSIBLY_DELIVERED: True})
    outcome = await hook.before_first_attempt(request, [flagged])
    assert outcome is not None and outcome.ok and outcome.resolved_by_hook
    assert outcome.status == 201 and outcome.response_body["email"] == "jane@example.com"
    assert outcome.attempts == 1 and outcome.attempt_log[0].status == 200
    assert hook.lookups == 1

    always = destination(sandbox.url, "create_customer",
                         endpoint={"template_options": {"dedupe": {"lookup_before_create": "always"}}})
    other, fresh = prepared(always, customer("new@example.com"), offset=5)
    guard = hook_for(always, delivery)
    assert guard is not None
    assert await guard.before_first_attempt(fresh, [other]) is None and guard.lookups == 1
    never = destination(sandbox.url, "create_customer",
                        endpoint={"template_options": {"dedupe": {"lookup_before_create": "never",
                                                                  "on_unknown_outcome": False}}})
    guard = hook_for(never, delivery)
    assert guard is not None
    assert await guard.before_first_attempt(request, [flagged]) is None
    assert (await guard(dropped(request))).action == "retry" and guard.lookups == 0


async def test_a_failing_lookup_fails_the_call_rather_than_risk_a_duplicate(
    sandbox: RunningSandbox, delivery: DeliveryService
) -> None:
    s = Sandbox(sandbox)
    dest = destination(sandbox.url, "create_ticket",
                       endpoint={"template_options": {"dedupe": {"lookup_before_create": "always"}}})
    item, request = prepared(dest, TICKET)
    await s.faults("maintenance=on@GET")
    hook = hook_for(dest, delivery)
    assert hook is not None
    outcome = await hook.before_first_attempt(request, [item])
    assert outcome is not None and not outcome.ok and outcome.retryable
    assert "duplicate check before sending this create failed" in (outcome.final_reason or "")
    assert "GET /api/tickets: gave up after 3 attempts: HTTP 503" in outcome.final_reason
    await s.faults("apply_then_drop=1@POST /api/tickets, maintenance=on@GET")
    result = await delivery.call(request, dest.credential, dest.delivery, unknown_outcome_hook=hook)
    assert not result.ok and result.outcome_unknown
    assert "the duplicate check failed" in (result.final_reason or "")
    assert len((await s.state())["tickets"]) == 1  # applied once, never sent again


async def test_no_hook_for_manual_endpoints_or_templates_that_create_nothing(delivery: DeliveryService) -> None:
    url = "http://127.0.0.1:9"
    assert hook_for(destination(url, "update_ticket"), delivery) is None
    manual = Destination.model_validate({
        "name": "m", "source_topics": ["t"],
        "credential": {"domain": "acme", "username": "a@acme.com", "api_key_env": "GORGIAS_API_KEY"},
        "endpoint": {"method": "POST", "url": "https://{domain}.gorgias.com/api/tickets"},
    })
    assert hook_for(manual, delivery) is None
    dest = destination(url, "create_ticket")
    assert hook_for(dest, delivery) is hook_for(dest, delivery)  # built once per destination


async def test_a_request_without_external_id_cannot_be_checked(delivery: DeliveryService) -> None:
    options = {"external_id": {"stamp": False}}
    dest = destination("http://127.0.0.1:9", "create_ticket", endpoint={"template_options": options})
    _, request = prepared(dest, TICKET)
    hook = hook_for(dest, delivery)
    assert hook is not None
    assert (await hook(dropped(request))).action == "retry" and hook.lookups == 0


async def test_a_ticket_the_listing_found_is_proof_even_when_reading_it_in_full_fails(
    sandbox: RunningSandbox, delivery: DeliveryService
) -> None:
    s = Sandbox(sandbox)
    dest = destination(sandbox.url, "create_ticket")
    _, request = prepared(dest, TICKET)
    created = await s.api("POST", "/api/tickets", orjson.loads(request.body or b""))
    await s.faults("maintenance=on@GET /api/tickets/{id}")
    hook = hook_for(dest, delivery)
    assert hook is not None
    decision = await hook(dropped(request))
    assert decision.action == "done" and decision.result is not None
    assert orjson.loads(decision.result.body_bytes)["id"] == created["id"]
    requests = await s.requests()
    assert requests["GET /api/tickets"] == {"200": 1}
    assert requests["GET /api/tickets/{id}"] == {"503": 3}  # the lookup had the call's retry budget


async def test_tickets_are_looked_up_trashed_included(sandbox: RunningSandbox) -> None:
    s = Sandbox(sandbox)
    seen: list[str] = []

    class Recording(DeliveryService):
        async def call(self, req: RenderedRequest, *args: Any, **kwargs: Any) -> Any:
            seen.append(req.url)
            return await super().call(req, *args, **kwargs)

    async with Recording() as delivery:
        dest = destination(sandbox.url, "create_ticket")
        _, request = prepared(dest, TICKET)
        hook = hook_for(dest, delivery)
        assert hook is not None
        assert (await hook(dropped(request))).action == "retry"
        assert len(seen) == 2 and "trashed" not in seen[0] and "trashed=true" in seen[1]
        assert all("external_id=nx-" in url for url in seen)
        created = await s.api("POST", "/api/tickets", orjson.loads(request.body or b""))
        await s.api("PUT", f"/api/tickets/{created['id']}", {"trashed_datetime": "2026-01-01T00:00:00+00:00"})
        decision = await hook(dropped(request))
        assert decision.action == "done" and decision.result is not None
        assert orjson.loads(decision.result.body_bytes)["id"] == created["id"]


async def test_a_message_is_found_on_a_later_page_of_the_supported_listing(
    sandbox: RunningSandbox, delivery: DeliveryService
) -> None:
    s = Sandbox(sandbox)
    ticket = await s.api("POST", "/api/tickets", {"customer": {"email": "c@x.io"}, "messages": [
        {"channel": "api", "via": "api", "from_agent": False, "body_text": "first", "external_id": "old-one"}]})
    for i in range(250):  # the message looked for is the oldest: third page, newest first
        await s.api("POST", f"/api/tickets/{ticket['id']}/messages",
                    {"channel": "api", "via": "api", "from_agent": False, "body_text": f"m{i}",
                     "sender": {"email": "c@x.io"}})
    dest = destination(sandbox.url, "add_ticket_message")
    _, request = prepared(dest, {"ticket_id": ticket["id"], "body_text": "first", "customer_email": "c@x.io",
                                 "external_id": "old-one"})
    hook = hook_for(dest, delivery)
    assert hook is not None
    decision = await hook(dropped(request))
    assert decision.action == "done" and decision.result is not None
    assert orjson.loads(decision.result.body_bytes)["body_text"] == "first"
    requests = await s.requests()
    assert requests["GET /api/messages"] == {"200": 3} and "GET /api/tickets/{ticket_id}/messages" not in requests
    _, absent = prepared(dest, {"ticket_id": ticket["id"], "body_text": "x", "customer_email": "c@x.io",
                                "external_id": "never-sent"})
    assert (await hook(dropped(absent))) == HookDecision.absent()  # all three pages read, then absent


async def test_a_tag_is_matched_by_its_exact_name_among_search_results(
    sandbox: RunningSandbox, delivery: DeliveryService
) -> None:
    s = Sandbox(sandbox)
    for i in range(120):
        await s.api("POST", "/api/tags", {"name": f"vip-{i}"})
    await s.api("POST", "/api/tags", {"name": "vip"})
    await s.api("POST", "/api/tags", {"name": "VIP-gold"})
    dest = destination(sandbox.url, "create_tag")
    hook = hook_for(dest, delivery)
    assert hook is not None
    _, request = prepared(dest, {"name": "vip"})
    decision = await hook(dropped(request))
    assert decision.action == "done" and decision.result is not None
    assert orjson.loads(decision.result.body_bytes)["name"] == "vip"
    _, other = prepared(dest, {"name": "vi"})
    assert (await hook(dropped(other))).action == "retry"  # substrings are no match
    assert (await s.requests())["GET /api/tags"] == {"200": 4}  # both lookups read both pages


async def test_after_a_timeout_an_empty_lookup_looks_once_more(
    sandbox: RunningSandbox, delivery: DeliveryService
) -> None:
    s = Sandbox(sandbox)
    dest = destination(sandbox.url, "create_ticket")
    _, request = prepared(dest, TICKET)
    hook = hook_for(dest, delivery)
    assert hook is not None
    waits: list[float] = []

    async def late_apply(seconds: float) -> None:  # Gorgias finishes the create while we wait
        waits.append(seconds)
        await s.api("POST", "/api/tickets", orjson.loads(request.body or b""))

    hook.sleep = late_apply
    assert (await hook(dropped(request, "protocol"))).action == "retry" and waits == []  # a drop: no second look
    assert hook.lookups == 2  # the listing, and the trashed listing
    decision = await hook(dropped(request, "timeout"))
    assert decision.action == "done" and waits == [hook.recheck_after_s]
    assert hook.lookups == 2 + 2 + 2  # nothing; (pause) found + the full ticket
    assert len((await s.state())["tickets"]) == 1


async def test_a_replayed_record_is_looked_up_whatever_the_policy(
    sandbox: RunningSandbox, delivery: DeliveryService
) -> None:
    s = Sandbox(sandbox)
    never = destination(sandbox.url, "create_ticket",
                        endpoint={"template_options": {"dedupe": {"lookup_before_create": "never"}}})
    first, request = prepared(never, TICKET, offset=7)
    await s.api("POST", "/api/tickets", orjson.loads(request.body or b""))  # delivered, answer lost
    replayed, again = prepared(never, TICKET, offset=42, headers=((REPLAY_HEADER, b"nexset.support:0:7"),))
    assert orjson.loads(again.body or b"")["external_id"] == orjson.loads(request.body or b"")["external_id"]
    hook = hook_for(never, delivery)
    assert hook is not None
    assert await hook.before_first_attempt(request, [first]) is None and hook.lookups == 0
    outcome = await hook.before_first_attempt(again, [replayed])
    assert outcome is not None and outcome.ok and outcome.resolved_by_hook
    assert len((await s.state())["tickets"]) == 1


async def test_a_failed_check_before_a_replay_leaves_the_outcome_unknown(
    sandbox: RunningSandbox, delivery: DeliveryService
) -> None:
    s = Sandbox(sandbox)
    dest = destination(sandbox.url, "create_ticket")
    replayed, request = prepared(dest, TICKET, headers=((REPLAY_HEADER, b"nexset.support:0:3"),))
    await s.faults("maintenance=on@GET")
    hook = hook_for(dest, delivery)
    assert hook is not None
    outcome = await hook.before_first_attempt(request, [replayed])
    assert outcome is not None and not outcome.ok and outcome.outcome_unknown
    assert "an earlier delivery may have created it" in (outcome.final_reason or "")


@pytest.mark.parametrize(("header", "expected"), [
    (b"nexset.support:0:7", SourceRef("nexset.support", 0, 7)),
    (b"ns:with:colons:3:12", SourceRef("ns:with:colons", 3, 12)),
    (b"", None), (b"topic:1", None), (b":0:1", None), (b"t:x:1", None), (b"t:0:-1", None), (b"\xff:0:1", None),
])
def test_the_replay_header_gives_the_original_coordinates(header: bytes, expected: SourceRef | None) -> None:
    record = Record(data={}, source=SourceRef("nexset.support", 0, 99), headers=((REPLAY_HEADER, header),))
    assert parse_replay_header(header) == expected
    assert record.replay_of == expected
    assert record.origin == (expected or record.source)


def test_the_stamped_identity_is_the_same_on_a_replay_and_differs_between_records() -> None:
    dest = destination("http://127.0.0.1:9", "create_ticket")
    _, first = prepared(dest, TICKET, offset=7)
    _, replay = prepared(dest, TICKET, offset=500, headers=((REPLAY_HEADER, b"nexset.support:0:7"),))
    _, other = prepared(dest, TICKET, offset=8)
    ids = [orjson.loads(r.body or b"")["external_id"] for r in (first, replay, other)]
    assert ids[0] == ids[1] != ids[2] and ids[0].startswith("nx-")


async def test_an_update_of_a_merged_customer_is_followed_to_the_customer_it_was_merged_into(
    sandbox: RunningSandbox, delivery: DeliveryService
) -> None:
    s = Sandbox(sandbox)
    ids = []
    for email in ("old@example.com", "new@example.com"):
        made = await s.api("POST", "/api/customers", {"name": email, "email": email, "channels": [
            {"type": "email", "address": email, "preferred": True}]})
        ids.append(made["id"])
    await s.api("PUT", f"/api/customers/merge?source_id={ids[0]}&target_id={ids[1]}", {"name": "new@example.com"})
    dest = destination(sandbox.url, "set_customer_data")
    _, request = prepared(dest, {"customer_id": ids[0], "data": {"tier": "gold"}})
    outcome = await delivery.call(request, dest.credential, dest.delivery)
    assert outcome.ok, outcome.final_reason
    assert [a.status for a in outcome.attempt_log] == [301, 202]
    assert outcome.merged is not None
    assert (outcome.merged.original_id, outcome.merged.merged_into_id) == (ids[0], ids[1])
    assert outcome.merged.to_url.endswith(f"/api/customers/{ids[1]}/data")
    state = await s.state()
    assert [c["data"] for c in state["customers"] if c["id"] == ids[1]] == [{"tier": "gold"}]


def test_a_replay_of_a_replay_keeps_the_first_coordinates() -> None:
    first = {"source": {"topic": "nexset.support", "partition": 1, "offset": 7, "key": None},
             "headers": {"trace": base64.b64encode(b"t-1").decode()}}
    assert replay_headers(first) == [("trace", b"t-1"), (REPLAY_HEADER, b"nexset.support:1:7")]
    again = {"source": {"topic": "nexset.support", "partition": 0, "offset": 900, "key": None},
             "headers": {REPLAY_HEADER: base64.b64encode(b"nexset.support:1:7").decode()}}
    assert replay_headers(again) == [(REPLAY_HEADER, b"nexset.support:1:7")]
