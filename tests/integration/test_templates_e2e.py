"""Endpoint templates end to end (real broker, sandbox process): duplicate-safe creates under
``apply_then_drop``, a conversation batched into one ticket, tags unioned per ticket, template validation
dead-lettering a record before any call, and previewing records read from the topic."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from tests.integration.conftest import Scenario
from tests.integration.test_pipeline import wait_committed
from tests.support.kafka_io import publish, read_json
from tests.support.processes import gorgias
from worker.config import parse_config
from worker.preview import PreviewRequest, preview, read_sample

pytestmark = pytest.mark.integration


def templated(s: Scenario, template: str, options: dict[str, Any] | None = None, **overrides: Any) -> dict[str, Any]:
    endpoint: dict[str, Any] = {"template": template, "method": None, "url": None}
    if options:
        endpoint["template_options"] = options
    return s.destination(endpoint=endpoint, **overrides)


def conversation(i: int, conv: str, **extra: Any) -> dict[str, Any]:
    return {"conversation_id": conv, "subject": f"Conversation {conv}", "body_text": f"message {i}",
            "customer_email": f"{conv}@example.com", **extra}


async def test_apply_then_drop_creates_each_ticket_once_and_reports_it_delivered(
    scenario: Scenario, run_worker: Any
) -> None:
    s = scenario
    await s.create_topics()
    s.sandbox.admin("PUT", "faults", {"spec": "apply_then_drop=1@POST /api/tickets"})
    records = [conversation(i, f"c{i}") for i in range(3)]
    await publish(s.bootstrap, s.source, records)
    await run_worker(s.config(templated(s, "create_ticket")))
    await wait_committed(s, 3)
    events = await read_json(s.bootstrap, s.responses, 3, timeout=10)
    assert [e["outcome"] for e in events] == ["delivered"] * 3
    tickets = s.sandbox.state()["tickets"]
    assert sorted(t["subject"] for t in tickets) == ["Conversation c0", "Conversation c1", "Conversation c2"]
    by_external = Counter(t["external_id"] for t in tickets)
    assert all(n == 1 for n in by_external.values()), by_external
    for event in events:
        assert event["attempts"] == 1
        assert event["response"]["status"] == 201
        assert event["response"]["body"]["external_id"] in by_external
        assert event["response"]["body"]["messages"][0]["body_text"].startswith("message ")
    requests = s.sandbox.counters()["requests"]
    assert requests["POST /api/tickets"] == {"dropped": 3}  # each create applied once, its answer lost
    assert requests["GET /api/tickets"] == {"200": 3} and requests["GET /api/tickets/{id}"] == {"200": 3}


async def test_a_ticket_that_exists_already_is_not_created_again(scenario: Scenario, run_worker: Any) -> None:
    """A replay after a crash: the create was applied but its outcome never recorded."""
    s = scenario
    await s.create_topics()
    existing = gorgias(s.sandbox, "POST", "/api/tickets", {
        "external_id": "crm-77", "customer": {"email": "jane@example.com"},
        "messages": [{"channel": "api", "via": "api", "from_agent": False, "body_text": "first try"}],
    })
    await publish(s.bootstrap, s.source, [conversation(0, "x", external_id="crm-77"), conversation(1, "y")])
    dest = templated(s, "create_ticket", {"dedupe": {"lookup_before_create": "always"}})
    await run_worker(s.config(dest))
    await wait_committed(s, 2)
    events = sorted(await read_json(s.bootstrap, s.responses, 2, timeout=10), key=lambda e: e["records"][0]["offset"])
    assert [e["outcome"] for e in events] == ["delivered", "delivered"]
    assert events[0]["response"]["body"]["id"] == existing["id"]
    assert events[0]["response"]["body"]["messages"][0]["body_text"] == "first try"
    tickets = s.sandbox.state()["tickets"]
    assert sorted(t["external_id"] for t in tickets)[0] == "crm-77" and len(tickets) == 2
    assert s.sandbox.counters()["requests"]["POST /api/tickets"] == {"201": 2}  # the setup's and record y's


async def test_a_conversation_becomes_one_ticket_with_a_message_per_record(
    scenario: Scenario, run_worker: Any
) -> None:
    s = scenario
    await s.create_topics(partitions=2)
    records = [conversation(i, "a" if i % 3 else "b", **({"from_agent": True} if i == 4 else {}))
               for i in range(9)]
    await publish(s.bootstrap, s.source, records, key=lambda _, r: r["conversation_id"].encode())
    dest = templated(s, "create_ticket", batching={
        "enabled": True, "algorithm": "session_window", "attributes": ["conversation_id"], "gap_ms": 1500})
    await run_worker(s.config(dest))
    await wait_committed(s, 9)
    events = await read_json(s.bootstrap, s.responses, 2, timeout=10)
    assert sorted(e["record_count"] for e in events) == [3, 6]
    tickets = {t["subject"]: t for t in s.sandbox.state()["tickets"]}
    assert set(tickets) == {"Conversation a", "Conversation b"}
    a = tickets["Conversation a"]
    assert [m["body_text"] for m in a["messages"]] == [f"message {i}" for i in (1, 2, 4, 5, 7, 8)]
    assert a["customer"]["email"] == "a@example.com"
    assert [m["from_agent"] for m in a["messages"]] == [False, False, True, False, False, False]
    assert [m["body_text"] for m in tickets["Conversation b"]["messages"]] == ["message 0", "message 3", "message 6"]


async def test_tags_of_a_ticket_are_added_in_one_call_as_the_union(scenario: Scenario, run_worker: Any) -> None:
    s = scenario
    await s.create_topics()
    ticket = gorgias(s.sandbox, "POST", "/api/tickets", {
        "customer": {"email": "t@example.com"},
        "messages": [{"channel": "api", "via": "api", "from_agent": False, "body_text": "tag me"}],
    })["id"]
    records = [{"ticket_id": ticket, "tags": ["vip", "refund"]}, {"ticket_id": ticket, "tag": "late"},
               {"ticket_id": ticket, "tags": "refund, vip, urgent"}]
    await publish(s.bootstrap, s.source, records)
    dest = templated(s, "add_ticket_tags", batching={
        "enabled": True, "algorithm": "by_attribute", "attributes": ["ticket_id"], "max_wait_ms": 1500})
    await run_worker(s.config(dest))
    await wait_committed(s, 3)
    (event,) = await read_json(s.bootstrap, s.responses, 1, timeout=10)
    assert event["outcome"] == "delivered" and event["record_count"] == 3
    assert event["request"]["body"] == {"names": ["vip", "refund", "late", "urgent"]}
    state = s.sandbox.state()
    assert sorted(t["name"] for t in state["tickets"][0]["tags"]) == ["late", "refund", "urgent", "vip"]
    assert s.sandbox.counters()["requests"]["POST /api/tickets/{ticket_id}/tags"] == {"201": 1}


async def test_a_record_failing_template_validation_is_dead_lettered_naming_the_field(
    scenario: Scenario, run_worker: Any
) -> None:
    s = scenario
    await s.create_topics()
    records = [
        conversation(0, "ok"),
        {"conversation_id": "bad", "subject": "x" * 1000, "body_text": "too long a subject",
         "customer_email": "b@x.io"},
        {"conversation_id": "raw", "customer_email": "r@x.io",
         "messages": [{"via": "api", "from_agent": False, "body_text": "no channel"}]},
    ]
    await publish(s.bootstrap, s.source, records)
    await run_worker(s.config(templated(s, "create_ticket")))
    await wait_committed(s, 3)
    letters = sorted(await read_json(s.bootstrap, s.dead_letters, 2, timeout=10),
                     key=lambda d: d["records"][0]["source"]["offset"])
    assert [d["stage"] for d in letters] == ["render", "render"]
    assert letters[0]["reason"] == ("create_ticket: subject: longer than 998 characters (got 1000); "
                                    "messages[0].subject: longer than 998 characters (got 1000)")
    assert letters[1]["reason"] == "create_ticket: messages[0].channel: required"
    assert letters[0]["records"][0]["value"]["body_text"] == "too long a subject"
    assert [t["subject"] for t in s.sandbox.state()["tickets"]] == ["Conversation ok"]
    assert s.sandbox.counters()["requests"]["POST /api/tickets"] == {"201": 1}  # nothing spent on the bad ones


async def test_preview_from_the_topic_reads_without_committing(scenario: Scenario) -> None:
    s = scenario
    await s.create_topics(partitions=2)
    await publish(s.bootstrap, s.source, [{"name": f"tag-{i}"} for i in range(12)], key=lambda i, _: f"k{i}".encode())
    config = parse_config(s.config(templated(s, "create_tag")))
    dest = config.destinations[0]
    sample = await read_sample(config.kafka, s.source, limit=5)
    assert len(sample) == 5
    items = preview(dest, sample)
    assert all(isinstance(i, PreviewRequest) for i in items)
    names = [i.body["name"] for i in items if isinstance(i, PreviewRequest)]
    assert len(set(names)) == 5 and set(names) <= {f"tag-{i}" for i in range(12)}
    assert s.sandbox.counters()["total"] == 0
