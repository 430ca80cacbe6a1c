"""Endpoint templates end to end (real broker, sandbox process): duplicate-safe creates under
``apply_then_drop``, a conversation batched into one ticket, tags unioned per ticket, template validation
dead-lettering a record before any call, and previewing records read from the topic."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from tests.support.kafka_io import committed, create_topics, publish, read_json, wait_for
from tests.support.processes import gorgias
from tests.support.scenario import Scenario, new_ticket, templated, wait_committed
from worker.core.chain.preview import PreviewRequest, preview
from worker.core.config.worker_config import parse_config
from worker.host import metrics
from worker.kafka.topic_sample import read_sample

pytestmark = pytest.mark.integration


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
    requests = s.sandbox.counters()["requests"]
    assert requests["POST /api/tickets/{ticket_id}/tags"] == {"200": 1}
    assert requests["POST /api/tags"] == {"201": 4}  # each name made sure of first, once


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


# --------------------------------------------------------------------------------------------------
# Safe on real Gorgias (issue 11): no data destroyed, nobody emailed by surprise, the new templates


async def wait_committed_on(s: Scenario, topic: str, name: str, total: int) -> None:
    """Like wait_committed, for a destination reading its own topic."""
    async def done() -> bool:
        return sum((await committed(s.bootstrap, s.group_of(name), topic)).values()) >= total

    assert await wait_for(done, 60, interval=0.3), f"{name}: offsets not committed up to {total}"


async def test_custom_fields_the_records_do_not_mention_survive(scenario: Scenario, run_worker: Any) -> None:
    s = scenario
    await s.create_topics()
    ticket = new_ticket(s)
    # fields 1-4 are the ticket's text/text/number/boolean fields, 7 the system-managed "AI intent"
    gorgias(s.sandbox, "PUT", f"/api/tickets/{ticket}/custom-fields",
            [{"id": 1, "value": "Billing"}, {"id": 2, "value": "A-1"}])
    s.sandbox.admin("PUT", f"tickets/{ticket}/custom-fields/7", "order/status")  # set by Gorgias' AI, not by API
    records = [{"ticket_id": ticket, "field_id": 1, "value": "Shipping"},
               {"ticket_id": ticket, "custom_fields": [{"id": 3, "value": 12.5}]}]
    await publish(s.bootstrap, s.source, records)
    dest = templated(s, "set_ticket_custom_fields", batching={
        "enabled": True, "algorithm": "by_attribute", "attributes": ["ticket_id"], "max_wait_ms": 1500})
    await run_worker(s.config(dest))
    await wait_committed(s, 2)
    (event,) = await read_json(s.bootstrap, s.responses, 1, timeout=10)
    assert event["outcome"] == "delivered" and event["record_count"] == 2
    assert [(st["method"], st["status"]) for st in event["steps"]] == [("GET", 200), ("PUT", 200)]
    values = s.sandbox.state()["ticket_field_values"][str(ticket)]
    assert {k: v["value"] for k, v in values.items()} == {"1": "Shipping", "2": "A-1", "3": 12.5, "7": "order/status"}


async def test_a_call_of_two_requests_counts_retries_per_request(scenario: Scenario, run_worker: Any) -> None:
    """Issue 19 item 8: the read's one retry is the call's only retry; the write is a step, not a retry."""
    s = scenario
    await s.create_topics()
    ticket = new_ticket(s)
    s.sandbox.admin("PUT", "faults", {"spec": "burst429=1:0@GET /api/tickets/{ticket_id}/custom-fields"})
    await publish(s.bootstrap, s.source, [{"ticket_id": ticket, "field_id": 1, "value": "Shipping"}])
    name = f"fields-{s.group}"  # metric series of its own
    await run_worker(s.config(templated(s, "set_ticket_custom_fields", name=name)))
    await wait_committed(s, 1, name)
    (event,) = await read_json(s.bootstrap, s.responses, 1, timeout=10)
    assert event["outcome"] == "delivered"
    assert [(st["method"], st["status"], st["attempts"]) for st in event["steps"]] == [("GET", 200, 2), ("PUT", 200, 1)]
    assert event["attempts"] == 1  # the write, sent once
    assert [(a["step"], a["status"]) for a in event["attempt_log"]] == [(1, 429), (1, 200), (2, 200)]
    retries = {cause: metrics.REGISTRY.get_sample_value("gorgias_worker_retries_total",
                                                        {"destination": name, "cause": cause})
               for cause in ("429", "200")}
    assert retries == {"429": 1.0, "200": None}


async def test_set_ticket_field_changes_one_value_in_one_call(scenario: Scenario, run_worker: Any) -> None:
    s = scenario
    await s.create_topics()
    ticket = new_ticket(s)
    gorgias(s.sandbox, "PUT", f"/api/tickets/{ticket}/custom-fields", [{"id": 1, "value": "Billing"},
                                                                     {"id": 2, "value": "A-1"}])
    await publish(s.bootstrap, s.source, [{"ticket_id": ticket, "field_id": 4, "value": True},
                                          {"ticket_id": ticket, "field_id": 3, "value": 12.0},
                                          {"ticket_id": ticket, "field_id": 2, "value": None},
                                          {"ticket_id": ticket, "field_id": 3, "value": 12.5}])
    await run_worker(s.config(templated(s, "set_ticket_field")))
    await wait_committed(s, 4)
    events = sorted(await read_json(s.bootstrap, s.responses, 3, timeout=10), key=lambda e: e["records"][0]["offset"])
    assert [e["outcome"] for e in events] == ["delivered"] * 3 and "steps" not in events[0]
    assert [e["request"]["body"] for e in events[:2]] == [True, 12]  # the raw value, a whole number an integer
    values = s.sandbox.state()["ticket_field_values"][str(ticket)]
    assert {k: v["value"] for k, v in values.items()} == {"1": "Billing", "3": 12, "4": True}  # 2 cleared
    counts = s.sandbox.counters()["requests"]
    assert counts["PUT /api/tickets/{ticket_id}/custom-fields/{id}"] == {"200": 2}
    assert counts["DELETE /api/tickets/{ticket_id}/custom-fields/{id}"] == {"204": 1}  # null: a DELETE
    (letter,) = await read_json(s.bootstrap, s.dead_letters, 1, timeout=60)
    assert letter["stage"] == "render" and "12.5 has decimals" in letter["reason"]


async def test_imported_messages_email_nobody_and_sent_ones_do(scenario: Scenario, run_worker: Any) -> None:
    s = scenario
    await s.create_topics()
    ticket = new_ticket(s, "jane@example.com")
    reply = {"ticket_id": ticket, "body_text": "It shipped.", "from_agent": True, "channel": "email",
             "customer_email": "jane@example.com", "sender_email": "agent@acme.com"}
    other = f"other-{s.source}"
    await create_topics(s.bootstrap, [other], 1)
    await publish(s.bootstrap, s.source, [reply])
    await publish(s.bootstrap, other, [{**reply, "body_text": "Sent for real."}])
    imported = templated(s, "add_ticket_message")
    sending = templated(s, "add_ticket_message", {"mode": "send"}, name="sending", source_topics=[other])
    await run_worker(s.config(imported, sending))
    await wait_committed(s, 1)
    await wait_committed_on(s, other, "sending", 1)
    events = await read_json(s.bootstrap, s.responses, 2, timeout=10)
    assert [e["outcome"] for e in events] == ["delivered", "delivered"]
    messages = {m["body_text"]: m for m in s.sandbox.state()["tickets"][0]["messages"]}
    assert messages["It shipped."]["source"]["to"] == [{"address": "jane@example.com"}]
    emailed = s.sandbox.state()["emailed"]
    assert [e["message_id"] for e in emailed] == [messages["Sent for real."]["id"]]


async def test_tags_are_created_before_the_ticket_write_and_only_once(scenario: Scenario, run_worker: Any) -> None:
    s = scenario
    await s.create_topics()
    gorgias(s.sandbox, "POST", "/api/tags", {"name": "vip"})
    first, second = new_ticket(s), new_ticket(s, "u@example.com")
    records = [{"ticket_id": first, "tags": ["vip", "refund"]}, {"ticket_id": second, "tags": "refund, late"}]
    await publish(s.bootstrap, s.source, records)
    dest = templated(s, "add_ticket_tags", delivery={"max_in_flight": 1})
    await run_worker(s.config(dest))
    await wait_committed(s, 2)
    events = sorted(await read_json(s.bootstrap, s.responses, 2, timeout=10), key=lambda e: e["records"][0]["offset"])
    assert [e["outcome"] for e in events] == ["delivered", "delivered"]
    assert [(st["purpose"], st["status"], st["skipped"]) for st in events[1]["steps"]] == [
        ("make sure tag 'refund' exists", None, True), ("make sure tag 'late' exists", 201, False),
        ("the write naming them", 200, False)]
    tickets = {t["id"]: t for t in s.sandbox.state()["tickets"]}
    assert sorted(t["name"] for t in tickets[second]["tags"]) == ["late", "refund"]
    requests = s.sandbox.counters()["requests"]["POST /api/tags"]
    assert requests.get("201") == 3 and sum(requests.values()) == 4  # the setup's vip, refund, late; vip again


async def test_upsert_updates_the_customer_found_and_creates_the_others(scenario: Scenario, run_worker: Any) -> None:
    s = scenario
    await s.create_topics()
    jane = gorgias(s.sandbox, "POST", "/api/customers", {
        "name": "Jane", "email": "jane@example.com",
        "channels": [{"type": "email", "address": "jane@example.com", "preferred": True}]})["id"]
    records = [{"email": "jane@example.com", "note": "VIP"}, {"email": "jane@example.com", "language": "fr"},
               {"email": "bob@example.com", "firstname": "Bob", "lastname": "Stone", "phone": "+33123456789"}]
    await publish(s.bootstrap, s.source, records)
    dest = templated(s, "upsert_customer", batching={
        "enabled": True, "algorithm": "by_attribute", "attributes": ["email"], "max_wait_ms": 1500})
    await run_worker(s.config(dest))
    await wait_committed(s, 3)
    events = await read_json(s.bootstrap, s.responses, 3, timeout=10)
    assert all(e["outcome"] == "delivered" for e in events)
    customers = {c["email"]: c for c in s.sandbox.state()["customers"]}
    assert set(customers) == {"jane@example.com", "bob@example.com"}
    assert customers["jane@example.com"]["id"] == jane and customers["jane@example.com"]["note"] == "VIP"
    assert customers["jane@example.com"]["language"] == "fr"
    bob = customers["bob@example.com"]
    assert bob["name"] == "Bob Stone"
    assert [(c["type"], c["preferred"]) for c in bob["channels"]] == [("email", True), ("phone", False)]
    counts = s.sandbox.counters()["requests"]
    assert counts["PUT /api/customers/{id}"] == {"202": 1}  # two records for jane, one write
    assert counts["POST /api/customers"] == {"201": 2}  # the setup's jane and bob


async def test_the_other_new_templates_each_do_their_one_thing(scenario: Scenario, run_worker: Any) -> None:
    s = scenario
    await s.create_topics()
    doomed, kept, closing = (new_ticket(s, f"{c}@example.com") for c in "abc")
    note = gorgias(s.sandbox, "POST", f"/api/tickets/{kept}/messages", {
        "channel": "internal-note", "via": "api", "from_agent": True, "body_text": "typo hre",
        "sent_datetime": "2026-01-01T00:00:00+00:00"})["id"]
    extra = gorgias(s.sandbox, "POST", f"/api/tickets/{kept}/messages", {
        "channel": "internal-note", "via": "api", "from_agent": True, "body_text": "remove me",
        "sent_datetime": "2026-01-01T00:00:00+00:00"})["id"]
    source, target = (gorgias(s.sandbox, "POST", "/api/customers", {
        "name": n, "channels": [{"type": "email", "address": f"{n}@example.com", "preferred": True}],
        "email": f"{n}@example.com"})["id"] for n in ("dup", "main"))
    cases: dict[str, tuple[str, list[dict[str, Any]]]] = {
        "delete_ticket": ("delete_ticket", [{"ticket_id": doomed}]),
        "fix_message": ("update_ticket_message", [{"ticket_id": kept, "message_id": note, "body_text": "typo here",
                                                   "from_agent": True, "channel": "internal-note"}]),
        "drop_message": ("delete_ticket_message", [{"ticket_id": kept, "message_id": extra}]),
        "merge": ("merge_customers", [{"source_id": source, "target_id": target}]),
        "job": ("ticket_job", [{"ticket_id": closing, "status": "closed"}, {"ticket_id": kept, "status": "closed"}]),
    }
    dests = []
    for name, (template, rows) in cases.items():
        topic = f"{name}-{s.source}"
        await create_topics(s.bootstrap, [topic], 1)
        await publish(s.bootstrap, topic, rows)
        batching = {"enabled": True, "algorithm": "by_attribute", "attributes": ["status"], "max_wait_ms": 1000} \
            if template == "ticket_job" else None
        dests.append(templated(s, template, name=name, source_topics=[topic],
                               **({"batching": batching} if batching else {})))
    await run_worker(s.config(*dests))
    for name, (_, rows) in cases.items():
        await wait_committed_on(s, f"{name}-{s.source}", name, len(rows))
    events = {e["destination"]: e for e in await read_json(s.bootstrap, s.responses, len(cases), timeout=10)}
    assert {k: e["outcome"] for k, e in events.items()} == dict.fromkeys(cases, "delivered")
    assert events["job"]["record_count"] == 2 and events["job"]["response"]["status"] == 202  # the job read back
    assert events["job"]["jobs"][0]["status"] == "done"
    state = s.sandbox.state()
    tickets = {t["id"]: t for t in state["tickets"]}
    assert doomed not in tickets or tickets[doomed].get("trashed_datetime") is not None
    assert [m["body_text"] for m in tickets[kept]["messages"] if m["channel"] == "internal-note"] == ["typo here"]
    assert tickets[closing]["status"] == "closed" and tickets[kept]["status"] == "closed"
    assert str(source) in state["merged_customers"] and {c["id"] for c in state["customers"]} >= {target}
    assert events["merge"]["customer_merge"] == {"merged_away_id": source, "kept_id": target}
    assert [st["method"] for st in events["merge"]["steps"]] == ["GET", "PUT"]  # never an empty merge body
    assert events["merge"]["request"]["body"] == {} and "customer_merge" not in events["job"]
