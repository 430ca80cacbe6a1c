"""What became of a call, as plain data: its outcome, each attempt, and a merged object it was sent on to.

Made by the delivery service (:mod:`worker.gorgias.delivery`); read by the response-event builder
(:mod:`worker.core.outcomes.response_events`) and the outcome recorder."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

from worker.core.requests.jobs import JobReport
from worker.core.requests.request import StepRecord

__all__ = ["AttemptRecord", "CallOutcome", "MergedRedirect", "counted_attempts", "retry_causes"]


@dataclass(frozen=True, slots=True)
class MergedRedirect:
    """A followed redirect: the URL asked, the URL the call went to, and the two objects' ids."""

    from_url: str
    to_url: str
    original_id: int | str | None
    merged_into_id: int | str | None

    def as_event(self) -> dict[str, object]:
        return {
            "from_url": self.from_url,
            "to_url": self.to_url,
            "original_id": self.original_id,
            "merged_into_id": self.merged_into_id,
        }


@dataclass(frozen=True, slots=True)
class AttemptRecord:
    """One attempt: its HTTP status or transport error kind, how long it took and waited."""

    attempt: int
    status: int | None
    error_kind: str | None
    maybe_sent: bool
    elapsed_s: float
    rate_limit_wait_s: float
    backoff_s: float
    reason: str
    step: int | None = None
    """Which request of a call of several it belongs to (1-based); None for a call of one request."""
    held: bool = False
    """Gorgias refused the credential (401) or the route (403) and the call waited until it works: a hold,
    like a pause, not an attempt (neither counted in ``CallOutcome.attempts`` nor a retry)."""
    followed: bool = False
    """A merged object's 301, followed once to its ``Location``: an attempt, but not a retry."""


def counted_attempts(log: Iterable[AttemptRecord]) -> int:
    """The attempts of a request's log that count: every one except holds."""
    return sum(1 for a in log if not a.held)


def retry_causes(log: list[AttemptRecord]) -> list[str]:
    """What caused each retry in a call's attempt log: every attempt followed by another attempt *of the
    same request* (a later step of a call of several is not a retry of the earlier one), other than a hold
    or a followed redirect. The cause is the transport error's kind or the HTTP status."""
    causes = []
    for attempt, following in pairwise(log):
        if attempt.step == following.step and not attempt.held and not attempt.followed:
            causes.append(attempt.error_kind or str(attempt.status))
    return causes


@dataclass(slots=True)
class CallOutcome:
    """The final result of a call. Never holds a credential's secret."""

    ok: bool
    status: int | None
    response_headers: dict[str, str]
    response_body: Any
    attempts: int
    """Attempts of the call's request (of a call of several: of its last request; each request's own count
    is in ``steps``), holds not included."""
    attempt_log: list[AttemptRecord]
    rate_limit_wait_s: float
    started_at: float
    finished_at: float
    latency_s: float
    final_reason: str | None
    retryable: bool
    outcome_unknown: bool = False
    """The call failed, but an attempt may have taken effect (a dropped connection, a timeout) and no
    duplicate check settled it: neither delivered nor surely failed."""
    resolved_by_hook: bool = False
    merged: MergedRedirect | None = None
    """Set when a 301 for a merged object was followed: the call went to ``merged.to_url``."""
    steps: list[StepRecord] = field(default_factory=list)  # a planned call's requests (worker.gorgias.plan_runner)
    jobs: list[JobReport] = field(default_factory=list)  # the Gorgias jobs a job call followed (worker.gorgias.jobs)

    @property
    def requests(self) -> int:
        """Requests the call sent, retries not counted: one per step of a plan that was not skipped, else
        one (a call given up before it was sent counts one too: it would have made one)."""
        return sum(1 for step in self.steps if not step.skipped) or 1

    @classmethod
    def unsent(cls, reason: str, at: float) -> CallOutcome:
        """A call given up before it was sent (held too long): failed, retryable, no attempt."""
        return cls(ok=False, status=None, response_headers={}, response_body=None, attempts=0, attempt_log=[],
                   rate_limit_wait_s=0.0, started_at=at, finished_at=at, latency_s=0.0, final_reason=reason,
                   retryable=True)
