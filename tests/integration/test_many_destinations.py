"""Many destinations on one worker, each with its own topic and consumer group: one added at runtime and
removed again costs the others nothing, neither a rebalance of their groups nor a pause of their delivery."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from tests.support.kafka_io import create_topics, publish, read_json, wait_for
from tests.support.scenario import Scenario
from worker.host import metrics
from worker.service.control_api import create_control_app
from worker.service.runtime import Runtime

pytestmark = pytest.mark.integration

DESTINATIONS = 30
WATCHED = ("d0", "d14", "d29")  # a steady trickle of records goes to these all through the change
# The goal is no pause above 1 s (bench/destinations_bench.py measures it); a test on a busy machine allows more.
GENEROUS_LATENCY_S = 5.0


def ticket(subject: str) -> dict[str, Any]:
    return {"subject": subject, "channel": "api", "via": "api", "from_agent": False,
            "customer": {"email": "c@example.com"},
            "messages": [{"channel": "api", "via": "api", "from_agent": False, "sender": {"email": "c@example.com"},
                          "body_text": subject}]}


def rebalances(name: str) -> float:
    return metrics.REGISTRY.get_sample_value("gorgias_worker_rebalances_total", {"destination": name}) or 0.0


def assigned(runtime: Runtime, name: str) -> bool:
    pipeline = runtime.pipelines.get(name)
    return pipeline is not None and bool(pipeline.status()["assigned_partitions"])


class Trickle:
    """One record every 0.1 s to one of the watched destinations' topics, in turn, until stopped."""

    def __init__(self, s: Scenario) -> None:
        self.s = s
        self.sent = 0
        self.running = True

    async def run(self) -> None:
        while self.running:
            name = WATCHED[self.sent % len(WATCHED)]
            await publish(self.s.bootstrap, f"{self.s.source}-{name}", [ticket(f"{name}-{self.sent}")])
            self.sent += 1
            await asyncio.sleep(0.1)


async def test_adding_and_removing_a_destination_leaves_the_others_groups_and_delivery_alone(
    scenario: Scenario, run_worker: Any,
) -> None:
    s = scenario
    names = [f"d{i}" for i in range(DESTINATIONS)]
    await create_topics(s.bootstrap, [f"{s.source}-{n}" for n in [*names, "added"]])
    doc = s.config(*(s.destination(n, source_topics=[f"{s.source}-{n}"]) for n in names))
    doc["credentials"] = {"acme": s.destination()["credential"]}
    runtime: Runtime = await run_worker(doc)
    assert await wait_for(lambda: all(assigned(runtime, n) for n in names), timeout=90)
    before = {n: rebalances(n) for n in names}

    trickle = Trickle(s)
    trickling = asyncio.create_task(trickle.run())
    async with TestClient(TestServer(create_control_app(runtime))) as client:
        await asyncio.sleep(1)
        added = s.destination("added", source_topics=[f"{s.source}-added"])
        added["credential"] = "acme"
        change_started = time.time()
        created = await client.post("/destinations", json=added)
        assert created.status == 201, await created.text()
        assert (await client.post("/destinations/added/activate")).status == 200
        assert await wait_for(lambda: assigned(runtime, "added"), timeout=60)
        await publish(s.bootstrap, f"{s.source}-added", [ticket("added-0")])
        deleted = await client.delete("/destinations/added")
        assert deleted.status == 200, await deleted.text()
        assert await wait_for(lambda: "added" not in runtime.pipelines, timeout=60)
        change_ended = time.time()
        await asyncio.sleep(1)
    trickle.running = False
    await trickling

    events = await read_json(s.bootstrap, s.responses, trickle.sent + 1, timeout=60)
    assert [e["destination"] for e in events].count("added") == 1  # the added one delivered before it went
    during = [e for e in events if e["destination"] in WATCHED
              and change_started <= e["records"][0]["timestamp_ms"] / 1000 <= change_ended]
    assert {e["destination"] for e in during} == set(WATCHED)  # delivery went on all through the change
    slowest = max(datetime.fromisoformat(e["finished_at"]).timestamp() - e["records"][0]["timestamp_ms"] / 1000
                  for e in during)
    assert slowest < GENEROUS_LATENCY_S, f"a record published during the change took {slowest:.1f} s"
    assert all(e["outcome"] == "delivered" for e in events)
    # no group but the added one's was rebalanced: each destination still holds its first assignment
    assert {n: rebalances(n) for n in names} == before
