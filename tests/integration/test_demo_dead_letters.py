"""`make demo` lists every dead letter on the topic, not only those of its first fetch."""

from __future__ import annotations

import aiokafka
import orjson
import pytest

from worker.core.config.kafka import KafkaSettings
from worker.tools import demo

pytestmark = pytest.mark.integration


async def test_the_demo_prints_every_dead_letter(
    kafka_bootstrap: str, unique_topic: str, capsys: pytest.CaptureFixture[str]
) -> None:
    producer = aiokafka.AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    try:
        for offset in range(5):  # one send at a time: the records land in separate batches
            doc = {"destination": "d", "stage": "deliver", "reason": f"reason {offset}",
                   "records": [{"source": {"topic": "src", "partition": 0, "offset": offset}}]}
            await producer.send_and_wait(unique_topic, orjson.dumps(doc))
    finally:
        await producer.stop()

    await demo._print_dead_letters(KafkaSettings(bootstrap_servers=kafka_bootstrap), unique_topic)
    lines = capsys.readouterr().out.splitlines()
    assert lines == [f"  d [deliver] src:0@{n}: reason {n}" for n in range(5)]


async def test_an_absent_dead_letter_topic_reads_none(
    kafka_bootstrap: str, unique_topic: str, capsys: pytest.CaptureFixture[str]
) -> None:
    await demo._print_dead_letters(KafkaSettings(bootstrap_servers=kafka_bootstrap), unique_topic)
    assert capsys.readouterr().out.splitlines() == ["  (none)"]
