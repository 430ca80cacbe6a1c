"""A call to Gorgias as its callers see it: the outcome, each attempt, and what a caller plugs in
(where the budget tokens come from, the duplicate check asked when an outcome is unknown).

Apart from :mod:`worker.gorgias.delivery`, which makes the calls, so that the plan runner
(:mod:`worker.gorgias.plans`) and the duplicate checks speak of calls without importing it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from worker.core.config.account import Credential
from worker.core.requests.jobs import JobReport
from worker.core.requests.request import RenderedRequest, StepRecord
from worker.gorgias.client import HttpResult
from worker.gorgias.errors import TransportError
from worker.gorgias.merged import MergedRedirect

__all__ = ["AttemptRecord", "AttemptTokens", "CallAttempt", "CallOutcome", "HookDecision", "UnknownOutcomeHook"]


@dataclass(frozen=True, slots=True)
class CallAttempt:
    """An attempt whose outcome is unknown (the request may have reached Gorgias): the hook's input."""

    request: RenderedRequest
    credential: Credential
    attempt: int
    error: TransportError


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


@dataclass(slots=True)
class CallOutcome:
    """The final result of a call. Never holds a credential's secret."""

    ok: bool
    status: int | None
    response_headers: dict[str, str]
    response_body: Any
    attempts: int
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
    jobs: list[JobReport] = field(default_factory=list)  # the Gorgias jobs a job call followed (worker.gorgias.jobs)
