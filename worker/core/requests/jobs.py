"""Gorgias jobs as data: how long to wait between polls, and what a job's final status means for the
records it carries (pure; the polling itself is :mod:`worker.gorgias.jobs`).

``POST /api/jobs`` answers at once with the job ``pending``; Gorgias runs it "in a few minutes or
several hours" and it ends ``done``, ``errored`` or ``fatal_errored`` (DOC). So the 201 says nothing
about the tickets: a job's records are delivered only when the job is read back ``done``. Any other
end, or a job still running when the wait is over, leaves their outcome ``unknown``: a failed job
may have changed some tickets before it stopped (cancelling does not revert what ran, DOC), and a job
still running may change them later.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import orjson

from worker.core.records.record import RESUME_JOB, Record

__all__ = ["ENDED", "FAILED", "JobPolling", "JobReport", "created_jobs", "job_id_of", "job_status_of"]

ENDED: Final = frozenset({"done", "errored", "fatal_errored", "canceled"})
"""Statuses after which a job changes nothing more (DOC lists the first three; ``canceled`` is final too)."""
FAILED: Final = frozenset({"errored", "fatal_errored", "canceled"})


@dataclass(frozen=True, slots=True)
class JobPolling:
    """How jobs are followed (:mod:`worker.gorgias.job_watch`): the first read ``first_s`` after a job arrives
    at an idle watch, each pause then doubling up to ``max_pause_s`` while jobs are watched, and no read of a
    job starting more than ``max_wait_s`` after it was created (or the worker resumed it)."""

    first_s: float = 2.0
    max_pause_s: float = 60.0
    max_wait_s: float = 1800.0


def created_jobs(records: Iterable[Record]) -> tuple[int, ...]:
    """The jobs to follow instead of creating one: when every record of a call names the job a previous
    owner created for it before a crash, those jobs (in order, once each); otherwise none, and the call
    creates its job. The record chain never puts records of a job in a call with others (it cuts a key's
    batch where the job changes), so a call following a job carries that job's records only."""
    jobs = [r.extra.get(RESUME_JOB) for r in records]
    if not jobs or any(not isinstance(j, int) for j in jobs):
        return ()
    return tuple(dict.fromkeys(j for j in jobs if isinstance(j, int)))


def job_id_of(body: Any) -> int | None:
    """The id of the job a ``POST /api/jobs`` (or ``GET /api/jobs/{id}``) answered with."""
    if isinstance(body, Mapping):
        jid = body.get("id")
        if isinstance(jid, int) and not isinstance(jid, bool):
            return jid
    return None


def job_status_of(body: Any) -> str | None:
    """A job's ``status`` as read back."""
    status = body.get("status") if isinstance(body, Mapping) else None
    return status if isinstance(status, str) else None


@dataclass(slots=True)
class JobReport:
    """What became of a job, for the response event (``job``) and the dead letter's reason."""

    id: int
    status: str | None = None  # the last status read; None when it could not be read
    info: Any = None
    polls: int = 0  # reads of its status
    listed: int = 0  # ... of them in the account's job list (one read for several jobs)
    resumed: bool = False  # followed after a restart instead of being created again
    waited_s: float = 0.0

    @property
    def ended(self) -> bool:
        return self.status in ENDED

    @property
    def done(self) -> bool:
        return self.status == "done"

    def reason(self) -> str | None:
        """Why the job's records are not delivered (None when it is ``done``)."""
        if self.done:
            return None
        if self.status in FAILED:
            info = "" if self.info is None else f": {_short(self.info)}"
            return (f"job {self.id} ended {self.status}{info} (it may have changed some of its tickets before it "
                    "stopped; look at them before replaying)")
        if self.status is None:
            return f"job {self.id} was created but its status could not be read"
        return (f"job {self.id} is still {self.status} after {self.waited_s:.0f} s of polling "
                f"({self.polls} polls); it may still change its tickets")

    def as_event(self) -> dict[str, Any]:
        return {"id": self.id, "status": self.status, "info": self.info, "polls": self.polls,
                "listed": self.listed, "resumed": self.resumed, "waited_s": round(self.waited_s, 3)}


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else orjson.dumps(value).decode()
    return text if len(text) <= 300 else text[:300] + "..."
