"""``delivery.coalesce: jobs`` end to end (real broker, sandbox process running jobs in the background): calls
of many tickets asking the same change wait for the budget and go as one Gorgias job, delivered when the job
is read back done; a ticket's later record waits for the job; an errored job dead-letters its records as
unknown with the job's info; a worker SIGKILLed while its job runs is replaced by one that follows it.

The worker's own rate limiter makes the calls wait: a bucket of 3 calls per 9 s, full at start, frees a
token every 3 s, so calls due in the first seconds wait for the budget (the sandbox's limit stays off)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.support.kafka_io import publish, read_json_to_end, wait_for
from tests.support.processes import WorkerProcess
from tests.support.scenario import Scenario, kill_once_its_job_is_marked, new_ticket, templated, wait_committed

pytestmark = pytest.mark.integration

BY_TICKET = {"enabled": True, "algorithm": "by_attribute", "attributes": ["ticket_id"], "max_wait_ms": 500}
SLOW_BUDGET = {"enabled": True, "requests": 3, "per_seconds": 9, "headroom": 0, "assume_full_at_start": True}
POLLING = {"job": {"first_poll_s": 0.5, "max_poll_interval_s": 1, "max_wait_s": 120}}


def coalescing(s: Scenario, polling: dict[str, Any] = POLLING, **delivery: Any) -> dict[str, Any]:
    dest = templated(s, "update_ticket", polling, batching=BY_TICKET,
                     delivery={"coalesce": "jobs", "coalesce_max_tickets": 50, **delivery})
    dest["credential"]["rate_limit"] = SLOW_BUDGET
    return dest


def by_ticket(_: int, value: Any) -> bytes:
    return str(value["ticket_id"]).encode()


def job_events(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in events if e["request"]["url"].endswith("/api/jobs")]


async def test_waiting_updates_of_many_tickets_go_as_one_job_and_a_tickets_next_record_waits_for_it(
        scenario: Scenario, run_worker: Any) -> None:
    s = scenario
    await s.create_topics()
    s.sandbox.admin("PUT", "jobs", {"duration_s": 10})  # longer than the budget makes the next record wait
    tickets = [new_ticket(s, f"j{i}@example.com") for i in range(8)]
    unique = new_ticket(s, "u@example.com")
    await publish(s.bootstrap, s.source, [{"ticket_id": t, "status": "closed", "tags": ["late"]} for t in tickets]
                  + [{"ticket_id": unique, "priority": "high"}], key=by_ticket)
    # reads every 4 s at most, a token every 3 s: tokens are left for other calls while the job runs
    await run_worker(s.config(coalescing(s, {"job": {"first_poll_s": 2, "max_poll_interval_s": 4}})))

    async def job_created() -> bool:
        return bool(s.sandbox.state()["jobs"])

    assert await wait_for(job_created, timeout=60), "no job was created"
    job_tickets = s.sandbox.state()["jobs"][0]["params"]["ticket_ids"]
    assert len(job_tickets) >= 3 and set(job_tickets) <= set(tickets)
    first = job_tickets[0]
    await publish(s.bootstrap, s.source, [{"ticket_id": first, "status": "open"}], key=by_ticket)
    await wait_committed(s, 10, timeout=90)

    events = await read_json_to_end(s.bootstrap, s.responses)
    assert all(e["outcome"] == "delivered" for e in events)
    assert sum(e["record_count"] for e in events) == 10
    [job] = [e for e in job_events(events) if e["jobs"][0]["id"] == s.sandbox.state()["jobs"][0]["id"]]
    assert job["record_count"] == len(job_tickets) and job["jobs"][0]["status"] == "done"
    assert job["request"]["body"] == {"type": "updateTicket", "params": {
        "ticket_ids": job_tickets, "updates": {"status": "closed", "tags": ["late"]}}}
    later = next(e for e in events if e["request"]["url"].endswith(f"/api/tickets/{first}")
                 and e["records"][0]["offset"] == 9)
    assert later["started_at"] >= job["finished_at"]  # it waited for the job to end
    state = {t["id"]: t for t in s.sandbox.state()["tickets"]}
    assert state[first]["status"] == "open"  # the job's close came first, the later record's open after it
    assert all(state[t]["status"] == "closed" for t in tickets if t != first)
    assert all([tag["name"] for tag in state[t]["tags"]] == ["late"] for t in tickets)
    assert state[unique]["priority"] == "high"
    counts = s.sandbox.counters()["requests"]
    assert counts["POST /api/jobs"]["201"] == len(job_events(events))


async def test_an_errored_job_dead_letters_its_records_as_unknown_with_the_jobs_info(
        scenario: Scenario, run_worker: Any) -> None:
    s = scenario
    await s.create_topics()
    s.sandbox.admin("PUT", "faults", {"spec": "job_errored=1"})
    tickets = [new_ticket(s, f"e{i}@example.com") for i in range(8)]
    await publish(s.bootstrap, s.source, [{"ticket_id": t, "tags": ["vip"]} for t in tickets], key=by_ticket)
    await run_worker(s.config(coalescing(s)))
    await wait_committed(s, 8, timeout=90)
    letters = await read_json_to_end(s.bootstrap, s.dead_letters)
    events = await read_json_to_end(s.bootstrap, s.responses)
    [letter] = letters
    assert letter["stage"] == "deliver" and letter["call"]["outcome"] == "unknown"
    job = letter["call"]["jobs"][0]
    assert job["status"] == "errored" and job["info"]["failed_ticket_ids"]
    assert "ended errored" in letter["reason"] and str(job["info"]["failed_ticket_ids"][0]) in letter["reason"]
    assert len(letter["records"]) == len(s.sandbox.state()["jobs"][0]["params"]["ticket_ids"]) >= 3
    delivered = sum(e["record_count"] for e in events if e["outcome"] == "delivered")
    assert delivered + len(letter["records"]) == 8  # the calls that went alone, and the job's


async def test_a_worker_killed_while_its_job_runs_is_replaced_by_one_that_follows_it(
        scenario: Scenario, tmp_path: Path) -> None:
    s = scenario
    await s.create_topics(partitions=2)
    s.sandbox.admin("PUT", "jobs", {"duration_s": 20})
    tickets = [new_ticket(s, f"k{i}@example.com") for i in range(8)]
    await publish(s.bootstrap, s.source, [{"ticket_id": t, "status": "closed"} for t in tickets], key=by_ticket)
    doc = s.config(coalescing(s))
    await kill_once_its_job_is_marked(s, s.write(tmp_path, doc))
    created = s.sandbox.counters()["requests"]["POST /api/jobs"]["201"]
    job = s.sandbox.state()["jobs"][0]
    worker = WorkerProcess(s.write(tmp_path, doc), s.web_port).start()
    try:
        await wait_committed(s, 8, timeout=120)
    finally:
        worker.stop()
    events = await read_json_to_end(s.bootstrap, s.responses)
    resumed = [e for e in events if e.get("jobs") and e["jobs"][0]["resumed"]]
    assert resumed and {e["jobs"][0]["id"] for e in resumed} == {job["id"]}
    assert sum(e["record_count"] for e in resumed) == len(job["params"]["ticket_ids"])
    assert all(e["outcome"] == "delivered" for e in events)
    assert s.sandbox.counters()["requests"]["POST /api/jobs"]["201"] == created  # followed, not created again
    assert {t["status"] for t in s.sandbox.state()["tickets"] if t["id"] in tickets} == {"closed"}


async def test_after_a_restart_a_tickets_newer_records_wait_for_the_job_its_older_ones_are_in(
        scenario: Scenario, tmp_path: Path) -> None:
    s = scenario
    await s.create_topics()
    s.sandbox.admin("PUT", "jobs", {"duration_s": 30})  # still running when the replacement sends its first calls
    tickets = [new_ticket(s, f"n{i}@example.com") for i in range(8)]
    await publish(s.bootstrap, s.source, [{"ticket_id": t, "status": "closed"} for t in tickets], key=by_ticket)
    doc = s.config(coalescing(s))
    await kill_once_its_job_is_marked(s, s.write(tmp_path, doc))
    job = s.sandbox.state()["jobs"][0]
    in_job = job["params"]["ticket_ids"]
    s.sandbox.admin("PUT", "jobs", {"duration_s": 1})  # the jobs created from now on end soon
    # each ticket of the job is reopened after the crash: consumed with its record in the job, in one window
    await publish(s.bootstrap, s.source, [{"ticket_id": t, "status": "open"} for t in in_job], key=by_ticket)
    worker = WorkerProcess(s.write(tmp_path, doc), s.web_port).start()
    try:
        await wait_committed(s, 8 + len(in_job), timeout=150)
    finally:
        worker.stop()
    events = await read_json_to_end(s.bootstrap, s.responses)
    assert all(e["outcome"] == "delivered" for e in events)
    state = {t["id"]: t for t in s.sandbox.state()["tickets"]}
    assert {state[t]["status"] for t in in_job} == {"open"}  # the job's close first, the newer open after it
    assert all(state[t]["status"] == "closed" for t in tickets if t not in in_job)
    closing = [j for j in s.sandbox.state()["jobs"]
               if j["params"]["updates"].get("status") == "closed" and set(j["params"]["ticket_ids"]) & set(in_job)]
    assert [j["id"] for j in closing] == [job["id"]]  # followed, not created again
    closed_offsets = {tickets.index(t) for t in in_job}  # the records the job carried
    for event in events:
        carried = {r["offset"] for r in event["records"]} & closed_offsets
        if carried:  # only by the call that followed the job
            assert event["jobs"] and event["jobs"][0]["id"] == job["id"] and event["jobs"][0]["resumed"], event
