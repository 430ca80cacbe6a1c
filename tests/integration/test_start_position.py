"""Where a destination starts reading: `start_from` for a group without committed offsets, and a
pinned `group_id` that keeps the committed offsets across a rename."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from aiokafka import TopicPartition

from tests.support.kafka_io import committed, publish, wait_for
from tests.support.scenario import Scenario, ticket, wait_committed
from worker.core.config.worker_config import parse_config
from worker.service.runtime import Runtime

pytestmark = pytest.mark.integration


def sent(s: Scenario) -> list[str]:
    return sorted(t["external_id"] for t in s.sandbox.state()["tickets"])


async def until_positioned(runtime: Runtime, s: Scenario) -> None:
    """Until the destination's consumer owns the partition and knows where it reads from."""
    pipeline = runtime.pipelines["dest"]
    assert await wait_for(lambda: pipeline.status()["assigned_partitions"], timeout=60)
    consumer = pipeline._consumer
    assert consumer is not None
    await asyncio.wait_for(consumer.position(TopicPartition(s.source, 0)), 30)


async def test_latest_skips_what_was_published_before_the_first_start(scenario: Scenario, run_worker: Any) -> None:
    s = scenario
    await s.create_topics()
    await publish(s.bootstrap, s.source, [ticket(i) for i in range(3)])
    runtime = await run_worker(s.config(s.destination(start_from="latest")))
    assert runtime.status()["destinations"][0]["start_from"] == "latest"
    await until_positioned(runtime, s)
    await publish(s.bootstrap, s.source, [ticket(i) for i in range(3, 5)])
    assert await wait_for(lambda: len(sent(s)) >= 2, timeout=60)
    await wait_committed(s, 5)  # every record decided: sent, or skipped by the start position
    assert sent(s) == ["req-3", "req-4"]


async def test_a_timestamp_starts_at_the_first_record_at_or_after_it(scenario: Scenario, run_worker: Any) -> None:
    s = scenario
    await s.create_topics()
    await publish(s.bootstrap, s.source, [ticket(i) for i in range(3)])
    await asyncio.sleep(1.5)
    cut = datetime.fromtimestamp(time.time(), UTC).isoformat().replace("+00:00", "Z")
    await asyncio.sleep(0.5)
    await publish(s.bootstrap, s.source, [ticket(i) for i in range(3, 6)])
    await run_worker(s.config(s.destination(start_from=cut)))
    assert await wait_for(lambda: len(sent(s)) >= 3, timeout=60)
    await wait_committed(s, 6)  # every record decided: sent, or skipped by the start position
    assert sent(s) == ["req-3", "req-4", "req-5"]


async def test_a_pinned_group_survives_a_rename_and_start_from_is_ignored_once_committed(
    scenario: Scenario,
) -> None:
    s = scenario
    await s.create_topics()
    pinned = f"{s.group}.pinned"
    await publish(s.bootstrap, s.source, [ticket(i) for i in range(3)])
    first = Runtime(parse_config(s.config(s.destination("old-name", group_id=pinned))))
    await first.start()
    try:
        assert first.status()["destinations"][0]["group_id"] == pinned
        assert await wait_for(lambda: len(sent(s)) >= 3, timeout=60)

        async def all_committed() -> bool:
            return sum((await committed(s.bootstrap, pinned, s.source)).values()) >= 3

        assert await wait_for(all_committed, timeout=30)
    finally:
        await first.stop()
    await publish(s.bootstrap, s.source, [ticket(i) for i in range(3, 5)])
    # renamed, and told to start from the beginning: the pinned group's offsets win
    second = Runtime(parse_config(s.config(s.destination("new-name", group_id=pinned, start_from="earliest"))))
    await second.start()
    try:
        assert await wait_for(lambda: len(sent(s)) >= 5, timeout=60)

        async def every_record_decided() -> bool:
            return sum((await committed(s.bootstrap, pinned, s.source)).values()) >= 5

        assert await wait_for(every_record_decided, timeout=30)
    finally:
        await second.stop()
    assert sent(s) == [f"req-{i}" for i in range(5)]  # each exactly once
