"""Calls of different tickets that ask the same change, gathered into one Gorgias job (``delivery.coalesce: jobs``).

While calls wait for the account's budget, each one's :class:`~worker.core.templates.job_forms.JobForm` is
read from the request it would make now (remembered on the call until it takes another record). Calls
that may start now and whose changes are equal form a :class:`JobGroup`: one candidate for the next
token, carrying all their records, over at most ``max_tickets`` tickets (the oldest calls first). A group
is offered only when it spans two tickets or more: a change asked of one ticket goes as that ticket's
own call. The account's scheduler picks among plain calls and groups by records per token, so groups are
chosen when calls wait for the budget; when the budget is free the first ready call goes at once, as
without coalescing.

Per-ticket order holds as for any call: only the first call of a key's lane may join, and its lane stays
busy until the job's outcome is known, so a ticket's later records never overtake one inside a job.
Calls whose records name a job created before a restart are not gathered: they follow that job.

Pure: no I/O; requests come from the chain's renderer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from worker.core.grouping.open_batches import QueuedCall
from worker.core.records.record import RESUME_JOB
from worker.core.requests.rendering import Prepared
from worker.core.requests.request import RenderedRequest
from worker.core.templates.job_forms import JobChange, JobForm, job_form, job_request

__all__ = ["JobCoalescer", "JobGroup"]

Render = Callable[[QueuedCall[Prepared]], "RenderedRequest | None"]
"""The request a waiting call would make now (None when it cannot be rendered: it goes alone and fails there)."""


@dataclass(frozen=True, slots=True)
class _Seen:
    form: JobForm | None
    request: RenderedRequest | None


class JobGroup:
    """Waiting calls of several tickets asking one change: a candidate for the account's next token."""

    __slots__ = ("calls", "change", "like", "ready_at", "records", "tickets")

    def __init__(self, change: JobChange, like: RenderedRequest) -> None:
        self.change = change
        self.like = like  # a member's own request: the job goes to its origin, with its headers
        self.calls: list[QueuedCall[Prepared]] = []
        self.tickets: dict[int, None] = {}  # in the order they joined
        self.records = 0
        self.ready_at = float("inf")

    @property
    def tokens(self) -> int:
        return 1  # the job's create; its polls are shared by every job the destination follows

    def add(self, call: QueuedCall[Prepared], ticket_id: int) -> None:
        self.calls.append(call)
        self.tickets[ticket_id] = None
        self.records += len(call.items)
        self.ready_at = min(self.ready_at, call.ready_at)

    def request(self) -> RenderedRequest:
        """``POST /api/jobs`` over the group's tickets."""
        return job_request(self.like, self.change, self.tickets)

    def __repr__(self) -> str:
        return f"JobGroup(tickets={len(self.tickets)}, records={self.records}, kind={self.change.kind})"


class JobCoalescer:
    """Gathers a destination's waiting calls into job groups."""

    def __init__(self, template: str, render: Render, max_tickets: int) -> None:
        self.template = template
        self._render = render
        self.max_tickets = max_tickets

    def _seen(self, call: QueuedCall[Prepared]) -> _Seen:
        count = len(call.items)
        memo = call.memo
        if memo is not None and memo[0] == count and isinstance(memo[1], _Seen):
            return memo[1]
        seen = _Seen(None, None)
        if not any(RESUME_JOB in p.record.extra for p in call.items):  # those follow the job made before
            request = self._render(call)
            if request is not None:
                seen = _Seen(job_form(self.template, request), request)
        call.memo = (count, seen)
        return seen

    def groups(self, calls: Iterable[QueuedCall[Prepared]]) -> list[JobGroup]:
        """Groups of two tickets or more among ``calls`` (calls that may start now, oldest first), each over at
        most ``max_tickets`` tickets."""
        found: dict[bytes, JobGroup] = {}
        for call in calls:
            seen = self._seen(call)
            form = seen.form
            if form is None or seen.request is None:
                continue
            group = found.get(form.change.key)
            if group is None:
                group = found[form.change.key] = JobGroup(form.change, seen.request)
            if len(group.tickets) < self.max_tickets or form.ticket_id in group.tickets:
                group.add(call, form.ticket_id)
        return [g for g in found.values() if len(g.tickets) >= 2]
