"""Gorgias misbehaving, end to end: 429 bursts with Retry-After, 5xx storms, the rate limit, bad requests."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from tests.support.kafka_io import publish, read_json
from tests.support.scenario import Scenario, ticket, wait_committed

pytestmark = pytest.mark.integration


async def test_a_burst_of_429s_is_retried_after_retry_after(scenario: Scenario, run_worker: Any) -> None:
    s = scenario
    await s.create_topics()
    s.sandbox.admin("PUT", "faults", {"spec": "burst429=3:1@POST /api/tickets"})
    await publish(s.bootstrap, s.source, [ticket(i) for i in range(5)])
    await run_worker(s.config(s.destination(delivery={"max_in_flight": 1})))
    await wait_committed(s, 5)
    events = await read_json(s.bootstrap, s.responses, 5, timeout=10)
    assert all(e["outcome"] == "delivered" for e in events)
    first = min(events, key=lambda e: e["records"][0]["offset"])
    assert first["attempts"] == 4
    assert [a["status"] for a in first["attempt_log"]] == [429, 429, 429, 201]
    # Retry-After: 1 is honoured: the three retries took at least ~3 s in all
    assert first["latency_ms"] >= 2900
    assert len(s.sandbox.state()["tickets"]) == 5
    counters = s.sandbox.counters()
    assert counters["requests"]["POST /api/tickets"] == {"201": 5, "429": 3}, counters


async def test_a_5xx_storm_is_ridden_out_without_duplicates(scenario: Scenario, run_worker: Any) -> None:
    s = scenario
    await s.create_topics(partitions=2)
    s.sandbox.admin("PUT", "faults", {"spec": "503=0.5@POST /api/tickets, 502=0.2@POST /api/tickets", "seed": 3})
    await publish(s.bootstrap, s.source, [ticket(i) for i in range(30)], key=lambda i, _: f"k{i}".encode())
    await run_worker(s.config(s.destination(delivery={"max_attempts": 20, "backoff_max_s": 0.2})))
    await wait_committed(s, 30, timeout=90)
    events = await read_json(s.bootstrap, s.responses, 30, timeout=10)
    assert Counter(e["outcome"] for e in events) == {"delivered": 30}
    assert sum(e["attempts"] for e in events) > 30  # the storm really hit
    retried = [a["status"] for e in events for a in e["attempt_log"][:-1]]
    assert set(retried) <= {502, 503}
    ids = [t["external_id"] for t in s.sandbox.state()["tickets"]]
    assert sorted(ids) == sorted(f"req-{i}" for i in range(30))  # 5xx faults never apply: no duplicate


async def test_retry_budget_spent_goes_to_the_dead_letter_topic(scenario: Scenario, run_worker: Any) -> None:
    s = scenario
    await s.create_topics()
    s.sandbox.admin("PUT", "faults", {"spec": "maintenance=on"})
    await publish(s.bootstrap, s.source, [ticket(0)])
    await run_worker(s.config(s.destination(delivery={"max_attempts": 3})))
    letters = await read_json(s.bootstrap, s.dead_letters, 1, timeout=30)
    assert letters[0]["stage"] == "deliver"
    call = letters[0]["call"]
    assert call["attempts"] == 3 and call["response"]["status"] == 503
    assert "3 attempts" in letters[0]["reason"]
    assert letters[0]["records"][0]["value"]["external_id"] == "req-0"
    await wait_committed(s, 1)


async def test_the_worker_stays_inside_the_accounts_budget(scenario: Scenario, run_worker: Any) -> None:
    s = scenario
    await s.create_topics()
    s.sandbox.admin("PUT", "rate-limit", {"rate_limit": "10/2s"})
    await publish(s.bootstrap, s.source, [ticket(i) for i in range(40)])
    dest = s.destination(credential={"rate_limit": {"requests": 10, "per_seconds": 2, "headroom": 1}})
    await run_worker(s.config(dest))
    await wait_committed(s, 40, timeout=90)
    events = await read_json(s.bootstrap, s.responses, 40, timeout=10)
    statuses = [a["status"] for e in events for a in e["attempt_log"]]
    assert statuses.count(201) == 40
    assert statuses.count(429) <= 2  # the limiter keeps the worker inside Gorgias' leaky bucket
    assert sum(e["rate_limit_wait_ms"] for e in events) > 1000  # it did have to wait
