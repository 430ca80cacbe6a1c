"""Customer templates end to end (real broker, sandbox process): an upsert keyed by external_id alone
updates without contact data (and is dead-lettered only when it would have to create); a merge never
sends an empty body, sets the record's fields on the customer kept, and says which customer survived."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.kafka_io import publish, read_json
from tests.support.processes import gorgias
from tests.support.scenario import Scenario, templated, wait_committed

pytestmark = pytest.mark.integration


def customer(s: Scenario, email: str, **extra: Any) -> int:
    made: int = gorgias(s.sandbox, "POST", "/api/customers", {
        "name": email.split("@")[0], "email": email,
        "channels": [{"type": "email", "address": email, "preferred": True}], **extra})["id"]
    return made


async def test_an_upsert_by_external_id_alone_updates_without_contact_data(
        scenario: Scenario, run_worker: Any) -> None:
    s = scenario
    await s.create_topics()
    jane = customer(s, "jane@example.com", external_id="crm-1")
    await publish(s.bootstrap, s.source, [{"external_id": "crm-1", "note": "VIP"},
                                          {"external_id": "crm-404", "note": "nobody"}])
    await run_worker(s.config(templated(s, "upsert_customer")))
    await wait_committed(s, 2)
    events = await read_json(s.bootstrap, s.responses, 2, timeout=10)
    (event,) = [e for e in events if e["outcome"] == "delivered"]
    assert event["response"]["body"]["id"] == jane and event["response"]["body"]["note"] == "VIP"
    (letter,) = await read_json(s.bootstrap, s.dead_letters, 1, timeout=60)
    assert "no customer has external_id 'crm-404', and creating one needs an email or a phone" in letter["reason"]
    assert len(s.sandbox.state()["customers"]) == 1


async def test_a_merge_sets_the_record_s_fields_on_the_kept_customer_and_names_it(
        scenario: Scenario, run_worker: Any) -> None:
    s = scenario
    await s.create_topics()
    source, target = customer(s, "dup@example.com"), customer(s, "main@example.com")
    await publish(s.bootstrap, s.source, [{"source_id": source, "target_id": target, "note": "merged from dup"}])
    await run_worker(s.config(templated(s, "merge_customers")))
    await wait_committed(s, 1)
    (event,) = await read_json(s.bootstrap, s.responses, 1, timeout=10)
    assert event["outcome"] == "delivered"
    assert event["customer_merge"] == {"merged_away_id": source, "kept_id": target}
    kept = {c["id"]: c for c in s.sandbox.state()["customers"]}
    assert list(kept) == [target] and kept[target]["note"] == "merged from dup"
    counts = s.sandbox.counters()["requests"]
    assert counts["PUT /api/customers/merge"] == {"200": 1} and counts["PUT /api/customers/{id}"] == {"202": 1}
