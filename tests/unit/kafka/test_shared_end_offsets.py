"""Pipelines starting together share one read of the outcome topics' end offsets (worker.kafka.recovery)."""

from __future__ import annotations

import asyncio

from worker.core.config.kafka import KafkaSettings
from worker.core.progress.recovery_marks import OutcomePartition
from worker.kafka.recovery import SharedEndOffsets

PARTITIONS = [("responses", 0), ("dead-letters", 0)]


class Reads:
    def __init__(self) -> None:
        self.count = 0
        self.release = asyncio.Event()

    async def __call__(self, _: KafkaSettings, partitions: list[OutcomePartition]) -> dict[OutcomePartition, int]:
        self.count += 1
        ends = {p: 10 * self.count for p in partitions}
        await self.release.wait()
        return ends


async def test_pipelines_asking_while_a_read_is_under_way_share_it_and_later_ones_read_again() -> None:
    reads = Reads()
    shared = SharedEndOffsets(KafkaSettings(bootstrap_servers="localhost:9092"), reads)
    together = [asyncio.create_task(shared.read(PARTITIONS)) for _ in range(16)]
    other = asyncio.create_task(shared.read(PARTITIONS[:1]))  # other partitions: a read of their own
    await asyncio.sleep(0)
    reads.release.set()
    results = await asyncio.gather(*together)
    assert results == [dict.fromkeys(PARTITIONS, 10)] * 16
    assert await other == {PARTITIONS[0]: 20}
    assert reads.count == 2
    assert await shared.read(PARTITIONS) == dict.fromkeys(PARTITIONS, 30)  # a start after it reads anew


async def test_one_waiter_cancelled_leaves_the_read_to_the_others() -> None:
    reads = Reads()
    shared = SharedEndOffsets(KafkaSettings(bootstrap_servers="localhost:9092"), reads)
    first, second = (asyncio.create_task(shared.read(PARTITIONS)) for _ in range(2))
    await asyncio.sleep(0)
    first.cancel()
    reads.release.set()
    assert await second == dict.fromkeys(PARTITIONS, 10)
    assert first.cancelled()
