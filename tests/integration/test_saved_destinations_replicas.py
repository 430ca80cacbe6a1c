"""Three worker processes follow one destinations store (real broker, sandbox process): a destination
created through one replica's API starts paused on all three, is activated, delivers on every replica's
partitions, is replaced through another replica and deleted through the third; two creates of one name
at once on two replicas have one winner; after a restart of every replica each destination comes back in
its state. The times from an API's answer to the first call and to the last replica applying it are
printed (see docs/benchmarks.md); the test itself waits on conditions only."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import http
from tests.support.kafka_io import create_topics, publish, wait_for
from tests.support.ports import free_port
from tests.support.processes import WorkerProcess
from tests.support.scenario import Scenario, ready_status, ticket

pytestmark = pytest.mark.integration

REPLICAS = 3
DEADLINE_S = 60.0


def status(worker: WorkerProcess, name: str) -> dict[str, Any] | None:
    try:
        answer = http.get(f"{worker.url}/destinations/{name}", timeout=2)
    except httpx.HTTPError:
        return None
    return dict(answer.json()) if answer.status_code == 200 else None


async def elapsed_until(predicate: Callable[[], Any], since: float) -> float:
    """Seconds from ``since`` until ``predicate`` holds (polled every 50 ms; fails after the deadline)."""
    assert await wait_for(predicate, DEADLINE_S, interval=0.05), "not reached within the deadline"
    return time.monotonic() - since


@pytest.fixture
def replicas(scenario: Scenario, tmp_path: Path) -> Iterator[list[WorkerProcess]]:
    s = scenario
    workers = []
    for i in range(REPLICAS):
        doc = s.config()
        doc["destinations"] = []
        doc["credentials"] = {"acme": s.destination()["credential"]}
        port = free_port()
        doc["worker"]["web_port"] = port
        (tmp_path / f"w{i}").mkdir()
        workers.append(WorkerProcess(s.write(tmp_path / f"w{i}", doc), port))
    try:
        yield workers
    finally:
        for w in workers:
            w.stop()


def settled(workers: list[WorkerProcess], name: str) -> bool:
    """Every replica owns one distinct partition of the destination's topic."""
    owned = [(st or {}).get("assigned_partitions") or [] for st in (status(w, name) for w in workers)]
    return all(len(o) == 1 for o in owned) and len({p for o in owned for p in o}) == len(workers)


def body(s: Scenario, name: str, **overrides: Any) -> dict[str, Any]:
    return {**s.destination(name, **overrides), "credential": "acme"}


async def test_three_replicas_create_activate_deliver_replace_restart_and_delete(
    scenario: Scenario, replicas: list[WorkerProcess],
) -> None:
    s = scenario
    await s.create_topics(partitions=REPLICAS)
    for w in replicas:
        w.start(wait_ready=False)
    for w in replicas:
        assert await wait_for(lambda w=w: ready_status(w) == 200, DEADLINE_S), w.output()[-3000:]  # type: ignore[misc]
    api = [httpx.AsyncClient(base_url=w.url, timeout=30) for w in replicas]
    figures: dict[str, float] = {}
    try:
        created = await api[0].post("/destinations", json=body(s, "tickets"))
        answered = time.monotonic()
        assert created.status_code == 201, created.text
        assert created.json()["state"] == "paused"
        figures["create: last replica running it (paused)"] = await elapsed_until(
            lambda: all((st := status(w, "tickets")) and st["state"] == "paused" for w in replicas), answered)

        # the group settles while paused (one partition each): a replica still joining when the records are
        # released would find its partition's records already delivered by the others
        assert await wait_for(lambda: settled(replicas, "tickets"), DEADLINE_S), \
            [status(w, "tickets") for w in replicas]

        await publish(s.bootstrap, s.source, [ticket(i) for i in range(30)], key=lambda i, _: f"k{i}".encode())
        await asyncio.sleep(1)
        assert s.sandbox.counters()["requests"].get("POST /api/tickets") is None  # paused: nothing sent

        activated = await api[1].post("/destinations/tickets/activate")
        answered = time.monotonic()
        assert activated.status_code == 200
        figures["activate: first call"] = await elapsed_until(
            lambda: s.sandbox.counters()["requests"].get("POST /api/tickets"), answered)
        figures["activate: last replica active"] = await elapsed_until(
            lambda: all((st := status(w, "tickets")) and st["state"] == "active" for w in replicas), answered)
        assert await wait_for(lambda: len(s.sandbox.state()["tickets"]) == 30, DEADLINE_S)
        # every replica delivered the records of its own partitions (a record counts once its outcome is written,
        # which on a loaded machine comes a while after Gorgias has the ticket)
        def each_delivered_its_own() -> bool:
            per_replica = [status(w, "tickets") for w in replicas]
            return all(st and st["assigned_partitions"] and st["records"]["delivered"] > 0 for st in per_replica)

        assert await wait_for(each_delivered_its_own, DEADLINE_S), [status(w, "tickets") for w in replicas]

        changed = await api[1].put("/destinations/tickets", json=body(s, "tickets", delivery={"max_in_flight": 3}),
                                   headers={"If-Match": created.headers["ETag"]})
        answered = time.monotonic()
        assert changed.status_code == 200, changed.text
        figures["replace: last replica running version 2"] = await elapsed_until(
            lambda: all((st := status(w, "tickets")) and st.get("version") == 2 and st["state"] == "active"
                        for w in replicas), answered)

        racing = await asyncio.gather(api[0].post("/destinations", json=body(s, "racer")),
                                      api[2].post("/destinations", json=body(s, "racer")))
        assert sorted(r.status_code for r in racing) == [201, 409], [r.text for r in racing]
        assert await wait_for(lambda: all(status(w, "racer") for w in replicas), DEADLINE_S)

        # every replica restarts: each destination comes back in its state (tickets active, racer paused)
        for w in replicas:
            w.stop()
        for w in replicas:
            w.start(wait_ready=False)
        for w in replicas:
            assert await wait_for(lambda w=w: ready_status(w) == 200, DEADLINE_S)  # type: ignore[misc]
        assert [(status(w, "tickets") or {}).get("state") for w in replicas] == ["active"] * REPLICAS
        assert [(status(w, "racer") or {}).get("state") for w in replicas] == ["paused"] * REPLICAS
        assert [(status(w, "tickets") or {}).get("version") for w in replicas] == [2] * REPLICAS

        deleted = await api[2].delete("/destinations/tickets")
        answered = time.monotonic()
        assert deleted.status_code == 200, deleted.text
        figures["delete: last replica stopped it"] = await elapsed_until(
            lambda: all(status(w, "tickets") is None for w in replicas), answered)
    finally:
        for client in api:
            await client.aclose()
    events = s.sandbox.state()["tickets"]
    assert sorted(t["external_id"] for t in events) == sorted(f"req-{i}" for i in range(30))  # each once
    print("\n" + "\n".join(f"{what}: {seconds:.2f} s" for what, seconds in figures.items()))


async def test_a_destinations_topic_that_is_not_compacted_stops_the_start_with_one_line(
    scenario: Scenario, tmp_path: Path,
) -> None:
    s = scenario
    topic = f"plain-{s.group}"
    await create_topics(s.bootstrap, [topic])  # the broker's default: cleanup.policy=delete
    doc = s.config()
    doc["kafka"]["destinations_topic"] = topic
    worker = WorkerProcess(s.write(tmp_path, doc), s.web_port).start(wait_ready=False)
    try:
        assert worker.wait(timeout=60) != 0
    finally:
        worker.stop()
    output = worker.output()
    assert f"kafka.destinations_topic: topic {topic} has cleanup.policy=delete" in output, output[-3000:]
    assert "Traceback" not in output, output[-3000:]
