"""After a SIGKILL, duplicate checks cost at most the calls that were on the wire (intent marks)."""

from __future__ import annotations

import signal
from collections import Counter
from pathlib import Path

import pytest

from tests.support.kafka_io import publish, read_to_end, wait_for
from tests.support.processes import WorkerProcess
from tests.support.scenario import Scenario, templated, wait_committed

pytestmark = pytest.mark.integration

IN_FLIGHT = 6


async def test_a_sigkill_costs_at_most_the_calls_in_flight_in_lookups(scenario: Scenario, tmp_path: Path) -> None:
    s = scenario
    await s.create_topics(partitions=2)
    s.sandbox.admin("PUT", "faults", {"spec": "latency=150-250ms@POST /api/tickets"})
    records = [{"subject": f"Request {i}", "body_text": f"body {i}", "customer_email": f"c{i % 5}@example.com"}
               for i in range(200)]
    await publish(s.bootstrap, s.source, records, key=lambda i, _: f"k{i % 9}".encode())
    doc = s.config(templated(s, "create_ticket", delivery={"max_in_flight": IN_FLIGHT}))
    worker = WorkerProcess(s.write(tmp_path, doc), s.web_port).start()
    try:
        assert await wait_for(lambda: len(s.sandbox.state()["tickets"]) >= 40, timeout=60)
        worker.signal(signal.SIGKILL)
        worker.wait(timeout=10)
    finally:
        worker.stop()
    lookups_before = s.sandbox.counters()["requests"].get("GET /api/tickets", {}).get("200", 0)
    intents = await read_to_end(s.bootstrap, f"{s.group}.intents")
    assert intents, "no intent mark was written"
    worker = WorkerProcess(s.write(tmp_path, doc), s.web_port).start()
    try:
        await wait_committed(s, 200, timeout=120)
    finally:
        worker.stop()
    tickets = Counter(t["external_id"] for t in s.sandbox.state()["tickets"])
    assert len(tickets) == 200 and max(tickets.values()) == 1, [k for k, v in tickets.items() if v > 1]
    lookups = s.sandbox.counters()["requests"].get("GET /api/tickets", {}).get("200", 0) - lookups_before
    # The dead worker had consumed all 200 records (one fetch); only the calls on the wire are checked.
    # A ticket lookup is one or two list GETs (`external_id=`, then `trashed=true` when absent).
    assert lookups <= 2 * IN_FLIGHT, f"{lookups} duplicate-check lookups after one SIGKILL"
