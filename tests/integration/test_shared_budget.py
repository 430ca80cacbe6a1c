"""Five worker processes on one rate-limited account: no 429s, the budget used, the headroom left free."""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path

import httpx
import orjson
import pytest

from tests.support import http
from tests.support.kafka_io import publish, read_to_end, wait_for
from tests.support.processes import API_KEY, WorkerProcess
from tests.support.scenario import Scenario, replicas_on_one_budget, ticket, wait_committed

pytestmark = pytest.mark.integration

REPLICAS = 5
PARTITIONS = 10
PER_PARTITION = 16
CAPACITY, PER_SECONDS, HEADROOM = 20, 4.0, 2


def assigned(worker: WorkerProcess) -> int:
    try:
        return len(http.get(f"{worker.url}/destinations/dest", timeout=2).json()["assigned_partitions"])
    except httpx.HTTPError:
        return -1


async def foreign_client(s: Scenario, stop: asyncio.Event, statuses: list[int]) -> None:
    """Another integration on the account: one call every 2 s, inside the headroom (2 per 4 s)."""
    async with http.async_client(base_url=s.sandbox.url, auth=("agent@acme.com", API_KEY),
                                 headers={"Host": "acme.gorgias.com"}, timeout=10) as client:
        while not stop.is_set():
            r = await client.get("/api/customers", params={"limit": 1})
            statuses.append(r.status_code)
            try:
                await asyncio.wait_for(stop.wait(), timeout=2.0)
            except TimeoutError:
                pass


async def test_five_replicas_share_one_budget_without_429s(scenario: Scenario, tmp_path: Path) -> None:
    s = scenario
    await s.create_topics(partitions=PARTITIONS)
    workers = replicas_on_one_budget(s, tmp_path, REPLICAS, CAPACITY, PER_SECONDS, HEADROOM)
    stop = asyncio.Event()
    foreign: list[int] = []
    total = PARTITIONS * PER_PARTITION
    try:
        for w in workers:
            w.start()
        settled = await wait_for(lambda: [assigned(w) for w in workers] == [2] * REPLICAS, timeout=90)
        assert settled, [assigned(w) for w in workers]
        def shares() -> list[float]:
            return [http.get(f"{w.url}/destinations/dest", timeout=10).json()["budget_share"] for w in workers]

        # nothing waiting anywhere yet: the replicas, having heard each other's demand, split it evenly
        assert await wait_for(lambda: shares() == [pytest.approx(0.2)] * REPLICAS, timeout=30), shares()
        side = asyncio.create_task(foreign_client(s, stop, foreign))
        for p in range(PARTITIONS):
            await publish(s.bootstrap, s.source, [ticket(p * PER_PARTITION + i) for i in range(PER_PARTITION)],
                          key=lambda i, _: f"k{i}".encode(), partition=p)
        await wait_committed(s, total, timeout=120)
        stop.set()
        await side
    finally:
        stop.set()
        for w in workers:
            w.stop()
    counts = s.sandbox.counters()["requests"]
    assert counts["POST /api/tickets"] == {"201": total}, counts  # no 429 for the replicas
    assert foreign and set(foreign) == {200}, foreign  # the other integration was never refused
    finished = sorted(
        datetime.fromisoformat(orjson.loads(m.value)["finished_at"]).timestamp()
        for m in await read_to_end(s.bootstrap, s.responses)
    )
    assert len(finished) == total
    # Budget used, while every partition still has records: the replicas' part of the account is
    # (capacity - headroom) per per_seconds = 4.5 calls/s; skip the first seconds (the idle buckets' burst).
    start = finished[0] + 3
    window = [t for t in finished if start <= t < start + 20]
    used = len(window) / (20 * (CAPACITY - HEADROOM) / PER_SECONDS)
    assert used >= 0.95, f"{used:.0%} of the budget used"
