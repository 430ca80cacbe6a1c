"""Kafka going away and coming back, with a broker of the test's own: the worker waits for it at start,
stays calm and unready while it is gone, and carries on by itself once it is back."""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.support import http
from tests.support.broker import LocalBroker
from tests.support.kafka_io import committed, create_topics, publish, read_to_end, read_topic, wait_for
from tests.support.ports import free_port
from tests.support.processes import API_KEY, SandboxProcess, WorkerProcess
from tests.support.scenario import Scenario, json_config, ready_status, ticket
from worker.core.config.kafka import KafkaSettings
from worker.kafka.clients import make_consumer, make_producer, stop_client

pytestmark = pytest.mark.integration

OUTAGE_S = 30.0
PRODUCER_REQUEST_TIMEOUT_S = 30.0


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) process ``pid`` has used, from /proc: what it costs whatever the load."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@pytest.fixture
def own_broker() -> Iterator[LocalBroker]:
    broker = LocalBroker(sasl=False)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


def log_lines(worker: WorkerProcess) -> list[dict[str, Any]]:
    lines = []
    for line in worker.output().splitlines():
        try:
            lines.append(orjson.loads(line))
        except orjson.JSONDecodeError:
            lines.append({"level": "raw", "msg": line})
    return lines


async def test_an_outage_is_calm_unready_and_recovers_by_itself(
    own_broker: LocalBroker, sandbox: SandboxProcess, tmp_path: Path
) -> None:
    s = Scenario(own_broker.bootstrap, sandbox)
    await create_topics(s.bootstrap, [s.source])
    worker = WorkerProcess(s.write(tmp_path, json_config(s)), s.web_port).start()
    try:
        await publish(s.bootstrap, s.source, [ticket(i) for i in range(5)])
        assert await wait_for(lambda: len(sandbox.state()["tickets"]) >= 5 or None, timeout=60)
        healthy = log_lines(worker)
        assert not [line for line in healthy if line["level"] in ("error", "critical", "raw")], healthy
        assert not [line for line in healthy if line.get("logger", "").startswith(("httpx", "httpcore"))]

        own_broker.halt()
        outage_start = len(healthy)
        assert await wait_for(lambda: ready_status(worker) == 503 or None, timeout=60)
        answer = http.get(f"{worker.url}/health/ready", timeout=10).json()
        assert answer["status"] == "unavailable" and "Kafka unreachable" in answer["trouble"]
        assert worker.proc is not None
        used_before = cpu_seconds(worker.proc.pid)
        await asyncio.sleep(OUTAGE_S)  # the outage goes on: the worker idles, and the log stays calm
        used = cpu_seconds(worker.proc.pid) - used_before
        assert used <= 0.05 * OUTAGE_S, f"{used:.2f} CPU-s in a {OUTAGE_S:.0f} s outage (load {os.getloadavg()})"
        during = log_lines(worker)[outage_start:]
        assert len(during) < 60, [line["msg"] for line in during]
        notices = [line for line in during if "cannot consume or record outcomes" in line["msg"]]
        assert notices and notices[0]["destination"] == "dest" and "Kafka unreachable" in notices[0]["msg"]
        assert ready_status(worker) == 503

        own_broker.start()
        assert await wait_for(lambda: ready_status(worker) == 200 or None, timeout=90)
        assert any(line["msg"].startswith("destination dest recovered") for line in log_lines(worker))
        await publish(s.bootstrap, s.source, [ticket(i) for i in range(5, 10)])
        assert await wait_for(lambda: len(sandbox.state()["tickets"]) >= 10 or None, timeout=90)

        # Kafka goes away while calls are on the wire: their outcomes wait for it, nothing is sent twice
        sandbox.admin("PUT", "faults", {"spec": "latency=4000ms@POST /api/tickets"})
        await publish(s.bootstrap, s.source, [ticket(i) for i in range(10, 13)])
        assert await wait_for(lambda: calls_on_wire(worker), timeout=30)
        own_broker.halt()
        assert await wait_for(lambda: len(sandbox.state()["tickets"]) >= 13 or None, timeout=30)
        assert await wait_for(lambda: ready_status(worker) == 503 or None, timeout=30)
        own_broker.start()
        assert await wait_for(lambda: ready_status(worker) == 200 or None, timeout=90)
        sandbox.admin("PUT", "faults", {})

        async def all_committed() -> bool:
            return sum((await committed(s.bootstrap, s.group_of(), s.source)).values()) >= 13

        assert await wait_for(all_committed, timeout=90)
        assert await wait_for(lambda: idle(worker), timeout=30)  # nothing on the wire or waiting: all decided
        ids = sorted(t["external_id"] for t in sandbox.state()["tickets"])
        assert ids == sorted(f"req-{i}" for i in range(13))  # each exactly once
        events = Counter(
            orjson.loads(m.value)["records"][0]["offset"] for m in await read_topic(s.bootstrap, s.responses, 13)
        )
        assert sorted(events) == list(range(13)) and set(events.values()) == {1}
        assert worker.proc is not None and worker.proc.poll() is None
    finally:
        worker.stop()
    assert API_KEY not in worker.output()


def idle(worker: WorkerProcess) -> bool:
    try:
        status = http.get(f"{worker.url}/destinations", timeout=2).json()
    except httpx.HTTPError:
        return False
    return all(d["calls_on_wire"] == 0 and d["pending_records"] == 0 for d in status["destinations"])


def calls_on_wire(worker: WorkerProcess) -> bool:
    try:
        status = http.get(f"{worker.url}/destinations", timeout=2).json()
    except httpx.HTTPError:
        return False
    return any(d["calls_on_wire"] > 0 for d in status["destinations"])


async def test_the_worker_waits_for_kafka_at_start(
    own_broker: LocalBroker, sandbox: SandboxProcess, tmp_path: Path
) -> None:
    s = Scenario(own_broker.bootstrap, sandbox)
    await create_topics(s.bootstrap, [s.source])
    await publish(s.bootstrap, s.source, [ticket(0)])
    own_broker.halt()
    worker = WorkerProcess(s.write(tmp_path, json_config(s, broker_wait_s=120)), s.web_port).start(wait_ready=False)
    try:
        assert await wait_for(lambda: "Kafka is not reachable yet" in worker.output() or None, timeout=60)
        own_broker.start()
        assert await wait_for(lambda: ready_status(worker) == 200 or None, timeout=120), worker.output()[-3000:]
        assert await wait_for(lambda: len(sandbox.state()["tickets"]) >= 1 or None, timeout=60)
    finally:
        worker.stop()
    assert "Traceback" not in worker.output()


def test_without_kafka_the_worker_gives_up_with_one_line(sandbox: SandboxProcess, tmp_path: Path) -> None:
    s = Scenario(f"127.0.0.1:{free_port()}", sandbox)
    worker = WorkerProcess(s.write(tmp_path, json_config(s, broker_wait_s=3)), s.web_port).start(wait_ready=False)
    try:
        assert worker.wait(timeout=60) == 1
    finally:
        worker.stop()
    lines = log_lines(worker)
    assert "Traceback" not in worker.output()
    assert [line["level"] for line in lines if line["level"] in ("error", "raw")] == ["error"]
    assert lines[-1]["msg"].startswith("cannot start: Kafka is unreachable")
    assert "worker.broker_wait_s" in lines[-1]["msg"]


@pytest.mark.parametrize("how", ["sigterm", "sigkill"])
async def test_a_broker_lost_mid_stream_and_restarted_on_its_data_loses_and_repeats_nothing(
    own_broker: LocalBroker, sandbox: SandboxProcess, tmp_path: Path, how: str
) -> None:
    """The ledger: every source offset ends with exactly one outcome (one event_id, however many copies of it
    a rewrite left), every create reached Gorgias once, and the worker process never exits."""
    s = Scenario(own_broker.bootstrap, sandbox)
    total = 160
    await create_topics(s.bootstrap, [s.source], partitions=2)
    sandbox.admin("PUT", "faults", {"spec": "latency=40-120ms@POST /api/tickets"})
    records = [{"subject": f"Request {i}", "body_text": f"body {i}", "customer_email": f"c{i % 5}@example.com"}
               for i in range(total)]
    await publish(s.bootstrap, s.source, records, key=lambda i, _: f"k{i % 7}".encode())
    doc = json_config(s)
    doc["destinations"][0].update(endpoint={"template": "create_ticket"}, delivery={"max_in_flight": 6})
    worker = WorkerProcess(s.write(tmp_path, doc), s.web_port).start()
    try:
        assert await wait_for(lambda: len(sandbox.state()["tickets"]) >= total // 4 or None, timeout=60)
        own_broker.kill() if how == "sigkill" else own_broker.halt()  # calls and outcome writes under way
        assert await wait_for(lambda: ready_status(worker) == 503 or None, timeout=60)
        if how == "sigterm":  # longer than the producer's request timeout: the batches it held expire unwritten
            await asyncio.sleep(PRODUCER_REQUEST_TIMEOUT_S + 5)
        own_broker.start()

        async def all_committed() -> bool:
            return sum((await committed(s.bootstrap, s.group_of(), s.source)).values()) >= total

        assert await wait_for(all_committed, timeout=180), worker.output()[-3000:]
        assert worker.proc is not None and worker.proc.poll() is None, worker.output()[-3000:]
    finally:
        worker.stop()
    tickets = Counter(t["external_id"] for t in sandbox.state()["tickets"])
    assert len(tickets) == total and max(tickets.values()) == 1, [k for k, v in tickets.items() if v > 1]
    outcomes: dict[tuple[int, int], set[str]] = {}
    for message in await read_to_end(s.bootstrap, s.responses):
        event = orjson.loads(message.value)
        for record in event["records"]:
            outcomes.setdefault((record["partition"], record["offset"]), set()).add(event["event_id"])
    assert len(outcomes) == total and all(len(ids) == 1 for ids in outcomes.values())
    assert "Traceback" not in worker.output()


async def test_with_no_broker_answering_metadata_is_asked_for_once_per_backoff(own_broker: LocalBroker) -> None:
    """aiokafka's producer (while a partition's leader is unknown) and consumer fetcher (while metadata is
    invalid) wait for a metadata update in a loop; with no broker, each update failed at once and the loop spun
    a core for the whole outage. Failed updates now answer after the clients' retry backoff (1 s)."""
    settings = KafkaSettings(bootstrap_servers=own_broker.bootstrap)
    producer, consumer = make_producer(settings), make_consumer(settings, None)
    await producer.start()
    await consumer.start()
    try:
        own_broker.halt()
        loop = asyncio.get_running_loop()
        for client in (producer.client, consumer._client):
            failed, deadline = 0, loop.time() + 3
            while loop.time() < deadline:
                failed += not await client.force_metadata_update()
            assert 1 <= failed <= 4, f"{failed} failed metadata updates in 3 s"
    finally:
        await stop_client(producer, 2)
        await stop_client(consumer, 2)
