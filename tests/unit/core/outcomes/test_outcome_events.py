"""What a call's outcome becomes on the topics: delivered, failed or unknown, and a followed merge."""

from __future__ import annotations

import dataclasses

import pytest

from tests.support.dedupe import TICKET, destination, prepared
from tests.support.rendering import destination as rendering_destination
from tests.support.rendering import record as rendering_record
from worker.core.outcomes.call_outcome import CallOutcome
from worker.core.outcomes.dead_letters import delivery_dead_letter
from worker.core.outcomes.documents import DeadLetter, ResponseEvent
from worker.core.outcomes.response_events import response_event
from worker.core.requests.call import RenderedCall
from worker.core.requests.rendering import RequestRenderer
from worker.core.requests.request import StepRecord
from worker.gorgias.merged import merged_target


def outcome(ok: bool, unknown: bool = False, **extra: object) -> CallOutcome:
    return CallOutcome(ok=ok, status=201 if ok else None, response_headers={}, response_body=None, attempts=1,
                       attempt_log=[], rate_limit_wait_s=0.0, started_at=1.0, finished_at=2.0, latency_s=1.0,
                       final_reason=None if ok else "outcome unknown (...): gave up", retryable=not ok,
                       outcome_unknown=unknown, **extra)  # type: ignore[arg-type]


@pytest.mark.parametrize(("ok", "unknown", "expected"), [
    (True, False, "delivered"), (False, False, "failed"), (False, True, "unknown"),
])
def test_the_event_and_the_dead_letter_say_what_is_known(ok: bool, unknown: bool, expected: str) -> None:
    dest = destination("http://127.0.0.1:9", "create_ticket")
    item, request = prepared(dest, TICKET)
    call = RenderedCall([item], request)
    event = response_event("prod", dest, call, outcome(ok, unknown))
    assert ResponseEvent.model_validate(event).outcome == expected
    if not ok:
        letter = DeadLetter.model_validate(delivery_dead_letter(dest, call, event, 1_700_000_000.0))
        assert letter.call is not None and letter.call.outcome == expected
        assert letter.failed_at == "2023-11-14T22:13:20.000000Z"  # the caller's clock, not the wall clock


def test_a_followed_merge_names_both_ids() -> None:
    dest = destination("http://127.0.0.1:9", "create_ticket")
    item, request = prepared(dest, TICKET)
    merged = merged_target("https://acme.gorgias.com/api/customers/5/data", "/api/customers/9/")
    event = ResponseEvent.model_validate(
        response_event("prod", dest, RenderedCall([item], request), outcome(True, merged=merged)))
    assert event.merged is not None and (event.merged.original_id, event.merged.merged_into_id) == (5, 9)


def test_the_event_carries_the_request_body_it_sent_whether_or_not_it_parses_it_again() -> None:
    """A one-record call whose body is that record's own encoding: the event takes the record's body as is (no
    second parse); a body made otherwise (here a copy of the bytes) is parsed from what was sent. Both agree."""
    dest = rendering_destination(exclude_attributes=["secret"])
    renderer = RequestRenderer(dest)
    item = renderer.prepare(rendering_record({"ticket_id": 7, "subject": "hi", "secret": "x", "tags": [1, 2]}))
    request = renderer.render_one(item)
    own = response_event("prod", dest, RenderedCall([item], request), outcome(True))
    assert own["request"]["body"] is item.body
    assert request.body is not None
    copied = dataclasses.replace(request, body=bytes(bytearray(request.body)))
    parsed = response_event("prod", dest, RenderedCall([item], copied), outcome(True))
    assert parsed["request"]["body"] is not item.body
    assert own["request"]["body"] == parsed["request"]["body"] == {"ticket_id": 7, "subject": "hi", "tags": [1, 2]}
    assert own["request"]["body_bytes"] == parsed["request"]["body_bytes"] == len(request.body)


def test_two_deployments_calls_of_the_same_records_are_told_apart() -> None:
    """Same destination name, same source records, two deployments: two events, two ids, each naming its own
    deployment, so a reader deduplicating by event id keeps both and recovery reads only its own."""
    dest = destination("http://127.0.0.1:9", "create_ticket")
    item, request = prepared(dest, TICKET)
    blue = response_event("blue", dest, RenderedCall([item], request), outcome(False))
    green = response_event("green", dest, RenderedCall([item], request), outcome(False))
    assert (blue["deployment"], green["deployment"]) == ("blue", "green")
    assert blue["event_id"] != green["event_id"]
    assert blue["event_id"] == response_event("blue", dest, RenderedCall([item], request), outcome(True))["event_id"]
    assert delivery_dead_letter(dest, RenderedCall([item], request), green, 0.0)["deployment"] == "green"


def test_requests_of_a_call_count_the_steps_it_sent_not_retries() -> None:
    assert outcome(True).requests == 1  # no plan: one request, whatever its attempts
    steps = [StepRecord("POST", "/api/tags", "make sure tag 'vip' exists", None, 0, skipped=True),
             StepRecord("POST", "/api/tags", "make sure tag 'new' exists", 201, 3),
             StepRecord("POST", "/api/tickets/1/tags", "the write naming them", 201, 1)]
    assert outcome(True, steps=steps).requests == 2
