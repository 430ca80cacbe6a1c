"""A sample of a topic's records for ``preview``: its last records, read without a consumer group."""

from __future__ import annotations

import asyncio

from aiokafka import TopicPartition

from worker.core.chain.preview import SampleMessage
from worker.core.config.kafka import KafkaSettings
from worker.core.records.record import SourceRef
from worker.kafka.clients import existing_partitions, make_consumer, read_ranges


async def read_sample(
    kafka: KafkaSettings, topic: str, limit: int = 10, timeout_s: float = 10.0
) -> list[SampleMessage]:
    """The last ``limit`` records of ``topic`` (oldest first), read without a consumer group: nothing committed."""
    partitions = (await existing_partitions(kafka, [topic])).get(topic)
    if not partitions:
        raise LookupError(f"topic {topic} does not exist or has no partitions")
    consumer = make_consumer(kafka, None)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in partitions]
        consumer.assign(tps)
        starts = await consumer.beginning_offsets(tps)
        ends = await consumer.end_offsets(tps)
        found: list[SampleMessage] = []
        stamps: list[tuple[int, int, int]] = []
        loop = asyncio.get_running_loop()
        tails = {tp: (max(starts[tp], ends[tp] - limit), ends[tp]) for tp in tps}
        async for msg in read_ranges(consumer, tails, loop.time() + timeout_s, loop.time):
            found.append(SampleMessage(
                msg.value, SourceRef(msg.topic, msg.partition, msg.offset, msg.key, msg.timestamp),
                tuple(msg.headers or ()),
            ))
            stamps.append((msg.timestamp or 0, msg.partition, msg.offset))
        order = sorted(range(len(found)), key=lambda i: stamps[i])
        return [found[i] for i in order][-limit:]
    finally:
        await consumer.stop()
