"""Replaying dead letters after a fix: the records go through the destination again, once."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.conftest import Scenario
from tests.integration.test_pipeline import ticket
from tests.support.kafka_io import publish, read_json
from worker.config import parse_config
from worker.replay import replay

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

    done = await replay(config, dest, {"deliver"})
    assert done.replayed == 3
    again = await replay(config, dest, {"deliver"})
    assert again.replayed == 0  # progress is kept: a second run does not replay twice

    events = await read_json(s.bootstrap, s.responses, 6, timeout=30)
    delivered = [e for e in events if e["outcome"] == "delivered"]
    assert len(delivered) == 3
    assert sorted(t["external_id"] for t in s.sandbox.state()["tickets"]) == ["req-0", "req-1", "req-2"]
