"""Batches under each grouping algorithm, end to end: one call carries a key's records, order is kept."""

from __future__ import annotations

from collections import Counter
from typing import Any

import jsonschema
import pytest

from tests.support.kafka_io import publish, read_json_to_end
from tests.support.scenario import RESPONSE_SCHEMA, Scenario, setup_tickets, wait_committed

pytestmark = pytest.mark.integration

RECORDS = 60


@pytest.mark.parametrize(
    ("batching", "max_calls"),
    [
        ({"algorithm": "by_attribute", "max_wait_ms": 1500}, 3),
        ({"algorithm": "tumbling_window", "window_ms": 2000}, 6),
        ({"algorithm": "session_window", "gap_ms": 700}, 3),
    ],
    ids=["by_attribute", "tumbling_window", "session_window"],
)
async def test_keyed_algorithms_send_one_call_per_key_in_order(
    scenario: Scenario, run_worker: Any, batching: dict[str, Any], max_calls: int
) -> None:
    s = scenario
    await s.create_topics(partitions=2)
    tickets, fields = setup_tickets(s)
    records = [{"ticket_id": tickets[i % 3], "id": fields[i % 2], "value": f"v{i}"} for i in range(RECORDS)]
    await publish(s.bootstrap, s.source, records, key=lambda _, r: str(r["ticket_id"]).encode())
    dest = s.destination(
        endpoint={"method": "PUT", "url": "https://{domain}.gorgias.com/api/tickets/{ticket_id}/custom-fields",
                  "exclude_attributes": ["ticket_id"]},
        batching={"enabled": True, "attributes": ["ticket_id"], "batch_size": 100, **batching},
    )
    await run_worker(s.config(dest))
    await wait_committed(s, RECORDS)

    events = await read_json_to_end(s.bootstrap, s.responses)
    assert sum(e["record_count"] for e in events) == RECORDS
    assert 3 <= len(events) <= max_calls
    for event in events:
        jsonschema.validate(event, RESPONSE_SCHEMA)
        assert event["response"]["status"] == 200
        assert event["batch"]["algorithm"] == batching["algorithm"]
        (ticket_id,) = event["batch"]["key"]
        assert event["request"]["url"].endswith(f"/api/tickets/{ticket_id}/custom-fields")
        assert all("ticket_id" not in item for item in event["request"]["body"])
    # order within a key: the last value written for each (ticket, field) is the last one published
    state = {t["id"]: t for t in s.sandbox.state()["tickets"]}
    for t in tickets:
        expected = {}
        for r in records:
            if r["ticket_id"] == t:
                expected[r["id"]] = r["value"]
        got = {int(k): v["value"] if isinstance(v, dict) else v for k, v in state[t]["custom_fields"].items()}
        assert got == expected


async def test_arrival_order_fills_batches_to_size_and_caps_bytes(scenario: Scenario, run_worker: Any) -> None:
    s = scenario
    await s.create_topics()
    _, fields = setup_tickets(s)
    records = [{"id": fields[i % 2], "label": f"label {i:03d}", "description": "d" * 50} for i in range(45)]
    await publish(s.bootstrap, s.source, records)
    dest = s.destination(
        endpoint={"method": "PUT", "url": "https://{domain}.gorgias.com/api/custom-fields"},
        batching={"enabled": True, "algorithm": "arrival_order", "batch_size": 10, "max_bytes": 800,
                  "max_wait_ms": 300},
    )
    await run_worker(s.config(dest))
    await wait_committed(s, 45)
    events = await read_json_to_end(s.bootstrap, s.responses)
    sizes = [e["record_count"] for e in events]
    assert sum(sizes) == 45
    assert max(sizes) <= 10
    assert all(e["request"]["body_bytes"] <= 800 for e in events)
    assert Counter(e["batch"]["flush_reason"] for e in events)["bytes"] >= 1
    offsets = sorted(r["offset"] for e in events for r in e["records"])
    assert offsets == list(range(45))
    labels = {d["id"]: d["label"] for d in s.sandbox.state()["custom_fields"]}
    assert labels[fields[0]] == "label 044" and labels[fields[1]] == "label 043"


async def test_back_pressure_sends_the_batches_being_grouped_at_once(scenario: Scenario, run_worker: Any) -> None:
    """At max_pending_records consumption pauses: no record can join the open batches any more, so they are
    sent at once instead of waiting out a window (here 120 s, far beyond the test's patience)."""
    s = scenario
    await s.create_topics()
    tickets, fields = setup_tickets(s)
    records = [{"ticket_id": tickets[i % 3], "id": fields[i % 2], "value": f"v{i}"} for i in range(RECORDS)]
    await publish(s.bootstrap, s.source, records)
    dest = s.destination(
        endpoint={"method": "PUT", "url": "https://{domain}.gorgias.com/api/tickets/{ticket_id}/custom-fields",
                  "exclude_attributes": ["ticket_id"]},
        batching={"enabled": True, "algorithm": "by_attribute", "attributes": ["ticket_id"], "batch_size": 100,
                  "max_wait_ms": 120_000},
        # one pending record pauses consumption: every fetch is flushed, however the records arrive
        delivery={"backoff_initial_s": 0.05, "backoff_max_s": 0.5, "max_in_flight": 8, "max_pending_records": 1},
    )
    await run_worker(s.config(dest))
    await wait_committed(s, RECORDS, timeout=30)
    events = await read_json_to_end(s.bootstrap, s.responses)
    assert sum(e["record_count"] for e in events) == RECORDS
    assert {e["batch"]["flush_reason"] for e in events} == {"drain"}
    assert all(e["outcome"] == "delivered" for e in events)
