"""Metrics tell Gorgias' latency apart from the time spent waiting for the account's budget."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.kafka_io import publish, read_json
from tests.support.scenario import Scenario, ticket
from worker.host import metrics

pytestmark = pytest.mark.integration


def sample(name: str, **labels: str) -> float:
    """The value of one series in the worker's exposition (0 when absent)."""
    for family in text_string_to_metric_families(metrics.render().decode()):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return float(s.value)
    return 0.0


async def test_request_latency_excludes_the_budget_wait_which_has_its_own_histogram(
    scenario: Scenario, run_worker: Any
) -> None:
    s = scenario
    name, domain = f"honest-{uuid.uuid4().hex[:6]}", "acme"
    account = f"{domain}/basic"
    await s.create_topics()
    await publish(s.bootstrap, s.source, [ticket(i) for i in range(5)], key=lambda i, _: f"k{i}".encode())
    wait_before = sample("gorgias_worker_budget_wait_seconds_sum", account=account)
    waits_before = sample("gorgias_worker_budget_wait_seconds_count", account=account)
    # A bucket of 2 that drains one request a second: even if it is empty when the records arrive,
    # the 3rd, 4th and 5th calls wait about 1, 2 and 3 s for their token.
    dest = s.destination(name, credential={"rate_limit": {"enabled": True, "requests": 2, "per_seconds": 2,
                                                          "headroom": 0}})
    await run_worker(s.config(dest))
    events = await read_json(s.bootstrap, s.responses, 5, timeout=60)
    assert [e["outcome"] for e in events] == ["delivered"] * 5

    waited = sample("gorgias_worker_budget_wait_seconds_sum", account=account) - wait_before
    attempts = sample("gorgias_worker_request_seconds_count", destination=name)
    waits = sample("gorgias_worker_budget_wait_seconds_count", account=account) - waits_before
    assert attempts >= 5 and waits == attempts
    assert waited >= 3.0
    on_the_wire = sample("gorgias_worker_request_seconds_sum", destination=name)
    assert 0 < on_the_wire < waited - 2.0, "Gorgias' latency must not carry the budget wait"
    assert sample("gorgias_worker_call_duration_seconds_count", destination=name) == 5
    whole = sample("gorgias_worker_call_duration_seconds_sum", destination=name)
    assert on_the_wire <= whole < waited, "a call starts once its first token is granted"
    assert not [n for f in text_string_to_metric_families(metrics.render().decode())
                for n in (smp.name for smp in f.samples) if n.endswith("_created")]
