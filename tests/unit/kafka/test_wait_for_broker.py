"""Waiting for Kafka at start: bounded, each failure logged with its cause, then one clear line."""

from __future__ import annotations

import logging

import pytest
from aiokafka.errors import KafkaConnectionError

from worker.kafka.clients import BrokerUnavailable, wait_for_broker


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds


async def test_kafka_answering_within_the_wait_is_used(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    calls = 0

    async def attempt() -> str:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise KafkaConnectionError("Unable to bootstrap from [('kafka', 9092)]")
        return "up"

    with caplog.at_level(logging.WARNING, logger="worker.kafka.clients"):
        assert await wait_for_broker("starting", attempt, 60, clock=clock, sleep=clock.sleep) == "up"
    assert clock.now == 3.0  # waited 1 s, then 2 s
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2 and all("Unable to bootstrap" in m and "retrying in" in m for m in messages)


async def test_kafka_silent_for_the_whole_wait_gives_one_clear_error() -> None:
    clock = Clock()

    async def attempt() -> None:
        raise OSError("Connect call failed")

    with pytest.raises(BrokerUnavailable) as info:
        await wait_for_broker("starting", attempt, 20, clock=clock, sleep=clock.sleep)
    assert clock.now == 20  # never waits past the limit
    text = str(info.value)
    assert "\n" not in text and "Connect call failed" in text and "worker.broker_wait_s" in text
