"""What the worker publishes, as a contract: the response event (one per API call) and the dead letter.

``schemas/response-event.schema.json`` and ``schemas/dead-letter.schema.json`` are generated from these
pydantic models, and tests validate what the pipeline really produces against them. On the hot path the
documents are built as plain dicts of the same shape (:mod:`worker.core.outcomes.response_events`,
:mod:`worker.core.outcomes.dead_letters`): pydantic construction per call would cost more than the call.
Making a document fit its topic is :mod:`worker.core.outcomes.fit`.
"""

from __future__ import annotations

import functools
import math
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION = 1


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
    body: Any = Field(description="Parsed JSON body, or text, or null when empty (or left out, see `reduced`).")
    body_sha256: str | None = Field(
        default=None, description="sha256 of the body when it was left out to fit the topic (see `reduced`)."
    )
    body_bytes: int | None = Field(default=None, description="Size of the body when it was left out.")
    error: str | None = Field(description="Why the call failed for good; null when it succeeded.")


class AttemptInfo(Strict):
    status: int | None
    error: str | None
    elapsed_ms: float
    rate_limit_wait_ms: float
    step: int | None = Field(
        default=None, description="Which request of a call of several (1-based, as in `steps`); null for one request."
    )
    held: bool = Field(
        default=False,
        description="Gorgias refused the credential (401) or the route (403) and the call waited until it worked "
                    "again: a hold, not counted in `attempts`.",
    )


class StepInfo(Strict):
    """One request of a call that needed several (read-merge-write, upsert, creating missing tags)."""

    method: str
    url: str
    purpose: str = Field(description="What the request was for, e.g. read the ticket's custom-field values.")
    status: int | None = Field(description="HTTP status of its last attempt; null when skipped or unanswered.")
    attempts: int
    skipped: bool = Field(description="Not sent: the name it would create was known to exist on the account.")
    error: str | None


class JobInfo(Strict):
    """A Gorgias job the call created (or, after a restart, resumed) and followed until it ended."""

    id: int = Field(description="The job's id (GET /api/jobs/{id}).")
    status: str | None = Field(
        description="Its last status read: done, errored, fatal_errored, canceled; pending or running when the "
        "wait ended first; null when it could not be read."
    )
    info: Any = Field(description="The job's `info` as Gorgias last answered it (what went wrong, when it failed).")
    polls: int = Field(description="Reads of its status: GET /api/jobs/{id}, or one GET /api/jobs page read for "
                       "several jobs at once (each read took a token of the account's budget).")
    listed: int = Field(default=0, description="How many of those reads found it in the account's job list.")
    resumed: bool = Field(description="Created before a restart and followed by the worker that took it over.")
    waited_s: float = Field(description="Seconds from the first pause to the last poll.")


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


class CustomerMergeInfo(Strict):
    """A delivered merge_customers call: which customer was merged away and which one survived."""

    merged_away_id: int | str = Field(description="The source customer (its id now answers 301).")
    kept_id: int | str = Field(description="The customer that survived: the target as Gorgias answered it.")


class SizeReduction(Strict):
    """What was left out of a document so that it fits the topic's largest message."""

    limit_bytes: int = Field(description="The largest document the topic and the producer accept, less headroom.")
    original_bytes: int = Field(description="Size the full document would have had.")
    omitted: list[str] = Field(
        description=(
            "Paths of what was replaced: a body by its `*_sha256` and `*_bytes`; a record's value by its "
            "`value_sha256` and `value_bytes` (read the record itself at its source topic, partition and "
            "offset); a long string by its first characters (`…[truncated]`)."
        )
    )


class DocumentPart(Strict):
    """One of several documents that together carry a call too large for one (thousands of records)."""

    index: int = Field(description="1-based number of this document.")
    count: int = Field(description="How many documents carry the call; each lists its share of the records.")


class ResponseEvent(Strict):
    """One Gorgias API call and its result, published to the destination's response topic."""

    schema_version: Literal[1] = 1
    event_id: str = Field(
        description="Deterministic id of the call: same deployment, destination and records, same id (dedupe on "
        "replay).")
    deployment: str = Field(description="The worker deployment that made the call (`kafka.deployment`).")
    destination: str
    outcome: Outcome
    request: RequestInfo
    response: ResponseInfo
    attempts: int = Field(
        description="Attempts of the call's request, the first included: 1 when it was not retried. For a call of "
                    "several requests, its last request's; each request's own count is in `steps`. Holds (a "
                    "refused credential) are not attempts."
    )
    attempt_log: list[AttemptInfo]
    latency_ms: float = Field(description="From the first attempt to the final answer, waits included.")
    rate_limit_wait_ms: float
    started_at: str
    finished_at: str
    record_count: int
    records: list[SourceRecordRef]
    batch: BatchInfo | None
    merged: MergedInfo | None = Field(default=None, description="Set when the call followed a merged object's 301.")
    reduced: SizeReduction | None = Field(
        default=None, description="Set when parts were left out so that the event fits the response topic."
    )
    part: DocumentPart | None = Field(
        default=None, description="Set when the call's records are spread over several events (same event_id)."
    )
    steps: list[StepInfo] = Field(
        default_factory=list,
        description="Every request of a call that needed more than one, in order; absent for one request. "
                    "`response` is the last one's answer, `attempt_log` holds the attempts of all.",
    )
    customer_merge: CustomerMergeInfo | None = Field(
        default=None, description="A delivered customer merge: the customer merged away and the one kept; absent "
                                  "otherwise.")
    jobs: list[JobInfo] = Field(
        default_factory=list,
        description="The job(s) of a job template's call; absent otherwise. The call is delivered only when every "
                    "job ended `done`; `response` is then the last job as read back.",
    )


class DeadLetterStage(StrEnum):
    DECODE = "decode"
    RENDER = "render"
    DELIVER = "deliver"


class DeadLetterRecordItem(Strict):
    source: SourceRecordRef
    value: Any = Field(default=None, description="The record as consumed (JSON), when it was valid JSON.")
    value_base64: str | None = Field(default=None, description="The original bytes, when they were not a record.")
    value_sha256: str | None = Field(
        default=None,
        description=(
            "When the value was left out (a record over kafka.max_record_bytes, or to fit the topic, see "
            "`reduced`): sha256 of the original bytes, or of the value's compact JSON when it was a record. "
            "The record itself stays at its source topic, partition and offset."
        ),
    )
    value_bytes: int | None = Field(default=None, description="Size of what `value_sha256` hashes.")
    headers: dict[str, str] = Field(default_factory=dict, description="Kafka headers (values base64).")


class DeadLetter(Strict):
    """Records that could not be delivered, with the reason and everything needed to replay them."""

    schema_version: Literal[1] = 1
    deployment: str = Field(description="The worker deployment the records belong to (`kafka.deployment`).")
    destination: str
    stage: DeadLetterStage
    reason: str
    failed_at: str
    records: list[DeadLetterRecordItem]
    call: ResponseEvent | None = Field(default=None, description="The failed call, for stage deliver.")
    reduced: SizeReduction | None = Field(
        default=None, description="Set when parts were left out so that the dead letter fits its topic."
    )
    part: DocumentPart | None = Field(
        default=None, description="Set when the records are spread over several dead letters (`call` lists each "
        "one's share)."
    )


def iso_time(ts: float) -> str:
    """Epoch seconds as an ISO 8601 UTC timestamp with microseconds, e.g. ``2026-01-31T08:00:00.000000Z``.

    Only the microseconds are formatted per call: the date and time to the second are kept for the
    last few seconds seen (every call's start and finish fall in them).
    """
    seconds = math.floor(ts)
    micros = round((ts - seconds) * 1_000_000)
    if micros >= 1_000_000:  # .9999996 rounds up into the next second
        seconds, micros = seconds + 1, micros - 1_000_000
    return f"{_iso_second(seconds)}.{micros:06d}Z"


@functools.lru_cache(maxsize=16)
def _iso_second(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
