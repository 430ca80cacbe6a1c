"""Crash recovery's Kafka reads: the outcome and intent topics from a checkpoint to their end.

What the checkpoint, watermarks and intent marks are, and why they are sound:
:mod:`worker.core.progress.recovery_marks`.
"""

from __future__ import annotations

from aiokafka import TopicPartition

from worker.core.config.kafka import KafkaSettings
from worker.core.progress.offsets import TopicPartitionKey
from worker.core.progress.recovery_marks import OutcomePartition, RecoveryScan
from worker.kafka.clients import make_consumer, read_ranges, stop_client


async def end_offsets(settings: KafkaSettings, partitions: list[OutcomePartition]) -> dict[OutcomePartition, int]:
    """The outcome partitions' end offsets now (where the watermarks start)."""
    if not partitions:
        return {}
    consumer = make_consumer(settings, None, isolation_level="read_uncommitted")
    await consumer.start()
    try:
        tps = [TopicPartition(t, p) for t, p in partitions]
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
        return {(tp.topic, tp.partition): off for tp, off in ends.items()}
    finally:
        await stop_client(consumer)


async def scan_outcomes(
    settings: KafkaSettings,
    destination: str,
    scan_from: dict[OutcomePartition, int],
    positions: dict[TopicPartitionKey, int],
) -> RecoveryScan:
    """Source records at or past ``positions`` with an outcome, those with an intent mark, and the jobs named."""
    if not scan_from or not positions:
        return RecoveryScan(set(), set(), {})
    consumer = make_consumer(settings, None, isolation_level="read_uncommitted", enable_auto_commit=False)
    await consumer.start()
    scan = RecoveryScan(set(), set(), {})
    try:
        tps = [TopicPartition(t, p) for (t, p) in scan_from]
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
        ranges = {tp: (scan_from[(tp.topic, tp.partition)], ends[tp]) for tp in tps}
        async for msg in read_ranges(consumer, ranges):
            scan.add(msg.value, settings.scope, destination, positions)
    finally:
        await stop_client(consumer)
    return scan


