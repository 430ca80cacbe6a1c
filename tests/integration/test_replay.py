"""Replaying dead letters after a fix: the records go through the destination again, once."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from tests.support.kafka_io import publish, read_json, wait_for
from tests.support.scenario import Scenario, ticket, wait_committed
from worker.core.config.worker_config import parse_config
from worker.host import metrics
from worker.tools.replay import replay

pytestmark = pytest.mark.integration


async def test_dead_letters_are_replayed_once_after_the_cause_is_fixed(scenario: Scenario, run_worker: Any) -> None:
    s = scenario
    await s.create_topics()
    s.sandbox.admin("PUT", "faults", {"spec": "maintenance=on"})
    await publish(s.bootstrap, s.source, [ticket(i) for i in range(3)], key=lambda i, _: f"k{i}".encode())
    doc = s.config(s.destination(delivery={"max_attempts": 2}))
    await run_worker(doc)
    letters = await read_json(s.bootstrap, s.dead_letters, 3, timeout=30)
    assert len(letters) == 3 and all(x["stage"] == "deliver" for x in letters)
    assert s.sandbox.state()["tickets"] == []

    s.sandbox.admin("PUT", "faults", {})  # the outage is over
    config = parse_config(doc)
    dest = config.destinations[0]
    dry = await replay(config, dest, {"deliver"}, dry_run=True)
    assert (dry.scanned, dry.replayed) == (3, 3)
    assert s.sandbox.state()["tickets"] == []  # a dry run changes nothing
    other = parse_config({**doc, "kafka": {**doc["kafka"], "deployment": "someone-else"}})
    theirs = await replay(other, other.destinations[0], {"deliver"}, dry_run=True)  # same names, same topics
    assert (theirs.scanned, theirs.replayed, theirs.skipped["other deployment"]) == (3, 0, 3)

    done = await replay(config, dest, {"deliver"})
    assert done.replayed == 3
    again = await replay(config, dest, {"deliver"})
    assert again.replayed == 0  # progress is kept: a second run does not replay twice

    events = await read_json(s.bootstrap, s.responses, 6, timeout=30)
    delivered = [e for e in events if e["outcome"] == "delivered"]
    assert len(delivered) == 3
    assert sorted(t["external_id"] for t in s.sandbox.state()["tickets"]) == ["req-0", "req-1", "req-2"]


async def test_a_storm_of_dropped_connections_then_a_replay_leaves_each_ticket_exactly_once(
    scenario: Scenario, run_worker: Any
) -> None:
    s = scenario
    await s.create_topics(partitions=2)
    # Creates are applied then cut off, or cut off before; lookups are cut off too; few attempts.
    s.sandbox.admin("PUT", "faults", {"spec": "apply_then_drop=0.4@POST /api/tickets, drop=0.2@POST /api/tickets, "
                                               "drop=0.7@GET", "seed": 11})
    n = 80
    records = [{"subject": f"Storm {i}", "body_text": f"body {i}", "customer_email": f"c{i % 5}@example.com",
                **({"external_id": f"own-{i}"} if i % 2 else {})} for i in range(n)]  # half bring their own id
    await publish(s.bootstrap, s.source, records, key=lambda i, _: f"k{i}".encode())
    endpoint = {"template": "create_ticket", "method": None, "url": None}
    doc = s.config(s.destination(endpoint=endpoint, delivery={"max_attempts": 2, "backoff_initial_s": 0.01,
                                                              "backoff_max_s": 0.05}))
    name = doc["destinations"][0]["name"]

    def unknown_metric() -> float:  # process-wide: read it before and after this test's worker
        value = metrics.REGISTRY.get_sample_value("gorgias_worker_records_outcome_unknown_total", {"destination": name})
        return value or 0.0

    unknown_before = unknown_metric()
    await run_worker(doc)
    await wait_committed(s, n, timeout=90)
    events = await read_json(s.bootstrap, s.responses, n, timeout=10)
    undelivered = sum(e["outcome"] != "delivered" for e in events)
    assert undelivered, "the storm dead-lettered nothing: the test did not test the replay"
    letters = await read_json(s.bootstrap, s.dead_letters, undelivered, timeout=10)
    assert len(letters) == undelivered

    # Honest outcomes: a dead letter whose ticket was created says unknown, never failed.
    existing = Counter(t["subject"] for t in s.sandbox.state()["tickets"])
    for letter in letters:
        subject = letter["records"][0]["value"]["subject"]
        assert letter["call"]["outcome"] in ("unknown", "failed")
        if existing[subject]:
            assert letter["call"]["outcome"] == "unknown", letter["reason"]
            assert letter["reason"].startswith("outcome unknown"), letter["reason"]
    assert all(count == 1 for count in existing.values()), existing  # the storm itself made no duplicate
    assert any(existing[letter["records"][0]["value"]["subject"]] for letter in letters)  # some were created
    # the alert's counter (GorgiasWorkerOutcomeUnknown) counts exactly the records dead-lettered as unknown
    unknown = sum(len(letter["records"]) for letter in letters if letter["call"]["outcome"] == "unknown")
    assert await wait_for(lambda: unknown_metric() - unknown_before == unknown, 10), (unknown_metric(), unknown)

    s.sandbox.admin("PUT", "faults", {})
    config = parse_config(doc)
    done = await replay(config, config.destinations[0], {"deliver"})
    assert done.replayed == len(letters)
    await wait_committed(s, n + len(letters), timeout=90)

    tickets = Counter(t["subject"] for t in s.sandbox.state()["tickets"])
    assert tickets == Counter(f"Storm {i}" for i in range(n)), tickets  # every record's ticket, exactly once
    first_run = {e["event_id"] for e in events}
    replayed = [e for e in await read_json(s.bootstrap, s.responses, n + len(letters), timeout=10)
                if e["event_id"] not in first_run]
    assert len(replayed) == len(letters) and all(e["outcome"] == "delivered" for e in replayed)
    looked_up = [e for e in replayed if e["attempt_log"][0]["status"] == 200]  # found by the lookup, not sent
    assert len(looked_up) == sum(1 for letter in letters if existing[letter["records"][0]["value"]["subject"]])
