"""Merged objects end to end: an update aimed at a merged customer follows the 301 once and is delivered."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support import http
from tests.support.kafka_io import publish, read_json
from tests.support.processes import API_KEY
from tests.support.scenario import Scenario, wait_committed

pytestmark = pytest.mark.integration


def api(s: Scenario, method: str, path: str, body: Any = None) -> Any:
    r = http.request(method, f"{s.sandbox.url}{path}", json=body, auth=("agent@acme.com", API_KEY),
                      headers={"Host": "acme.gorgias.com"}, timeout=10)
    r.raise_for_status()
    return r.json() if r.content else None


async def test_an_update_of_a_merged_customer_lands_on_the_customer_it_was_merged_into(
    scenario: Scenario, run_worker: Any
) -> None:
    s = scenario
    await s.create_topics()
    ids = [api(s, "POST", "/api/customers", {"name": e, "email": e, "channels": [
        {"type": "email", "address": e, "preferred": True}]})["id"] for e in ("old@example.com", "new@example.com")]
    api(s, "PUT", f"/api/customers/merge?source_id={ids[0]}&target_id={ids[1]}", {"name": "new@example.com"})
    await publish(s.bootstrap, s.source, [{"customer_id": ids[0], "data": {"tier": "gold"}}])
    endpoint = {"template": "set_customer_data", "method": None, "url": None}
    await run_worker(s.config(s.destination(endpoint=endpoint)))
    await wait_committed(s, 1)
    [event] = await read_json(s.bootstrap, s.responses, 1, timeout=10)
    assert event["outcome"] == "delivered", event["response"]["error"]
    assert [a["status"] for a in event["attempt_log"]] == [301, 202]
    assert event["merged"]["original_id"] == ids[0] and event["merged"]["merged_into_id"] == ids[1]
    assert event["merged"]["to_url"].endswith(f"/api/customers/{ids[1]}/data")
    assert [c["data"] for c in s.sandbox.state()["customers"] if c["id"] == ids[1]] == [{"tier": "gold"}]
