"""Records near and far over each size limit: every one gets exactly one outcome that fits its topic,
the partition keeps moving, and nothing is sent to Gorgias twice."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import aiokafka
import jsonschema
import orjson
import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from tests.support.kafka_io import read_topic
from tests.support.scenario import DEAD_LETTER_SCHEMA, RESPONSE_SCHEMA, Scenario, ticket, wait_committed
from worker.core.config.worker_config import parse_config
from worker.tools.replay import replay

pytestmark = pytest.mark.integration

KB = 1024
DEAD_LETTER_TOPIC_LIMIT = 300 * KB  # the dead-letter topic is created smaller than Kafka's default
MAX_RECORD = 1_048_576  # kafka.max_record_bytes (default)


async def create(bootstrap: str, topic: str, max_message_bytes: int) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, 1, 1, topic_configs={"max.message.bytes": str(max_message_bytes)})])
    finally:
        await admin.close()


async def publish_large(bootstrap: str, topic: str, values: list[bytes]) -> None:
    producer = aiokafka.AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", max_request_size=4 * MAX_RECORD)
    await producer.start()
    try:
        for value in values:  # one by one, in order
            await (await producer.send(topic, value))
    finally:
        await producer.stop()


def big_ticket(i: int, body_bytes: int) -> bytes:
    """A valid ticket whose message body makes the record about ``body_bytes`` long."""
    doc = ticket(i)
    doc["messages"][0]["body_text"] = ""
    pad = body_bytes - len(orjson.dumps(doc))
    doc["messages"][0]["body_text"] = "x" * pad
    raw = orjson.dumps(doc)
    assert abs(len(raw) - body_bytes) <= 2
    return raw


async def test_every_record_near_or_over_a_size_limit_gets_exactly_one_outcome(
    scenario: Scenario, run_worker: Any
) -> None:
    s = scenario
    await create(s.bootstrap, s.source, 4 * MAX_RECORD)
    await create(s.bootstrap, s.dead_letters, DEAD_LETTER_TOPIC_LIMIT)
    invalid = ticket(90)
    del invalid["messages"]  # Gorgias answers 400: a ticket needs its first message
    invalid["subject"] = "y" * (200 * KB)
    values = [
        big_ticket(0, 600 * KB),                   # valid; its event (request + echoed ticket) > 1 MB
        big_ticket(1, 999_500),                    # valid, just under max_record_bytes (and Gorgias' 1 MB body)
        big_ticket(2, 2 * MAX_RECORD),             # far over kafka.max_record_bytes: dead letter by reference
        b"{" + b"z" * (MAX_RECORD - 200),          # not JSON, just under the record limit: far over the DLQ's
        b"[" + b"w" * (230 * KB),                  # not JSON: base64 just over the dead-letter topic's limit
        b"[" + b"v" * (200 * KB),                  # not JSON: base64 just under it (carried whole)
        orjson.dumps(invalid),                     # refused by Gorgias: call and record > the DLQ's limit
        orjson.dumps(ticket(7)),                   # small: the partition moved past all of the above
    ]
    await publish_large(s.bootstrap, s.source, values)
    await run_worker(s.config(s.destination()))
    await wait_committed(s, len(values), timeout=90)

    events = [orjson.loads(r.value) for r in await read_topic(s.bootstrap, s.responses, 4, timeout=20)]
    letters = [orjson.loads(r.value) for r in await read_topic(s.bootstrap, s.dead_letters, 5, timeout=20)]
    # exactly one outcome per record (the refused call has its event and its dead letter)
    delivered = sorted(e["records"][0]["offset"] for e in events if e["outcome"] == "delivered")
    failed = sorted(e["records"][0]["offset"] for e in events if e["outcome"] == "failed")
    dead = sorted(letter["records"][0]["source"]["offset"] for letter in letters)
    assert delivered == [0, 1, 7] and failed == [6]
    assert dead == [2, 3, 4, 5, 6]
    for e in events:
        jsonschema.validate(e, RESPONSE_SCHEMA)
    for letter in letters:
        jsonschema.validate(letter, DEAD_LETTER_SCHEMA)
    # the raw outcome records fit their topics
    assert all(len(orjson.dumps(e)) < MAX_RECORD for e in events)
    assert all(len(orjson.dumps(letter)) < DEAD_LETTER_TOPIC_LIMIT for letter in letters)

    by_offset = {e["records"][0]["offset"]: e for e in events}
    for offset in (0, 1):  # bodies replaced by their hash and size, and said so
        event = by_offset[offset]
        assert event["request"]["body"] is None
        assert event["request"]["body_sha256"] == hashlib.sha256(values[offset]).hexdigest()
        assert event["request"]["body_bytes"] == len(values[offset])
        assert event["response"]["status"] == 201 and event["response"]["body"] is None
        assert event["response"]["body_bytes"] > 600 * KB
        assert "request.body" in event["reduced"]["omitted"]
    assert by_offset[7]["reduced"] is None and by_offset[7]["request"]["body"]["external_id"] == "req-7"

    letter_of = {letter["records"][0]["source"]["offset"]: letter for letter in letters}
    by_reference = letter_of[2]["records"][0]
    assert "over the 1048576-byte limit" in letter_of[2]["reason"]
    assert by_reference["value"] is None and by_reference["value_base64"] is None
    assert by_reference["value_sha256"] == hashlib.sha256(values[2]).hexdigest()
    assert by_reference["value_bytes"] == len(values[2])
    for offset in (3, 4):  # carried whole they would not fit the dead-letter topic
        item = letter_of[offset]["records"][0]
        assert item["value_base64"] is None and item["value_sha256"] == hashlib.sha256(values[offset]).hexdigest()
        assert letter_of[offset]["reduced"]["omitted"] == ["records[0]"]
    assert base64.b64decode(letter_of[5]["records"][0]["value_base64"]) == values[5]
    assert letter_of[5]["reduced"] is None
    refused = letter_of[6]
    assert refused["stage"] == "deliver" and refused["call"]["response"]["status"] == 400
    assert refused["reduced"] is not None

    # nothing was sent twice: one call per record that reached the delivery stage
    calls = s.sandbox.counters()["requests"]["POST /api/tickets"]
    assert calls == {"201": 3, "400": 1}, calls
    assert sorted(t["external_id"] for t in s.sandbox.state()["tickets"]) == ["req-0", "req-1", "req-7"]


async def test_a_record_named_by_reference_is_replayed_from_its_source(scenario: Scenario, run_worker: Any) -> None:
    s = scenario
    await create(s.bootstrap, s.source, 4 * MAX_RECORD)
    await create(s.bootstrap, s.dead_letters, DEAD_LETTER_TOPIC_LIMIT)
    s.sandbox.admin("PUT", "faults", {"spec": "maintenance=on"})
    large = big_ticket(0, 400 * KB)  # with its call, far over the dead-letter topic's limit
    await publish_large(s.bootstrap, s.source, [large, orjson.dumps(ticket(1))])
    doc = s.config(s.destination(delivery={"max_attempts": 2}))
    await run_worker(doc)
    await wait_committed(s, 2)
    letters = {orjson.loads(r.value)["records"][0]["source"]["offset"]: orjson.loads(r.value)
               for r in await read_topic(s.bootstrap, s.dead_letters, 2, timeout=20)}
    by_reference = letters[0]["records"][0]
    assert by_reference["value"] is None and by_reference["value_bytes"] == len(large)
    assert letters[1]["records"][0]["value"]["external_id"] == "req-1"  # small: carried whole

    s.sandbox.admin("PUT", "faults", {})
    config = parse_config(doc)
    report = await replay(config, config.destinations[0], {"deliver"})
    assert report.replayed == 2 and not report.skipped
    await wait_committed(s, 4)
    tickets = s.sandbox.state()["tickets"]
    assert sorted(t["external_id"] for t in tickets) == ["req-0", "req-1"]
    replayed = [r for r in await read_topic(s.bootstrap, s.source, 4, timeout=20)][2:]
    assert large in [r.value for r in replayed]  # the original bytes, read at its source offset
