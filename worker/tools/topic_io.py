"""Topics from the command line: publish a JSON Lines file (with a progress bar), print response events."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import orjson
from aiokafka import TopicPartition
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from worker.core.config.kafka import KafkaSettings
from worker.core.records.transform import MissingAttribute, get_path
from worker.host.environment import bootstrap_servers
from worker.kafka.clients import existing_partitions, make_consumer, make_producer


def _key_of(record: Any, attribute: str | None) -> bytes | None:
    if attribute is None or not isinstance(record, dict):
        return None
    body = record.get("rawMessage", record) if isinstance(record.get("rawMessage"), dict) else record
    try:
        value = get_path(body, attribute)
    except MissingAttribute:
        return None
    return str(value).encode() if not isinstance(value, bytes) else value


async def produce_file(
    kafka: KafkaSettings, topic: str, path: Path, key_attribute: str | None
) -> tuple[int, int]:
    """Publish each line of ``path`` as one record; returns (published, skipped non-JSON lines)."""
    lines = path.read_bytes().splitlines()  # noqa: ASYNC240 - read once, before any I/O starts
    producer = make_producer(kafka)
    await producer.start()
    sent = bad = 0
    try:
        console = Console(stderr=True)
        with Progress(
            TextColumn("publishing"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
            console=console, transient=True, disable=not console.is_terminal,
        ) as progress:
            bar = progress.add_task("records", total=len(lines))
            futures = []
            for line in lines:
                progress.advance(bar)
                if not line.strip():
                    continue
                try:
                    record = orjson.loads(line)
                except orjson.JSONDecodeError:
                    bad += 1
                    continue
                futures.append(await producer.send(topic, line, key=_key_of(record, key_attribute)))
                sent += 1
            for fut in futures:
                await fut
    finally:
        await producer.stop()
    return sent, bad


def summarize(event: dict[str, Any]) -> str:
    """One line per call: destination, status, method, URL, records, attempts, latency."""
    req, resp = event.get("request", {}), event.get("response", {})
    status = resp.get("status") or "---"
    body = resp.get("body")
    created = f" id={body['id']}" if isinstance(body, dict) and "id" in body else ""
    err = f"  error: {resp['error']}" if resp.get("error") else ""
    return (
        f"{event.get('finished_at', '')}  {event.get('destination')}  {status}  {req.get('method')} {req.get('url')}"
        f"  records={event.get('record_count')} attempts={event.get('attempts')} "
        f"latency={event.get('latency_ms', 0):.0f}ms{created}{err}"
    )


class TopicMissing(LookupError):
    """A topic to read does not exist (reading never creates one)."""


async def print_responses(
    kafka: KafkaSettings, topics: list[str], destination: str | None, follow: bool, limit: int | None, raw: bool
) -> int:
    """Print response events from the beginning of ``topics``; returns how many were printed (at most ``limit``).

    The partitions are assigned, not subscribed, so a missing topic is reported and never auto-created.
    """
    existing = await existing_partitions(kafka, topics)
    missing = [t for t in topics if t not in existing]
    if missing:
        raise TopicMissing(f"topic {', '.join(missing)} does not exist on Kafka at {bootstrap_servers(kafka)} "
                           "(no response was produced yet, or another topic is configured)")
    consumer = make_consumer(kafka, None, isolation_level="read_uncommitted")
    await consumer.start()
    printed = 0
    try:
        tps = [TopicPartition(t, p) for t in topics for p in existing[t]]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        idle = 0
        while limit is None or printed < limit:
            fetched = await consumer.getmany(timeout_ms=1000)
            if not fetched:
                idle += 1
                if not follow and idle >= 3:
                    break
                continue
            idle = 0
            for messages in fetched.values():
                for msg in messages:
                    if limit is not None and printed >= limit:
                        break
                    try:
                        event = orjson.loads(msg.value)
                    except orjson.JSONDecodeError:
                        continue
                    if destination and event.get("destination") != destination:
                        continue
                    sys.stdout.write((msg.value.decode() if raw else summarize(event)) + "\n")
                    printed += 1
            sys.stdout.flush()
    finally:
        await consumer.stop()
    return printed
