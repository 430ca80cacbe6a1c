"""The account's budget, end to end against the sandbox with its rate limit on: a call that waits for a token
carries the records that arrived while it waited, and a paused destination holds its calls."""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import Any

import pytest

from tests.support.kafka_io import publish, publish_paced, read_json_to_end, wait_for
from tests.support.scenario import Scenario, setup_tickets, ticket, wait_committed

pytestmark = pytest.mark.integration


def custom_fields(s: Scenario, rate: str, **batching: Any) -> dict[str, Any]:
    requests, per = rate.split("/")
    return s.destination(
        endpoint={"method": "PUT", "url": "https://{domain}.gorgias.com/api/tickets/{ticket_id}/custom-fields",
                  "exclude_attributes": ["ticket_id"]},
        batching={"enabled": True, "algorithm": "by_attribute", "attributes": ["ticket_id"], "batch_size": 100,
                  **batching},
        credential={"rate_limit": {"enabled": True, "requests": int(requests), "per_seconds": float(per),
                                   "headroom": 0}},
    )


@pytest.mark.parametrize("fill", [True, False], ids=["fill_while_waiting", "sealed_at_window"])
async def test_a_call_waiting_for_a_token_carries_the_records_that_arrived_meanwhile(
    scenario: Scenario, run_worker: Any, fill: bool
) -> None:
    s = scenario
    await s.create_topics()
    tickets, fields = setup_tickets(s)
    s.sandbox.admin("PUT", "rate-limit", {"rate_limit": "2/4s"})  # one call every 2 s
    await run_worker(s.config(custom_fields(s, "2/4", max_wait_ms=200, fill_while_waiting=fill)))
    total = 30
    # 5 records/s for one ticket, 6 s: windows of 200 ms hold one record each
    await publish_paced(s.bootstrap, s.source,
                        [{"ticket_id": tickets[0], "id": fields[i % 2], "value": f"v{i}"} for i in range(total)], 0.2)
    await wait_committed(s, total, timeout=90)
    events = await read_json_to_end(s.bootstrap, s.responses)
    counts = [e["record_count"] for e in events]
    assert sum(counts) == total
    statuses = [a["status"] for e in events for a in e["attempt_log"]]
    assert 429 not in statuses
    # per-key order: calls went out one after another, in the order of their records
    in_order = sorted(events, key=lambda e: e["started_at"])
    assert [r["offset"] for e in in_order for r in e["records"]] == list(range(total))
    for before, after in itertools.pairwise(in_order):
        assert before["finished_at"] <= after["started_at"]
    if fill:
        # one call every 2 s, each carrying what arrived while it waited (about 10 records)
        assert len(events) <= 6, counts
        assert max(counts) >= 8, counts
        assert any(e["batch"]["flush_reason"] == "window" and e["record_count"] >= 8 for e in events)
    else:
        # sealed at the window: one or two records per call, and a backlog of calls
        assert len(events) >= 12, counts


async def test_pause_holds_calls_not_on_the_wire_and_activate_sends_them(scenario: Scenario, run_worker: Any) -> None:
    s = scenario
    await s.create_topics()
    s.sandbox.admin("PUT", "rate-limit", {"rate_limit": "4/2s"})  # 2 calls/s
    total = 30
    await publish(s.bootstrap, s.source, [ticket(i) for i in range(total)])
    dest = s.destination(credential={"rate_limit": {"enabled": True, "requests": 4, "per_seconds": 2,
                                                    "headroom": 0}},
                         delivery={"max_in_flight": 2})
    runtime = await run_worker(s.config(dest))
    pipeline = runtime.pipelines["dest"]

    def calls() -> int:
        return sum(s.sandbox.counters()["requests"].get("POST /api/tickets", {}).values())

    async def some_sent() -> bool:
        return calls() >= 4

    assert await wait_for(some_sent, 30, interval=0.05)
    pipeline.set_active(False)
    at_pause = calls()
    # the calls on the wire when paused finish (the sandbox answers in ms)
    assert await wait_for(lambda: pipeline.status()["calls_on_wire"] == 0, 30, interval=0.05)
    settled = calls()
    assert settled - at_pause <= 2  # at most the calls that were on the wire (max_in_flight)
    await asyncio.sleep(3)  # 6 tokens' worth of time
    assert calls() == settled  # nothing sent while paused
    status = pipeline.status()
    assert status["held_calls"] > 0 and status["calls_on_wire"] == 0
    assert status["pending_records"] == total - settled  # held, not committed
    started = time.monotonic()
    pipeline.set_active(True)
    await wait_committed(s, total, timeout=60)
    assert time.monotonic() - started < 30
    assert calls() == total
    assert len(s.sandbox.state()["tickets"]) == total
    events = await read_json_to_end(s.bootstrap, s.responses)
    assert sorted(e["records"][0]["offset"] for e in events) == list(range(total))


async def test_a_call_retrying_when_paused_waits_for_activate(scenario: Scenario, run_worker: Any) -> None:
    s = scenario
    await s.create_topics()
    s.sandbox.admin("PUT", "faults", {"spec": "maintenance=on"})  # every call answers 503
    await publish(s.bootstrap, s.source, [ticket(0)])
    dest = s.destination(delivery={"max_attempts": 100, "backoff_initial_s": 0.05, "backoff_max_s": 0.1})
    runtime = await run_worker(s.config(dest))
    pipeline = runtime.pipelines["dest"]

    def calls() -> int:
        return sum(s.sandbox.counters()["requests"].get("POST /api/tickets", {}).values())

    async def retrying() -> bool:
        return calls() >= 3

    assert await wait_for(retrying, 30, interval=0.05)
    pipeline.set_active(False)
    await asyncio.sleep(0.5)  # an attempt on the wire when paused finishes (at most one more is allowed below)
    settled = calls()
    await asyncio.sleep(2)  # ~20 retries' worth of backoff
    assert calls() <= settled + 1
    assert pipeline.status()["pending_records"] == 1  # held, not dead-lettered, not committed
    s.sandbox.admin("PUT", "faults", {})
    pipeline.set_active(True)
    await wait_committed(s, 1, timeout=30)
    events = await read_json_to_end(s.bootstrap, s.responses)
    assert events[0]["outcome"] == "delivered"
    assert len(s.sandbox.state()["tickets"]) == 1
