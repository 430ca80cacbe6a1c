"""What a call's outcome becomes on the topics: delivered, failed or unknown, and a followed merge."""

from __future__ import annotations

import pytest

from tests.unit.test_dedupe import TICKET, destination, prepared
from worker.events import DeadLetter, ResponseEvent
from worker.gorgias.delivery import CallOutcome
from worker.gorgias.merged import merged_target
from worker.pipeline.outcomes import Call, delivery_dead_letter, response_event


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
    call = Call([item], request)
    event = response_event(dest, call, outcome(ok, unknown))
    assert ResponseEvent.model_validate(event).outcome == expected
    if not ok:
        letter = DeadLetter.model_validate(delivery_dead_letter(dest, call, event, 1_700_000_000.0))
        assert letter.call is not None and letter.call.outcome == expected
        assert letter.failed_at == "2023-11-14T22:13:20.000000Z"  # the caller's clock, not the wall clock


def test_a_followed_merge_names_both_ids() -> None:
    dest = destination("http://127.0.0.1:9", "create_ticket")
    item, request = prepared(dest, TICKET)
    merged = merged_target("https://acme.gorgias.com/api/customers/5/data", "/api/customers/9/")
    event = ResponseEvent.model_validate(response_event(dest, Call([item], request), outcome(True, merged=merged)))
    assert event.merged is not None and (event.merged.original_id, event.merged.merged_into_id) == (5, 9)
