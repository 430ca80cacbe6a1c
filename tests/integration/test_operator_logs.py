"""What an operator reads in the log while records flow: retries and dead letters, once each, with the
records' destination, topic, partition and offset."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from tests.support.kafka_io import publish
from tests.support.processes import API_KEY
from tests.support.scenario import Scenario, ticket, wait_committed
from worker.host.logs import ContextFilter

pytestmark = pytest.mark.integration


async def test_retries_and_dead_letters_are_logged_once_each_with_their_records(
    scenario: Scenario, run_worker: Any, caplog: pytest.LogCaptureFixture
) -> None:
    s = scenario
    await s.create_topics()
    s.sandbox.admin("PUT", "faults", {"spec": "burst429=1:1@POST /api/tickets"})
    await publish(s.bootstrap, s.source, [ticket(0), b"not json"])
    caplog.set_level(logging.INFO, logger="worker")
    caplog.handler.addFilter(ContextFilter())  # as on the worker's own handler (worker.host.logs.logging_config)
    await run_worker(s.config(s.destination(delivery={"max_in_flight": 1})))
    await wait_committed(s, 2)

    ours = [r for r in caplog.records if r.name.startswith("worker")]
    retries = [r for r in ours if "retrying in" in r.getMessage()]
    assert len(retries) == 1
    retry = retries[0]
    assert "429" in retry.getMessage()
    assert (retry.destination, retry.topic, retry.partition, retry.offset) == ("dest", s.source, 0, 0)  # type: ignore[attr-defined]
    letters = [r for r in ours if r.getMessage().startswith("dead letter")]
    assert len(letters) == 1
    letter = letters[0]
    assert "stage decode" in letter.getMessage() and "not valid JSON" in letter.getMessage()
    assert (letter.destination, letter.topic, letter.partition, letter.offset, letter.stage) == (  # type: ignore[attr-defined]
        "dest", s.source, 0, 1, "decode")
    assert not [r for r in ours if r.levelno >= logging.ERROR]
    assert all(API_KEY not in r.getMessage() for r in caplog.records)
    assert not [r for r in caplog.records if r.name == "httpx" and r.levelno < logging.WARNING]
