"""ticket_job end to end (real broker, sandbox process whose jobs run in the background): the records are
delivered when the job is read back done, not when it is created; a failed job dead-letters them as
unknown with its status and info; a worker SIGKILLed while its job runs is replaced by one that follows
that job instead of creating it again."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.support.kafka_io import publish, read_json
from tests.support.processes import WorkerProcess
from tests.support.scenario import Scenario, kill_once_its_job_is_marked, new_ticket, templated, wait_committed

pytestmark = pytest.mark.integration

POLLING = {"job": {"first_poll_s": 0.5, "max_poll_interval_s": 1, "max_wait_s": 120}}
BY_STATUS = {"enabled": True, "algorithm": "by_attribute", "attributes": ["status"], "max_wait_ms": 1000}


def job_destination(s: Scenario, **overrides: Any) -> dict[str, Any]:
    return templated(s, "ticket_job", POLLING, **{"batching": BY_STATUS, **overrides})


async def test_a_job_is_delivered_when_gorgias_reports_it_done(scenario: Scenario, run_worker: Any) -> None:
    s = scenario
    await s.create_topics()
    s.sandbox.admin("PUT", "jobs", {"duration_s": 3})
    tickets = [new_ticket(s, f"t{i}@example.com") for i in range(3)]
    await publish(s.bootstrap, s.source, [{"ticket_id": t, "status": "closed", "tags": "late, vip"} for t in tickets])
    await run_worker(s.config(job_destination(s)))
    await wait_committed(s, 3, timeout=60)
    event = (await read_json(s.bootstrap, s.responses, 1, timeout=10))[0]
    assert event["outcome"] == "delivered" and event["record_count"] == 3
    assert event["request"]["body"]["params"]["updates"] == {"status": "closed", "tags": ["late", "vip"]}
    job = event["jobs"][0]
    assert job["status"] == "done" and job["polls"] >= 2 and not job["resumed"]  # 3 s at 0.5 s, then 1 s pauses
    assert event["response"]["status"] == 202 and event["response"]["body"]["status"] == "done"
    state = {t["id"]: t for t in s.sandbox.state()["tickets"]}
    assert all(state[t]["status"] == "closed" for t in tickets)
    assert all(sorted(tag["name"] for tag in state[t]["tags"]) == ["late", "vip"] for t in tickets)
    counts = s.sandbox.counters()["requests"]
    assert counts["POST /api/jobs"] == {"201": 1} and counts["GET /api/jobs/{id}"]["202"] == job["polls"]


async def test_a_failed_job_dead_letters_its_records_as_unknown(scenario: Scenario, run_worker: Any) -> None:
    s = scenario
    await s.create_topics()
    s.sandbox.admin("PUT", "faults", {"spec": "job_fatal_errored=1"})
    tickets = [new_ticket(s, f"f{i}@example.com") for i in range(2)]
    await publish(s.bootstrap, s.source, [{"ticket_id": t, "status": "closed"} for t in tickets])
    await run_worker(s.config(job_destination(s)))
    await wait_committed(s, 2, timeout=60)
    letter = (await read_json(s.bootstrap, s.dead_letters, 1, timeout=60))[0]
    assert letter["stage"] == "deliver" and len(letter["records"]) == 2
    assert "ended fatal_errored" in letter["reason"] and "The job failed." in letter["reason"]
    assert letter["call"]["outcome"] == "unknown" and letter["call"]["jobs"][0]["status"] == "fatal_errored"


async def test_custom_fields_never_go_into_a_job(scenario: Scenario, run_worker: Any) -> None:
    s = scenario
    await s.create_topics()
    ticket = new_ticket(s)
    await publish(s.bootstrap, s.source, [{"ticket_id": ticket, "status": "closed",
                                           "custom_fields": [{"id": 1, "value": "Refund"}]}])
    await run_worker(s.config(job_destination(s)))
    await wait_committed(s, 1, timeout=60)
    letter = (await read_json(s.bootstrap, s.dead_letters, 1, timeout=60))[0]
    assert letter["stage"] == "render" and "set_ticket_custom_fields" in letter["reason"]
    assert "POST /api/jobs" not in s.sandbox.counters()["requests"]


async def test_a_restarted_worker_follows_the_job_instead_of_creating_it_again(
        scenario: Scenario, tmp_path: Path) -> None:
    s = scenario
    await s.create_topics()
    s.sandbox.admin("PUT", "jobs", {"duration_s": 25})
    tickets = [new_ticket(s, f"r{i}@example.com") for i in range(2)]
    await publish(s.bootstrap, s.source, [{"ticket_id": t, "priority": "high"} for t in tickets])
    doc = s.config(job_destination(s, batching={**BY_STATUS, "attributes": ["priority"]}))
    await kill_once_its_job_is_marked(s, s.write(tmp_path, doc))
    worker = WorkerProcess(s.write(tmp_path, doc), s.web_port).start()
    try:
        await wait_committed(s, 2, timeout=120)
    finally:
        worker.stop()
    event = (await read_json(s.bootstrap, s.responses, 1, timeout=10))[0]
    assert event["outcome"] == "delivered" and event["jobs"][0]["resumed"] is True
    assert s.sandbox.counters()["requests"]["POST /api/jobs"] == {"201": 1}
    assert {t["priority"] for t in s.sandbox.state()["tickets"]} == {"high"}
