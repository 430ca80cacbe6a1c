"""Records resumed from a Gorgias job after a restart never share a call with records not in that job: a key's
batch is cut where the resumed job changes, so the call following the job carries only its records and a
ticket's newer records wait behind it in the lane until the job has ended (per-ticket order)."""

from __future__ import annotations

from typing import Any

import orjson

from worker.core.chain.record_chain import RecordChain
from worker.core.config.worker_config import Destination
from worker.core.grouping.batching import FlushReason
from worker.core.grouping.open_batches import QueuedCall
from worker.core.records.record import SourceRef
from worker.core.requests.call import RenderedCall
from worker.core.requests.jobs import created_jobs
from worker.core.requests.rendering import Prepared

CREDENTIAL = {"domain": "acme", "username": "agent@acme.com", "api_key_env": "GORGIAS_API_KEY"}


def chain(template: str = "update_ticket", attribute: str = "ticket_id", **delivery: Any) -> RecordChain:
    doc: dict[str, Any] = {"name": "tickets", "source_topics": ["t"], "credential": CREDENTIAL,
                           "endpoint": {"template": template}, "delivery": delivery,
                           "batching": {"enabled": True, "algorithm": "by_attribute", "attributes": [attribute],
                                        "max_wait_ms": 1000, "batch_size": 100}}
    return RecordChain(Destination.model_validate(doc), max_record_bytes=10_000)


class Feeder:
    def __init__(self, target: RecordChain) -> None:
        self.chain = target
        self.offset = 0

    def __call__(self, record: dict[str, Any], job: int | None = None, now: float = 0.0) -> None:
        source = SourceRef("t", 0, self.offset, str(record.get("ticket_id")).encode())
        self.offset += 1
        assert self.chain.take_in(orjson.dumps(record), source, (), now, created_job=job) is None


def waiting(target: RecordChain) -> list[list[int]]:
    """The offsets of each call that may go now."""
    return [[p.record.source.offset for p in call.items] for call in target.open.eligible()]


def take(target: RecordChain, offsets: list[int]) -> RenderedCall:
    queued: QueuedCall[Prepared] = next(c for c in target.open.eligible()
                                        if [p.record.source.offset for p in c.items] == offsets)
    call = target.take(queued)
    assert isinstance(call, RenderedCall)
    return call


def test_a_tickets_newer_record_in_the_same_window_waits_behind_the_call_following_its_job() -> None:
    c = chain(coalesce="jobs")
    feed = Feeder(c)
    feed({"ticket_id": 1, "status": "closed"}, job=77)
    feed({"ticket_id": 2, "status": "closed"}, job=77)
    feed({"ticket_id": 1, "status": "open"})  # published after the crash, consumed in the same window
    c.open.tick(5.0)
    assert waiting(c) == [[0], [1]]  # ticket 1's open is not in its resumed call: it waits in the lane
    resumed = take(c, [0])
    assert created_jobs(p.record for p in resumed.items) == (77,)  # the call follows the job, creates none
    assert resumed.batch is not None and resumed.batch.reason is FlushReason.CUT
    assert waiting(c) == [[1]]
    c.done(resumed)  # the job is read ended: ticket 1's newer record may go
    assert waiting(c) == [[1], [2]]
    assert created_jobs(p.record for p in take(c, [2]).items) == ()


def test_a_newer_record_does_not_join_a_resumed_call_already_waiting_for_the_budget() -> None:
    c = chain(coalesce="jobs")
    feed = Feeder(c)
    feed({"ticket_id": 1, "status": "closed"}, job=77)
    c.open.tick(5.0)  # due: waiting in its lane, open to the ticket's next records
    feed({"ticket_id": 1, "status": "open"}, now=6.0)
    feed({"ticket_id": 1, "priority": "high"}, now=6.0)
    c.open.tick(10.0)
    assert waiting(c) == [[0]]
    resumed = take(c, [0])
    assert created_jobs(p.record for p in resumed.items) == (77,)
    c.done(resumed)
    assert waiting(c) == [[1, 2]]  # the newer records still go together, in one call after the job


def test_records_not_in_a_job_before_a_resumed_one_go_first_and_each_job_is_followed_by_its_own_call() -> None:
    c = chain(coalesce="jobs")
    feed = Feeder(c)
    feed({"ticket_id": 1, "status": "open"})  # the rest of a call whose tags went in job 77
    feed({"ticket_id": 1, "tags": ["vip"]}, job=77)
    feed({"ticket_id": 1, "tags": ["gold"]}, job=77)
    feed({"ticket_id": 1, "tags": ["late"]}, job=78)
    c.open.tick(5.0)
    made = []
    while c.open.has_eligible:
        call = take(c, waiting(c)[0])
        made.append(([p.record.source.offset for p in call.items], created_jobs(p.record for p in call.items)))
        c.done(call)
    assert made == [([0], ()), ([1, 2], (77,)), ([3], (78,))]


def test_a_ticket_job_group_is_cut_where_its_resumed_job_ends() -> None:
    c = chain("ticket_job", attribute="status")
    feed = Feeder(c)
    feed({"ticket_id": 1, "status": "closed"}, job=5)
    feed({"ticket_id": 2, "status": "closed"}, job=5)
    feed({"ticket_id": 3, "status": "closed"})
    c.open.tick(5.0)
    followed = take(c, [0, 1])
    assert created_jobs(p.record for p in followed.items) == (5,)
    c.done(followed)
    assert orjson.loads(take(c, [2]).request.body or b"")["params"]["ticket_ids"] == [3]


def test_without_resumed_records_batches_are_never_cut() -> None:
    c = chain(coalesce="jobs")
    feed = Feeder(c)
    feed({"ticket_id": 1, "status": "closed"})
    feed({"ticket_id": 1, "status": "open"})
    c.open.tick(5.0)
    assert waiting(c) == [[0, 1]] and c.open.apart is None
