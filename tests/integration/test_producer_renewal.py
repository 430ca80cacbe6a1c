"""Issue 19 item 2 at the broker: when Kafka refuses the outcome producer's state (here a real
OUT_OF_ORDER_SEQUENCE_NUMBER answer), the worker starts a new producer and writes again what was not
acknowledged, each outcome once, without a restart.

A broker restarted on the same data refuses the producer that way only by chance (the SIGTERM/SIGKILL tests
of test_broker_outage.py cover what a restart does); here the producer's next sequence numbers are moved
ahead, as if batches had been lost on the way, so the broker's refusal comes every time. The other refusals
(UnknownProducerId, a fenced or older epoch) take the same path: tests/unit/kafka/test_publisher.py.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

import orjson
import pytest

from tests.support.kafka_io import publish, read_to_end
from tests.support.scenario import Scenario, outcomes, ticket, wait_committed

pytestmark = pytest.mark.integration

LOST_RECORDS = 3  # records the broker believes it has not received from this producer


async def test_an_out_of_order_sequence_brings_a_new_producer_and_every_outcome_once(
    scenario: Scenario, run_worker: Any, caplog: pytest.LogCaptureFixture
) -> None:
    s = scenario
    await s.create_topics(partitions=2)
    caplog.set_level(logging.WARNING, logger="worker.kafka.publisher")
    await publish(s.bootstrap, s.source, [ticket(i) for i in range(6)], key=lambda i, _: f"k{i % 2}".encode())
    runtime = await run_worker(s.config(s.destination()))
    await wait_committed(s, 6)
    publisher = runtime._publisher
    old = publisher.producer
    sequences = old._txn_manager._sequence_numbers  # aiokafka's next sequence per partition it wrote to
    assert sequences, "the producer wrote nothing yet: the test would show nothing"
    for partition in list(sequences):
        old._txn_manager.increment_sequence_number(partition, LOST_RECORDS)

    await publish(s.bootstrap, s.source, [ticket(i) for i in range(6, 14)], key=lambda i, _: f"k{i % 2}".encode())
    await wait_committed(s, 14)

    assert publisher.renewals == 1 and publisher.producer is not old
    refused = [r.getMessage() for r in caplog.records if "refused the outcome producer" in r.getMessage()]
    assert len(refused) == 1 and "OutOfOrderSequenceNumber" in refused[0], refused
    assert runtime.pipelines["dest"].status()["state"] == "active"
    tickets = Counter(t["external_id"] for t in s.sandbox.state()["tickets"])
    assert sorted(tickets) == sorted(f"req-{i}" for i in range(14)) and set(tickets.values()) == {1}
    events, letters = await outcomes(s)
    assert not letters and len(events) == 14 and set(events.values()) == {1}  # refused batches were not written
    ids: dict[tuple[int, int], set[str]] = {}
    for message in await read_to_end(s.bootstrap, s.responses):
        event = orjson.loads(message.value)
        assert event["outcome"] == "delivered"
        for record in event["records"]:
            ids.setdefault((record["partition"], record["offset"]), set()).add(event["event_id"])
    assert all(len(found) == 1 for found in ids.values())
