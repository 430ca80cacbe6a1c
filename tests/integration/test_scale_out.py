"""Several worker processes in one consumer group: shared partitions, shared Gorgias budget, takeover."""

from __future__ import annotations

import signal
from pathlib import Path

import httpx
import pytest

from tests.support import http
from tests.support.kafka_io import publish, wait_for
from tests.support.ports import free_port
from tests.support.processes import WorkerProcess
from tests.support.scenario import Scenario, outcomes, ticket, wait_committed

pytestmark = pytest.mark.integration


def two_workers(s: Scenario, tmp_path: Path, doc: dict[str, object]) -> list[WorkerProcess]:
    workers = []
    for i in range(2):
        port = free_port()
        doc = {**doc, "worker": {**doc["worker"], "web_port": port}}  # type: ignore[dict-item]
        workers.append(WorkerProcess(s.write(tmp_path / f"w{i}", doc), port))
    return workers


def assigned(worker: WorkerProcess) -> list[str]:
    try:
        status = http.get(f"{worker.url}/destinations/dest", timeout=2).json()
    except httpx.HTTPError:
        return []
    return list(status["assigned_partitions"])


async def test_two_workers_share_partitions_and_the_accounts_budget(scenario: Scenario, tmp_path: Path) -> None:
    s = scenario
    await s.create_topics(partitions=4)
    s.sandbox.admin("PUT", "rate-limit", {"rate_limit": "20/4s"})
    await publish(s.bootstrap, s.source, [ticket(i) for i in range(90)], key=lambda i, _: f"k{i}".encode())
    dest = s.destination(credential={"rate_limit": {"requests": 20, "per_seconds": 4, "headroom": 2}})
    (tmp_path / "w0").mkdir()
    (tmp_path / "w1").mkdir()
    workers = two_workers(s, tmp_path, s.config(dest))
    try:
        for w in workers:
            w.start()
        both = await wait_for(lambda: all(assigned(w) for w in workers), timeout=60)
        assert both, "the second worker never got partitions"
        split = [assigned(w) for w in workers]
        assert sorted(p for ps in split for p in ps) == sorted(f"{s.source}:{i}" for i in range(4))
        await wait_committed(s, 90, timeout=120)
    finally:
        for w in workers:
            w.stop()
    events, letters = await outcomes(s)
    assert not letters
    assert len(events) == 90 and max(events.values()) == 1  # nothing lost, nothing twice
    tickets = s.sandbox.state()["tickets"]
    assert sorted(t["external_id"] for t in tickets) == sorted(f"req-{i}" for i in range(90))
    requests = s.sandbox.counters()["requests"]["POST /api/tickets"]
    assert requests.get("429", 0) <= 4, requests  # the replicas stayed inside the shared budget (<5% refused)


async def test_when_one_worker_stops_the_other_takes_over_its_partitions(scenario: Scenario, tmp_path: Path) -> None:
    s = scenario
    await s.create_topics(partitions=4)
    s.sandbox.admin("PUT", "faults", {"spec": "latency=30-50ms@POST /api/tickets"})
    await publish(s.bootstrap, s.source, [ticket(i) for i in range(400)], key=lambda i, _: f"k{i % 13}".encode())
    (tmp_path / "w0").mkdir()
    (tmp_path / "w1").mkdir()
    workers = two_workers(s, tmp_path, s.config(s.destination(delivery={"max_in_flight": 2})))
    try:
        for w in workers:
            w.start()
        assert await wait_for(lambda: all(assigned(w) for w in workers), timeout=60)
        assert await wait_for(lambda: len(s.sandbox.state()["tickets"]) >= 60, timeout=60)
        workers[0].signal(signal.SIGTERM)
        assert workers[0].wait(timeout=40) == 0
        taken = await wait_for(lambda: len(assigned(workers[1])) == 4, timeout=60)
        assert taken, "the surviving worker did not take over every partition"
        await wait_committed(s, 400, timeout=120)
    finally:
        for w in workers:
            w.stop()
    events, letters = await outcomes(s)
    assert not letters
    assert len(events) == 400 and max(events.values()) == 1
    assert len(s.sandbox.state()["tickets"]) == 400
