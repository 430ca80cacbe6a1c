"""Outcome documents made to fit their topic: what is left out, what is kept, and that it is said."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import jsonschema
import orjson

from worker.core.outcomes.dead_letters import dead_letter, record_item, reference_item
from worker.core.outcomes.documents import DeadLetterStage
from worker.core.outcomes.fit import fit, fit_parts
from worker.core.records.record import Record, SourceRef
from worker.kafka.clients import ENVELOPE_HEADROOM, outcome_limits
from worker.tools import schemas

SOURCE = SourceRef("src", 2, 41, b"k", 1_700_000_000_000)
T0 = 1_700_000_000.0
DEAD_LETTER_SCHEMA = schemas.generate()["dead-letter.schema.json"]
RESPONSE_SCHEMA = schemas.generate()["response-event.schema.json"]


def event(request_body: Any, response_body: Any) -> dict[str, Any]:
    return {
        "schema_version": 1, "event_id": "e" * 32, "deployment": "prod", "destination": "d", "outcome": "delivered",
        "request": {"method": "POST", "url": "https://acme.gorgias.com/api/tickets", "headers": {},
                    "body": request_body, "body_sha256": None, "body_bytes": len(orjson.dumps(request_body))},
        "response": {"status": 201, "headers": {}, "body": response_body, "error": None},
        "attempts": 1, "attempt_log": [], "latency_ms": 1.0, "rate_limit_wait_ms": 0.0,
        "started_at": "2026-01-01T00:00:00Z", "finished_at": "2026-01-01T00:00:01Z", "record_count": 1,
        "records": [SOURCE.as_event()], "batch": None, "reduced": None,
    }


def test_a_document_that_fits_is_left_as_it_is() -> None:
    doc = event({"subject": "hi"}, {"id": 1})
    before = orjson.dumps(doc)
    assert fit(doc, len(before)) == before
    assert doc["reduced"] is None


def test_bodies_too_large_are_replaced_by_their_hash_and_size() -> None:
    body = {"subject": "s", "text": "x" * 5000}
    doc = event(body, {"id": 1, "text": "x" * 5000})
    out = orjson.loads(fit(doc, 4000))
    assert len(orjson.dumps(out)) <= 4000
    assert out["request"]["body"] is None
    assert out["request"]["body_sha256"] == hashlib.sha256(orjson.dumps(body)).hexdigest()
    assert out["response"]["body"] is None and out["response"]["body_bytes"] > 5000
    assert out["reduced"]["omitted"] == ["request.body", "response.body"]
    assert out["reduced"]["limit_bytes"] == 4000 and out["reduced"]["original_bytes"] > 10_000
    assert out["records"] == [SOURCE.as_event()]  # the coordinates always stay
    jsonschema.validate(out, RESPONSE_SCHEMA)


def test_dead_letter_values_are_kept_by_reference_when_the_call_alone_is_not_enough() -> None:
    record = Record({"text": "y" * 8000}, SOURCE)
    raw = b"\x00not json" * 100
    items = [record_item(record, SOURCE), record_item(None, SOURCE, raw=raw)]
    letter = dead_letter("prod", "d", DeadLetterStage.DELIVER, "HTTP 400", items, failed_at=T0,
                         call=event({"t": "y" * 8000}, None))
    out = orjson.loads(fit(letter, 3000))
    assert len(orjson.dumps(out)) <= 3000
    first, second = out["records"]
    assert first["value"] is None and first["value_sha256"] == hashlib.sha256(orjson.dumps(record.data)).hexdigest()
    assert second["value_base64"] is None and second["value_sha256"] == hashlib.sha256(raw).hexdigest()
    assert second["value_bytes"] == len(raw)
    assert out["reduced"]["omitted"] == ["call.request.body", "records[0]", "records[1]"]
    assert out["call"]["request"]["body_sha256"] is not None
    jsonschema.validate(out, DEAD_LETTER_SCHEMA)


def test_a_small_value_survives_when_dropping_the_call_body_is_enough() -> None:
    letter = dead_letter("prod", "d", DeadLetterStage.DELIVER, "HTTP 400",
                         [record_item(Record({"a": 1}, SOURCE), SOURCE)], failed_at=T0,
                         call=event({"t": "y" * 8000}, None))
    out = orjson.loads(fit(letter, 3000))
    assert out["records"][0]["value"] == {"a": 1}
    assert out["reduced"]["omitted"] == ["call.request.body"]


def test_long_strings_are_cut_as_a_last_resort() -> None:
    letter = dead_letter("prod", "d", DeadLetterStage.RENDER, "r" * 20_000, [reference_item(SOURCE, b"abc")],
                         failed_at=T0)
    out = orjson.loads(fit(letter, 4000))
    assert len(orjson.dumps(out)) <= 4000
    assert out["reason"].endswith("…[truncated]") and "reason" in out["reduced"]["omitted"]
    jsonschema.validate(out, DEAD_LETTER_SCHEMA)


def test_a_record_too_large_to_carry_is_named_by_reference() -> None:
    raw = b"z" * 3000
    item = reference_item(SOURCE, raw, (("h", b"v"),))
    assert item["value"] is None and item["value_base64"] is None
    assert item["value_sha256"] == hashlib.sha256(raw).hexdigest() and item["value_bytes"] == 3000
    assert item["source"]["offset"] == 41 and item["headers"] == {"h": base64.b64encode(b"v").decode()}


def test_the_limit_is_the_smaller_of_topic_and_producer_less_headroom() -> None:
    assert outcome_limits({"a": 300_000, "b": 5_000_000}, 1_048_576) == {
        "a": 300_000 - ENVELOPE_HEADROOM, "b": 1_048_576 - ENVELOPE_HEADROOM,
    }


def test_a_call_of_thousands_of_records_is_spread_over_documents_that_each_fit() -> None:
    sources = [SourceRef("a-rather-long-source-topic-name", 0, n, f"key-{n}".encode(), 1) for n in range(3000)]
    call = event({"t": 1}, None)
    call["records"] = [s.as_event() for s in sources]
    items = [record_item(Record({"n": n}, s), s) for n, s in enumerate(sources)]
    letter = dead_letter("prod", "d", DeadLetterStage.DELIVER, "HTTP 400", items, failed_at=T0, call=call)
    parts = [orjson.loads(p) for p in fit_parts(letter, 64_000)]
    assert len(parts) > 1 and all(len(orjson.dumps(p)) <= 64_000 for p in parts)
    assert [p["part"] for p in parts] == [{"index": n, "count": len(parts)} for n in range(1, len(parts) + 1)]
    assert [i["source"]["offset"] for p in parts for i in p["records"]] == list(range(3000))
    for p in parts:  # each dead letter's call lists that dead letter's records
        assert p["call"]["records"] == [i["source"] for i in p["records"]]
    jsonschema.validate(parts[-1], DEAD_LETTER_SCHEMA)
    small = fit_parts(dead_letter("prod", "d", DeadLetterStage.DELIVER, "x", items[:3], failed_at=T0, call=call), 10**9)
    assert len(small) == 1 and orjson.loads(small[0])["part"] is None
