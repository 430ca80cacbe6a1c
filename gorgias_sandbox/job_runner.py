"""Jobs run in the background, as Gorgias' do: created ``pending`` (or ``scheduled``), ``running`` for a
configurable time, then ``done``, ``errored`` or ``fatal_errored`` (DOC: "in a few minutes or several hours").

Nothing runs on a timer: before every request (and every admin read) the queue catches up with the clock,
starting the jobs whose time has come and finishing those whose time is up. Nobody can look at the
state without a request, so this is indistinguishable from a job that ran on its own, and a test that
moves the injected monotonic clock moves the jobs with it. A job's work is applied all at once when it
finishes (a job that fails on purpose applies part of it or nothing, see :meth:`JobQueue.enqueue`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gorgias_sandbox.ratelimit import Clock
from gorgias_sandbox.state import AccountState
from gorgias_sandbox.timestamps import parse_timestamp

JobWork = Callable[[AccountState, dict[str, Any], str, "str | None"], None]
"""Applies a finished job to the account: ``(account, job, now, injected failure or None)``; sets the
job's final ``status`` and ``info``."""

ENDED = frozenset({"done", "errored", "fatal_errored", "canceled"})


@dataclass(slots=True)
class _Run:
    """When a queued job starts and ends (monotonic seconds), and the failure injected into it, if any."""

    job: dict[str, Any]
    starts_at: float
    ends_at: float
    failure: str | None


class JobQueue:
    """The jobs of every account that have not ended yet, and how long a job takes."""

    def __init__(self, clock: Clock, duration_s: float, work: JobWork,
                 failure: Callable[[], str | None] = lambda: None) -> None:
        self.clock = clock
        self.duration_s = duration_s
        self._work = work
        self._failure = failure
        self._runs: dict[tuple[str, int], _Run] = {}

    def enqueue(self, account: AccountState, job: dict[str, Any], now: str) -> None:
        """Queue ``job`` (just created, ``pending`` or ``scheduled``): it starts now or at its
        ``scheduled_datetime`` and ends ``duration_s`` later. ``failure`` (drawn from the fault
        configuration now) decides whether it fails on purpose."""
        failure = self._failure()
        start = self.clock()
        scheduled = job.get("scheduled_datetime")
        if scheduled is not None:
            start += max(0.0, (parse_timestamp(scheduled) - parse_timestamp(now)).total_seconds())
        self._runs[(account.domain, job["id"])] = _Run(job, start, start + self.duration_s, failure)

    def advance(self, account: AccountState, now: str) -> None:
        """Start and finish the account's jobs whose time has come (in id order)."""
        if not self._runs:
            return
        moment = self.clock()
        for key in sorted(k for k in self._runs if k[0] == account.domain):
            run = self._runs[key]
            job = run.job
            if job["status"] in ENDED or job["status"] == "cancel_requested":
                if job["status"] == "cancel_requested":
                    job.update(status="canceled", updated_datetime=now)
                del self._runs[key]
                continue
            if moment >= run.starts_at and job["status"] in ("pending", "scheduled"):
                job.update(status="running", started_datetime=now, updated_datetime=now)
            if moment >= run.ends_at:
                self._work(account, job, now, run.failure)
                job.update(ended_datetime=now, updated_datetime=now)
                del self._runs[key]

    def forget(self) -> None:
        """Drop every queued job (the state was reset)."""
        self._runs.clear()

    def pending(self, account: AccountState) -> int:
        """How many of the account's jobs have not ended."""
        return sum(1 for domain, _ in self._runs if domain == account.domain)
