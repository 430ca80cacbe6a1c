"""The producer's partitioner picks exactly the partition aiokafka's default (and Java's) picks."""

from __future__ import annotations

from aiokafka.partitioner import DefaultPartitioner

from worker.core.config.kafka import KafkaSettings
from worker.kafka.clients import make_producer
from worker.kafka.partitioner import KeyHashPartitioner

KEYS = [b"", b"a", b"ticket-42", "ключ".encode(), bytes(range(256)), b"x" * 5000]


def test_a_key_lands_where_the_default_partitioner_puts_it_first_time_and_cached() -> None:
    ours = KeyHashPartitioner()
    for count in (1, 3, 4, 12):
        partitions = list(range(count))
        for key in KEYS * 2:  # the second round comes from the cache
            assert ours(key, partitions, partitions[:1]) == DefaultPartitioner()(key, partitions, partitions[:1])


def test_past_its_bound_keys_are_hashed_each_time_with_the_same_result() -> None:
    ours = KeyHashPartitioner(max_keys=2)
    partitions = list(range(7))
    expected = [DefaultPartitioner()(k, partitions, partitions) for k in KEYS]
    assert [ours(k, partitions, partitions) for k in KEYS] == expected
    assert [ours(k, partitions, partitions) for k in KEYS] == expected


def test_no_key_goes_to_an_available_partition_else_any() -> None:
    ours = KeyHashPartitioner()
    assert {ours(None, [0, 1, 2, 3], [2]) for _ in range(50)} == {2}
    assert {ours(None, [0, 1], []) for _ in range(200)} == {0, 1}


async def test_the_worker_producer_uses_it() -> None:
    producer = make_producer(KafkaSettings(bootstrap_servers="127.0.0.1:9"))
    assert isinstance(producer._partitioner, KeyHashPartitioner)
