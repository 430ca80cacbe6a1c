"""A call to Gorgias as its callers see it: the outcome, each attempt, and what a caller plugs in
(where the budget tokens come from, the duplicate check asked when an outcome is unknown).

Apart from :mod:`worker.gorgias.delivery`, which makes the calls, so that the plan runner
(:mod:`worker.gorgias.plans`) and the duplicate checks speak of calls without importing it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any, Literal, Protocol

from worker.core.config.account import Credential
from worker.core.requests.request import RenderedRequest, StepRecord
from worker.gorgias.client import HttpResult
from worker.gorgias.errors import TransportError
from worker.gorgias.holds import CredentialGate
from worker.gorgias.merged import MergedRedirect

__all__ = [
    "AttemptRecord",
    "AttemptTokens",
    "CallAttempt",
    "CallOutcome",
    "Holds",
    "HookDecision",
    "UnknownOutcomeHook",
    "counted_attempts",
    "retry_causes",
]


@dataclass(frozen=True, slots=True)
class CallAttempt:
    """An attempt whose outcome is unknown (the request may have reached Gorgias): the hook's input."""

    request: RenderedRequest
    credential: Credential
    attempt: int
    error: TransportError
    holds: Holds | None = None
    """The call's holds: the duplicate check's own requests wait out a refused credential like the call."""


@dataclass(frozen=True, slots=True)
class HookDecision:
    """The hook's answer: ``done`` (the request did take effect; ``result`` stands for its response)
    or ``retry`` (send it again): ``absent`` when the check showed it did not take effect, plain
    ``retry`` when that cannot be known (the outcome stays unknown if no later attempt succeeds)."""

    action: Literal["done", "retry"]
    result: HttpResult | None = None
    checked: bool = False

    @classmethod
    def done(cls, result: HttpResult) -> HookDecision:
        return cls("done", result, checked=True)

    @classmethod
    def absent(cls) -> HookDecision:
        return cls("retry", checked=True)

    @classmethod
    def retry(cls) -> HookDecision:
        return cls("retry")


UnknownOutcomeHook = Callable[[CallAttempt], Awaitable[HookDecision]]


class AttemptTokens(Protocol):
    """Where a call's attempts get their budget tokens (default: straight from the account's limiter)."""

    async def token(self, attempt: int) -> float:
        """Wait for the token of attempt ``attempt`` (1 = the first) and return the seconds waited."""
        ...


class Holds(Protocol):
    """How a caller that can hold its calls (a destination pipeline) lets one wait out Gorgias refusing its
    credential (401) or its route (403) instead of failing. Without one, a refusal fails the call like any 4xx."""

    async def credential_held(self, gate: CredentialGate) -> str | None:
        """Wait until ``gate`` opens again: None, or why to give up (the call then fails with that reason)."""
        ...

    async def route_refused(self, reason: str) -> str | None:
        """Hold the call's destination for ``reason`` and wait until the call may try again (None), or why to
        give up."""
        ...

    def route_answered(self) -> None:
        """The call got an answer other than 401/403: a hold of its destination for a refused route ends."""
        ...


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
    steps: list[StepRecord] = field(default_factory=list)  # a planned call's requests (worker.gorgias.plans)

    @classmethod
    def unsent(cls, reason: str, at: float) -> CallOutcome:
        """A call given up before it was sent (held too long): failed, retryable, no attempt."""
        return cls(ok=False, status=None, response_headers={}, response_body=None, attempts=0, attempt_log=[],
                   rate_limit_wait_s=0.0, started_at=at, finished_at=at, latency_s=0.0, final_reason=reason,
                   retryable=True)
