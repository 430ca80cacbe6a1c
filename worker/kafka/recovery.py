"""Crash recovery's Kafka reads: the outcome and intent topics from a checkpoint to their end.

What the checkpoint, watermarks and intent marks are, and why they are sound:
:mod:`worker.core.progress.recovery_marks`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

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


EndsReader = Callable[[KafkaSettings, list[OutcomePartition]], Awaitable[dict[OutcomePartition, int]]]


class SharedEndOffsets:
    """:func:`end_offsets` for pipelines starting together: one read serves every pipeline that asks for the same
    partitions while it is under way (a thousand destinations start with a few dozen reads, not a thousand
    clients). A read begun before a pipeline asked is as sound a first checkpoint: its watermarks start no
    later than the records that pipeline will produce, at worst a recovery scans a little more."""

    def __init__(self, settings: KafkaSettings, read: EndsReader | None = None) -> None:
        self.settings = settings
        self._read = read if read is not None else end_offsets
        self._reading: dict[frozenset[OutcomePartition], asyncio.Future[dict[OutcomePartition, int]]] = {}

    async def read(self, partitions: list[OutcomePartition]) -> dict[OutcomePartition, int]:
        key = frozenset(partitions)
        reading = self._reading.get(key)
        if reading is None:
            reading = asyncio.ensure_future(self._read(self.settings, partitions))
            self._reading[key] = reading
            reading.add_done_callback(lambda _: self._reading.pop(key, None))
        return dict(await asyncio.shield(reading))


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


