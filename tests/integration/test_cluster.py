"""A real three-node Kafka cluster (replication factor 3, ``min.insync.replicas`` 2, ``acks=all``, the
worker's own topics created by it from ``kafka.replication_factor``): while records keep arriving, the
leader of a source partition and then the leader of the response topic are SIGKILLed and come back;
every source offset still ends with exactly one outcome and no ticket is created twice."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiokafka
import orjson
import pytest

from tests.support.broker import LocalCluster
from tests.support.kafka_io import committed, create_topics, partition_states, read_to_end, wait_for
from tests.support.processes import API_KEY, SandboxProcess, WorkerProcess
from tests.support.scenario import Scenario

pytestmark = pytest.mark.integration

IN_SYNC = {"min.insync.replicas": "2"}  # for the source topic; the worker's own from its settings
BROKEN_EVERY = 15  # every 15th record is not JSON: its outcome is a dead letter, not a call


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    nodes = LocalCluster(3)
    nodes.start()
    try:
        yield nodes
    finally:
        nodes.stop()


class Feed:
    """Publishes records to the source topic at a steady pace, through the kills, until told to stop."""

    def __init__(self, bootstrap: str, topic: str, per_second: float = 10.0) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.pause = 1.0 / per_second
        self.sent = 0
        self.stopping = asyncio.Event()

    @staticmethod
    def record(i: int) -> bytes:
        if i % BROKEN_EVERY == BROKEN_EVERY - 1:
            return f"not json {i}".encode()
        return orjson.dumps({"subject": f"Cluster {i}", "body_text": f"body {i}",
                             "customer_email": f"c{i % 5}@example.com"})

    async def run(self) -> None:
        producer = aiokafka.AIOKafkaProducer(
            bootstrap_servers=self.bootstrap, acks="all", enable_idempotence=True, request_timeout_ms=60_000,
        )
        await producer.start()
        try:
            while not self.stopping.is_set():
                await producer.send_and_wait(self.topic, self.record(self.sent), key=f"k{self.sent % 7}".encode())
                self.sent += 1
                await asyncio.sleep(self.pause)
        finally:
            await producer.stop()


def tickets(sandbox: SandboxProcess) -> int:
    return len(sandbox.state()["tickets"])


async def all_in_sync(bootstrap: str, topics: list[str], replicas: int = 3) -> bool:
    states = await partition_states(bootstrap, topics)
    return bool(states) and all(len(p["isr"]) == replicas for p in states.values())


async def kill_and_bring_back(cluster: LocalCluster, s: Scenario, topic: str, topics: list[str]) -> int:
    """SIGKILL the leader of ``topic``'s partition 0, see delivery go on without it, start it again."""
    leader = int((await partition_states(s.bootstrap, [topic]))[(topic, 0)]["leader"])
    cluster.kill(leader)

    async def moved() -> bool:
        new = (await partition_states(s.bootstrap, [topic]))[(topic, 0)]["leader"]
        return bool(new >= 0 and new != leader)

    assert await wait_for(moved, timeout=60), f"no new leader for {topic}-0 after node {leader} was killed"
    reached = tickets(s.sandbox) + 15
    assert await wait_for(lambda: tickets(s.sandbox) >= reached or None, timeout=120), (
        f"delivery stalled without node {leader}: {tickets(s.sandbox)} tickets")
    cluster.restart(leader)
    assert await wait_for(lambda: all_in_sync(s.bootstrap, topics), timeout=120), (
        f"node {leader} did not catch up: {await partition_states(s.bootstrap, topics)}")
    return leader


def sources_of(document: dict[str, Any]) -> list[tuple[int, int]]:
    """The (partition, offset) of every source record an outcome document names."""
    return [(item.get("source", item)["partition"], item.get("source", item)["offset"])
            for item in document["records"]]


async def test_leaders_killed_and_back_lose_nothing_and_create_nothing_twice(
    cluster: LocalCluster, sandbox: SandboxProcess, tmp_path: Path
) -> None:
    s = Scenario(cluster.bootstrap, sandbox)
    await create_topics(s.bootstrap, [s.source], partitions=3, replication=3, configs=IN_SYNC)
    # The worker creates the rest itself: outcome topics, intent marks, control and destinations stores.
    own = [s.responses, s.dead_letters, f"{s.group}.intents", f"control-{s.group}", f"{s.group}.destinations"]
    topics = [s.source, *own, "__consumer_offsets"]
    sandbox.admin("PUT", "faults", {"spec": "latency=50-150ms@POST /api/tickets"})
    dest = s.destination(endpoint={"template": "create_ticket", "method": None, "url": None},
                         delivery={"max_in_flight": 4})
    doc = s.config(dest)
    doc["kafka"].update(replication_factor=3, min_insync_replicas=2)
    worker = WorkerProcess(s.write(tmp_path, doc), s.web_port).start()
    states = await partition_states(s.bootstrap, own)
    assert {t for t, _ in states} == set(own) and {len(p["replicas"]) for p in states.values()} == {3}, states
    feed = Feed(s.bootstrap, s.source)
    feeding = asyncio.get_running_loop().create_task(feed.run())
    try:
        assert await wait_for(lambda: tickets(sandbox) >= 20 or None, timeout=90), worker.output()[-3000:]
        killed = [await kill_and_bring_back(cluster, s, topic, topics) for topic in (s.source, s.responses)]
        feed.stopping.set()
        await feeding

        async def all_committed() -> bool:
            return sum((await committed(s.bootstrap, s.group_of(), s.source)).values()) >= feed.sent

        assert await wait_for(all_committed, timeout=120), await committed(s.bootstrap, s.group_of(), s.source)
        assert worker.proc is not None and worker.proc.poll() is None, "the worker exited"
    finally:
        feed.stopping.set()
        await asyncio.gather(feeding, return_exceptions=True)
        worker.stop()

    sources = await read_to_end(s.bootstrap, s.source)
    assert len(sources) == feed.sent
    events = [orjson.loads(r.value) for r in await read_to_end(s.bootstrap, s.responses)]
    letters = [orjson.loads(r.value) for r in await read_to_end(s.bootstrap, s.dead_letters)]
    called = Counter(ref for event in {e["event_id"]: e for e in events}.values() for ref in sources_of(event))
    uncalled = Counter(ref for letter in letters if letter["stage"] == "decode" for ref in sources_of(letter))
    offsets = {(r.partition, r.offset) for r in sources}
    assert set(called) | set(uncalled) == offsets, "a source record without an outcome"
    assert not set(called) & set(uncalled), "a record both called and dead-lettered at decode"
    assert set(called.values()) == {1} and set(uncalled.values()) == {1}, "a record with two outcomes"
    assert len(uncalled) == sum(1 for r in sources if not r.value.startswith(b"{"))
    assert Counter(e["event_id"] for e in events).most_common(1)[0][1] == 1, "an event written twice"
    made = Counter(t["external_id"] for t in sandbox.state()["tickets"])
    assert len(made) == len(called) and set(made.values()) == {1}, [k for k, n in made.items() if n > 1]
    assert {e["outcome"] for e in events} == {"delivered"}
    assert len(killed) == 2 and API_KEY not in worker.output()
