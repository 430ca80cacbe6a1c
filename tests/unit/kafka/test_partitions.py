"""A destination's partitions as they move away (worker.kafka.partitions), without a broker: a revocation
drops the calls not on the wire, waits for those on it, and forgets what it owned."""

from __future__ import annotations

import asyncio

from aiokafka import TopicPartition

from worker.core.config.worker_config import WorkerConfig, parse_config
from worker.core.progress.offsets import TopicPartitionKey
from worker.core.records.record import SourceRef
from worker.kafka.partitions import Partitions

TOPIC = "nexset.support"


def config(grace_s: float = 5.0) -> WorkerConfig:
    return parse_config({
        "kafka": {"bootstrap_servers": "localhost:9092"},
        "worker": {"shutdown_grace_s": grace_s},
        "destinations": [{
            "name": "support", "source_topics": [TOPIC],
            "credential": {"domain": "acme", "username": "a@acme.com", "api_key_env": "GORGIAS_API_KEY"},
            "endpoint": {"method": "POST", "url": "https://{domain}.gorgias.com/api/tickets"},
        }],
    })


def partitions(grace_s: float = 5.0, clock: list[float] | None = None) -> Partitions:
    cfg = config(grace_s)
    now = clock if clock is not None else [0.0]
    return Partitions(cfg, cfg.destinations[0], lambda: now[0], [], None)


def consume(p: Partitions, partition: int, *offsets: int) -> list[SourceRef]:
    out = []
    for offset in offsets:
        assert p.consume(TopicPartitionKey(TOPIC, partition), offset)
        out.append(SourceRef(TOPIC, partition, offset))
    return out


async def test_a_revocation_drops_the_waiting_calls_and_waits_for_those_on_the_wire() -> None:
    p = partitions()
    on_wire = p.claim(consume(p, 0, 10))
    other = p.claim(consume(p, 1, 20))
    dropped: list[set[TopicPartitionKey]] = []
    revoking = asyncio.create_task(p.revoke(None, {TopicPartition(TOPIC, 0)}, dropped.append))
    await asyncio.sleep(0.1)
    assert dropped == [{TopicPartitionKey(TOPIC, 0)}]
    assert not revoking.done()  # partition 0's call is still on the wire
    assert not on_wire()  # and no longer ours: its outcome is the new owner's to record
    assert other()
    on_wire.release()
    await asyncio.wait_for(revoking, 1)
    assert p.pending_records == 1  # partition 0 is forgotten; partition 1's record still waits
    assert p.tracker.partitions() == [TopicPartitionKey(TOPIC, 1)]


async def test_a_revocation_gives_up_on_a_stuck_call_after_the_shutdown_grace() -> None:
    now = [0.0]
    p = partitions(grace_s=2.0, clock=now)
    p.claim(consume(p, 0, 1))  # never released
    revoking = asyncio.create_task(p.revoke(None, {TopicPartition(TOPIC, 0)}, lambda keys: None))
    await asyncio.sleep(0.05)
    assert not revoking.done()
    now[0] = 2.5
    await asyncio.wait_for(revoking, 1)
    assert p.pending_records == 0


def test_records_are_counted_until_they_finish() -> None:
    p = partitions()
    consume(p, 0, 5, 6)
    assert p.pending_records == 2
    p.tracker.finished(TopicPartitionKey(TOPIC, 0), 6)
    assert p.pending_records == 1
    assert p.consume(TopicPartitionKey(TOPIC, 0), 7) == (False, None)  # no crash recovered: nothing flagged


def test_partitions_are_idle_once_every_record_is_finished_and_committed() -> None:
    p = partitions()
    assert p.idle  # nothing consumed yet
    sources = consume(p, 0, 10, 11)
    assert not p.idle  # records without their outcome
    p.finished(sources)
    assert not p.idle  # finished, not committed yet: the loop still has a commit to make
    p.tracker.mark_committed(p.tracker.committable())
    assert p.idle
