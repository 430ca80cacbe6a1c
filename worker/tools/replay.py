"""`gorgias-worker replay`: send dead-lettered records through the destination again, after a fix.

Dead letters carry the original records. Replaying republishes them, with their original key and
headers, to the destination's source topic (or ``--to-topic``), so that the running worker delivers
them again with its current configuration and records a fresh outcome for each. Progress is kept in
a consumer group of its own (``<group_id>.<destination>.replay``), so a second run continues where the
first stopped instead of replaying twice. ``--dry-run`` reports what would be replayed and changes
nothing.
"""

from __future__ import annotations

import base64
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiokafka import TopicPartition
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from worker.core.config.deployment import Deployment
from worker.core.config.topics import TopicKind
from worker.core.config.worker_config import Destination, WorkerConfig
from worker.core.records.record import REPLAY_HEADER
from worker.kafka.clients import ensure_topic, make_consumer, make_producer, read_at


@dataclass
class ReplayReport:
    scanned: int = 0
    replayed: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    by_reason: Counter[str] = field(default_factory=Counter)


def replayable(letter: dict[str, Any], scope: Deployment, destination: str, stages: set[str],
               include_undecodable: bool) -> tuple[list[tuple[bytes | None, dict[str, Any]]], str | None]:
    """The (value bytes, item) pairs of a dead letter to republish, or a reason to skip it. The value is
    None for a record the dead letter names by reference (too large to carry): read it at its source."""
    if letter.get("destination") != destination:
        return [], "other destination"
    if not scope.owns(letter):
        return [], "other deployment"
    if letter.get("stage") not in stages:
        return [], f"stage {letter.get('stage')} not selected"
    out: list[tuple[bytes | None, dict[str, Any]]] = []
    for item in letter.get("records") or []:
        if item.get("value") is not None:
            out.append((orjson.dumps(item["value"]), item))
        elif item.get("value_base64") and include_undecodable:
            out.append((base64.b64decode(item["value_base64"]), item))
        elif item.get("value_sha256") and (item.get("value_bytes") or 0) > 0:
            out.append((None, item))
    if not out:
        return [], "not a record (use --include-undecodable to republish the raw bytes)"
    return out, None


def replay_headers(item: dict[str, Any]) -> list[tuple[str, bytes]]:
    """The Kafka headers of a republished dead-letter item: its own, plus ``gorgias-replay-of`` with its
    source coordinates, unless it has one already (a replay of a replay keeps the first coordinates, on
    which the identity stamped on a create depends)."""
    headers = [(k, base64.b64decode(v)) for k, v in (item.get("headers") or {}).items()]
    if not any(k == REPLAY_HEADER for k, _ in headers):
        src = item["source"]
        headers.append((REPLAY_HEADER, f"{src['topic']}:{src['partition']}:{src['offset']}".encode()))
    return headers


@dataclass
class _Republisher:
    """Republishes the records of one dead letter after another, counting into ``report``."""

    scope: Deployment
    dest: Destination
    stages: set[str]
    include_undecodable: bool
    topic: str
    originals: Any  # a group-less consumer: reads records that dead letters name by reference
    producer: Any  # None on a dry run
    limit: int | None
    report: ReplayReport = field(default_factory=ReplayReport)

    @property
    def full(self) -> bool:
        return self.limit is not None and self.report.replayed >= self.limit

    async def letter(self, value: bytes | None) -> list[Any]:
        """Republish one dead letter's records; returns the sends to await."""
        report = self.report
        report.scanned += 1
        try:
            letter = orjson.loads(value or b"")
        except orjson.JSONDecodeError:
            report.skipped["not a dead letter"] += 1
            return []
        items, why = replayable(letter, self.scope, self.dest.name, self.stages, self.include_undecodable)
        if why is not None:
            report.skipped[why] += 1
            return []
        report.by_reason[str(letter.get("reason", ""))[:120]] += len(items)
        sends = []
        for raw, item in items:
            record = raw if raw is not None else await _original(self.originals, item)
            if record is None:
                report.skipped["named by reference, no longer at its source offset"] += 1
                continue
            report.replayed += 1
            if self.producer is not None:
                src = item["source"]
                key = src["key"].encode() if src.get("key") is not None else None
                sends.append(await self.producer.send(self.topic, record, key=key, headers=replay_headers(item)))
        return sends


async def replay(
    config: WorkerConfig,
    dest: Destination,
    stages: set[str],
    to_topic: str | None = None,
    dry_run: bool = False,
    limit: int | None = None,
    include_undecodable: bool = False,
    from_beginning: bool = False,
) -> ReplayReport:
    """Republish dead-lettered records of ``dest``; returns what was (or would be) replayed."""
    group = None if dry_run or from_beginning else f"{config.kafka.group_id}.{dest.name}.replay"
    consumer = make_consumer(config.kafka, group, isolation_level="read_uncommitted")
    producer = None if dry_run else make_producer(config.kafka)
    originals = make_consumer(config.kafka, None)
    republish = _Republisher(config.kafka.scope, dest, stages, include_undecodable,
                             to_topic or dest.source_topics[0], originals, producer, limit)
    await consumer.start()
    await originals.start()
    if producer is not None:
        await producer.start()
    try:
        parts = await ensure_topic(config.kafka, dest.dead_letter_topic, TopicKind.DEAD_LETTERS)
        tps = [TopicPartition(dest.dead_letter_topic, p) for p in parts]
        if tps:
            consumer.assign(tps)
            await _scan(consumer, tps, group is not None, republish, dry_run)
    finally:
        if producer is not None:
            await producer.stop()
        await consumer.stop()
        await originals.stop()
    return republish.report


# complexity: one pass over the dead letters: stage, destination, progress and limit filters in order
async def _scan(consumer: Any, tps: list[TopicPartition], grouped: bool, republish: _Republisher,  # noqa: C901
                dry_run: bool) -> None:
    """Read the dead-letter partitions from the replay group's offsets (or their beginning) to their end
    offsets now, committing after each fetch exactly what was republished."""
    ends = await consumer.end_offsets(tps)
    if not grouped:
        await consumer.seek_to_beginning(*tps)
    else:
        for tp in tps:
            if await consumer.committed(tp) is None:
                await consumer.seek_to_beginning(tp)
    starts = {tp: await consumer.position(tp) for tp in tps}
    total = sum(max(0, ends[tp] - starts[tp]) for tp in tps)
    todo = {tp for tp in tps if starts[tp] < ends[tp]}
    console = Console(stderr=True)  # the bar only on a terminal: piped, it would leave empty lines
    with Progress(TextColumn("replaying" if not dry_run else "scanning"), BarColumn(), MofNCompleteColumn(),
                  console=console, transient=True, disable=not console.is_terminal) as progress:
        bar = progress.add_task("dead letters", total=total)
        while todo and not republish.full:
            fetched = await consumer.getmany(*todo, timeout_ms=1000)
            sends = []
            done_upto: dict[TopicPartition, int] = {}
            for tp, messages in fetched.items():
                for msg in messages:
                    if msg.offset >= ends[tp] or republish.full:
                        break
                    done_upto[tp] = msg.offset + 1
                    progress.advance(bar)
                    sends += await republish.letter(msg.value)
            for fut in sends:
                await fut
            if grouped and done_upto:
                await consumer.commit(done_upto)  # exactly what was republished, nothing past it
            for tp in list(todo):
                if await consumer.position(tp) >= ends[tp]:
                    todo.discard(tp)


async def _original(originals: Any, item: dict[str, Any]) -> bytes | None:
    """The bytes of a record named by reference: an offset names one record for good, so what its
    source still holds there is that record (None once retention or compaction removed it)."""
    src = item["source"]
    msg = await read_at(originals, src["topic"], src["partition"], src["offset"])
    return None if msg is None else msg.value
