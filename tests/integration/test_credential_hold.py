"""Issue 19 item 3 against the sandbox: a refused key (401) or route (403) holds the calls instead of
dead-lettering the stream; a rotated Secret file resumes them without a restart; a hold outlasting the
retry budget dead-letters them only when asked; stopping while held ends at once."""

from __future__ import annotations

import logging
import re
import time
from pathlib import Path
from typing import Any

import pytest

from tests.support.kafka_io import committed, publish, read_json, read_to_end, wait_for
from tests.support.processes import API_KEY
from tests.support.scenario import Scenario, ticket, wait_committed
from worker.core.config.worker_config import parse_config
from worker.host import metrics
from worker.service.runtime import Runtime

pytestmark = pytest.mark.integration

ROTATED = "rotated-api-key-2f9c"


def held_gauge(account: str = "acme/basic") -> float | None:
    return metrics.REGISTRY.get_sample_value("gorgias_worker_credential_held", {"account": account})


def state(runtime: Runtime, name: str = "dest") -> dict[str, Any]:
    return runtime.pipelines[name].status()


async def test_a_refused_key_holds_every_call_and_a_rotated_secret_file_resumes_them(
    scenario: Scenario, run_worker: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    s = scenario
    await s.create_topics()
    key_file = tmp_path / "gorgias-api-key"
    key_file.write_text(API_KEY)
    s.sandbox.admin("PUT", "credentials", {"email": "agent@acme.com", "api_key": ROTATED})  # reset in Gorgias
    await publish(s.bootstrap, s.source, [ticket(i) for i in range(5)])
    caplog.set_level(logging.INFO, logger="worker")
    credential = {"api_key_env": None, "api_key_file": str(key_file)}
    runtime = await run_worker(s.config(s.destination(credential=credential)))

    assert await wait_for(lambda: state(runtime)["state"] == "held", 30)
    status = state(runtime)
    assert "HTTP 401" in status["reason"] and status["credential"]["state"] == "held"
    assert held_gauge() == 1
    assert await wait_for(lambda: s.sandbox.counters()["requests"].get("GET /api/account", {}).get("401", 0) >= 2, 30)
    assert await read_to_end(s.bootstrap, s.dead_letters) == []  # nothing dead-lettered
    assert s.sandbox.state()["tickets"] == []

    key_file.write_text(ROTATED + "\n")  # the Secret is updated; the worker is not restarted
    await wait_committed(s, 5)
    events = await read_json(s.bootstrap, s.responses, 5, timeout=30)
    assert [e["outcome"] for e in events] == ["delivered"] * 5
    assert all(e["attempts"] == 1 for e in events)
    assert len(s.sandbox.state()["tickets"]) == 5
    assert await read_to_end(s.bootstrap, s.dead_letters) == []
    assert state(runtime)["state"] == "active" and held_gauge() == 0

    lines = [r.getMessage() for r in caplog.records if r.name == "worker.gorgias.holds"]
    refused = [line for line in lines if "refused by Gorgias" in line]
    works = [line for line in lines if "works again" in line]
    assert len(refused) == 1 and len(works) == 1, lines  # one line per state change
    assert str(key_file) in refused[0] and "no restart needed" in refused[0] and "dest" in refused[0]
    assert all(secret not in line for line in lines for secret in (API_KEY, ROTATED))


async def test_a_refused_route_holds_its_destination_and_stopping_does_not_wait_for_it(
    scenario: Scenario, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    s = scenario
    await s.create_topics()
    monkeypatch.setenv("OBSERVER_KEY", "observer-key")  # a user who may read but not write
    await publish(s.bootstrap, s.source, [ticket(i) for i in range(3)])
    caplog.set_level(logging.INFO, logger="worker")
    doc = s.config(s.destination(credential={"username": "observer@acme.com", "api_key_env": "OBSERVER_KEY"}))
    doc["worker"]["shutdown_grace_s"] = 30
    runtime = Runtime(parse_config(doc))
    await runtime.start()
    try:
        assert await wait_for(lambda: state(runtime)["state"] == "held", 30)
        assert "POST /api/tickets: HTTP 403" in state(runtime)["reason"]
        assert state(runtime)["credential"]["state"] == "ok"  # the key works; the route is refused
        assert await read_to_end(s.bootstrap, s.dead_letters) == []
    finally:
        started = time.monotonic()
        await runtime.stop()
        stopped_in = time.monotonic() - started
    assert stopped_in < 30  # the held call is not on the wire: it is abandoned, not given the grace
    assert await committed(s.bootstrap, s.group_of(), s.source) in ({}, {0: 0})  # sent again after a restart
    assert s.sandbox.state()["tickets"] == []
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("worker")]
    assert any("account acme answers" in line and "call limit" in line for line in lines)  # the start's check
    assert any("destination dest held" in line and "observer@acme.com" in line for line in lines)


async def test_held_calls_are_dead_lettered_after_the_retry_budget_only_when_asked(
    scenario: Scenario, run_worker: Any
) -> None:
    s = scenario
    await s.create_topics()
    s.sandbox.admin("PUT", "credentials", {"email": "agent@acme.com", "api_key": ROTATED})
    await publish(s.bootstrap, s.source, [ticket(i) for i in range(3)])
    dest = s.destination(delivery={"dead_letter_held_calls": True, "max_retry_time_s": 3})
    await run_worker(s.config(dest))
    await wait_committed(s, 3)
    letters = await read_json(s.bootstrap, s.dead_letters, 3, timeout=30)
    assert len(letters) == 3
    for letter in letters:
        assert letter["stage"] == "deliver"
        assert "delivery.dead_letter_held_calls" in letter["reason"] and "HTTP 401" in letter["reason"]
        held_for = re.search(r"held for (\d+) s, longer than delivery.max_retry_time_s \(3 s\)", letter["reason"])
        assert held_for and int(held_for.group(1)) >= 3, letter["reason"]  # only once the budget was spent
    assert s.sandbox.state()["tickets"] == []
