"""Small aiokafka helpers for tests: create topics, publish records, read topics, read committed offsets."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from typing import Any

import aiokafka
import orjson
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from worker.core.config.kafka import KafkaSettings
from worker.kafka.clients import all_partitions, stop_client


async def create_topics(
    bootstrap: str, topics: Sequence[str], partitions: int = 1, replication: int = 1,
    configs: dict[str, str] | None = None,
) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        for topic in topics:
            try:
                await admin.create_topics([NewTopic(topic, partitions, replication, topic_configs=configs or {})])
            except TopicAlreadyExistsError:
                pass
    finally:
        await admin.close()


async def partition_states(bootstrap: str, topics: Sequence[str]) -> dict[tuple[str, int], dict[str, Any]]:
    """Each partition of ``topics`` as the cluster describes it now: its ``leader`` and ``isr`` (node ids).

    Asked again (a few times) when the node the admin client picked is down, as in a cluster that lost one.
    """
    for attempt in range(10):
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        try:
            await admin.start()
            described = await admin.describe_topics(list(topics))
            return {(t["topic"], p["partition"]): p for t in described for p in t.get("partitions", ())}
        except KafkaError:
            if attempt == 9:
                raise
            await asyncio.sleep(0.5)
        finally:
            await admin.close()
    raise AssertionError("unreachable")


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


async def publish_paced(bootstrap: str, topic: str, values: Sequence[dict[str, Any]], every_s: float) -> None:
    """Publish ``values`` one every ``every_s`` seconds through one producer, on a fixed schedule (a late send
    does not push the later ones back: a loaded machine keeps the rate)."""
    producer = aiokafka.AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=0)
    await producer.start()
    try:
        loop = asyncio.get_running_loop()
        start = loop.time()
        for i, value in enumerate(values):
            await asyncio.sleep(max(0.0, start + i * every_s - loop.time()))
            await (await producer.send(topic, orjson.dumps(value)))
    finally:
        await producer.stop()


async def read_topic(
    bootstrap: str, topic: str, count: int, timeout: float = 60.0,
) -> list[aiokafka.ConsumerRecord[bytes, bytes]]:
    """Read ``topic`` from the beginning until ``count`` records arrived (or the timeout). The topic may not
    exist yet (a worker creates its outcome topics when a destination starts): a subscription to a missing
    topic is noticed only at the next metadata refresh, five minutes by default, so this reader refreshes
    every second."""
    consumer = aiokafka.AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest", enable_auto_commit=False,
        metadata_max_age_ms=1000,
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


async def read_to_end(bootstrap: str, topic: str, timeout: float = 60.0) -> list[aiokafka.ConsumerRecord[bytes, bytes]]:
    """Every record of ``topic`` up to its end offsets as read just before (all of it, however many; none when
    the topic does not exist)."""
    partitions = [aiokafka.TopicPartition(topic, p) for _, p in sorted(await partition_states(bootstrap, [topic]))]
    if not partitions:
        return []
    consumer = aiokafka.AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False, auto_offset_reset="earliest",
    )
    await consumer.start()
    out: list[aiokafka.ConsumerRecord[bytes, bytes]] = []
    try:
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions)
        deadline = time.monotonic() + timeout
        todo = {tp for tp in partitions if ends[tp] > 0}
        while todo and time.monotonic() < deadline:
            for tp, records in (await consumer.getmany(*todo, timeout_ms=300)).items():
                out.extend(r for r in records if r.offset < ends[tp])
            todo = {tp for tp in todo if await consumer.position(tp) < ends[tp]}
    finally:
        await stop_client(consumer)  # stopped right after it started, aiokafka's own stop may end half-way
    return out


async def read_json_to_end(bootstrap: str, topic: str) -> list[dict[str, Any]]:
    """Every record of ``topic`` up to its end offsets, as JSON: what was written by now, however many."""
    return [orjson.loads(r.value) for r in await read_to_end(bootstrap, topic)]


async def topic_bytes(bootstrap: str) -> dict[str, bytes]:
    """Every record (key, value, headers) of every topic on the broker, internal ones (committed offsets and
    their metadata, transactions) included, by topic."""
    partitions = await all_partitions(KafkaSettings(bootstrap_servers=bootstrap))
    consumer = aiokafka.AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest",
                                         enable_auto_commit=False)
    await consumer.start()
    found: dict[str, bytes] = {}
    try:
        parts = [aiokafka.TopicPartition(t, p) for t, numbers in partitions.items() for p in numbers]
        consumer.assign(parts)
        ends = await consumer.end_offsets(parts)
        await consumer.seek_to_beginning(*parts)
        remaining = {tp for tp in parts if ends[tp] > 0}
        deadline = time.monotonic() + 60
        while remaining and time.monotonic() < deadline:
            for tp, records in (await consumer.getmany(*remaining, timeout_ms=500)).items():
                for r in records:
                    chunk = (r.key or b"") + (r.value or b"") + b"".join(v for _, v in r.headers or ())
                    found[tp.topic] = found.get(tp.topic, b"") + chunk
            remaining = {tp for tp in remaining if await consumer.position(tp) < ends[tp]}
        assert not remaining, f"could not read {sorted(map(str, remaining))} to their end"
    finally:
        await consumer.stop()
    return found


async def produce_raw(bootstrap: str, topic: str, key: bytes, value: bytes | None) -> None:
    producer = aiokafka.AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(topic, value, key=key)
    finally:
        await producer.stop()
