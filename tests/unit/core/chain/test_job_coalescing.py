"""Waiting calls of several tickets asking the same change become one Gorgias job (``delivery.coalesce: jobs``):
which calls gather, the cap, per-ticket order, and the scheduler choosing a job when calls wait for the budget."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson

from worker.core.chain.job_coalescing import JobGroup, Riding
from worker.core.chain.record_chain import RecordChain
from worker.core.config.worker_config import Destination
from worker.core.grouping.call_scheduler import AccountScheduler, Candidate, SchedulerPolicy
from worker.core.grouping.open_batches import QueuedCall
from worker.core.records.record import RESUME_JOB, SourceRef
from worker.core.requests.call import RenderedCall

CREDENTIAL = {"domain": "acme", "username": "agent@acme.com", "api_key_env": "GORGIAS_API_KEY"}


def chain(template: str = "update_ticket", *, batched: bool = True, cap: int = 100, size: int = 100,
          gather: float | None = None) -> RecordChain:
    doc: dict[str, Any] = {"name": "tickets", "source_topics": ["t"], "credential": CREDENTIAL,
                           "endpoint": {"template": template},
                           "delivery": {"coalesce": "jobs", "coalesce_max_tickets": cap}}
    if gather is not None:
        doc["delivery"]["coalesce_gather_s"] = gather
    if batched:
        doc["batching"] = {"enabled": True, "algorithm": "by_attribute", "attributes": ["ticket_id"],
                           "max_wait_ms": 1000, "batch_size": size}
    return RecordChain(Destination.model_validate(doc), max_record_bytes=10_000)


class Feeder:
    def __init__(self, target: RecordChain) -> None:
        self.chain = target
        self.offset = 0

    def __call__(self, *records: dict[str, Any], now: float = 0.0, resume: int | None = None) -> None:
        for record in records:
            source = SourceRef("t", 0, self.offset, str(record.get("ticket_id")).encode())
            self.offset += 1
            assert self.chain.take_in(orjson.dumps(record), source, (), now, created_job=resume) is None
        self.chain.open.tick(now + 5)  # every batch's window is over: the calls are due


def groups(target: RecordChain) -> list[JobGroup]:
    return [c for c in target.candidates() if isinstance(c, JobGroup)]


def job_body(call: RenderedCall) -> Any:
    assert call.request.body is not None
    return orjson.loads(call.request.body)


def test_calls_of_several_tickets_asking_the_same_change_become_one_job_candidate() -> None:
    c = chain()
    feed = Feeder(c)
    feed({"ticket_id": 1, "tags": ["vip"]}, {"ticket_id": 2, "tags": ["vip"]}, {"ticket_id": 3, "status": "closed"},
         {"ticket_id": 4, "tags": ["vip"], "subject": "renamed"})
    candidates = list(c.candidates())
    plain, [group] = candidates[:4], candidates[4:]
    # every call may still go alone, first (when a token is free at once); those in the job ride with it
    assert [type(x).__name__ for x in plain] == ["Riding", "Riding", "QueuedCall", "QueuedCall"]
    assert [x.records for x in plain] == [0, 0, 1, 1]
    assert isinstance(group, JobGroup) and list(group.tickets) == [1, 2] and group.records == 2
    assert group.tokens == 1
    # a change asked of one ticket (status of 3) and one no job can make (a subject) go ticket by ticket


def test_a_job_takes_its_calls_and_lists_their_tickets() -> None:
    c = chain()
    feed = Feeder(c)
    feed({"ticket_id": 1, "tags": ["vip"]}, {"ticket_id": 2, "tags": ["vip"]}, {"ticket_id": 2, "tags": ["vip"]})
    [group] = groups(c)
    job = c.take_job(group)
    assert job.coalesced and len(job.items) == 3
    assert (job.request.method, job.request.url) == ("POST", "https://acme.gorgias.com/api/jobs")
    assert job_body(job) == {"type": "updateTicket", "params": {"ticket_ids": [1, 2], "updates": {"tags": ["vip"]}}}
    assert not c.open.has_eligible and c.open.waiting_records == 0


def test_a_tickets_later_records_wait_until_its_job_has_ended() -> None:
    c = chain()
    feed = Feeder(c)
    feed({"ticket_id": 1, "status": "closed"}, {"ticket_id": 2, "status": "closed"})
    job = c.take_job(groups(c)[0])
    feed({"ticket_id": 1, "status": "open"}, {"ticket_id": 3, "status": "open"}, now=10)
    waiting = [[p.record.data["ticket_id"] for p in call.items] for call in c.open.eligible()]
    assert waiting == [[3]]  # ticket 1's record waits behind the job still running
    c.done(job)
    waiting = [[p.record.data["ticket_id"] for p in call.items] for call in c.open.eligible()]
    assert sorted(waiting) == [[1], [3]]
    assert [list(g.tickets) for g in groups(c)] == [[3, 1]]  # now they may share the next job


def test_a_call_that_takes_another_record_is_judged_on_what_it_holds_now() -> None:
    c = chain()
    feed = Feeder(c)
    feed({"ticket_id": 1, "tags": ["a"]}, {"ticket_id": 2, "tags": ["a"]})
    assert [list(g.tickets) for g in groups(c)] == [[1, 2]]
    feed({"ticket_id": 1, "tags": ["b"], "subject": "renamed"}, now=1)  # joins ticket 1's call: no job can make it
    assert groups(c) == []


def tickets_waiting(c: RecordChain) -> list[list[tuple[int, str]]]:
    return [[(p.record.data["ticket_id"], str(p.record.data.get("tags") or p.record.data.get("status")))
             for p in call.items] for call in c.open.eligible()]


def test_a_call_asking_several_common_changes_joins_a_job_for_each_part() -> None:
    """Ticket 1's call adds tag a, closes the ticket and adds tag b: a change no other ticket asks, but each
    part is one they do. A job takes only its part; the rest waits first of the lane, free to go meanwhile."""
    c = chain()
    feed = Feeder(c)
    feed({"ticket_id": 1, "tags": ["a"]}, {"ticket_id": 1, "status": "open"}, {"ticket_id": 1, "tags": ["b"]},
         {"ticket_id": 1, "status": "closed"}, {"ticket_id": 2, "tags": ["a"]}, {"ticket_id": 3, "status": "closed"})
    found = {g.change.key: g for g in groups(c)}
    assert sorted((list(g.tickets), g.records) for g in found.values()) == [([1, 2], 2), ([1, 3], 3)]
    tags_a = next(g for g in found.values() if g.change.updates == {"tags": ["a"]})
    first = c.take_job(tags_a)
    assert job_body(first)["params"] == {"ticket_ids": [1, 2], "updates": {"tags": ["a"]}}
    assert [p.record.source.offset for p in first.items] == [0, 4]
    assert tickets_waiting(c) == [[(1, "open"), (1, "['b']"), (1, "closed")], [(3, "closed")]]
    # the set fields stay one part, the last value winning: ticket 1 goes in the job closing ticket 3 too
    [closing] = groups(c)
    second = c.take_job(closing)
    assert job_body(second)["params"] == {"ticket_ids": [1, 3], "updates": {"status": "closed"}}
    assert sorted(p.record.source.offset for p in second.items) == [1, 3, 5]
    feed({"ticket_id": 1, "tags": ["c"]}, now=10)  # a later record: a call of its own, behind the rest
    assert tickets_waiting(c) == [[(1, "['b']")]]  # the rest may go alone now (tag b commutes with both jobs)
    rest = c.take(c.open.first_eligible())  # type: ignore[arg-type]
    assert isinstance(rest, RenderedCall)
    for call in (first, rest):
        c.done(call)
    assert tickets_waiting(c) == []  # tag c waits until every part of the call before it has ended
    c.done(second)
    assert tickets_waiting(c) == [[(1, "['c']")]]


def test_a_full_call_goes_ticket_by_ticket() -> None:
    """A ticket whose records fill a call would wait minutes in a job while they pile up: it goes alone."""
    c = chain(size=3)
    feed = Feeder(c)
    feed({"ticket_id": 1, "tags": ["a"]}, {"ticket_id": 2, "tags": ["a"]}, {"ticket_id": 3, "tags": ["a"]})
    assert [list(g.tickets) for g in groups(c)] == [[1, 2, 3]]
    feed({"ticket_id": 1, "tags": ["a"]}, {"ticket_id": 1, "status": "closed"}, now=1)  # ticket 1's call is full
    assert [list(g.tickets) for g in groups(c)] == [[2, 3]]


def test_a_job_spans_at_most_the_cap_the_oldest_calls_first() -> None:
    c = chain(cap=3)
    feed = Feeder(c)
    for ticket in range(1, 8):
        feed({"ticket_id": ticket, "status": "closed"}, now=ticket)
    [group] = groups(c)
    assert list(group.tickets) == [1, 2, 3]
    c.take_job(group)
    assert [list(g.tickets) for g in groups(c)] == [[4, 5, 6]]


def test_unbatched_deletes_gather_too() -> None:
    c = chain("delete_ticket", batched=False)
    feed = Feeder(c)
    feed({"ticket_id": 5}, {"ticket_id": 6})
    [group] = groups(c)
    assert job_body(c.take_job(group)) == {"type": "deleteTicket", "params": {"ticket_ids": [5, 6]}}


def test_records_that_name_a_job_made_before_a_restart_are_not_gathered_again() -> None:
    c = chain()
    feed = Feeder(c)
    feed({"ticket_id": 1, "status": "closed"}, {"ticket_id": 2, "status": "closed"}, resume=77)
    assert groups(c) == []
    assert all(p.record.extra[RESUME_JOB] == 77 for call in c.open.eligible() for p in call.items)


def test_a_warm_tickets_call_rides_in_the_jobs_of_its_parts_when_calls_wait_for_the_budget() -> None:
    """Alone, ticket 1's call would carry 6 records for its token(s): more per token than either job of two
    tickets. But the jobs go anyway, for the other tickets: in them its records cost nothing more."""
    c = chain()
    feed = Feeder(c)
    warm = [{"ticket_id": 1, "tags": ["a"]}] * 3 + [{"ticket_id": 1, "status": "closed"}] * 3
    feed(*warm, {"ticket_id": 2, "tags": ["a"]}, {"ticket_id": 3, "status": "closed"})
    scheduler = AccountScheduler()
    scheduler.add(_Source(c))
    picked = scheduler.choose(40.0, contended=True)  # the calls became due at 5: the groups have gathered 30 s
    assert picked is not None and isinstance(picked[1], JobGroup) and list(picked[1].tickets) == [1, 2]
    uncontended = scheduler.choose(40.0, contended=False)
    assert uncontended is not None and isinstance(uncontended[1], Riding)  # a free token: the call goes alone
    assert uncontended[1].call.records == 6


class _Source:
    def __init__(self, target: RecordChain) -> None:
        self.chain = target

    def candidates(self) -> Iterator[Candidate]:
        return self.chain.candidates()

    def waiting_records(self) -> int:
        return self.chain.open.waiting_records


def test_the_scheduler_sends_the_job_when_calls_wait_for_the_budget_and_the_first_call_when_not() -> None:
    c = chain()
    feed = Feeder(c)
    feed({"ticket_id": 9, "priority": "high"}, *({"ticket_id": t, "tags": ["x"]} for t in range(1, 5)))
    scheduler = AccountScheduler()
    source = _Source(c)
    scheduler.add(source)
    picked = scheduler.choose(10.0, contended=False)
    assert picked is not None and not isinstance(picked[1], JobGroup)  # the budget is free: no need to wait for one
    picked = scheduler.choose(40.0, contended=True)  # due at 5: the group has gathered for 30 s
    assert picked is not None and isinstance(picked[1], JobGroup) and picked[1].records == 4
    # overdue first (aged_call_every 1): of equally old candidates the job, carrying the oldest call and more
    aged = AccountScheduler(SchedulerPolicy(aged_call_every=1))
    aged.add(source)
    picked = aged.choose(1000.0, contended=True)
    assert picked is not None and isinstance(picked[1], JobGroup)


def test_while_calls_wait_for_the_budget_a_group_under_the_cap_gathers_and_others_take_the_tokens() -> None:
    """Tickets 1-4 ask tag x from 5 s on (their calls' window ended): their job is not offered before 35 s
    (``coalesce_gather_s`` 30), so a token before then goes to ticket 9's call alone; meanwhile more tickets join."""
    c = chain()
    feed = Feeder(c)
    feed({"ticket_id": 9, "priority": "high"}, *({"ticket_id": t, "tags": ["x"]} for t in range(1, 5)))
    scheduler = AccountScheduler()
    scheduler.add(_Source(c))
    [group] = groups(c)
    assert (group.since, group.held_until) == (5.0, 35.0)
    picked = scheduler.choose(10.0, contended=True)
    assert picked is not None and isinstance(picked[1], QueuedCall) and picked[1].key == (9,)
    assert scheduler.next_offer == 35.0  # ticket 9 goes alone; the job is offered at 35
    c.take(picked[1])
    assert scheduler.choose(11.0, contended=True) is None and scheduler.next_offer == 35.0  # the rest ride with it
    feed(*({"ticket_id": t, "tags": ["x"]} for t in range(5, 8)), now=20)  # more tickets join while it gathers
    picked = scheduler.choose(35.0, contended=True)
    assert picked is not None and isinstance(picked[1], JobGroup) and list(picked[1].tickets) == list(range(1, 8))
    assert scheduler.next_offer is None


def test_a_group_at_the_cap_is_not_held() -> None:
    c = chain(cap=3)
    feed = Feeder(c)
    feed(*({"ticket_id": t, "status": "closed"} for t in range(1, 5)), {"ticket_id": 9, "priority": "high"})
    scheduler = AccountScheduler()
    scheduler.add(_Source(c))
    picked = scheduler.choose(6.0, contended=True)
    assert picked is not None and isinstance(picked[1], JobGroup) and list(picked[1].tickets) == [1, 2, 3]


def test_a_gathering_group_goes_when_a_token_would_be_lost_or_the_budget_is_free() -> None:
    c = chain()
    feed = Feeder(c)
    feed({"ticket_id": 1, "tags": ["x"]}, {"ticket_id": 2, "tags": ["x"]})
    scheduler = AccountScheduler()
    scheduler.add(_Source(c))
    assert scheduler.choose(6.0, contended=True) is None and scheduler.next_offer == 35.0
    picked = scheduler.choose(6.0, contended=True, losing=True)  # the bucket is empty: spend it rather than lose it
    assert picked is not None and isinstance(picked[1], JobGroup)
    uncontended = scheduler.choose(6.0, contended=False)  # no call waited for the token: the first call, as before
    assert uncontended is not None and isinstance(uncontended[1], Riding) and scheduler.next_offer is None


def test_a_ticket_leaving_its_job_gathers_from_when_its_next_call_could_join() -> None:
    """Ticket 1's next call became due while its job ran; it could join another job only once that job ended
    (at 200 s): the group it makes gathers from then, not from when the call became due."""
    c = chain(gather=30.0)
    feed = Feeder(c)
    feed({"ticket_id": 1, "tags": ["x"]}, {"ticket_id": 2, "tags": ["x"]})
    job = c.take_job(groups(c)[0])
    feed({"ticket_id": 1, "tags": ["y"]}, now=10)
    feed({"ticket_id": 3, "tags": ["y"]}, now=190)
    assert groups(c) == []  # ticket 1 waits behind its job: per-ticket order holds while groups gather
    c.done(job, 200.0)
    [group] = groups(c)
    assert list(group.tickets) == [3, 1] and (group.since, group.held_until) == (195.0, 225.0)
    first = next(call for call in c.open.eligible() if call.key == (1,))
    assert (first.ready_at, first.eligible_at) == (15.0, 200.0)


def test_no_gathering_time_offers_a_group_at_once() -> None:
    c = chain(gather=0.0)
    feed = Feeder(c)
    feed({"ticket_id": 9, "priority": "high"}, {"ticket_id": 1, "tags": ["x"]}, {"ticket_id": 2, "tags": ["x"]})
    scheduler = AccountScheduler()
    scheduler.add(_Source(c))
    picked = scheduler.choose(5.0, contended=True)
    assert picked is not None and isinstance(picked[1], JobGroup) and scheduler.next_offer is None
