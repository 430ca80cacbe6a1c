"""What the worker publishes: response events (one per API call) and dead-letter records.

The pydantic models here are the contract: ``schemas/response-event.schema.json`` and
``schemas/dead-letter.schema.json`` are generated from them, and tests validate what the pipeline
really produces against those schemas. On the hot path events are built as plain dicts by the
``build_*`` functions (pydantic construction per call would cost more than the call itself).
"""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field

from worker.config import BodyCapture, Destination
from worker.records import Record, SourceRef

SCHEMA_VERSION = 1
REDACTED = "[redacted]"
SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key"})


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SourceRecordRef(Strict):
    """Kafka coordinates of one source record carried by a call."""

    topic: str
    partition: int
    offset: int
    key: str | None = Field(description="The record's Kafka key, UTF-8 (invalid bytes replaced).")
    timestamp_ms: int | None


class RequestInfo(Strict):
    method: str
    url: str
    headers: dict[str, str] = Field(description="Request headers; credentials replaced by [redacted].")
    body: Any = Field(default=None, description="The JSON body (request_body: full), else null.")
    body_sha256: str | None = Field(default=None, description="sha256 of the body bytes (request_body: hash).")
    body_bytes: int


class ResponseInfo(Strict):
    status: int | None = Field(description="HTTP status of the last attempt; null when none answered.")
    headers: dict[str, str] = Field(description="The configured response headers that were present.")
    body: Any = Field(description="Parsed JSON body, or text, or null when empty.")
    error: str | None = Field(description="Why the call failed for good; null when it succeeded.")


class AttemptInfo(Strict):
    status: int | None
    error: str | None
    elapsed_ms: float
    rate_limit_wait_ms: float


class BatchInfo(Strict):
    algorithm: str
    key: list[Any]
    flush_reason: str
    size: int


class Outcome(StrEnum):
    """``delivered``; ``failed`` (Gorgias refused it, or it surely never took effect); ``unknown`` (the
    request may have taken effect: a connection dropped or timed out and no duplicate check settled it)."""

    DELIVERED = "delivered"
    FAILED = "failed"
    UNKNOWN = "unknown"


class MergedInfo(Strict):
    """A 301 for a merged ticket or customer, followed once with the same method and body."""

    from_url: str
    to_url: str
    original_id: int | str | None = Field(description="The id the record named (merged away).")
    merged_into_id: int | str | None = Field(description="The id of the object it was merged into.")


class ResponseEvent(Strict):
    """One Gorgias API call and its result, published to the destination's response topic."""

    schema_version: Literal[1] = 1
    event_id: str = Field(description="Deterministic id of the call: same records, same id (dedupe on replay).")
    destination: str
    outcome: Outcome
    request: RequestInfo
    response: ResponseInfo
    attempts: int
    attempt_log: list[AttemptInfo]
    latency_ms: float = Field(description="From the first attempt to the final answer, waits included.")
    rate_limit_wait_ms: float
    started_at: str
    finished_at: str
    record_count: int
    records: list[SourceRecordRef]
    batch: BatchInfo | None
    merged: MergedInfo | None = Field(default=None, description="Set when the call followed a merged object's 301.")


class DeadLetterStage(StrEnum):
    DECODE = "decode"
    RENDER = "render"
    DELIVER = "deliver"


class DeadLetterRecordItem(Strict):
    source: SourceRecordRef
    value: Any = Field(default=None, description="The record as consumed (JSON), when it was valid JSON.")
    value_base64: str | None = Field(default=None, description="The original bytes, when they were not a record.")
    headers: dict[str, str] = Field(default_factory=dict, description="Kafka headers (values base64).")


class DeadLetter(Strict):
    """Records that could not be delivered, with the reason and everything needed to replay them."""

    schema_version: Literal[1] = 1
    destination: str
    stage: DeadLetterStage
    reason: str
    failed_at: str
    records: list[DeadLetterRecordItem]
    call: ResponseEvent | None = Field(default=None, description="The failed call, for stage deliver.")


# --------------------------------------------------------------------------------------------------
# Builders (hot path: plain dicts, same shape as the models)


def iso_now(ts: float | None = None) -> str:
    moment = datetime.now(UTC) if ts is None else datetime.fromtimestamp(ts, UTC)
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")


def redact_headers(headers: dict[str, str]) -> dict[str, str]:
    return {k: (REDACTED if k.lower() in SECRET_HEADERS else v) for k, v in headers.items()}


def event_id(destination: str, sources: list[SourceRef]) -> str:
    h = hashlib.sha256(destination.encode())
    for s in sources:
        h.update(f"|{s.topic}:{s.partition}:{s.offset}".encode())
    return h.hexdigest()[:32]


def request_info(
    method: str, url: str, headers: dict[str, str], body: bytes | None, capture: BodyCapture
) -> dict[str, Any]:
    info: dict[str, Any] = {
        "method": method,
        "url": url,
        "headers": redact_headers(headers),
        "body": None,
        "body_sha256": None,
        "body_bytes": len(body or b""),
    }
    if body:
        if capture is BodyCapture.FULL:
            try:
                info["body"] = orjson.loads(body)
            except orjson.JSONDecodeError:
                info["body"] = body.decode("utf-8", "replace")
        elif capture is BodyCapture.HASH:
            info["body_sha256"] = hashlib.sha256(body).hexdigest()
    return info


def record_item(record: Record | None, source: SourceRef, raw: bytes | None = None,
                headers: tuple[tuple[str, bytes], ...] = ()) -> dict[str, Any]:
    """A dead-letter item: the record as consumed (an envelope is rebuilt) or its raw bytes."""
    value: Any = None
    value_b64: str | None = None
    if record is not None:
        value = record.data if record.meta is None else {"rawMessage": record.data, "nexlaMetaData": record.meta}
        headers = record.headers
    elif raw is not None:
        value_b64 = base64.b64encode(raw).decode()
    return {
        "source": source.as_event(),
        "value": value,
        "value_base64": value_b64,
        "headers": {k: base64.b64encode(v or b"").decode() for k, v in headers},
    }


def dead_letter(destination: Destination | str, stage: DeadLetterStage, reason: str,
                items: list[dict[str, Any]], call: dict[str, Any] | None = None) -> dict[str, Any]:
    name = destination if isinstance(destination, str) else destination.name
    return {
        "schema_version": SCHEMA_VERSION,
        "destination": name,
        "stage": stage.value,
        "reason": reason,
        "failed_at": iso_now(),
        "records": items,
        "call": call,
    }


def dump(event: dict[str, Any]) -> bytes:
    return orjson.dumps(event)
