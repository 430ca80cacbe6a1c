"""The real `gorgias-worker run` process (faust host): SIGTERM drains and commits; SIGKILL loses nothing."""

from __future__ import annotations

import base64
import signal
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.support import http
from tests.support.kafka_io import committed, publish, wait_for
from tests.support.processes import API_KEY, WorkerProcess
from tests.support.scenario import Scenario, outcomes, templated, ticket, wait_committed

pytestmark = pytest.mark.integration

CREATES = 200  # records of the create_ticket test


async def test_sigterm_finishes_in_flight_calls_and_commits_exactly_what_is_done(
    scenario: Scenario, tmp_path: Path
) -> None:
    s = scenario
    await s.create_topics(partitions=2)
    # ~8 s of calls (300 at 80-120 ms, 4 at a time): the stop comes mid-stream even when a loaded machine
    # lets this test look at the sandbox only every few seconds
    s.sandbox.admin("PUT", "faults", {"spec": "latency=80-120ms@POST /api/tickets"})
    await publish(s.bootstrap, s.source, [ticket(i) for i in range(300)], key=lambda i, _: f"k{i % 7}".encode())
    doc = s.config(s.destination(delivery={"max_in_flight": 4}))
    doc["worker"]["log_level"] = "debug"  # the most talkative logs still never carry the API key
    worker = WorkerProcess(s.write(tmp_path, doc), s.web_port).start()
    try:
        assert await wait_for(lambda: len(s.sandbox.state()["tickets"]) >= 40, timeout=60)
        worker.signal(signal.SIGTERM)
        assert worker.wait(timeout=40) == 0, worker.output()[-3000:]
    finally:
        worker.stop()
    logs = worker.output()
    assert "drains" in logs or "worker stopped" in logs
    assert API_KEY not in logs and base64.b64encode(f"agent@acme.com:{API_KEY}".encode()).decode() not in logs
    offsets = await committed(s.bootstrap, s.group_of(), s.source)
    events, letters = await outcomes(s)
    assert not letters
    for partition, position in offsets.items():
        done = {o for (p, o) in events if p == partition}
        # everything below the committed position has its outcome; calls that finished out of order
        # past it are recorded too (and found again after the restart, see below)
        assert set(range(position)) <= done, f"partition {partition}: committed {position} without outcomes"
    assert sum(offsets.values()) < 300, "the test stopped too late to show a drain"
    # the rest is delivered after a restart, and nothing twice: the stop was clean
    worker = WorkerProcess(s.write(tmp_path, doc), s.web_port).start()
    try:
        await wait_committed(s, 300, timeout=90)
    finally:
        worker.stop()
    events, _ = await outcomes(s)
    assert len(events) == 300 and max(events.values()) == 1
    assert len(s.sandbox.state()["tickets"]) == 300


async def test_sigkill_mid_stream_then_restart_leaves_every_offset_with_an_outcome(
    scenario: Scenario, tmp_path: Path
) -> None:
    s = scenario
    await s.create_topics(partitions=2)
    s.sandbox.admin("PUT", "faults", {"spec": "latency=50-70ms@POST /api/tickets"})  # ~6 s of calls: a kill mid-stream
    values: list[Any] = [ticket(i) for i in range(400)]
    for i in (17, 230, 377):
        values[i] = b"{broken"  # dead letters must survive the crash too
    await publish(s.bootstrap, s.source, values, key=lambda i, _: f"k{i % 11}".encode())
    doc = s.config(s.destination(delivery={"max_in_flight": 4}))
    worker = WorkerProcess(s.write(tmp_path, doc), s.web_port).start()
    try:
        assert await wait_for(lambda: len(s.sandbox.state()["tickets"]) >= 80, timeout=60)
        worker.signal(signal.SIGKILL)
        worker.wait(timeout=10)
    finally:
        worker.stop()
    at_kill = await committed(s.bootstrap, s.group_of(), s.source)
    recorded_at_kill, _ = await outcomes(s)
    ahead = [k for k in recorded_at_kill if k[1] >= at_kill.get(k[0], 0)]
    assert ahead, "no outcome was recorded past the committed offsets: the test shows nothing"
    before = sum(at_kill.values())
    assert before < 400, "the kill came too late to interrupt anything"

    worker = WorkerProcess(s.write(tmp_path, doc), s.web_port).start()
    try:
        await wait_committed(s, 400, timeout=120)
        status = http.get(f"{worker.url}/destinations/dest", timeout=5).json()
        assert status["pending_records"] == 0
    finally:
        worker.stop()
    events, letters = await outcomes(s)
    partitions = await committed(s.bootstrap, s.group_of(), s.source)
    every = {(p, o) for p, end in partitions.items() for o in range(end)}
    assert len(every) == 400
    assert every == set(events) | set(letters), "an input offset has neither a response event nor a dead letter"
    assert sum(letters.values()) >= 3 and set(letters) & set(events) == set()
    # re-delivered: only records whose outcome was not recorded when the worker died
    assert max(events.values()) == 1, [k for k, v in events.items() if v > 1]


async def test_a_crash_between_create_and_its_outcome_does_not_create_twice(
    scenario: Scenario, tmp_path: Path
) -> None:
    """create_ticket template: every call is slow, the worker is SIGKILLed with creates on the wire.

    After the restart, records whose outcome was recorded are skipped, and records the dead worker had
    consumed without a recorded outcome are looked up by their stamped external_id before any create.
    """
    s = scenario
    await s.create_topics(partitions=2)
    # ~10 s of creates (200 at 300-500 ms, 8 at a time): the kill comes with creates on the wire even when a
    # loaded machine lets this test look at the sandbox only every few seconds
    s.sandbox.admin("PUT", "faults", {"spec": "latency=300-500ms@POST /api/tickets"})
    records = [{"subject": f"Request {i}", "body_text": f"body {i}", "customer_email": f"c{i % 5}@example.com"}
               for i in range(CREATES)]
    await publish(s.bootstrap, s.source, records, key=lambda i, _: f"k{i % 9}".encode())
    doc = s.config(templated(s, "create_ticket", delivery={"max_in_flight": 8}))
    worker = WorkerProcess(s.write(tmp_path, doc), s.web_port).start()
    try:
        assert await wait_for(lambda: len(s.sandbox.state()["tickets"]) >= 30, timeout=60)
        worker.signal(signal.SIGKILL)
        worker.wait(timeout=10)
    finally:
        worker.stop()
    created_before = len(s.sandbox.state()["tickets"])
    worker = WorkerProcess(s.write(tmp_path, doc), s.web_port).start()
    try:
        await wait_committed(s, CREATES, timeout=120)
    finally:
        worker.stop()
    tickets = s.sandbox.state()["tickets"]
    ids = Counter(t["external_id"] for t in tickets)
    assert len(ids) == CREATES and max(ids.values()) == 1, [k for k, v in ids.items() if v > 1]
    assert created_before < CREATES
    lookups = s.sandbox.counters()["requests"].get("GET /api/tickets", {})
    assert lookups.get("200", 0) >= 1, "the restarted worker never checked for an earlier create"
    events, letters = await outcomes(s)
    assert not letters and len(events) == CREATES
