"""A call taken for sending just before its partition is revoked is left to the new owner, not sent twice."""

from __future__ import annotations

from typing import Any

import pytest
from aiokafka import TopicPartition

from tests.support.kafka_io import publish, wait_for
from tests.support.scenario import Scenario, ticket
from worker.host import metrics

pytestmark = pytest.mark.integration


async def test_a_call_started_right_before_a_revoke_is_not_sent(scenario: Scenario, run_worker: Any) -> None:
    s = scenario
    await s.create_topics()
    # the account's bucket starts full and drains one token per 300 s: the call waits for its token, and
    # we start it ourselves, at the worst moment
    budget = {"enabled": True, "requests": 2, "per_seconds": 600, "headroom": 0, "assume_full_at_start": True}
    runtime = await run_worker(s.config(s.destination(credential={"rate_limit": budget})))
    pipeline = runtime.pipelines["dest"]
    await publish(s.bootstrap, s.source, [ticket(0)])

    async def held() -> bool:
        return pipeline.chain.open.waiting_calls == 1

    assert await wait_for(held, 30, interval=0.05)
    call = next(pipeline.chain.open.eligible())
    before = on_wire_gauges()
    pipeline.calls.start_call(call, 0.0)  # its token is taken and its task created, not yet run...
    # it holds a call slot: on the wire, in the status and in the metric (and its deprecated alias)
    assert pipeline.status()["calls_on_wire"] == 1
    assert on_wire_gauges() == (before[0] + 1, before[1] + 1)
    await pipeline.on_partitions_revoked({TopicPartition(s.source, 0)})  # ...when the partition moves away
    # the call's task is over (it frees its slot last): whatever it was going to send, it has sent
    assert await wait_for(lambda: pipeline.status()["calls_on_wire"] == 0, 30, interval=0.05)
    # the new owner sends it (the record was not committed); this worker must not send it as well
    assert s.sandbox.counters()["requests"].get("POST /api/tickets", {}) == {}
    assert s.sandbox.state()["tickets"] == []
    assert pipeline.status()["calls_on_wire"] == 0
    assert on_wire_gauges() == before


def on_wire_gauges() -> tuple[float, float]:
    """gorgias_worker_calls_on_wire and its deprecated alias gorgias_worker_calls_in_flight, for "dest"."""
    on_wire, alias = (metrics.REGISTRY.get_sample_value(name, {"destination": "dest"}) or 0.0
                      for name in ("gorgias_worker_calls_on_wire", "gorgias_worker_calls_in_flight"))
    return on_wire, alias
