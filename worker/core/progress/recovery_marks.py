"""After a crash, re-deliver only the records whose outcome was not recorded: what recovery reads and
writes, as data (pure; the Kafka reads are :mod:`worker.kafka.recovery`).

An offset commit trails the outcomes: records finish out of order and commits happen every half
second, so when a worker dies some records past the committed position already have their response
event or dead letter on Kafka. Re-sending those would call Gorgias twice for nothing.

So each commit carries a checkpoint in its metadata: for every outcome topic partition (response and
dead-letter topics), an offset from which every outcome of a record at or past the committed position
must lie. It is sound because an outcome is produced after its record is consumed, and a record at or
past the position was consumed no earlier than the record *at* the position: any offset acknowledged
to this producer before that moment is below every outcome produced after it. On assignment the new
owner reads the outcome topics from the checkpoint to their end, collects the source offsets that
already have an outcome, and marks them finished without calling Gorgias again.

Intent marks bound the duplicate checks. A destination that creates objects (a create template) writes a
small *intent* record — the source offsets of the call, no body — to the intent topic and waits for
Kafka's acknowledgement before the create goes on the wire. The intent topic is scanned like the
outcome topics, so after a crash exactly the records with an intent and no outcome may have reached
Gorgias: only those are looked up before being sent again (at most the calls on the wire when the worker
died), not every record the dead worker had consumed. Checkpoints written without the intent topic fall
back to flagging everything the dead worker had consumed (``upto``). A job template's second mark names
the job Gorgias created, so that a worker taking over follows that job instead of creating another one.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import orjson

from worker.core.config.deployment import Deployment
from worker.core.progress.offsets import TopicPartitionKey

OutcomePartition = tuple[str, int]
CHECKPOINT_VERSION = 1
MAX_METADATA_BYTES = 4000  # Kafka's default offset.metadata.max.bytes is 4096


def encode_checkpoint(scan_from: dict[OutcomePartition, int], upto: int | None = None) -> str:
    """Commit metadata: where to scan for outcomes, and how far the committing worker had consumed."""
    topics: dict[str, dict[str, int]] = {}
    for (topic, partition), offset in sorted(scan_from.items()):
        topics.setdefault(topic, {})[str(partition)] = offset
    doc: dict[str, object] = {"v": CHECKPOINT_VERSION, "scan": topics}
    if upto is not None:
        doc["upto"] = upto
    text = orjson.dumps(doc).decode()
    return text if len(text) <= MAX_METADATA_BYTES else ""


def consumed_upto(metadata: str | None) -> int | None:
    """How far the worker that wrote this checkpoint had consumed (None if unknown)."""
    try:
        doc = orjson.loads(metadata or "null")
    except orjson.JSONDecodeError:
        return None
    value = doc.get("upto") if isinstance(doc, dict) else None
    return value if isinstance(value, int) else None


def decode_checkpoint(metadata: str | None) -> dict[OutcomePartition, int]:
    """The scan start per outcome partition; empty for missing or foreign metadata."""
    if not metadata:
        return {}
    try:
        doc = orjson.loads(metadata)
    except orjson.JSONDecodeError:
        return {}
    if not isinstance(doc, dict) or doc.get("v") != CHECKPOINT_VERSION or not isinstance(doc.get("scan"), dict):
        return {}
    out: dict[OutcomePartition, int] = {}
    for topic, parts in doc["scan"].items():
        if isinstance(parts, dict):
            for partition, offset in parts.items():
                if isinstance(offset, int) and str(partition).isdigit():
                    out[(topic, int(partition))] = offset
    return out


class Watermarks:
    """The highest outcome offset acknowledged to this process, per outcome partition."""

    def __init__(self) -> None:
        self.acked: dict[OutcomePartition, int] = {}

    def seed(self, ends: dict[OutcomePartition, int]) -> None:
        """Start from the topics' end offsets (everything before start-up is older than our records)."""
        for key, end in ends.items():
            self.acked[key] = max(self.acked.get(key, -1), end - 1)

    def acknowledged(self, topic: str, partition: int, offset: int) -> None:
        key = (topic, partition)
        if offset > self.acked.get(key, -1):
            self.acked[key] = offset

    def scan_from(self) -> dict[OutcomePartition, int]:
        return {key: offset + 1 for key, offset in self.acked.items()}


class ConsumptionMarks:
    """For each source partition, the watermarks seen when each fetched chunk started to be consumed.

    A partition taken over from a worker that died also inherits that worker's checkpoint until the
    position passes the last record found already delivered, so a second crash still finds them.
    """

    def __init__(self) -> None:
        self._marks: dict[TopicPartitionKey, deque[tuple[int, dict[OutcomePartition, int]]]] = {}
        self._inherited: dict[TopicPartitionKey, tuple[int, dict[OutcomePartition, int]]] = {}

    def inherit(self, tp: TopicPartitionKey, last_recorded: int, scan_from: dict[OutcomePartition, int]) -> None:
        self._inherited[tp] = (last_recorded, scan_from)

    def chunk(self, tp: TopicPartitionKey, first_offset: int, scan_from: dict[OutcomePartition, int]) -> None:
        self._marks.setdefault(tp, deque()).append((first_offset, scan_from))

    def checkpoint(
        self, tp: TopicPartitionKey, position: int, current: dict[OutcomePartition, int], upto: int | None = None
    ) -> str:
        """Checkpoint for committing ``position``; forgets marks no longer needed."""
        marks = self._marks.get(tp)
        chosen = current
        if marks:
            while len(marks) > 1 and marks[1][0] <= position:
                marks.popleft()
            if marks[0][0] <= position:
                chosen = marks[0][1]
        inherited = self._inherited.get(tp)
        if inherited is not None:
            if position > inherited[0]:
                del self._inherited[tp]
            else:
                chosen = {k: min(v, inherited[1].get(k, v)) for k, v in {**inherited[1], **chosen}.items()}
        return encode_checkpoint(chosen, upto)

    def forget(self, tp: TopicPartitionKey) -> None:
        self._marks.pop(tp, None)
        self._inherited.pop(tp, None)


INTENT = "intent"
SourceOffset = tuple[str, int, int]


def intent_document(deployment: str, destination: str, sources: Iterable[tuple[str, int, int]],
                    job_id: int | None = None) -> dict[str, Any]:
    """The intent mark of a call about to go on the wire: its deployment, destination and source offsets only.
    A job call writes a second mark once Gorgias has named its job (``job_id``): after a crash the job is
    followed instead of being created again (:mod:`worker.gorgias.jobs`)."""
    doc: dict[str, Any] = {
        "kind": INTENT,
        "deployment": deployment,
        "destination": destination,
        "records": [{"topic": t, "partition": p, "offset": o} for t, p, o in sources],
    }
    if job_id is not None:
        doc["job_id"] = job_id
    return doc


class RecoveryScan(NamedTuple):
    """What the outcome and intent topics say about records at or past the committed positions."""

    recorded: set[SourceOffset]  # an outcome (response event or dead letter) is on Kafka
    intended: set[SourceOffset]  # an intent mark is on Kafka: the call may have reached Gorgias
    jobs: dict[SourceOffset, int]  # the Gorgias job an intent mark names for the record (the latest one)

    def add(self, value: bytes | None, scope: Deployment, destination: str,
            positions: dict[TopicPartitionKey, int]) -> None:
        """Take in one record of the outcome or intent topics: the source offsets it names of records at or
        past ``positions`` (another deployment's or destination's records and anything unreadable are ignored)."""
        is_intent, sources, job_id = outcome_marks(value, scope, destination)
        into = self.intended if is_intent else self.recorded
        for source in sources:
            tpk = TopicPartitionKey(source[0], source[1])
            if tpk in positions and source[2] >= positions[tpk]:
                into.add(source)
                if job_id is not None:
                    self.jobs[source] = job_id


def outcome_marks(value: bytes | None, scope: Deployment,
                  destination: str) -> tuple[bool, list[SourceOffset] | tuple[()], int | None]:
    """(is it an intent mark, the source offsets, the job id it names) of an outcome or intent record of
    ``destination`` in deployment ``scope``."""
    if not value:
        return False, (), None
    try:
        doc = orjson.loads(value)
    except orjson.JSONDecodeError:
        return False, (), None
    if not isinstance(doc, dict) or doc.get("destination") != destination or not scope.owns(doc):
        return False, (), None
    out = []
    for item in doc.get("records") or ():
        ref = item.get("source", item) if isinstance(item, dict) else None
        if isinstance(ref, dict) and isinstance(ref.get("partition"), int) and isinstance(ref.get("offset"), int):
            out.append((str(ref.get("topic")), ref["partition"], ref["offset"]))
    is_intent = doc.get("kind") == INTENT
    job_id = doc.get("job_id")
    named = is_intent and isinstance(job_id, int) and not isinstance(job_id, bool)
    return is_intent, out, job_id if named else None


class Inherited(NamedTuple):
    """What a previous owner left of one record it had consumed: whether it may have reached Gorgias (for the
    duplicate checks), and the Gorgias job it created for it (followed, not created again)."""

    possibly_delivered: bool = False
    created_job: int | None = None


NOTHING_INHERITED = Inherited()


@dataclass
class Inheritance:
    """What the committed offsets of newly assigned partitions say about their previous owner."""

    positions: dict[TopicPartitionKey, int] = field(default_factory=dict)  # committed, where a checkpoint is
    scans: dict[TopicPartitionKey, dict[OutcomePartition, int]] = field(default_factory=dict)
    scan_from: dict[OutcomePartition, int] = field(default_factory=dict)  # the lowest start per outcome partition
    # past the committed offset and below this, the previous owner had consumed records without an outcome
    maybe_sent_below: dict[TopicPartitionKey, int] = field(default_factory=dict)

    @classmethod
    def of(cls, committed: Mapping[TopicPartitionKey, tuple[int, str | None]],
           intent_partitions: set[OutcomePartition]) -> Inheritance:
        """From each partition's committed ``(offset, metadata)`` (offset -1: none) and the intent topic's
        partitions (empty when the destination writes no intent marks)."""
        out = cls()
        for tpk, (offset, metadata) in committed.items():
            if offset < 0:
                continue
            scan = decode_checkpoint(metadata)
            upto = consumed_upto(metadata)
            # a checkpoint that covers the intent topic says exactly which records were on their way;
            # without it, everything the previous owner had consumed may have been
            marked = bool(intent_partitions) and intent_partitions <= scan.keys()
            if upto is not None and upto > offset and not marked:
                out.maybe_sent_below[tpk] = upto
            if scan:
                out.positions[tpk] = offset
                out.scans[tpk] = scan
                for key, start in scan.items():
                    out.scan_from[key] = min(start, out.scan_from.get(key, start))
        return out

    def covered(self, intent_partitions: set[OutcomePartition]) -> set[TopicPartitionKey]:
        """The source partitions whose checkpoint covers the intent topic."""
        return {tpk for tpk, scan in self.scans.items() if intent_partitions <= scan.keys()}

    def last_recorded(self, recorded: Iterable[SourceOffset]) -> dict[TopicPartitionKey, int]:
        """Per source partition with a checkpoint, the highest offset found already recorded."""
        last: dict[TopicPartitionKey, int] = {}
        for topic, partition, offset in recorded:
            tpk = TopicPartitionKey(topic, partition)
            if tpk in self.scans and offset > last.get(tpk, -1):
                last[tpk] = offset
        return last


class LeftBehind:
    """What previous owners left of the records past the committed offsets, learned at each assignment
    (:meth:`learn`) and asked once per consumed record (:meth:`take`): records whose outcome they recorded
    (finished, not sent again), records that may have reached Gorgias, Gorgias jobs they created."""

    def __init__(self) -> None:
        self._recorded: set[SourceOffset] = set()
        self._maybe_sent: set[SourceOffset] = set()
        self._maybe_sent_below: dict[TopicPartitionKey, int] = {}
        self._jobs: dict[SourceOffset, int] = {}  # marked records whose Gorgias job was created: followed, not redone

    def learn(self, inheritance: Inheritance, intent_partitions: set[OutcomePartition], recorded: set[SourceOffset],
              intended: set[SourceOffset], jobs: dict[SourceOffset, int]) -> None:
        """What the outcome and intent topics said past the checkpoints of ``inheritance``: the records already
        ``recorded``, those ``intended`` (marked on their way to Gorgias) and the ``jobs`` created for them."""
        self._maybe_sent_below.update(inheritance.maybe_sent_below)
        if intent_partitions:
            covered = inheritance.covered(intent_partitions)
            self._maybe_sent |= {s for s in intended - recorded if TopicPartitionKey(s[0], s[1]) in covered}
            self._jobs.update({s: job for s, job in jobs.items() if s not in recorded})
        self._recorded |= recorded

    def take(self, tp: TopicPartitionKey, offset: int) -> Inherited | None:
        """None when the record's outcome is on Kafka already; else what was left of it. Asking takes the
        answer: a record is forgotten once told, and a partition's mark is dropped once passed."""
        if not (self._recorded or self._maybe_sent or self._maybe_sent_below or self._jobs):
            return NOTHING_INHERITED
        key = (tp.topic, tp.partition, offset)
        if key in self._recorded:
            self._recorded.discard(key)
            return None
        return Inherited(self._possibly_delivered(tp, offset), self._jobs.pop(key, None))

    def _possibly_delivered(self, tp: TopicPartitionKey, offset: int) -> bool:
        found = False
        if (tp.topic, tp.partition, offset) in self._maybe_sent:
            self._maybe_sent.discard((tp.topic, tp.partition, offset))
            found = True  # marked on its way to Gorgias, no outcome recorded
        below = self._maybe_sent_below.get(tp)
        if below is not None:
            if offset < below:
                found = True
            else:
                del self._maybe_sent_below[tp]
        return found
