"""Stopping always ends: ``Runtime.stop()`` and SIGTERM return within ``worker.shutdown_grace_s`` + 5 s from
any state — starting, Kafka away, calls on the wire, calls held for a refused key, a rebalance under way.

The bound is the product's promise (Kubernetes kills the pod after its grace period), so it is checked; the
check allows ``SLACK_S`` more for a loaded machine's scheduling, and a small grace keeps the tests short.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support.broker import LocalBroker, free_port
from tests.support.kafka_io import committed, create_topics, publish, wait_for
from tests.support.processes import SandboxProcess, WorkerProcess
from tests.support.scenario import Scenario, json_config, ready_status, ticket
from worker.core.config.worker_config import parse_config
from worker.kafka.pipeline import STOP_MARGIN_S
from worker.service.runtime import Runtime

pytestmark = pytest.mark.integration

GRACE_S = 3.0
SLACK_S = 3.0
BOUND_S = GRACE_S + STOP_MARGIN_S + SLACK_S


@pytest.fixture
def own_broker() -> Any:
    broker = LocalBroker(sasl=False)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture
async def runtimes() -> AsyncIterator[Callable[[dict[str, Any]], Awaitable[Runtime]]]:
    """Start runtimes in this loop; any a test did not stop is stopped at the end."""
    made: list[Runtime] = []

    async def start(doc: dict[str, Any]) -> Runtime:
        runtime = Runtime(parse_config(doc))
        made.append(runtime)
        await runtime.start()
        return runtime

    yield start
    for runtime in made:
        await asyncio.wait_for(runtime.stop(), BOUND_S)


def config(s: Scenario, **destination: Any) -> dict[str, Any]:
    doc = s.config(s.destination(**destination))
    doc["worker"]["shutdown_grace_s"] = GRACE_S
    return doc


async def stop_within_bound(runtime: Runtime) -> float:
    started = time.monotonic()
    await asyncio.wait_for(runtime.stop(), BOUND_S + 30)  # a hang fails here, not at pytest's timeout
    took = time.monotonic() - started
    assert took <= BOUND_S, f"stop took {took:.1f} s (grace {GRACE_S:g} s)"
    return took


async def test_stopping_while_starting_with_kafka_away_gives_up_the_start(
    scenario: Scenario, caplog: pytest.LogCaptureFixture
) -> None:
    s = scenario
    caplog.set_level(logging.WARNING, logger="worker")
    doc = config(s)
    doc["kafka"]["bootstrap_servers"] = f"127.0.0.1:{free_port()}"  # nothing listens
    doc["worker"]["broker_wait_s"] = 120
    runtime = Runtime(parse_config(doc))
    starting = asyncio.create_task(runtime.start())
    def waiting_for_kafka() -> bool:
        return any("Kafka is not reachable yet" in r.getMessage() for r in caplog.records)

    assert await wait_for(waiting_for_kafka, 60, interval=0.05)  # the start is waiting for Kafka
    assert not starting.done()
    await stop_within_bound(runtime)
    assert starting.cancelled()


async def test_stopping_with_calls_on_the_wire_abandons_them_after_the_grace(
    scenario: Scenario, runtimes: Any
) -> None:
    s = scenario
    await s.create_topics()
    s.sandbox.admin("PUT", "faults", {"spec": "latency=60000ms@POST /api/tickets"})  # answers after a minute
    await publish(s.bootstrap, s.source, [ticket(i) for i in range(4)])
    runtime = await runtimes(config(s))
    assert await wait_for(lambda: runtime.pipelines["dest"].status()["calls_in_flight"] > 0, 30)
    took = await stop_within_bound(runtime)
    assert took >= GRACE_S - 0.5  # the calls had their grace
    assert sum((await committed(s.bootstrap, s.group_of(), s.source)).values()) == 0  # nothing done or committed


async def test_stopping_with_calls_held_for_a_refused_key(
    scenario: Scenario, runtimes: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = scenario
    await s.create_topics()
    monkeypatch.setenv("WRONG_GORGIAS_KEY", "not-the-key")
    await publish(s.bootstrap, s.source, [ticket(i) for i in range(3)])
    runtime = await runtimes(config(s, credential={"api_key_env": "WRONG_GORGIAS_KEY"}))
    assert await wait_for(lambda: runtime.pipelines["dest"].status()["state"] == "held", 30)
    await stop_within_bound(runtime)


async def test_stopping_in_the_middle_of_a_rebalance(scenario: Scenario, runtimes: Any) -> None:
    s = scenario
    await s.create_topics(partitions=4)
    s.sandbox.admin("PUT", "faults", {"spec": "latency=1500ms@POST /api/tickets"})
    await publish(s.bootstrap, s.source, [ticket(i) for i in range(40)], key=lambda i, _: f"k{i}".encode())
    first = await runtimes(config(s))
    pipeline = first.pipelines["dest"]
    assert await wait_for(lambda: pipeline.status()["calls_in_flight"] > 0, 30)
    revoking = asyncio.Event()
    listener = pipeline.on_partitions_revoked

    async def observed(revoked: Any) -> None:  # the consumer calls its listener's method: seen, then run
        if revoked:
            revoking.set()
        await listener(revoked)

    pipeline.on_partitions_revoked = observed  # type: ignore[method-assign]
    second = asyncio.create_task(runtimes(config(s)))
    # the second member joins: the group rebalances and the first gives its partitions up, calls on the wire
    await asyncio.wait_for(revoking.wait(), 60)
    assert pipeline.status()["calls_in_flight"] > 0
    await stop_within_bound(first)
    await second
    await stop_within_bound(second.result())


async def test_sigterm_with_kafka_away_exits_within_the_grace(
    own_broker: LocalBroker, sandbox: SandboxProcess, tmp_path: Path
) -> None:
    s = Scenario(own_broker.bootstrap, sandbox)
    await create_topics(s.bootstrap, [s.source])
    worker = WorkerProcess(s.write(tmp_path, json_config(s, shutdown_grace_s=GRACE_S)), s.web_port).start()
    try:
        await publish(s.bootstrap, s.source, [ticket(0)])
        assert await wait_for(lambda: len(sandbox.state()["tickets"]) >= 1 or None, timeout=60)
        own_broker.halt()
        assert await wait_for(lambda: ready_status(worker) == 503 or None, timeout=60)
        started = time.monotonic()
        worker.signal(signal.SIGTERM)
        code = await asyncio.to_thread(worker.wait, BOUND_S + 30)
        took = time.monotonic() - started
    finally:
        worker.stop()
    assert code == 0 and took <= BOUND_S, f"exit {code} after {took:.1f} s"
    assert "Traceback" not in worker.output()
