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

from worker.config import Destination, WorkerConfig
from worker.pipeline.kafka import ensure_topic, make_consumer, make_producer, read_at
from worker.records import REPLAY_HEADER


@dataclass
class ReplayReport:
    scanned: int = 0
    replayed: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    by_reason: Counter[str] = field(default_factory=Counter)


def replayable(letter: dict[str, Any], destination: str, stages: set[str], include_undecodable: bool,
               ) -> tuple[list[tuple[bytes | None, dict[str, Any]]], str | None]:
    """The (value bytes, item) pairs of a dead letter to republish, or a reason to skip it. The value is
    None for a record the dead letter names by reference (too large to carry): read it at its source."""
    if letter.get("destination") != destination:
        return [], "other destination"
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
    topic = to_topic or dest.source_topics[0]
    report = ReplayReport()
    group = None if dry_run or from_beginning else f"{config.kafka.group_id}.{dest.name}.replay"
    consumer = make_consumer(config.kafka, group, isolation_level="read_uncommitted")
    producer = None if dry_run else make_producer(config.kafka)
    originals = make_consumer(config.kafka, None)  # reads records that dead letters name by reference
    await consumer.start()
    await originals.start()
    if producer is not None:
        await producer.start()
    try:
        parts = await ensure_topic(config.kafka, dest.dead_letter_topic)
        tps = [TopicPartition(dest.dead_letter_topic, p) for p in parts]
        if not tps:
            return report
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
        if group is None:
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
            while todo and (limit is None or report.replayed < limit):
                fetched = await consumer.getmany(*todo, timeout_ms=1000)
                pending = []
                done_upto: dict[TopicPartition, int] = {}
                for tp, messages in fetched.items():
                    for msg in messages:
                        if msg.offset >= ends[tp] or (limit is not None and report.replayed >= limit):
                            break
                        done_upto[tp] = msg.offset + 1
                        progress.advance(bar)
                        report.scanned += 1
                        try:
                            letter = orjson.loads(msg.value)
                        except orjson.JSONDecodeError:
                            report.skipped["not a dead letter"] += 1
                            continue
                        items, why = replayable(letter, dest.name, stages, include_undecodable)
                        if why is not None:
                            report.skipped[why] += 1
                            continue
                        report.by_reason[str(letter.get("reason", ""))[:120]] += len(items)
                        for value, item in items:
                            if value is None:
                                value = await _original(originals, item)
                                if value is None:
                                    report.skipped["named by reference, no longer at its source offset"] += 1
                                    continue
                            report.replayed += 1
                            if producer is not None:
                                src = item["source"]
                                key = src["key"].encode() if src.get("key") is not None else None
                                pending.append(await producer.send(topic, value, key=key,
                                                                   headers=replay_headers(item)))
                for fut in pending:
                    await fut
                if group is not None and done_upto:
                    await consumer.commit(done_upto)  # exactly what was republished, nothing past it
                for tp in list(todo):
                    if await consumer.position(tp) >= ends[tp]:
                        todo.discard(tp)
    finally:
        if producer is not None:
            await producer.stop()
        await consumer.stop()
        await originals.stop()
    return report


async def _original(originals: Any, item: dict[str, Any]) -> bytes | None:
    """The bytes of a record named by reference: an offset names one record for good, so what its
    source still holds there is that record (None once retention or compaction removed it)."""
    src = item["source"]
    msg = await read_at(originals, src["topic"], src["partition"], src["offset"])
    return None if msg is None else msg.value
