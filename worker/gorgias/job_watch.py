"""Following a destination's Gorgias jobs until they end: one read of their status for many jobs.

Every job a destination created (or took over after a restart) is *watched* here until it ends
(:mod:`worker.core.requests.jobs`): ``done``, ``errored``, ``fatal_errored`` or ``canceled``, a read of
its status fails for good, or no read may start any more (``max_wait_s`` after it was created or taken
over). Reads happen together, for every job watched: the first ``first_s`` after a job arrives at an
idle watch, then at pauses doubling up to ``max_pause_s`` for as long as jobs are watched (a job added
meanwhile joins the next read). A read is:

* one job watched: ``GET /api/jobs/{id}`` (SPEC), one token;
* several: ``GET /api/jobs?limit=100&order_by=created_datetime:desc`` (SPEC: the route, ``limit``,
  ``cursor`` and ``order_by`` as on Gorgias' other lists; INF: that ``created_datetime`` orders jobs, that a
  job's list entry is the job as ``GET /api/jobs/{id}`` answers it, that ended jobs stay listed, and that
  ids grow with creation). One token reads up to 100 jobs; jobs not on the first page are looked for on
  the next ones while those are newer than the oldest of them and more than one is still missing (a page
  costs what one job's GET does; 20 pages at most: a destination whose jobs run for minutes watches
  hundreds), else each is read by its own GET. When Gorgias
  refuses the list (400, 404, 405, 422: the parameters or the route), the watch reads each job by its own
  GET from then on, and says so once in the log.

Every read is an ordinary call through the delivery service: it takes a token of the account's budget
(from a job's own tokens: a call's first token when it has not been used, else a retry token, which the
account's dispatcher serves before every waiting call), follows the retry rules and holds, and its
attempts appear in the response event of one job's call (the oldest job read), so no attempt is counted
twice.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import quote

from worker.core.config.account import Credential
from worker.core.config.delivery import DeliverySettings
from worker.core.outcomes.call_outcome import CallOutcome
from worker.core.requests.jobs import JobPolling, JobReport, job_id_of, job_status_of
from worker.core.requests.request import RenderedRequest
from worker.gorgias.calls import AttemptTokens, Holds
from worker.gorgias.plan_runner import Sender
from worker.gorgias.ratelimit import Clock, Sleep

log = logging.getLogger(__name__)

__all__ = ["Followed", "JobWatch", "ReadTokens"]

LIST_LIMIT: Final = 100  # the most a Gorgias list page holds
MAX_LIST_PAGES: Final = 20
LIST_REFUSED: Final = frozenset({400, 404, 405, 422})
"""A list read answered so is not retried: the watch reads each job by its own GET from then on."""
_ACCEPT: Final = {"Accept": "application/json"}


class ReadTokens:
    """A job's tokens for reads: its call's first token while it has not been used (a call taken over after a
    restart reads before it creates anything), then a token per attempt like a retry."""

    __slots__ = ("first", "tokens")

    def __init__(self, tokens: AttemptTokens | None, first: bool) -> None:
        self.tokens = tokens
        self.first = first

    def take(self) -> AttemptTokens | None:
        """The tokens of the next read (the first read of a fresh call uses its first token)."""
        tokens, fresh = self.tokens, self.first
        self.first = False
        if tokens is None or fresh:
            return tokens
        return _Shifted(tokens)


class _Shifted:
    __slots__ = ("tokens",)

    def __init__(self, tokens: AttemptTokens) -> None:
        self.tokens = tokens

    async def token(self, attempt: int) -> float:
        return await self.tokens.token(attempt + 1)


@dataclass(slots=True)
class Followed:
    """What became of a followed job: its report, the last read's outcome (its body the job as read), and the
    reads whose attempts count for it."""

    report: JobReport
    last: CallOutcome | None = None
    polls: list[CallOutcome] = field(default_factory=list)


@dataclass(slots=True)
class _Job:
    """A watched job, with what its reads need (its call's account, settings, tokens and holds)."""

    followed: Followed
    origin: str
    credential: Credential
    settings: DeliverySettings
    tokens: ReadTokens
    holds: Holds | None
    begin: float
    deadline: float  # no read of it starts later
    ended: asyncio.Future[Followed]
    waiters: int = 1

    @property
    def id(self) -> int:
        return self.followed.report.id


class JobWatch:
    """One destination's watched jobs, read together."""

    def __init__(self, service: Sender, clock: Clock, sleep: Sleep, name: str = "") -> None:
        self.service = service
        self.name = name
        self._clock = clock
        self._sleep = sleep
        self._jobs: dict[int, _Job] = {}  # oldest first
        self._task: asyncio.Task[None] | None = None
        self._pause = 0.0
        self._next_read = 0.0
        self.listing = True  # False once Gorgias refused the job list: each job is read by its own GET
        self.reads = 0  # read calls made (a list page or a job's GET)

    @property
    def watched(self) -> int:
        return len(self._jobs)

    async def follow(self, jid: int, origin: str, credential: Credential, settings: DeliverySettings,
                     polling: JobPolling, tokens: ReadTokens, holds: Holds | None = None,
                     resumed: bool = False) -> Followed:
        """Watch job ``jid`` until it ends (or cannot be followed further) and return what became of it. Two
        calls following one job share its reads."""
        job = self._jobs.get(jid)
        if job is None:
            now = self._clock()
            job = _Job(Followed(JobReport(jid, resumed=resumed)), origin, credential, settings, tokens, holds, now,
                       now + polling.max_wait_s, asyncio.get_running_loop().create_future())
            self._jobs[jid] = job
            if self._task is None:
                self._pause = polling.first_s
                self._next_read = now + polling.first_s
                self._task = asyncio.get_running_loop().create_task(self._run(polling), name=f"jobs:{self.name}")
        else:
            job.waiters += 1
        try:
            return await asyncio.shield(job.ended)
        finally:
            job.waiters -= 1
            if job.waiters == 0 and self._jobs.get(jid) is job:  # nobody waits for it any more (cancelled)
                del self._jobs[jid]
                self._stop_if_idle()

    def _stop_if_idle(self) -> None:
        if not self._jobs and self._task is not None and self._task is not asyncio.current_task():
            self._task.cancel()
            self._task = None

    async def _run(self, polling: JobPolling) -> None:
        try:
            while self._jobs:
                await self._sleep(max(0.0, self._next_read - self._clock()))
                if not self._jobs:
                    break
                await self._read(list(self._jobs.values()))
                self._pause = min(self._pause * 2, polling.max_pause_s)
                self._next_read = self._clock() + self._pause
                self._settle()
        finally:
            if self._task is asyncio.current_task():
                self._task = None

    def _settle(self) -> None:
        """End the jobs that ended, could not be read, or may not be read again before their deadline."""
        for jid, job in list(self._jobs.items()):
            followed = job.followed
            last = followed.last
            if followed.report.ended or (last is not None and not last.ok) or self._next_read > job.deadline:
                del self._jobs[jid]
                if not job.ended.done():
                    job.ended.set_result(followed)

    async def _read(self, jobs: Sequence[_Job]) -> None:
        listed: set[int] = set()
        if len(jobs) >= 2 and self.listing:
            listed = await self._read_list(jobs)
        for job in jobs:
            if job.id not in listed:
                await self._read_one(job)

    async def _read_one(self, job: _Job) -> None:
        get = RenderedRequest("GET", f"{job.origin}/api/jobs/{job.id}", dict(_ACCEPT), None, None)
        outcome = await self.service.call(get, job.credential, job.settings, None, job.tokens.take(), job.holds)
        self.reads += 1
        job.followed.polls.append(outcome)
        self._note(job, outcome, outcome.response_body if outcome.ok else None)

    def _note(self, job: _Job, outcome: CallOutcome, body: Any) -> None:
        """A read of ``job`` answered ``outcome`` (``body``: the job as read, None when the read failed)."""
        report = job.followed.report
        report.polls += 1
        report.waited_s = self._clock() - job.begin
        job.followed.last = outcome
        if body is not None:
            report.status = job_status_of(body)
            report.info = body.get("info") if isinstance(body, dict) else None

    async def _read_list(self, jobs: Sequence[_Job]) -> set[int]:
        """Read the newest jobs of the account; returns the ids of the watched jobs found."""
        by_id = {job.id: job for job in jobs}
        first = jobs[0]  # the oldest: its call's event carries the list's attempts
        found: set[int] = set()
        cursor: str | None = None
        for _ in range(MAX_LIST_PAGES):
            url = f"{first.origin}/api/jobs?limit={LIST_LIMIT}&order_by=created_datetime:desc"
            if cursor is not None:
                url += f"&cursor={quote(cursor, safe='')}"
            get = RenderedRequest("GET", url, dict(_ACCEPT), None, None)
            outcome = await self.service.call(get, first.credential, first.settings, None, first.tokens.take(),
                                              first.holds)
            self.reads += 1
            first.followed.polls.append(outcome)
            page = _page(outcome.response_body) if outcome.ok else None
            if page is None:
                self._list_failed(outcome)
                return found
            items, cursor = page
            for item in items:
                job = by_id.get(job_id_of(item) or -1)
                if job is not None and job.id not in found:
                    found.add(job.id)
                    job.followed.report.listed += 1
                    self._note(job, dataclasses.replace(outcome, response_body=item), item)
            missing = [jid for jid in by_id if jid not in found]
            ids = [i for i in (job_id_of(item) for item in items) if i is not None]
            if len(missing) <= 1 or cursor is None or not ids or min(ids) <= min(missing):
                return found  # one left is read by its GET; the rest are not listed further down (INF: ids grow)
        return found

    def _list_failed(self, outcome: CallOutcome) -> None:
        if outcome.ok or outcome.status in LIST_REFUSED:
            self.listing = False
            what = "answered a list we cannot read" if outcome.ok else f"refused it (HTTP {outcome.status})"
            log.warning("jobs of %s: GET /api/jobs %s; following each job with GET /api/jobs/{id} from now on",
                        self.name or "a destination", what)


def _page(body: Any) -> tuple[list[Any], str | None] | None:
    """A list page's items and next cursor; None when it is not a list page."""
    if not isinstance(body, dict) or not isinstance(body.get("data"), list):
        return None
    meta = body.get("meta")
    cursor = meta.get("next_cursor") if isinstance(meta, dict) else None
    return body["data"], cursor if isinstance(cursor, str) and cursor else None
