"""Small aiokafka helpers for tests: create topics, publish records, read topics, read committed offsets."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from typing import Any

import aiokafka
import orjson
from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError


async def create_topics(bootstrap: str, topics: Sequence[str], partitions: int = 1) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        for topic in topics:
            try:
                await admin.create_topics([NewTopic(topic, partitions, 1)])
            except TopicAlreadyExistsError:
                pass
    finally:
        await admin.close()


async def publish(
    bootstrap: str, topic: str, values: Sequence[bytes | dict[str, Any] | list[Any]],
    key: Callable[[int, Any], bytes | None] | None = None, partition: int | None = None,
) -> None:
    producer = aiokafka.AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        futures = []
        for i, value in enumerate(values):
            raw = value if isinstance(value, bytes) else orjson.dumps(value)
            futures.append(await producer.send(topic, raw, key=key(i, value) if key else None, partition=partition))
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def read_topic(
    bootstrap: str, topic: str, count: int, timeout: float = 60.0,
) -> list[aiokafka.ConsumerRecord[bytes, bytes]]:
    """Read ``topic`` from the beginning until ``count`` records arrived (or the timeout)."""
    consumer = aiokafka.AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest", enable_auto_commit=False,
    )
    await consumer.start()
    out: list[aiokafka.ConsumerRecord[bytes, bytes]] = []
    try:
        consumer.subscribe([topic])
        deadline = time.monotonic() + timeout
        while len(out) < count and time.monotonic() < deadline:
            fetched = await consumer.getmany(timeout_ms=300)
            for records in fetched.values():
                out.extend(records)
    finally:
        await consumer.stop()
    return out


async def read_json(bootstrap: str, topic: str, count: int, timeout: float = 60.0) -> list[dict[str, Any]]:
    return [orjson.loads(r.value) for r in await read_topic(bootstrap, topic, count, timeout)]


async def committed(bootstrap: str, group: str, topic: str) -> dict[int, int]:
    """Committed offsets of ``group`` on each partition of ``topic`` (missing: not committed)."""
    consumer = aiokafka.AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        parts = consumer.partitions_for_topic(topic)
        if not parts:
            await consumer._client.force_metadata_update()
            parts = consumer.partitions_for_topic(topic) or set()
        out = {}
        for p in sorted(parts):
            off = await consumer.committed(TopicPartition(topic, p))
            if off is not None:
                out[p] = off
        return out
    finally:
        await consumer.stop()


async def wait_for(predicate: Callable[[], Any], timeout: float, interval: float = 0.2) -> Any:
    """Poll an async or sync predicate until it returns a truthy value."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = predicate()
        if asyncio.iscoroutine(last):
            last = await last
        if last:
            return last
        await asyncio.sleep(interval)
    return last
