"""Calls that create a Gorgias job: the ``POST /api/jobs``, then ``GET /api/jobs/{id}`` until the job ends.

A job's 201 only says that Gorgias accepted it (``pending``); what it does to the tickets is known when
it is read back ``done``, ``errored`` or ``fatal_errored`` (:mod:`worker.core.requests.jobs`). So a job
call is delivered only when its job is ``done``; any other end, a job still running after
``template_options.job.max_wait_s``, or a status that cannot be read, leaves the records ``unknown``.

Every poll is an ordinary call through the delivery service: it takes a token from the account's
budget (the call's first token goes to its first request, each later request asks for its own like a
retry does), follows the retry rules, and its attempts are in the call's log. Pauses between polls
double from ``first_poll_s`` up to ``max_poll_interval_s``.

Crash recovery: once the 201 names the job, ``created(job_id)`` is awaited before any poll (the pipeline
writes the job id into its intent mark and waits for Kafka). A worker that takes the records over after
a crash finds the id there and calls :meth:`JobCalls.deliver` with ``resume``: the job is followed, not
created a second time.

Following many jobs at once: ``GET /api/jobs`` is a documented route (SPEC) but no filter by id or status
is, so each job is read by its own ``GET /api/jobs/{id}`` (one token each); a poller of many jobs could
page the newest jobs instead (INF: whether ended jobs stay in that list is unknown).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from urllib.parse import urlsplit

from worker.core.config.account import Credential
from worker.core.config.delivery import DeliverySettings
from worker.core.config.worker_config import Destination
from worker.core.outcomes.call_outcome import CallOutcome
from worker.core.requests.jobs import JobPolling, JobReport, job_id_of, job_status_of, poll_delays
from worker.core.requests.request import RenderedRequest, StepRecord
from worker.core.templates import configured_for
from worker.gorgias.calls import AttemptTokens, Holds
from worker.gorgias.plan_runner import Sender
from worker.gorgias.ratelimit import Clock, Sleep

__all__ = ["JobCalls", "JobCreated", "job_polling_for"]

JobCreated = Callable[[int], Awaitable[None]]
"""Awaited with the job's id once the 201 names it, before the first poll (the crash-recovery mark)."""


def job_polling_for(dest: Destination) -> JobPolling | None:
    """How ``dest``'s calls follow their jobs, or None when its endpoint creates no Gorgias job."""
    if dest.endpoint.template is None:
        return None
    return configured_for(dest).job_polling


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


class _LaterTokens:
    """Tokens of a request that is not the call's first: every attempt asks for a token of its own."""

    __slots__ = ("first", "tokens")

    def __init__(self, tokens: AttemptTokens | None, first: bool) -> None:
        self.tokens = tokens
        self.first = first

    def of(self) -> AttemptTokens | None:
        if self.tokens is None or self.first:
            return self.tokens
        return _Shifted(self.tokens)


class _Shifted:
    __slots__ = ("tokens",)

    def __init__(self, tokens: AttemptTokens) -> None:
        self.tokens = tokens

    async def token(self, attempt: int) -> float:
        return await self.tokens.token(attempt + 1)


@dataclass(slots=True)
class _Followed:
    report: JobReport
    last: CallOutcome | None  # the last poll's outcome (None when no poll was made)
    polls: list[CallOutcome]


class JobCalls:
    """Delivers job calls on a delivery service (its clocks and sleep)."""

    def __init__(self, service: Sender, clock: Clock, wall_clock: Clock, sleep: Sleep) -> None:
        self.service = service
        self._clock = clock
        self._wall = wall_clock
        self._sleep = sleep

    async def deliver(
        self,
        req: RenderedRequest,
        credential: Credential,
        settings: DeliverySettings,
        polling: JobPolling,
        *,
        tokens: AttemptTokens | None = None,
        created: JobCreated | None = None,
        resume: Sequence[int] = (),
        holds: Holds | None = None,
    ) -> CallOutcome:
        """Create the job of ``req`` (or follow the jobs in ``resume``, created before a restart) until it ends."""
        start, started_at = self._clock(), self._wall()
        origin = _origin(req.url)
        if resume:
            followed = []
            for n, jid in enumerate(dict.fromkeys(resume)):
                followed.append(await self._follow(jid, origin, credential, settings, polling,
                                                   _LaterTokens(tokens, first=n == 0), resumed=True, holds=holds))
            return self._combine(None, req.url, followed, start, started_at)
        post = await self.service.call(req, credential, settings, None, tokens, holds)
        if not post.ok:
            return post
        created_id = job_id_of(post.response_body)
        if created_id is None:
            post.ok = False
            post.outcome_unknown = True
            post.final_reason = (f"outcome unknown: the job create answered {post.status} without a job id, so "
                                 "whether it runs cannot be followed")
            return post
        if created is not None:
            await created(created_id)
        followed = [await self._follow(created_id, origin, credential, settings, polling, _LaterTokens(tokens, False),
                                       holds=holds)]
        return self._combine(post, req.url, followed, start, started_at)

    async def _follow(self, jid: int, origin: str, credential: Credential, settings: DeliverySettings,
                      polling: JobPolling, tokens: _LaterTokens, *, resumed: bool = False,
                      holds: Holds | None = None) -> _Followed:
        """Poll job ``jid`` until it ends, a read fails for good, or the wait is over."""
        report = JobReport(jid, resumed=resumed)
        get = RenderedRequest("GET", f"{origin}/api/jobs/{jid}", {"Accept": "application/json"}, None, None)
        begin = self._clock()
        polls: list[CallOutcome] = []
        for pause in poll_delays(polling):
            await self._sleep(pause)
            outcome = await self.service.call(get, credential, settings, None, tokens.of(), holds)
            tokens.first = False
            polls.append(outcome)
            report.polls += 1
            report.waited_s = self._clock() - begin
            if not outcome.ok:
                break
            report.status = job_status_of(outcome.response_body)
            body = outcome.response_body
            report.info = body.get("info") if isinstance(body, dict) else None
            if report.ended:
                break
        return _Followed(report, polls[-1] if polls else None, polls)

    def _combine(self, post: CallOutcome | None, post_url: str, followed: list[_Followed], start: float,
                 started_at: float) -> CallOutcome:
        """One outcome for the call: the last answer read, delivered only when every job is ``done``."""
        outcomes = ([post] if post is not None else []) + [o for f in followed for o in f.polls]
        final = next((f.last for f in reversed(followed) if f.last is not None), post)
        reasons = [_reason(f) for f in followed]
        failure = next((r for r in reasons if r is not None), None)
        steps = [StepRecord("POST", post_url, "create the job", post.status, post.attempts)] if post else []
        origin = _origin(post_url)
        for f in followed:
            last = f.last
            steps.append(StepRecord("GET", f"{origin}/api/jobs/{f.report.id}",
                                    f"read job {f.report.id} until it ends ({f.report.polls} polls)",
                                    None if last is None else last.status,
                                    sum(o.attempts for o in f.polls), error=_reason(f)))
        # every request's attempts, each marked with its request (a poll is not a retry of the create)
        attempt_log = [replace(a, step=n) for n, o in enumerate(outcomes, 1) for a in o.attempt_log]
        return CallOutcome(
            ok=failure is None,
            status=None if final is None else final.status,
            response_headers={} if final is None else dict(final.response_headers),
            response_body=None if final is None else final.response_body,
            attempts=outcomes[-1].attempts if outcomes else 0,
            attempt_log=attempt_log,
            rate_limit_wait_s=sum(o.rate_limit_wait_s for o in outcomes),
            started_at=started_at,
            finished_at=self._wall(),
            latency_s=max(0.0, self._clock() - start),
            final_reason=None if failure is None else f"outcome unknown: {failure}",
            retryable=False,
            outcome_unknown=failure is not None,
            steps=steps,
            jobs=[f.report for f in followed],
        )


def _reason(followed: _Followed) -> str | None:
    last = followed.last
    if last is not None and not last.ok:
        return f"job {followed.report.id}: reading its status failed: {last.final_reason}"
    return followed.report.reason()
