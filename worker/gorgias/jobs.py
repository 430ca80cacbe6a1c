"""Calls that create a Gorgias job: the ``POST /api/jobs``, then reads of the job until it ends.

A job's 201 only says that Gorgias accepted it (``pending``); what it does to the tickets is known when
it is read back ``done``, ``errored`` or ``fatal_errored`` (:mod:`worker.core.requests.jobs`). So a job
call is delivered only when its job is ``done``; any other end, a job still running after
``template_options.job.max_wait_s``, or a status that cannot be read, leaves the records ``unknown``.

The reads are the destination's :class:`~worker.gorgias.job_watch.JobWatch`'s: every job the destination
follows is read together (one ``GET /api/jobs`` for many jobs, ``GET /api/jobs/{id}`` for one), each read
through the delivery service and the account's budget. Pauses between reads double from ``first_poll_s``
up to ``max_poll_interval_s``.

Crash recovery: once the 201 names the job, ``created(job_id)`` is awaited before any read (the pipeline
writes the job id into its intent mark and waits for Kafka); then ``following()`` says that the call is off
the wire, only its job is awaited. A worker that takes the records over after a crash finds the id there
and calls :meth:`JobCalls.deliver` with ``resume``: the job is followed, not created a second time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from urllib.parse import urlsplit

from worker.core.config.account import Credential
from worker.core.config.delivery import DeliverySettings
from worker.core.config.worker_config import Destination
from worker.core.outcomes.call_outcome import CallOutcome
from worker.core.requests.jobs import JobPolling, job_id_of
from worker.core.requests.request import RenderedRequest, StepRecord
from worker.core.templates import configured_for
from worker.gorgias.calls import AttemptTokens, Holds
from worker.gorgias.job_watch import Followed, JobWatch, ReadTokens
from worker.gorgias.plan_runner import Sender
from worker.gorgias.ratelimit import Clock, Sleep

__all__ = ["JobCalls", "JobCreated", "job_polling_for"]

JobCreated = Callable[[int], Awaitable[None]]
"""Awaited with the job's id once the 201 names it, before the first poll (the crash-recovery mark)."""
Following = Callable[[], None]
"""Called once the call is off the wire and only waits for its job (created and marked, or taken over)."""


def job_polling_for(dest: Destination) -> JobPolling | None:
    """How ``dest``'s calls follow their jobs, or None when it creates no Gorgias job (neither a job template
    nor ``delivery.coalesce: jobs``)."""
    if dest.endpoint.template is None:
        return None
    return configured_for(dest).job_polling


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


class JobCalls:
    """Delivers job calls on a delivery service (its clocks and sleep)."""

    def __init__(self, service: Sender, clock: Clock, wall_clock: Clock, sleep: Sleep) -> None:
        self.service = service
        self._clock = clock
        self._wall = wall_clock
        self._sleep = sleep
        self._watches: dict[str, JobWatch] = {}

    def watch(self, name: str) -> JobWatch:
        """The watch of destination ``name``: the jobs of its calls are read together."""
        found = self._watches.get(name)
        if found is None:
            found = self._watches[name] = JobWatch(self.service, self._clock, self._sleep, name)
        return found

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
        watch: JobWatch | None = None,
        following: Following | None = None,
    ) -> CallOutcome:
        """Create the job of ``req`` (or follow the jobs in ``resume``, created before a restart) until it ends.
        ``watch``: the destination's (default: one of the call's own)."""
        start, started_at = self._clock(), self._wall()
        origin = _origin(req.url)
        watch = watch if watch is not None else JobWatch(self.service, self._clock, self._sleep)
        if resume:
            if following is not None:
                following()
            jobs = list(dict.fromkeys(resume))
            resumed = await asyncio.gather(*(
                watch.follow(jid, origin, credential, settings, polling, ReadTokens(tokens, first=n == 0), holds,
                             resumed=True) for n, jid in enumerate(jobs)))
            return self._combine(None, req.url, list(resumed), start, started_at)
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
        if following is not None:
            following()
        followed = await watch.follow(created_id, origin, credential, settings, polling, ReadTokens(tokens, False),
                                      holds)
        return self._combine(post, req.url, [followed], start, started_at)

    def _combine(self, post: CallOutcome | None, post_url: str, followed: list[Followed], start: float,
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
                                    f"read job {f.report.id} until it ends ({_reads(f)})",
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


def _reads(followed: Followed) -> str:
    report = followed.report
    listed = f", {report.listed} of them in the job list" if report.listed else ""
    return f"{report.polls} polls{listed}"


def _reason(followed: Followed) -> str | None:
    last = followed.last
    if last is not None and not last.ok:
        return f"job {followed.report.id}: reading its status failed: {last.final_reason}"
    return followed.report.reason()
