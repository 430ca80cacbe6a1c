"""Nexset records as the worker sees them: decoding Kafka message values into records.

A record is a JSON object. Two shapes are accepted: a plain Nexset record (``{"id": 1, ...}``) and
a Nexla envelope (``{"rawMessage": {...}, "nexlaMetaData": {...}}``), whose ``rawMessage`` is the
record and whose metadata is kept aside. Anything else is a :class:`DecodeError` with a reason, so
the pipeline can dead-letter it and go on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

import orjson

from worker.core.records.json_types import json_type

ENVELOPE_BODY = "rawMessage"
ENVELOPE_META = "nexlaMetaData"
REPLAY_HEADER = "gorgias-replay-of"
"""Kafka header ``gorgias-replay-of: <topic>:<partition>:<offset>``: the original coordinates of a replayed record."""
POSSIBLY_DELIVERED = "possibly_delivered"
"""``Record.extra`` flag: the record may have been delivered before a restart (set by the pipeline)."""
RESUME_JOB = "resume_job"
"""``Record.extra`` key: the id of the Gorgias job a previous owner created for this record before it died
(set by the pipeline from the intent marks): the job is followed instead of being created again."""


class SourceRef(NamedTuple):
    """Where a record came from in Kafka (a NamedTuple: built for every record, three times cheaper than a
    frozen dataclass)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None = None
    timestamp_ms: int | None = None

    def as_event(self) -> dict[str, Any]:
        return {
            "topic": self.topic,
            "partition": self.partition,
            "offset": self.offset,
            "key": self.key.decode("utf-8", "replace") if self.key is not None else None,
            "timestamp_ms": self.timestamp_ms,
        }


@dataclass(slots=True)
class Record:
    """A decoded Nexset record with its Kafka coordinates, headers and size."""

    data: dict[str, Any]
    source: SourceRef
    headers: tuple[tuple[str, bytes], ...] = ()
    meta: dict[str, Any] | None = None
    raw_size: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def replayed(self) -> bool:
        """A replay, or a record that may have been delivered before a restart: sent once already, maybe."""
        return bool(self.extra.get(POSSIBLY_DELIVERED)) or any(k == REPLAY_HEADER for k, _ in self.headers)

    @property
    def replay_of(self) -> SourceRef | None:
        """The original coordinates of a replayed record (its ``gorgias-replay-of`` header), else None."""
        for name, value in self.headers:
            if name == REPLAY_HEADER:
                return parse_replay_header(value)
        return None

    @property
    def origin(self) -> SourceRef:
        """Where the record first came from: its replay header's coordinates, else its own."""
        return self.replay_of or self.source


def parse_replay_header(value: bytes | None) -> SourceRef | None:
    """``topic:partition:offset`` (the topic may itself hold ``:``) as a SourceRef; None when malformed."""
    if not value:
        return None
    try:
        topic, partition, offset = value.decode("utf-8").rsplit(":", 2)
        ref = SourceRef(topic, int(partition), int(offset))
    except ValueError:  # not UTF-8, too few parts, not numbers
        return None
    return ref if topic and ref.partition >= 0 and ref.offset >= 0 else None


class DecodeError(Exception):
    """A message value that is not a usable record."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def decode_value(value: bytes | None, max_bytes: int) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """Return ``(record, envelope_metadata)`` or raise :class:`DecodeError` saying why not."""
    if value is None:
        raise DecodeError("empty message (tombstone): there is no record to send")
    if len(value) > max_bytes:
        raise DecodeError(f"record is {len(value)} bytes, over the {max_bytes}-byte limit (kafka.max_record_bytes)")
    try:
        doc = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise DecodeError(f"not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise DecodeError(f"a record must be a JSON object, got a JSON {json_type(doc)}")
    if ENVELOPE_BODY in doc and set(doc) <= {ENVELOPE_BODY, ENVELOPE_META}:
        body = doc[ENVELOPE_BODY]
        meta = doc.get(ENVELOPE_META)
        if not isinstance(body, dict):
            raise DecodeError(f"envelope's rawMessage must be a JSON object, got a JSON {json_type(body)}")
        if meta is not None and not isinstance(meta, dict):
            raise DecodeError(f"envelope's nexlaMetaData must be a JSON object, got a JSON {json_type(meta)}")
        return body, meta
    return doc, None


def decode_record(
    value: bytes | None,
    source: SourceRef,
    headers: tuple[tuple[str, bytes], ...] = (),
    max_bytes: int = 1_048_576,
) -> Record:
    data, meta = decode_value(value, max_bytes)
    return Record(data=data, source=source, headers=headers, meta=meta, raw_size=len(value or b""))
