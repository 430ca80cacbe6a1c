"""A restarted or replacement worker delivers again within seconds of a SIGKILL; SIGTERM leaves at once.

How fast is a benchmark's figure (bench/replicas_bench.py --part kills, docs/benchmarks.md: 11-15 s from the
SIGKILL to the first create at load average 11-13); the tests hold the behaviour with bounds a loaded machine
cannot break but the faults they guard against would."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import httpx
import pytest

from tests.support import http
from tests.support.kafka_io import publish, wait_for
from tests.support.ports import free_port
from tests.support.processes import WorkerProcess
from tests.support.scenario import Scenario, ticket
from worker.kafka.clients import GROUP_SESSION_TIMEOUT_MS
from worker.kafka.polling import PIPELINE_HEARTBEAT_INTERVAL_MS

pytestmark = pytest.mark.integration

# Before e3e213f a restarted worker waited 58-60 s (faust's own group kept a 60 s session); now the dead
# member's 10 s session, the new process's start and a rebalance: well under this even on a loaded machine.
RESTART_BOUND_S = 45.0
# Without a LeaveGroup the coordinator drops a member one session after its last heartbeat: no sooner than
# this after the SIGTERM (a destination's group heartbeats every PIPELINE_HEARTBEAT_INTERVAL_MS). Getting the
# partitions earlier proves the member left.
LEFT_BOUND_S = (GROUP_SESSION_TIMEOUT_MS - PIPELINE_HEARTBEAT_INTERVAL_MS) / 1000


def tickets(s: Scenario) -> int:
    return len(s.sandbox.state()["tickets"])


async def test_a_worker_restarted_after_sigkill_delivers_again_within_seconds(
    scenario: Scenario, tmp_path: Path
) -> None:
    s = scenario
    await s.create_topics(partitions=2)
    await publish(s.bootstrap, s.source, [ticket(i) for i in range(20)], key=lambda i, _: f"k{i}".encode())
    doc = s.config(s.destination())
    worker = WorkerProcess(s.write(tmp_path, doc), s.web_port).start()
    try:
        assert await wait_for(lambda: tickets(s) >= 20, timeout=60)
        worker.signal(signal.SIGKILL)
        killed_at = time.monotonic()
        worker.wait(timeout=10)
    finally:
        worker.stop()
    await publish(s.bootstrap, s.source, [ticket(i) for i in range(20, 40)], key=lambda i, _: f"k{i}".encode())
    worker = WorkerProcess(s.write(tmp_path, doc), s.web_port).start(wait_ready=False)
    try:
        assert await wait_for(lambda: tickets(s) >= 40, timeout=60), worker.output()[-2000:]
        took = time.monotonic() - killed_at
    finally:
        worker.stop()
    # the dead member's session (10 s) ends the old generation; faust's own group no longer delays start
    assert took < RESTART_BOUND_S, f"delivering again took {took:.1f} s after the SIGKILL"


async def test_a_sigtermed_worker_leaves_its_group_at_once(scenario: Scenario, tmp_path: Path) -> None:
    s = scenario
    await s.create_topics(partitions=2)
    doc = s.config(s.destination())
    workers = []
    for i in range(2):
        port = free_port()
        (tmp_path / f"w{i}").mkdir()
        own = {**doc, "worker": {**doc["worker"], "web_port": port}}
        workers.append(WorkerProcess(s.write(tmp_path / f"w{i}", own), port))

    def assigned(w: WorkerProcess) -> int:
        try:
            return len(http.get(f"{w.url}/destinations/dest", timeout=2).json()["assigned_partitions"])
        except httpx.HTTPError:
            return 0

    try:
        for w in workers:
            w.start()
        assert await wait_for(lambda: all(assigned(w) == 1 for w in workers), timeout=60)
        workers[0].signal(signal.SIGTERM)
        stopped_at = time.monotonic()
        assert await wait_for(lambda: assigned(workers[1]) == 2, timeout=30)
        took = time.monotonic() - stopped_at
    finally:
        for w in workers:
            w.stop()
    assert took < LEFT_BOUND_S, f"the survivor got the partitions {took:.1f} s after the SIGTERM: no LeaveGroup?"
