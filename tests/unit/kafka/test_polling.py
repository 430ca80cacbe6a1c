"""How a destination's consumer waits for records (worker.kafka.polling), without a broker: an idle wait ends
when records come or when the pipeline is woken (to stop), and a wake loses no record."""

from __future__ import annotations

import asyncio
from typing import Any

from worker.kafka.clients import GROUP_SESSION_TIMEOUT_MS
from worker.kafka.polling import BUSY_POLL_WAIT_S, IDLE_POLL_WAIT_S, consumer_options, poll


class Consumer:
    """getmany() as aiokafka's behaves: records as soon as some are fetched, else nothing after the timeout;
    records not handed out (the call cancelled) stay for the next call."""

    def __init__(self) -> None:
        self.records: list[Any] = []
        self.arrived = asyncio.Event()
        self.calls: list[float] = []

    def add(self, record: Any) -> None:
        self.records.append(record)
        self.arrived.set()

    async def getmany(self, timeout_ms: int, max_records: int) -> dict[str, list[Any]]:
        self.calls.append(timeout_ms / 1000)
        try:
            await asyncio.wait_for(self.arrived.wait(), timeout_ms / 1000)
        except TimeoutError:
            return {}
        taken, self.records = self.records[:max_records], self.records[max_records:]
        if not self.records:
            self.arrived.clear()
        return {"tp": taken}


async def test_an_idle_poll_returns_as_soon_as_records_arrive() -> None:
    consumer, wake = Consumer(), asyncio.Event()
    polling = asyncio.create_task(poll(consumer, IDLE_POLL_WAIT_S, 10, wake))  # type: ignore[arg-type]
    await asyncio.sleep(0.05)
    consumer.add("r1")
    assert await asyncio.wait_for(polling, 1) == {"tp": ["r1"]}


async def test_a_wake_ends_an_idle_poll_and_the_records_wait_for_the_next_one() -> None:
    consumer, wake = Consumer(), asyncio.Event()
    polling = asyncio.create_task(poll(consumer, IDLE_POLL_WAIT_S, 10, wake))  # type: ignore[arg-type]
    await asyncio.sleep(0.05)
    wake.set()
    assert await asyncio.wait_for(polling, 1) == {}
    consumer.add("r1")
    # once woken (stopping), polls are short and still hand out what came
    assert await poll(consumer, IDLE_POLL_WAIT_S, 10, wake) == {"tp": ["r1"]}  # type: ignore[arg-type]
    assert consumer.calls[-1] == IDLE_POLL_WAIT_S


async def test_a_busy_poll_is_a_plain_short_getmany() -> None:
    consumer, wake = Consumer(), asyncio.Event()
    assert await poll(consumer, BUSY_POLL_WAIT_S, 10, wake) == {}  # type: ignore[arg-type]
    assert consumer.calls == [BUSY_POLL_WAIT_S]


def test_an_idle_consumer_long_polls_and_heartbeats_well_inside_its_session() -> None:
    options = consumer_options()
    assert options["heartbeat_interval_ms"] * 3 <= GROUP_SESSION_TIMEOUT_MS
    assert options["fetch_max_wait_ms"] < GROUP_SESSION_TIMEOUT_MS
