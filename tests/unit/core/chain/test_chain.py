"""The record chain: bytes + source -> decoded -> prepared -> grouped -> rendered call, or a dead letter."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import orjson

from worker.core.chain.record_chain import RecordChain, Rejected, batch_policy
from worker.core.config.worker_config import Destination
from worker.core.grouping.open_batches import QueuedCall
from worker.core.outcomes.documents import DeadLetterStage
from worker.core.records.record import POSSIBLY_DELIVERED, SourceRef
from worker.core.requests.call import RenderedCall
from worker.core.requests.rendering import Prepared

CREDENTIAL = {"domain": "acme", "username": "agent@acme.com", "api_key_env": "GORGIAS_API_KEY"}
MANUAL = {"method": "POST", "url": "https://{domain}.gorgias.com/api/customers"}


def destination(endpoint: dict[str, Any] | None = None, batching: dict[str, Any] | None = None) -> Destination:
    doc: dict[str, Any] = {"name": "support", "source_topics": ["nexset.support"], "credential": CREDENTIAL,
                           "endpoint": endpoint or MANUAL}
    if batching is not None:
        doc["batching"] = {"enabled": True, **batching}
    return Destination.model_validate(doc)


def src(offset: int, key: bytes | None = None) -> SourceRef:
    return SourceRef("nexset.support", 0, offset, key)


def feed(chain: RecordChain, values: list[Any], keys: list[bytes | None] | None = None) -> list[Rejected]:
    rejected = []
    for i, value in enumerate(values):
        raw = value if isinstance(value, bytes) else orjson.dumps(value)
        r = chain.take_in(raw, src(i, keys[i] if keys else None), (), now=0.0)
        if r is not None:
            rejected.append(r)
    return rejected


def offsets(call: RenderedCall | Rejected | QueuedCall[Prepared]) -> list[int]:
    if isinstance(call, QueuedCall):
        return [p.record.source.offset for p in call.items]
    return [s.offset for s in call.sources]


# -- records in ----------------------------------------------------------------------------------------


def test_a_value_that_is_not_a_record_is_rejected_at_decode_with_its_bytes() -> None:
    chain = RecordChain(destination(), max_record_bytes=1000)
    [rejected] = feed(chain, [b"{broken"])
    assert rejected.stage is DeadLetterStage.DECODE
    assert rejected.reason
    assert rejected.sources == [src(0)]
    assert rejected.items[0]["value_base64"] == base64.b64encode(b"{broken").decode()
    assert chain.open.grouped_records == 0


def test_a_record_too_large_to_carry_is_named_by_its_hash() -> None:
    chain = RecordChain(destination(), max_record_bytes=50)
    raw = orjson.dumps({"email": "a@x.io", "note": "x" * 100})
    rejected = chain.take_in(raw, src(7, b"k"), (("h", b"v"),), now=0.0)
    assert isinstance(rejected, Rejected) and rejected.stage is DeadLetterStage.DECODE
    item = rejected.items[0]
    assert item["value_sha256"] == hashlib.sha256(raw).hexdigest() and item["value_bytes"] == len(raw)
    assert item["value_base64"] is None
    assert rejected.key == b"k"


def test_a_record_the_template_cannot_use_is_rejected_at_render_with_the_record() -> None:
    chain = RecordChain(destination({"template": "create_ticket"}), max_record_bytes=10_000)
    record = {"subject": "no text", "customer_email": "b@x.io"}
    [rejected] = feed(chain, [record])
    assert rejected.stage is DeadLetterStage.RENDER
    assert "body_text" in rejected.reason
    assert rejected.items[0]["value"] == record


def test_a_record_a_previous_owner_may_have_sent_is_marked_for_the_duplicate_checks() -> None:
    chain = RecordChain(destination(), max_record_bytes=1000)
    chain.take_in(orjson.dumps({"email": "a@x.io"}), src(0), (), now=0.0, possibly_delivered=True)
    chain.take_in(orjson.dumps({"email": "b@x.io"}), src(1), (), now=0.0)
    marked = [c.items[0].record.extra.get(POSSIBLY_DELIVERED, False)
              for c in chain.take_ready() if isinstance(c, RenderedCall)]
    assert marked == [True, False]


# -- calls out -----------------------------------------------------------------------------------------


def test_unbatched_each_record_is_one_call_rendered_from_it() -> None:
    chain = RecordChain(destination(), max_record_bytes=1000)
    feed(chain, [{"email": "a@x.io"}, {"email": "b@x.io"}])
    calls = list(chain.take_ready())
    assert [offsets(c) for c in calls] == [[0], [1]]
    first = calls[0]
    assert isinstance(first, RenderedCall) and first.batch is None
    assert first.request.method == "POST" and first.request.url == "https://acme.gorgias.com/api/customers"
    assert orjson.loads(first.request.body or b"") == {"email": "a@x.io"}
    assert not chain.open.has_eligible


def test_unbatched_records_of_one_kafka_key_go_one_after_another() -> None:
    chain = RecordChain(destination(), max_record_bytes=1000)
    feed(chain, [{"email": "a@x.io"}, {"email": "a@x.io"}, {"email": "b@x.io"}], keys=[b"a", b"a", b"b"])
    # a's first call and b's call may go; a's second waits for its first
    assert sorted(offsets(c)[0] for c in chain.open.eligible()) == [0, 2]
    a1 = next(c for c in chain.open.eligible() if offsets(c) == [0])
    call = chain.take(a1)
    assert isinstance(call, RenderedCall)
    assert [offsets(c) for c in chain.open.eligible()] == [[2]]
    chain.done(call)  # off the wire: a's next call may go
    assert sorted(offsets(c)[0] for c in chain.open.eligible()) == [1, 2]


def test_batched_by_attribute_a_full_batch_goes_first_and_the_rest_on_flush() -> None:
    dest = destination({"template": "create_ticket"},
                       {"algorithm": "by_attribute", "attributes": ["conversation_id"], "batch_size": 2})
    chain = RecordChain(dest, max_record_bytes=10_000)
    feed(chain, [
        {"conversation_id": "a", "subject": "A", "body_text": "a1", "customer_email": "a@x.io"},
        {"conversation_id": "b", "subject": "B", "body_text": "b1", "customer_email": "b@x.io"},
        {"conversation_id": "a", "body_text": "a2", "customer_email": "a@x.io"},
    ])
    [full] = list(chain.take_ready())
    assert isinstance(full, RenderedCall) and offsets(full) == [0, 2]
    assert full.batch is not None and full.batch.key == ("a",)
    assert [m["body_text"] for m in orjson.loads(full.request.body or b"")["messages"]] == ["a1", "a2"]
    assert list(chain.take_ready()) == []  # b's batch waits for its window
    chain.flush(now=0.0)
    [rest] = list(chain.take_ready())
    assert isinstance(rest, RenderedCall) and offsets(rest) == [1]
    assert rest.batch is not None and rest.batch.key == ("b",)
    assert chain.open.grouped_records == 0


def test_a_batch_that_cannot_make_one_request_is_rejected_and_frees_its_lane() -> None:
    dest = destination({"template": "upsert_customer"},
                       {"algorithm": "by_attribute", "attributes": ["account"], "batch_size": 2})
    chain = RecordChain(dest, max_record_bytes=10_000)
    feed(chain, [{"account": 1, "email": "a@x.io"}, {"account": 1, "email": "b@x.io"},
                 {"account": 2, "email": "c@x.io"}])
    chain.flush(now=0.0)
    made = list(chain.take_ready())
    assert [type(m).__name__ for m in made] == ["Rejected", "RenderedCall"]
    rejected = made[0]
    assert isinstance(rejected, Rejected) and rejected.stage is DeadLetterStage.RENDER
    assert "mixes customers" in rejected.reason
    assert offsets(rejected) == [0, 1]
    assert [i["value"]["email"] for i in rejected.items] == ["a@x.io", "b@x.io"]
    assert offsets(made[1]) == [2]


def test_batch_policy_reads_the_destination_settings_in_seconds() -> None:
    policy = batch_policy(destination(batching={"algorithm": "session_window", "attributes": ["email"],
                                                "gap_ms": 1500, "max_session_ms": 60_000, "batch_size": 7}))
    assert policy.algorithm == "session_window"
    assert (policy.gap, policy.max_session, policy.batch_size) == (1.5, 60.0, 7)
