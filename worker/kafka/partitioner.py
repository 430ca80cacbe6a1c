"""The producer's partitioner: Kafka's default key hashing, with each key's hash computed once.

aiokafka's ``DefaultPartitioner`` hashes every record's key with a pure-Python murmur2 (about 1 % of a
call's CPU). Outcome records are keyed by their source record's key, and a topic's keys repeat, so the
hash of each key is kept (up to a bound): a key lands on exactly the partition the default picks, the
partition Java clients pick too.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from aiokafka.partitioner import murmur2

MAX_KEYS = 100_000
"""Keys whose hash is kept; past this many, further keys are hashed on every record (no eviction churn)."""


class KeyHashPartitioner:
    """A drop-in ``partitioner`` for ``AIOKafkaProducer``: same choice as aiokafka's default."""

    def __init__(self, max_keys: int = MAX_KEYS) -> None:
        self._hashes: dict[bytes, int] = {}
        self._max_keys = max_keys

    def __call__(self, key: bytes | None, all_partitions: Sequence[int], available: Sequence[int]) -> int:
        if key is None:  # no key: any partition, preferably one with a leader
            return random.choice(available or all_partitions)
        found = self._hashes.get(key)
        if found is None:
            found = murmur2(key) & 0x7FFFFFFF
            if len(self._hashes) < self._max_keys:
                self._hashes[key] = found
        return all_partitions[found % len(all_partitions)]
