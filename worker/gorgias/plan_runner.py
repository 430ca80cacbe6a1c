"""Executing a :class:`~worker.core.requests.request.Plan`: a call made of several requests, each a full delivery call.

Every step goes through :meth:`DeliveryService.call` (so it takes its rate-limit tokens and follows the
retry rules like any request); the call's outcome is the final step's, with every attempt of every
step in its attempt log and one :class:`~worker.core.requests.request.StepRecord` per step. A step that fails (other
than with a status it accepts) ends the call with that step's outcome, its reason saying which step.

Names the account is known to have (``Step.known_as``, e.g. tags created or found to exist) are kept
per account in a bounded LRU set, so a tag costs one extra request the first time this process sees it
on an account and none after.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import replace
from typing import Final, Protocol

from worker.core.config.account import Credential
from worker.core.config.delivery import DeliverySettings
from worker.core.outcomes.call_outcome import CallOutcome
from worker.core.requests.request import MAX_STEPS, Plan, PlanError, RenderedRequest, Step, StepRecord, StepResult
from worker.gorgias.calls import AttemptTokens, Holds, UnknownOutcomeHook
from worker.gorgias.ratelimit import Clock

__all__ = ["KnownNames", "PlanRunner", "Sender"]

KNOWN_NAMES_PER_ACCOUNT: Final = 10_000


class KnownNames:
    """Per account, the names (``tag:vip``) known to exist; least recently used ones are forgotten."""

    def __init__(self, limit: int = KNOWN_NAMES_PER_ACCOUNT) -> None:
        self.limit = limit
        self._by_account: dict[str, OrderedDict[str, None]] = {}

    def has(self, account: str, name: str) -> bool:
        names = self._by_account.get(account)
        if names is None or name not in names:
            return False
        names.move_to_end(name)
        return True

    def discard(self, account: str, name: str) -> None:
        """Forget that the account has ``name`` (it turned out not to exist any more)."""
        names = self._by_account.get(account)
        if names is not None:
            names.pop(name, None)

    def add(self, account: str, name: str) -> None:
        names = self._by_account.setdefault(account, OrderedDict())
        names[name] = None
        names.move_to_end(name)
        while len(names) > self.limit:
            names.popitem(last=False)


class Sender(Protocol):
    """What sends each step: the delivery service (:class:`worker.gorgias.delivery.DeliveryService`)."""

    async def call(self, req: RenderedRequest, credential: Credential, settings: DeliverySettings,
                   unknown_outcome_hook: UnknownOutcomeHook | None = None,
                   tokens: AttemptTokens | None = None, holds: Holds | None = None) -> CallOutcome: ...


class PlanRunner:
    """Runs plans on a delivery service, timing them with its clocks."""

    def __init__(self, service: Sender, clock: Clock, wall_clock: Clock) -> None:
        self.service = service
        self._clock = clock
        self._wall = wall_clock
        self.known = KnownNames()

    async def run(
        self,
        req: RenderedRequest,
        credential: Credential,
        settings: DeliverySettings,
        hook: UnknownOutcomeHook | None = None,
        tokens: AttemptTokens | None = None,
        holds: Holds | None = None,
    ) -> CallOutcome:
        plan = req.plan
        assert plan is not None
        account = credential.account_key
        done: list[StepResult] = []
        steps: list[StepRecord] = []
        outcomes: list[CallOutcome] = []
        last: CallOutcome | None = None
        started_at = self._wall()
        start = self._clock()
        failure: str | None = None
        while True:
            try:
                step = _next(plan, done)
            except PlanError as exc:
                failure = str(exc)
                break
            if step is None:
                break
            r = step.request
            if step.forget and step.known_as is not None:
                self.known.discard(account, step.known_as)
            if step.known_as is not None and self.known.has(account, step.known_as):
                done.append(StepResult(step, None, None, skipped=True))
                steps.append(StepRecord(r.method, r.url, step.purpose, None, 0, skipped=True))
                continue
            step_tokens = None if tokens is None else _StepTokens(tokens, first=not outcomes)
            outcome = await self.service.call(replace(r, plan=None), credential, settings,
                                              hook if step.final else None, step_tokens, holds)
            outcomes.append(outcome)
            last = outcome
            accepted = outcome.ok or (outcome.status is not None and outcome.status in step.accept)
            steps.append(StepRecord(r.method, r.url, step.purpose, outcome.status, outcome.attempts,
                                    error=None if accepted else outcome.final_reason))
            if not accepted:
                n = len(steps)
                outcome.final_reason = f"step {n} ({step.purpose}) failed: {outcome.final_reason}"
                return self._combine(outcome, outcomes, steps, started_at, start)
            if step.known_as is not None:
                self.known.add(account, step.known_as)
            done.append(StepResult(step, outcome.status, outcome.response_body))
        if failure is not None or last is None:
            reason = failure or "the plan sent no request"
            empty = CallOutcome(
                ok=False, status=last.status if last else None,
                response_headers=dict(last.response_headers) if last else {},
                response_body=last.response_body if last else None, attempts=0, attempt_log=[],
                rate_limit_wait_s=0.0, started_at=started_at, finished_at=started_at, latency_s=0.0,
                final_reason=reason, retryable=False,
            )
            return self._combine(empty, outcomes, steps, started_at, start)
        return self._combine(last, outcomes, steps, started_at, start)

    def _combine(self, final: CallOutcome, outcomes: list[CallOutcome], steps: list[StepRecord],
                 started_at: float, start: float) -> CallOutcome:
        # every request's attempts, each marked with its step; `attempts` stays the last request's own
        # count (a later step is not a retry of an earlier one: each step's count is in `steps`)
        final.attempt_log = [replace(a, step=n) for n, o in enumerate(outcomes, 1) for a in o.attempt_log]
        final.attempts = outcomes[-1].attempts if outcomes else 0
        final.rate_limit_wait_s = sum(o.rate_limit_wait_s for o in outcomes)
        final.started_at = started_at
        final.finished_at = self._wall()
        final.latency_s = max(0.0, self._clock() - start)
        final.steps = steps
        return final


class _StepTokens:
    """The budget tokens of one step: the call's first token goes to its first request; every later
    request, first attempt included, asks for a token of its own like a retry of a started call."""

    __slots__ = ("first", "tokens")

    def __init__(self, tokens: AttemptTokens, first: bool) -> None:
        self.tokens = tokens
        self.first = first

    async def token(self, attempt: int) -> float:
        return await self.tokens.token(attempt if self.first else attempt + 1)


def _next(plan: Plan, done: list[StepResult]) -> Step | None:
    if len(done) >= MAX_STEPS:
        raise PlanError(f"the plan did not finish within {MAX_STEPS} requests")
    return plan.next_step(done)
