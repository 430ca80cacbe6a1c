"""The real broker: records go in and come out with aiokafka, offsets commit."""

from __future__ import annotations

import aiokafka
import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from tests.support.kafka_io import wait_for

pytestmark = pytest.mark.integration


async def test_produce_and_consume_through_the_real_broker(kafka_bootstrap: str, unique_topic: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(unique_topic, num_partitions=3, replication_factor=1)])
    finally:
        await admin.close()

    producer = aiokafka.AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        for i in range(30):
            await producer.send(unique_topic, f'{{"n": {i}}}'.encode(), key=f"k{i % 5}".encode())
        await producer.flush()
    finally:
        await producer.stop()

    consumer = aiokafka.AIOKafkaConsumer(
        unique_topic, bootstrap_servers=kafka_bootstrap, group_id=f"g-{unique_topic}",
        auto_offset_reset="earliest", enable_auto_commit=False,
    )
    await consumer.start()
    try:
        got: list[aiokafka.ConsumerRecord[bytes, bytes]] = []
        while len(got) < 30:
            batch = await consumer.getmany(timeout_ms=5000)
            assert batch, "no records arrived within 5 s"
            for records in batch.values():
                got.extend(records)
        await consumer.commit()
        partitions = {r.partition for r in got}
        committed = {p: await consumer.committed(aiokafka.TopicPartition(unique_topic, p)) for p in partitions}
    finally:
        await consumer.stop()

    assert sorted(int(r.value.decode().split(": ")[1].rstrip("}")) for r in got) == list(range(30))
    # Records with one key land on one partition, in order.
    by_key: dict[bytes, list[int]] = {}
    for r in got:
        by_key.setdefault(r.key, []).append(r.offset)
        assert len({x.partition for x in got if x.key == r.key}) == 1
    assert all(offsets == sorted(offsets) for offsets in by_key.values())
    assert sum(committed.values()) == 30


async def test_the_health_probe_answers_and_creates_no_topic(kafka_bootstrap: str, unique_topic: str) -> None:
    from worker.core.config.kafka import KafkaSettings
    from worker.kafka.clients import make_producer, probe_brokers, stop_client

    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(unique_topic, num_partitions=1, replication_factor=1)])
        producer = make_producer(KafkaSettings(bootstrap_servers=kafka_bootstrap))
        await producer.start()
        try:
            await probe_brokers(producer, [unique_topic])  # answers: the broker is there
            # naming a topic that does not exist creates nothing (the probe asks, it never writes)
            await probe_brokers(producer, [f"{unique_topic}-absent"])
        finally:
            await stop_client(producer)
        # the test broker creates topics on request (auto.create.topics.enable): a metadata request that
        # allowed it would have the topic appear within moments
        absent = f"{unique_topic}-absent"
        assert not await wait_for(lambda: absent_appeared(admin, absent), timeout=3), "the probe created a topic"
    finally:
        await admin.close()


async def absent_appeared(admin: AIOKafkaAdminClient, topic: str) -> bool:
    return topic in await admin.list_topics()
