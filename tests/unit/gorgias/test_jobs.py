"""Job calls against the sandbox (in process, one fake clock for both): the job's 201 is not its outcome;
the job is polled through the budget until it ends, a failed or unfinished job leaves the records
``unknown`` with its status and info, and a job created before a restart is followed, not created again."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest

from gorgias_sandbox.server import RunningSandbox, start_sandbox
from gorgias_sandbox.settings import SandboxSettings
from tests.support.gorgias_fakes import CountingTokens, FakeClock, credential, settings
from tests.support.sandbox_client import API_KEY, SandboxClient
from worker.core.requests.jobs import JobPolling, JobReport
from worker.core.requests.request import RenderedRequest
from worker.gorgias.delivery import DeliveryService


@pytest.fixture(autouse=True)
def api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GORGIAS_TEST_KEY", API_KEY)


class Harness(SandboxClient):
    def __init__(self, running: RunningSandbox, clock: FakeClock) -> None:
        super().__init__(running.url)
        self.clock = clock
        self.delivery = DeliveryService(clock=clock, wall_clock=lambda: 1_750_000_000.0 + clock.now,
                                        sleep=clock.sleep)
        self.credential = credential(base_url=running.url, enabled=False)

    async def tickets(self, n: int) -> list[int]:
        out = []
        for i in range(n):
            ticket = await self.api("POST", "/api/tickets", {
                "customer": {"email": f"c{i}@example.com"},
                "messages": [{"channel": "api", "via": "api", "from_agent": False, "body_text": "hello"}]})
            out.append(ticket["id"])
        return out


@pytest.fixture
async def harness() -> AsyncIterator[Harness]:
    clock = FakeClock()
    running = await start_sandbox(SandboxSettings(rate_limit="off", job_duration_s=30), clock=clock)
    h = Harness(running, clock)
    try:
        yield h
    finally:
        await h.delivery.aclose()
        await running.stop()


def job_request(ticket_ids: list[int], updates: dict[str, Any] | None = None) -> RenderedRequest:
    body = {"type": "updateTicket", "params": {"ticket_ids": ticket_ids, "updates": updates or {"status": "closed"}}}
    return RenderedRequest("POST", "https://acme.gorgias.com/api/jobs", {"Content-Type": "application/json"},
                           orjson.dumps(body), "application/json")


def test_a_job_that_did_not_end_well_says_so() -> None:
    assert JobReport(3, "done").reason() is None
    errored = JobReport(3, "errored", info={"failed_ticket_ids": [7]}).reason()
    assert errored is not None and "job 3 ended errored" in errored and "[7]" in errored
    running = JobReport(3, "running", polls=4, waited_s=62).reason()
    assert running is not None and "still running after 62 s" in running


async def test_the_call_is_delivered_when_the_job_is_done_not_when_it_is_created(harness: Harness) -> None:
    ids = await harness.tickets(2)
    marks: list[tuple[int, dict[str, Any]]] = []

    async def created(job_id: int) -> None:  # the crash-recovery mark: written before any poll
        marks.append((job_id, await harness.admin("GET", "counters")))

    tokens = CountingTokens()
    outcome = await harness.delivery.jobs.deliver(job_request(ids), harness.credential, settings(),
                                                  JobPolling(first_s=2, max_pause_s=8, max_wait_s=600),
                                                  tokens=tokens, created=created)
    assert outcome.ok and outcome.final_reason is None
    job_id = marks[0][0]
    assert "GET /api/jobs/{id}" not in marks[0][1]["requests"]
    assert outcome.response_body["id"] == job_id and outcome.response_body["status"] == "done"
    report = outcome.jobs[0]
    assert (report.id, report.status, report.resumed) == (job_id, "done", False)
    assert report.polls == 5  # pauses 2, 4, 8, 8, 8: the job ends at 30 s
    assert harness.clock.sleeps == [2, 4, 8, 8, 8]
    assert tokens.asked == [1] + [2] * report.polls  # the create's token, then one more per poll
    assert [s.method for s in outcome.steps] == ["POST", "GET"] and outcome.steps[1].status == 202
    state = await harness.admin("GET", "state")
    assert {t["status"] for t in state["tickets"]} == {"closed"}


async def test_an_errored_job_leaves_its_records_unknown_with_its_status_and_info(harness: Harness) -> None:
    ids = await harness.tickets(4)
    await harness.admin("PUT", "faults", {"spec": "job_errored=1"})
    outcome = await harness.delivery.jobs.deliver(job_request(ids), harness.credential, settings(),
                                                  JobPolling(first_s=10, max_pause_s=10, max_wait_s=600))
    assert not outcome.ok and outcome.outcome_unknown
    assert outcome.jobs[0].status == "errored" and outcome.jobs[0].info["failed_ticket_ids"] == ids[2:]
    assert outcome.final_reason is not None and "ended errored" in outcome.final_reason
    assert str(ids[2:]).replace(" ", "") in outcome.final_reason.replace(" ", "")


async def test_a_job_still_running_when_the_wait_is_over_is_unknown(harness: Harness) -> None:
    ids = await harness.tickets(1)
    outcome = await harness.delivery.jobs.deliver(job_request(ids), harness.credential, settings(),
                                                  JobPolling(first_s=4, max_pause_s=4, max_wait_s=12))
    assert not outcome.ok and outcome.outcome_unknown
    assert outcome.jobs[0].status == "running" and outcome.jobs[0].polls == 3
    assert outcome.final_reason is not None and "still running" in outcome.final_reason


async def test_a_job_created_before_a_restart_is_followed_not_created_again(harness: Harness) -> None:
    ids = await harness.tickets(1)
    job = await harness.api("POST", "/api/jobs", {"type": "updateTicket",
                                                  "params": {"ticket_ids": ids, "updates": {"priority": "high"}}})
    tokens = CountingTokens()
    outcome = await harness.delivery.jobs.deliver(job_request(ids), harness.credential, settings(),
                                                  JobPolling(first_s=15, max_pause_s=15, max_wait_s=600),
                                                  tokens=tokens, resume=[job["id"]])
    assert outcome.ok and outcome.jobs[0].resumed and outcome.jobs[0].id == job["id"]
    assert tokens.asked == [1, 2]  # the first poll has the call's token
    requests = (await harness.admin("GET", "counters"))["requests"]
    assert requests["POST /api/jobs"] == {"201": 1}  # only the one made before the "restart"
    assert (await harness.admin("GET", "state"))["tickets"][0]["priority"] == "high"


async def test_a_create_refused_is_an_ordinary_failure(harness: Harness) -> None:
    outcome = await harness.delivery.jobs.deliver(job_request([]), harness.credential, settings(),
                                                  JobPolling())
    assert not outcome.ok and not outcome.outcome_unknown and outcome.status == 400 and outcome.jobs == []


async def jobs_on(harness: Harness, ticket_ids: list[int], count: int) -> list[int]:
    """``count`` jobs created straight through the API (as a worker before a restart would have)."""
    out = []
    for _ in range(count):
        params = {"ticket_ids": ticket_ids, "updates": {"status": "closed"}}
        job = await harness.api("POST", "/api/jobs", {"type": "updateTicket", "params": params})
        out.append(job["id"])
    return out


async def test_several_jobs_followed_at_once_are_read_with_one_list_call(harness: Harness) -> None:
    ids = await harness.tickets(2)
    jobs = await jobs_on(harness, ids, 3)
    tokens = CountingTokens()
    watch = harness.delivery.jobs.watch("tags")
    outcome = await harness.delivery.jobs.deliver(job_request(ids), harness.credential, settings(),
                                                  JobPolling(first_s=10, max_pause_s=10, max_wait_s=600),
                                                  tokens=tokens, resume=jobs, watch=watch)
    assert outcome.ok, outcome.final_reason
    assert [(r.id, r.status, r.polls, r.listed) for r in outcome.jobs] == [(j, "done", 3, 3) for j in jobs]
    requests = (await harness.admin("GET", "counters"))["requests"]
    assert requests["GET /api/jobs"] == {"200": 3}  # reads at 10, 20, 30 s: one call each for the three jobs
    assert "GET /api/jobs/{id}" not in requests
    assert tokens.asked == [1, 2, 2]  # the call's first token, then one per read
    assert watch.watched == 0 and watch.reads == 3
    event_attempts = [a for a in outcome.attempt_log]
    assert len(event_attempts) == 3  # each read's attempt once in the call's event, not once per job


async def test_jobs_beyond_the_lists_first_page_are_found_on_the_next_and_one_left_by_its_get(
        harness: Harness) -> None:
    ids = await harness.tickets(1)
    oldest = await jobs_on(harness, ids, 2)
    newer = await jobs_on(harness, ids, 100)  # the first page (100 newest) holds none of the oldest
    outcome = await harness.delivery.jobs.deliver(job_request(ids), harness.credential, settings(),
                                                  JobPolling(first_s=30, max_pause_s=30, max_wait_s=600),
                                                  resume=[*oldest, newer[-1]])
    assert outcome.ok and [r.listed for r in outcome.jobs] == [1, 1, 1]
    requests = (await harness.admin("GET", "counters"))["requests"]
    assert requests["GET /api/jobs"] == {"200": 2} and "GET /api/jobs/{id}" not in requests
    # one job missing from the first page: its own GET costs what the next page would
    await harness.delivery.jobs.deliver(job_request(ids), harness.credential, settings(),
                                        JobPolling(first_s=30, max_pause_s=30, max_wait_s=600),
                                        resume=[oldest[0], newer[-1]])
    requests = (await harness.admin("GET", "counters"))["requests"]
    assert requests["GET /api/jobs"] == {"200": 3} and requests["GET /api/jobs/{id}"] == {"202": 1}


async def test_hundreds_of_jobs_watched_are_read_page_by_page_not_one_by_one(harness: Harness) -> None:
    """Jobs that run for minutes at 2 jobs/s: a destination watches hundreds, all read with a page per 100."""
    ids = await harness.tickets(1)
    jobs = await jobs_on(harness, ids, 350)
    outcome = await harness.delivery.jobs.deliver(job_request(ids), harness.credential, settings(),
                                                  JobPolling(first_s=30, max_pause_s=30, max_wait_s=600),
                                                  resume=jobs)
    assert outcome.ok and all(r.listed == 1 for r in outcome.jobs)
    requests = (await harness.admin("GET", "counters"))["requests"]
    assert requests["GET /api/jobs"] == {"200": 4} and "GET /api/jobs/{id}" not in requests


async def test_when_the_list_cannot_be_read_each_job_is_read_by_its_own_get(harness: Harness) -> None:
    ids = await harness.tickets(1)
    jobs = await jobs_on(harness, ids, 2)
    await harness.admin("PUT", "faults", {"spec": "503=1@GET /api/jobs"})
    outcome = await harness.delivery.jobs.deliver(job_request(ids), harness.credential, settings(max_attempts=1),
                                                  JobPolling(first_s=30, max_pause_s=30, max_wait_s=600),
                                                  resume=jobs)
    assert outcome.ok and [(r.status, r.listed) for r in outcome.jobs] == [("done", 0), ("done", 0)]
    requests = (await harness.admin("GET", "counters"))["requests"]
    assert requests["GET /api/jobs"] == {"503": 1} and requests["GET /api/jobs/{id}"] == {"202": 2}


async def test_a_follower_that_gives_up_leaves_the_watch_idle(harness: Harness) -> None:
    ids = await harness.tickets(1)
    jobs = await jobs_on(harness, ids, 1)
    watch = harness.delivery.jobs.watch("tags")
    follow = asyncio.ensure_future(harness.delivery.jobs.deliver(
        job_request(ids), harness.credential, settings(), JobPolling(first_s=1000, max_pause_s=1000),
        resume=jobs, watch=watch))
    for _ in range(5):
        await asyncio.sleep(0)
    assert watch.watched == 1
    follow.cancel()
    await asyncio.gather(follow, return_exceptions=True)
    assert watch.watched == 0
