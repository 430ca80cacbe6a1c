"""End to end with the real broker and the sandbox: records in, Gorgias calls, events out, offsets committed."""

from __future__ import annotations

from collections import Counter
from typing import Any

import jsonschema
import orjson
import pytest

from tests.support.kafka_io import publish, read_json
from tests.support.scenario import DEAD_LETTER_SCHEMA, RESPONSE_SCHEMA, Scenario, ticket, wait_committed

pytestmark = pytest.mark.integration


async def test_single_records_become_tickets_with_one_event_each(scenario: Scenario, run_worker: Any) -> None:
    s = scenario
    await s.create_topics(partitions=2)
    records = [ticket(i, internal_score=0.9, meta={"trace_id": "t", "keep": 1}) for i in range(20)]
    await publish(s.bootstrap, s.source, records, key=lambda i, _: f"k{i % 4}".encode())
    await run_worker(s.config(s.destination(endpoint={"exclude_attributes": ["internal_score", "meta.trace_id"]})))

    events = await read_json(s.bootstrap, s.responses, 20, timeout=60)
    assert len(events) == 20
    for event in events:
        jsonschema.validate(event, RESPONSE_SCHEMA)
        assert event["outcome"] == "delivered" and event["response"]["status"] == 201
        assert event["record_count"] == 1 and event["attempts"] == 1
        assert event["request"]["headers"].get("Authorization") in (None, "[redacted]")
        assert "internal_score" not in event["request"]["body"]
        assert event["request"]["body"]["meta"] == {"keep": 1}
        assert event["response"]["body"]["id"] >= 1
    offsets = sorted((e["records"][0]["partition"], e["records"][0]["offset"]) for e in events)
    assert len(set(offsets)) == 20

    tickets = s.sandbox.state()["tickets"]
    assert sorted(t["external_id"] for t in tickets) == sorted(f"req-{i}" for i in range(20))
    assert await wait_committed(s, 20)


async def test_bad_records_are_dead_lettered_and_good_ones_delivered(scenario: Scenario, run_worker: Any) -> None:
    s = scenario
    await s.create_topics()
    values: list[Any] = [
        ticket(0),
        b"{not json",
        [1, 2, 3],
        {"rawMessage": ticket(1), "nexlaMetaData": {"resourceId": 9}},
        b"x" * 3000,
        ticket(2, subject="s" * 1000),  # Gorgias rejects a subject over 998 characters: 400, not retried
        ticket(3),
    ]
    await publish(s.bootstrap, s.source, values)
    doc = s.config(s.destination())
    doc["kafka"]["max_record_bytes"] = 2048
    await run_worker(doc)

    letters = await read_json(s.bootstrap, s.dead_letters, 4, timeout=60)
    for letter in letters:
        jsonschema.validate(letter, DEAD_LETTER_SCHEMA)
    by_offset = {letter["records"][0]["source"]["offset"]: letter for letter in letters}
    assert set(by_offset) == {1, 2, 4, 5}
    assert by_offset[1]["stage"] == "decode" and "not valid JSON" in by_offset[1]["reason"]
    assert orjson.loads(__import__("base64").b64decode(by_offset[2]["records"][0]["value_base64"])) == [1, 2, 3]
    assert "JSON object" in by_offset[2]["reason"]
    assert "over the 2048-byte limit" in by_offset[4]["reason"]
    assert by_offset[5]["stage"] == "deliver" and by_offset[5]["call"]["response"]["status"] == 400
    assert by_offset[5]["records"][0]["value"]["subject"] == "s" * 1000

    events = await read_json(s.bootstrap, s.responses, 4, timeout=30)
    assert Counter(e["outcome"] for e in events) == {"delivered": 3, "failed": 1}
    assert sorted(t["external_id"] for t in s.sandbox.state()["tickets"]) == ["req-0", "req-1", "req-3"]
    assert await wait_committed(s, 7)
