"""The service stage: one logical call to Gorgias, with rate limiting, retries and an unknown-outcome hook.

Why a hand-written loop rather than ``stamina.retry_context`` (26.1): stamina retries on exceptions
and re-raises the last one, while this stage must return the last *response* (a 503 or a 429 is data
for the response topic, not an exception); its time budget and sleeps use tenacity's own clock and
``asyncio.sleep``, not the injected ones the tests and the rate limiter share; its jitter is additive
from the global ``random`` rather than full jitter from a seeded generator; a backoff hook replaces the
exponential pause instead of acting as a floor under it; and it has no place to take a rate-limit token
before each attempt or to ask the duplicate check between attempts. Each of those could be bent into
stamina, all of them together make a 40-line loop the clearer code.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
import time
from typing import Any
from urllib.parse import urlsplit

import orjson
from pydantic import SecretStr

from worker.core.config.account import Credential
from worker.core.config.delivery import DeliverySettings
from worker.core.outcomes.call_outcome import AttemptRecord, CallOutcome, MergedRedirect, counted_attempts
from worker.core.requests.request import RenderedRequest
from worker.core.templates.scopes import insufficient_scope, scope_refusal
from worker.gorgias.calls import AttemptTokens, Holds, UnknownOutcomeAttempt, UnknownOutcomeHook
from worker.gorgias.client import (
    DEFAULT_TRANSPORT,
    ClientRegistry,
    HttpResult,
    Sender,
    TransportName,
    resolve_secret,
)
from worker.gorgias.errors import ForeignOriginError, TransportError
from worker.gorgias.holds import CredentialGates
from worker.gorgias.jobs import JobCalls
from worker.gorgias.merged import FOLLOWED_STATUSES, merged_target
from worker.gorgias.oauth import OAuthApps, is_app
from worker.gorgias.plan_runner import PlanRunner
from worker.gorgias.ratelimit import CALL_LIMIT_HEADER, AccountRateLimiter, Clock, RateLimiterRegistry, Sleep
from worker.gorgias.retry import BackoffPolicy, Verdict, classify

log = logging.getLogger(__name__)


def parse_body(body: bytes, content_type: str | None) -> Any:
    """Parsed JSON when the body is JSON, else its text; None when empty."""
    if not body:
        return None
    if (content_type is not None and "json" in content_type.lower()) or body.lstrip()[:1] in (b"{", b"["):
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError:
            pass
    return body.decode("utf-8", errors="replace")


_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
HELD_STATUSES = frozenset({401, 403})
"""Gorgias refusing the credential (401) or the credential's user this route (403): held, not failed,
when the caller can hold calls."""


def _attempts(n: int) -> str:
    return f"{n} attempt" if n == 1 else f"{n} attempts"


class DeliveryService:
    """Delivers one rendered request to Gorgias: token → send → sync the bucket → classify → retry.

    Every attempt, retries included, first takes a token from the account's rate limiter. A 429 pauses
    the whole account for its Retry-After. Attempts stop at ``max_attempts`` or when the next one could
    not start within ``max_retry_time_s`` of the call's start. A 301 (merged ticket or customer) is
    followed once to its ``Location`` with the same method and body (:mod:`worker.gorgias.merged`);
    that follow-up is not counted as a retry. HTTP and transport failures are returned as a
    :class:`CallOutcome`, never raised.

    Unknown outcomes: an attempt that may have reached Gorgias without an answer (``maybe_sent``)
    leaves the call's outcome unknown until the ``unknown_outcome_hook`` (the duplicate check) settles
    it: "done" ends the call as delivered, "retry" means nothing was applied. A call that ends without
    such an answer reports ``outcome_unknown`` (and says so in its reason), never a plain failure.
    """

    def __init__(
        self,
        *,
        clients: ClientRegistry | None = None,
        limiters: RateLimiterRegistry | None = None,
        transport: TransportName = DEFAULT_TRANSPORT,
        clock: Clock = time.monotonic,
        wall_clock: Clock = time.time,
        sleep: Sleep = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self._clock = clock
        self._wall = wall_clock
        self._sleep = sleep
        self._rng = rng if rng is not None else random.Random()
        # an OAuth app's access token comes from its refresh token, shared by the replicas (worker.gorgias.oauth)
        self.oauth = OAuthApps(lambda credential: self._renew_clients(credential), clock=wall_clock, sleep=sleep)
        self.clients = clients if clients is not None else ClientRegistry(transport=transport,
                                                                          secret_resolver=self._secret)
        self.limiters = limiters if limiters is not None else RateLimiterRegistry(clock=clock, sleep=sleep)
        self.gates = CredentialGates(self.clients, self.limiters, clock=clock, sleep=sleep, renew=self._renew)
        self.plans = PlanRunner(self, clock=clock, wall_clock=wall_clock)
        self.jobs = JobCalls(self, clock, wall_clock, sleep)

    def _secret(self, credential: Credential) -> SecretStr:
        """What a client of ``credential`` carries: its key or token, or an OAuth app's current access token."""
        return self.oauth.access_token(credential) if is_app(credential) else resolve_secret(credential)

    async def _renew(self, credential: Credential, settings: DeliverySettings) -> bool:
        """A credential's secret again (an app's access token renewed): True when calls now carry a new one."""
        if is_app(credential):
            await self.oauth.renew(credential)
        return self.clients.renew(credential, settings)

    def granted_scope(self, credential: Credential) -> str | None:
        """The scope an OAuth app's current access token was granted (None: not an app, or not known yet)."""
        return self.oauth.granted_scope(credential) if is_app(credential) else None

    async def take_new_grant(self, credential: Credential) -> None:
        """Before a call refused for a missing OAuth scope tries again: when the app's refresh token changed (it
        was authorized again, with that scope), its new lineage and grant now rather than at the next renewal
        (hours away); with the same refresh token, nothing (the current token is kept)."""
        if not is_app(credential):
            return
        try:
            await self.oauth.get(credential).ensure()
        except LookupError as exc:
            log.warning("%s: %s", credential.account_key, exc, extra={"account": credential.account_key})

    def _renew_clients(self, credential: Credential) -> None:
        try:
            self.clients.renew(credential)
        except LookupError as exc:
            log.warning("%s: %s", credential.account_key, exc)

    async def aclose(self) -> None:
        await self.gates.aclose()
        await self.oauth.aclose()
        await self.clients.aclose()

    async def __aenter__(self) -> DeliveryService:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def call(
        self,
        req: RenderedRequest,
        credential: Credential,
        settings: DeliverySettings,
        unknown_outcome_hook: UnknownOutcomeHook | None = None,
        tokens: AttemptTokens | None = None,
        holds: Holds | None = None,
    ) -> CallOutcome:
        """Deliver ``req``. With ``holds``, a refused credential (401) or route (403) holds the call until it
        works (:mod:`worker.gorgias.holds`); without, it fails the call like any 4xx."""
        if req.plan is not None:  # several requests (worker.core.requests.request): each one comes back through here
            return await self.plans.run(req, credential, settings, unknown_outcome_hook, tokens, holds)
        run = _RunningCall(self, req, credential, settings, unknown_outcome_hook, tokens, holds)
        return await run.execute()


class _RunningCall:
    """The state of one call while it runs."""

    def __init__(
        self,
        service: DeliveryService,
        req: RenderedRequest,
        credential: Credential,
        settings: DeliverySettings,
        hook: UnknownOutcomeHook | None,
        tokens: AttemptTokens | None = None,
        holds: Holds | None = None,
    ) -> None:
        self.s = service
        self.tokens = tokens
        self.holds = holds
        self.renewed = False  # the credential was renewed once for this call after a 401 (then a 401 holds it)
        self.held_s = 0.0  # time spent held: not part of the retry time budget
        self.clock = service._clock
        self.wall = service._wall
        self.sleep = service._sleep
        self.req = req
        self.credential = credential
        self.settings = settings
        self.hook = hook
        self.policy = BackoffPolicy(settings.backoff_initial_s, settings.backoff_max_s, service._rng)
        self.log: list[AttemptRecord] = []
        self.waited = 0.0
        self.unsettled: str | None = None  # why an earlier attempt may have taken effect, until a check says not
        self.merged: MergedRedirect | None = None
        self.started_at = service._wall()
        self.start = service._clock()

    # complexity: the attempt loop; each branch is one outcome of an attempt (done, 301, hold, retry, give up)
    async def execute(self) -> CallOutcome:  # noqa: C901
        client = await self._client()
        if isinstance(client, CallOutcome):
            return client
        limiter = self.s.limiters.get(self.credential)
        attempt = 0
        failures = 0  # attempts that count against max_attempts: neither a 429 nor a followed redirect
        while True:
            attempt += 1
            waited = await (self.tokens.token(attempt) if self.tokens is not None else limiter.acquire())
            self.waited += waited
            sent_at = self.clock()
            outcome: HttpResult | TransportError
            try:
                outcome = await client.send(self.req)
            except TransportError as exc:
                outcome = exc
            except ForeignOriginError as exc:
                self.record(attempt, None, sent_at, waited, 0.0, f"refused: {exc}", error_kind="refused")
                return self.finish(None, ok=False, reason=str(exc), retryable=False)
            result = outcome if isinstance(outcome, HttpResult) else None
            verdict = classify(outcome, now=self.wall)
            refused_wait = _budget_answer(limiter, result, verdict)
            if self.holds is not None and result is not None:
                if result.status in HELD_STATUSES:
                    self.record(attempt, outcome, sent_at, waited, 0.0, f"{verdict.reason}; held", held=True)
                    ended = await self._wait_out_refusal(result, verdict, client)
                    if ended is not None:
                        return ended
                    client = self.s.clients.get(self.credential, self.settings)  # the secret may be new
                    continue
                self.holds.route_answered()

            if self._follow_merge(result):  # an attempt, but not a retry
                self.record(attempt, outcome, sent_at, waited, 0.0, f"{verdict.reason}; following it once",
                            followed=True)
                continue
            if verdict.action != "retry":
                self.record(attempt, outcome, sent_at, waited, 0.0, verdict.reason)
                ok = verdict.action == "success"
                return self.finish(result, ok=ok, reason=None if ok else verdict.reason, retryable=False,
                                   unknown=not ok and self.unsettled is not None)

            if verdict.outcome_unknown and self.req.method not in _SAFE_METHODS:  # a lost GET changed nothing
                self.unsettled = verdict.reason
            if refused_wait is None:
                failures += 1
            give_up, delay = self._next_pause(attempt, failures, refused_wait, verdict)
            self.record(attempt, outcome, sent_at, waited, delay, verdict.reason)

            if give_up is None:
                log.info(
                    "%s: attempt %d failed (%s); retrying in %.2f s",
                    self.credential.account_key,
                    attempt,
                    verdict.reason,
                    delay,
                )
                await self.sleep(delay)
            if verdict.outcome_unknown and self.hook is not None:
                resolved = await self.ask_hook(attempt, outcome, verdict)
                if resolved is not None:
                    return resolved
            if give_up is not None:
                return self.finish(result, ok=False, reason=give_up, retryable=True,
                                   unknown=self.unsettled is not None)

    async def _client(self) -> Sender | CallOutcome:
        """The credential's client. When its secret cannot be read (an app without a token yet, a file gone)
        the call fails; with holds it is renewed once, then waits at the credential's gate like a refusal."""
        renewed = False
        while True:
            try:
                return self.s.clients.get(self.credential, self.settings)
            except LookupError as exc:
                problem = str(exc)
            if self.holds is None:
                return self.finish(None, ok=False, reason=f"credential secret unavailable: {problem}",
                                   retryable=False)
            gate = self.s.gates.get(self.credential, self.settings)
            if not renewed and not gate.held:
                renewed = True
                try:
                    await gate.renew()
                    continue
                except LookupError as exc:
                    problem = str(exc)
            gate.hold(f"the credential's secret cannot be read now: {problem}")
            give_up = await self.holds.credential_held(gate)
            if give_up is not None:
                return self.finish(None, ok=False, reason=give_up, retryable=True)

    async def _wait_out_refusal(self, result: HttpResult, verdict: Verdict, used: Sender) -> CallOutcome | None:
        """After a 401 or 403 (recorded as a hold): wait until the credential or the route works, then None
        (send it again, not an attempt); or the call's outcome when the caller's holds give up."""
        assert self.holds is not None
        started = self.clock()
        if result.status == 401:
            gate = self.s.gates.get(self.credential, self.settings)
            renewed = await gate.refused(used, verdict.reason, may_renew=not self.renewed)
            self.renewed = self.renewed or renewed
            give_up = None if renewed else await self.holds.credential_held(gate)
        else:
            route = f"{self.req.method} {urlsplit(self.req.url).path}"
            scope = insufficient_scope(result.header("www-authenticate"))
            if scope is None:
                give_up = await self.holds.route_refused(f"{route}: {verdict.reason}")
            else:
                give_up = await self.holds.route_refused(scope_refusal(route, scope), scope=scope)
                if give_up is None:  # a refresh token given meanwhile (the app authorized again) is used now
                    await self.s.take_new_grant(self.credential)
        self.held_s += self.clock() - started
        if give_up is None:
            return None
        return self.finish(result, ok=False, reason=give_up, retryable=True, unknown=self.unsettled is not None)

    def _follow_merge(self, result: HttpResult | None) -> bool:
        """Whether ``result`` is the 301 of a merged ticket or customer, followed once: the request now goes
        to its ``Location`` (the same method and body; a sub-resource such as ``/data`` is kept)."""
        if result is None or self.merged is not None or result.status not in FOLLOWED_STATUSES:
            return False
        merged = merged_target(self.req.url, result.header("location"))
        if merged is None:
            return False
        self.merged = merged
        self.req = dataclasses.replace(self.req, url=merged.to_url)
        return True

    def _next_pause(self, attempt: int, failures: int, refused_wait: float | None,
                    verdict: Verdict) -> tuple[str | None, float]:
        """``(why to give up, None to retry; the pause before the next attempt)`` after a retryable failure:
        out of attempts (a 429 is not counted), or the pause would overrun the call's retry budget."""
        if refused_wait is None and failures >= self.settings.max_attempts:
            return f"gave up after {_attempts(attempt)}: {verdict.reason}", 0.0
        delay = refused_wait if refused_wait is not None else self.policy.delay(failures, verdict.retry_after_s)
        spent = self.clock() - self.start - self.held_s
        budget = self.settings.max_retry_time_s
        if spent + delay > budget:
            return (f"retry budget of {budget:g} s spent after {_attempts(attempt)} "
                    f"({spent:.1f} s elapsed, next pause {delay:.1f} s): {verdict.reason}"), 0.0
        return None, delay

    async def ask_hook(
        self, attempt: int, outcome: HttpResult | TransportError, verdict: Verdict
    ) -> CallOutcome | None:
        assert self.hook is not None and isinstance(outcome, TransportError)
        try:
            decision = await self.hook(UnknownOutcomeAttempt(self.req, self.credential, attempt, outcome, self.holds))
        except Exception as exc:
            reason = (
                f"attempt {attempt} went unanswered ({verdict.reason}) and the duplicate check failed, "
                f"so it was not sent again: {type(exc).__name__}: {exc}"
            )
            return self.finish(None, ok=False, reason=reason, retryable=True, unknown=True)
        if decision.action == "done":
            return self.finish(decision.result, ok=True, reason=None, retryable=False, by_hook=True)
        if decision.checked:
            self.unsettled = None  # the check found nothing: no earlier attempt took effect
        return None

    def record(
        self,
        attempt: int,
        outcome: HttpResult | TransportError | None,
        sent_at: float,
        waited: float,
        backoff: float,
        reason: str,
        *,
        error_kind: str | None = None,
        followed: bool = False,
        held: bool = False,
    ) -> None:
        self.log.append(
            AttemptRecord(
                attempt=attempt,
                status=outcome.status if isinstance(outcome, HttpResult) else None,
                error_kind=outcome.kind if isinstance(outcome, TransportError) else error_kind,
                maybe_sent=outcome.maybe_sent if isinstance(outcome, TransportError) else outcome is not None,
                elapsed_s=max(0.0, self.clock() - sent_at),
                rate_limit_wait_s=waited,
                backoff_s=backoff,
                reason=reason,
                held=held,
                followed=followed,
            )
        )

    def finish(
        self,
        result: HttpResult | None,
        *,
        ok: bool,
        reason: str | None,
        retryable: bool,
        unknown: bool = False,
        by_hook: bool = False,
    ) -> CallOutcome:
        headers = dict(result.headers) if result is not None else {}
        if unknown and reason is not None:
            reason = f"outcome unknown (the request may have taken effect; a replay looks it up first): {reason}"
        return CallOutcome(
            ok=ok,
            status=result.status if result is not None else None,
            response_headers=headers,
            response_body=parse_body(result.body_bytes, headers.get("content-type")) if result else None,
            attempts=counted_attempts(self.log),
            attempt_log=self.log,
            rate_limit_wait_s=self.waited,
            started_at=self.started_at,
            finished_at=self.wall(),
            latency_s=max(0.0, self.clock() - self.start),
            final_reason=reason,
            retryable=retryable,
            outcome_unknown=unknown,
            resolved_by_hook=by_hook,
            merged=self.merged,
        )


def _budget_answer(limiter: AccountRateLimiter, result: HttpResult | None, verdict: Verdict) -> float | None:
    """Keep the account's bucket in step with the answer's call-limit header; for a 429, the wait before the
    next attempt. The wait comes from the header's level and the drain rate, Retry-After is a floor; a 429 is
    not a failed attempt: only the call's time budget bounds how long it keeps trying."""
    if result is None:
        return None
    if result.status == 429:
        return limiter.refused(result.header(CALL_LIMIT_HEADER), verdict.retry_after_s)
    limiter.observe_header(result.header(CALL_LIMIT_HEADER))
    return None
