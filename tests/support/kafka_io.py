"""Small aiokafka helpers for tests: create topics, publish records, read topics, read committed offsets."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from typing import Any

import aiokafka
import orjson
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
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    return {tp.partition: meta.offset for tp, meta in sorted(offsets.items()) if tp.topic == topic and meta.offset >= 0}


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
