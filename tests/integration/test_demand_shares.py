"""Replicas on one account divide its budget by what each has waiting (issue 26 item 1), as real processes.

Every record in one partition of six: the replica holding it gets the budget (by partitions it got a half
or a third). One of three replicas SIGKILLed: its part returns to the others within 15 s. No 429s.
"""

from __future__ import annotations

import signal
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.support import http
from tests.support.kafka_io import publish, read_to_end, wait_for
from tests.support.processes import WorkerProcess
from tests.support.scenario import Scenario, replicas_on_one_budget, ticket, wait_committed

pytestmark = pytest.mark.integration

PARTITIONS = 6
CAPACITY, PER_SECONDS, HEADROOM = 20, 4.0, 2
BUDGET_PER_S = (CAPACITY - HEADROOM) / PER_SECONDS  # 4.5 calls/s for the replicas together


def status(worker: WorkerProcess) -> dict[str, Any] | None:
    try:
        return http.get(f"{worker.url}/destinations/dest", timeout=2).json()  # type: ignore[no-any-return]
    except (httpx.HTTPError, ValueError):
        return None


def owned(worker: WorkerProcess) -> list[int]:
    doc = status(worker)
    return [int(p.rsplit(":", 1)[1]) for p in doc["assigned_partitions"]] if doc else []


def start_replicas(s: Scenario, tmp_path: Path, n: int) -> list[WorkerProcess]:
    workers = replicas_on_one_budget(s, tmp_path, n, CAPACITY, PER_SECONDS, HEADROOM)
    for w in workers:
        w.start()
    return workers


async def settled(workers: list[WorkerProcess]) -> None:
    """Every partition assigned, to every replica some, and every replica's share heard by the others."""
    ok = await wait_for(lambda: sorted(p for w in workers for p in owned(w)) == list(range(PARTITIONS))
                        and all(owned(w) for w in workers), timeout=90)
    assert ok, [owned(w) for w in workers]
    even = 1 / len(workers)  # nobody has anything waiting yet: an even split
    shares = await wait_for(lambda: all(abs((status(w) or {}).get("budget_share", 0) - even) < 0.01
                                        for w in workers), timeout=30)
    assert shares, [(status(w) or {}).get("budget_share") for w in workers]


async def delivered_times(s: Scenario) -> list[float]:
    return sorted(datetime.fromisoformat(orjson.loads(m.value)["finished_at"]).timestamp()
                  for m in await read_to_end(s.bootstrap, s.responses))


@pytest.mark.parametrize("replicas", [2, 3])
async def test_every_record_in_one_partition_gets_the_whole_budget(
    scenario: Scenario, tmp_path: Path, replicas: int
) -> None:
    s = scenario
    await s.create_topics(partitions=PARTITIONS)
    workers = start_replicas(s, tmp_path, replicas)
    total = 150
    try:
        await settled(workers)
        await publish(s.bootstrap, s.source, [ticket(i) for i in range(total)],
                      key=lambda i, _: f"k{i}".encode(), partition=0)
        await wait_committed(s, total, timeout=180)
    finally:
        for w in workers:
            w.stop()
    counts = s.sandbox.counters()["requests"]
    assert counts["POST /api/tickets"] == {"201": total}, counts  # no 429
    finished = await delivered_times(s)
    # after the first seconds (the idle bucket's burst, the shares moving to the busy replica), 20 s of
    # backlog: the busy replica used nearly the whole budget (by partitions: 1/2 or 1/3 of it)
    start = finished[0] + 8
    used = len([t for t in finished if start <= t < start + 20]) / (20 * BUDGET_PER_S)
    assert used >= 0.8, f"{used:.0%} of the budget used"


async def test_a_sigkilled_replicas_share_returns_to_the_others(scenario: Scenario, tmp_path: Path) -> None:
    s = scenario
    await s.create_topics(partitions=PARTITIONS)
    workers = start_replicas(s, tmp_path, 3)
    per_partition = 60
    total = per_partition * PARTITIONS
    try:
        await settled(workers)
        for p in range(PARTITIONS):
            await publish(s.bootstrap, s.source, [ticket(p * per_partition + i) for i in range(per_partition)],
                          key=lambda i, _: f"k{i}".encode(), partition=p)
        await wait_for(lambda: s.sandbox.counters()["requests"].get("POST /api/tickets", {}).get("201", 0) >= 40,
                       timeout=60)
        workers[2].signal(signal.SIGKILL)
        killed = time.time()
        workers[2].wait(timeout=10)
        await wait_committed(s, total, timeout=240)  # nothing lost: its partitions went to the others
    finally:
        for w in workers:
            w.stop()
    counts = s.sandbox.counters()["requests"]["POST /api/tickets"]
    assert set(counts) == {"201"}, counts  # no 429
    finished = await delivered_times(s)
    # 15 s after the SIGKILL the survivors have its share (by partitions, they kept 2/3 of the budget until
    # the group rebalanced): 20 s from there, their own backlogs still waiting
    window = [t for t in finished if killed + 15 <= t < killed + 35]
    used = len(window) / (20 * BUDGET_PER_S)
    assert used >= 0.8, f"{used:.0%} of the budget used 15 s after the SIGKILL"
