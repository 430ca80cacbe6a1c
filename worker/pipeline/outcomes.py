"""Turning a finished call into what gets published: its response event and, if it failed, a dead letter."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import aiokafka
from aiokafka.structs import RecordMetadata

from worker.batching import Batch
from worker.config import Destination
from worker.events import (
    DeadLetterStage,
    Outcome,
    dead_letter,
    dump,
    event_id,
    iso_now,
    record_item,
    request_info,
)
from worker.gorgias.delivery import AttemptRecord, CallOutcome
from worker.records import SourceRef
from worker.rendering import Prepared, RenderedRequest


@dataclass(slots=True)
class Call:
    """One API call in the making: the records it carries and the request they became."""

    items: list[Prepared]
    request: RenderedRequest
    batch: Batch[Prepared] | None = None

    @property
    def sources(self) -> list[SourceRef]:
        return [p.record.source for p in self.items]


def _attempt(a: AttemptRecord) -> dict[str, Any]:
    ok = a.status is not None and 200 <= a.status < 300
    return {
        "status": a.status,
        "error": None if ok else a.reason,
        "elapsed_ms": round(a.elapsed_s * 1000, 3),
        "rate_limit_wait_ms": round(a.rate_limit_wait_s * 1000, 3),
    }


def response_event(dest: Destination, call: Call, outcome: CallOutcome) -> dict[str, Any]:
    """The response event of a call (the response topic's record value), shaped as ResponseEvent."""
    wanted = dest.response_webhook.response_headers
    req = call.request
    batch = call.batch
    return {
        "schema_version": 1,
        "event_id": event_id(dest.name, call.sources),
        "destination": dest.name,
        "outcome": _outcome(outcome).value,
        "request": request_info(req.method, req.url, req.headers, req.body, dest.response_webhook.request_body),
        "response": {
            "status": outcome.status,
            "headers": {k: v for k, v in outcome.response_headers.items() if k in wanted},
            "body": outcome.response_body,
            "error": None if outcome.ok else outcome.final_reason,
        },
        "attempts": outcome.attempts,
        "attempt_log": [_attempt(a) for a in outcome.attempt_log],
        "latency_ms": round(outcome.latency_s * 1000, 3),
        "rate_limit_wait_ms": round(outcome.rate_limit_wait_s * 1000, 3),
        "started_at": iso_now(outcome.started_at),
        "finished_at": iso_now(outcome.finished_at),
        "record_count": len(call.items),
        "records": [s.as_event() for s in call.sources],
        "batch": None
        if batch is None
        else {
            "algorithm": dest.batching.algorithm.value,
            "key": list(batch.key),
            "flush_reason": batch.reason.value,
            "size": len(batch.items),
        },
        "merged": outcome.merged.as_event() if outcome.merged is not None else None,
    }


def _outcome(outcome: CallOutcome) -> Outcome:
    if outcome.ok:
        return Outcome.DELIVERED
    return Outcome.UNKNOWN if outcome.outcome_unknown else Outcome.FAILED


def delivery_dead_letter(dest: Destination, call: Call, event: dict[str, Any]) -> dict[str, Any]:
    """The dead letter of a call that failed for good: the call's event plus the original records."""
    items = [record_item(p.record, p.record.source) for p in call.items]
    return dead_letter(dest, DeadLetterStage.DELIVER, event["response"]["error"] or "call failed", items, call=event)


class Publisher:
    """Produces outcome records and waits until Kafka acknowledges them."""

    def __init__(self, producer: aiokafka.AIOKafkaProducer) -> None:
        self.producer = producer

    async def publish(
        self, topic: str, value: dict[str, Any], key: bytes | None, headers: list[tuple[str, bytes]]
    ) -> RecordMetadata:
        future = await self.producer.send(topic, dump(value), key=key, headers=headers)
        return await future
