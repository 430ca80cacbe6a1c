"""Calls of different tickets that ask the same change, gathered into one Gorgias job (``delivery.coalesce: jobs``).

While calls wait for the account's budget, each one's :class:`~worker.core.templates.job_forms.JobForm` is
read from the request it would make now (remembered on the call until it takes another record). Calls
that may start now and whose changes are equal form a :class:`JobGroup`: one candidate for the next
token, carrying all their records, over at most ``max_tickets`` tickets (the oldest calls first). A group
is offered only when it spans two tickets or more: a change asked of one ticket goes as that ticket's
own call. The account's scheduler picks among plain calls and groups by records per token, so groups are
chosen when calls wait for the budget; when the budget is free the first ready call goes at once, as
without coalescing.

**A call's parts.** A ticket's waiting call often holds several records, each asking one common change (a
tag here, a status there), whose sum is a change no other ticket asks. So a call of an ``updateTicket``
form is read in parts: its records that only add tags, by the tags they add, and its other records (status,
priority, assignee, trash: set fields, the last value winning) as one part. Each part may join the group of
its own change; a group takes only that part's records and the rest of the call keeps waiting, first of its
lane, free to go alongside (:meth:`~worker.core.grouping.open_batches.OpenBatches.split`). The parts of one
call commute: tags are added, and the set fields are all in one part, so whichever job Gorgias runs first
the ticket ends as the whole call would have left it.

**A call in a group rides with it.** When calls wait for the budget, a call with a part in a group is offered
alone as :class:`Riding`, carrying no records: the group goes anyway, so the call's part costs nothing
more in it, where alone the call would take tokens of its own (and the scheduler, weighing records per
token, would send a warm ticket's call alone rather than its parts in jobs of a few tickets each). When a
token is free at once, the first ready call still goes alone at once, as without coalescing.

**A full call goes ticket by ticket.** A call that reached ``batching.batch_size`` (or ``max_bytes``) belongs
to a ticket whose records come faster than a job ends: in a job, its lane would wait for minutes while its
records pile up a full call at a time, whereas alone it carries a full call's records for its own
token(s) and its lane moves on at once.

**A group gathers before it goes.** A group of fewer than ``max_tickets`` tickets is *held*
(:attr:`JobGroup.held_until`) until the first of its calls has waited ``gather_s`` since it could join
(``delivery.coalesce_gather_s``): while calls wait for the budget, the scheduler does not offer it before
then (nor when the budget is free: it never looks past the first ready call), so one job of a change carries
what ``gather_s`` brought instead of each token taking the few tickets freed since the last one. A group at
the cap is not held; nor is any when the account would lose tokens otherwise.

Per-ticket order holds as for any call: only the first call of a key's lane may join, and its lane stays
busy until the job's outcome is known (each of its parts' jobs), so a ticket's later records never overtake
one inside a job. Calls whose records name a job created before a restart are not gathered: they follow
that job.

Pure: no I/O; requests come from the chain's renderer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from worker.core.grouping.batching import FlushReason
from worker.core.grouping.open_batches import QueuedCall
from worker.core.records.record import RESUME_JOB
from worker.core.requests.rendering import Prepared
from worker.core.requests.request import RenderedRequest
from worker.core.templates.job_forms import JobChange, JobForm, job_form, job_request

__all__ = ["JobCoalescer", "JobGroup", "Riding"]

Render = Callable[[QueuedCall[Prepared], list[Prepared]], "RenderedRequest | None"]
"""The request a waiting call would make now with these of its records (None when it cannot be rendered: it
goes alone and fails there)."""


@dataclass(frozen=True, slots=True)
class _Part:
    """Records of a waiting call (``indices`` into its items; None: all of them) and the job form they make."""

    form: JobForm
    request: RenderedRequest
    indices: tuple[int, ...] | None


@dataclass(frozen=True, slots=True)
class _Seen:
    parts: tuple[_Part, ...]  # none: the call goes ticket by ticket
    own: tuple[bytes | None, ...] = ()  # each record's part (see _part_key), computed once per record


class JobGroup:
    """Waiting calls of several tickets asking one change: a candidate for the account's next token."""

    __slots__ = ("calls", "change", "held_until", "like", "ready_at", "records", "since", "tickets")

    def __init__(self, change: JobChange, like: RenderedRequest) -> None:
        self.change = change
        self.like = like  # a member's own request: the job goes to its origin, with its headers
        self.calls: list[QueuedCall[Prepared]] = []  # whole, or only the part asking this change
        self.tickets: dict[int, None] = {}  # in the order they joined
        self.records = 0
        self.ready_at = float("inf")
        self.since = float("inf")  # since when its first call could join (QueuedCall.eligible_at)
        self.held_until = float("-inf")  # not offered before this while calls wait for the budget (see groups())

    @property
    def tokens(self) -> int:
        return 1  # the job's create; its polls are shared by every job the destination follows

    def add(self, call: QueuedCall[Prepared], ticket_id: int, records: int) -> None:
        self.calls.append(call)
        self.tickets[ticket_id] = None
        self.records += records
        self.ready_at = min(self.ready_at, call.ready_at)
        self.since = min(self.since, call.eligible_at)

    def request(self) -> RenderedRequest:
        """``POST /api/jobs`` over the group's tickets."""
        return job_request(self.like, self.change, self.tickets)

    def __repr__(self) -> str:
        return (f"JobGroup(tickets={len(self.tickets)}, records={self.records}, kind={self.change.kind}, "
                f"held_until={self.held_until})")


class Riding:
    """A waiting call with a part in a job group, as a candidate of its own: no records of its own to weigh (it
    goes with the group when calls wait for the budget), the call itself when a token is free at once."""

    __slots__ = ("call",)

    def __init__(self, call: QueuedCall[Prepared]) -> None:
        self.call = call

    @property
    def records(self) -> int:
        return 0

    @property
    def tokens(self) -> float:
        return self.call.tokens

    @property
    def ready_at(self) -> float:
        return self.call.ready_at

    @property
    def held_until(self) -> float:
        return float("-inf")

    def __repr__(self) -> str:
        return f"Riding({self.call!r})"


class JobCoalescer:
    """Gathers a destination's waiting calls, or parts of them, into job groups."""

    def __init__(self, template: str, render: Render, max_tickets: int, gather_s: float = 0.0) -> None:
        self.template = template
        self._render = render
        self.max_tickets = max_tickets
        self.gather_s = gather_s

    def _seen(self, call: QueuedCall[Prepared]) -> _Seen:
        count = len(call.items)
        memo = call.memo
        if memo is not None and memo[0] == count and isinstance(memo[1], _Seen):
            return memo[1]
        own = memo[1].own if memo is not None and isinstance(memo[1], _Seen) else ()
        seen = _Seen(())
        full = call.reason is FlushReason.SIZE or call.reason is FlushReason.BYTES
        if not full and not any(RESUME_JOB in p.record.extra for p in call.items):  # those follow their job
            seen = self._parts(call, own[:count] if len(own) <= count else ())
        call.memo = (count, seen)
        return seen

    def _parts(self, call: QueuedCall[Prepared], known: tuple[bytes | None, ...]) -> _Seen:
        """The parts of what ``call`` holds now; ``known``: the parts of its first records, seen before."""
        items = call.items
        own = known + tuple(self._part_key(call, [p]) for p in items[len(known):])
        by_part: dict[bytes | None, list[int]] = {}
        for n, key in enumerate(own):
            by_part.setdefault(key, []).append(n)
        if len(by_part) > 1 and None not in by_part:
            parts = [self._part(call, [items[n] for n in indices], tuple(indices)) for indices in by_part.values()]
            if all(part is not None for part in parts):
                return _Seen(tuple(p for p in parts if p is not None), own)
        whole = self._part(call, items, None)
        return _Seen(() if whole is None else (whole,), own)

    def _part(self, call: QueuedCall[Prepared], items: list[Prepared], indices: tuple[int, ...] | None) -> _Part | None:
        request = self._render(call, items)
        form = None if request is None else job_form(self.template, request)
        return None if form is None or request is None else _Part(form, request, indices)

    def _part_key(self, call: QueuedCall[Prepared], items: list[Prepared]) -> bytes | None:
        """Which part a record belongs to: the tags it adds (a record that only adds tags), else ``b""`` (set
        fields: one part, in order); None when it has no job form of its own or is not an ``updateTicket``."""
        part = self._part(call, items, None)
        if part is None or part.form.change.kind != "updateTicket" or part.form.change.updates is None:
            return None
        return part.form.change.key if set(part.form.change.updates) == {"tags"} else b""

    def part_of(self, call: QueuedCall[Prepared], change: JobChange) -> tuple[int, ...] | None:
        """The records of ``call`` asking ``change`` (indices into its items), or None: all of them."""
        for part in self._seen(call).parts:
            if part.form.change.key == change.key:
                return part.indices
        raise LookupError(f"{call!r} asks no {change.kind} {change.updates!r}")

    def groups(self, calls: Iterable[QueuedCall[Prepared]]) -> list[JobGroup]:
        """Groups of two tickets or more among ``calls`` (calls that may start now, oldest first), each over at
        most ``max_tickets`` tickets; a call in parts may be in several (a part in each). A group under the cap
        is held until its first call has waited ``gather_s`` to join."""
        found: dict[bytes, JobGroup] = {}
        for call in calls:
            for part in self._seen(call).parts:
                form = part.form
                group = found.get(form.change.key)
                if group is None:
                    group = found[form.change.key] = JobGroup(form.change, part.request)
                if len(group.tickets) < self.max_tickets or form.ticket_id in group.tickets:
                    group.add(call, form.ticket_id, len(call.items) if part.indices is None else len(part.indices))
        offered = [g for g in found.values() if len(g.tickets) >= 2]
        for group in offered:
            if len(group.tickets) < self.max_tickets:
                group.held_until = group.since + self.gather_s
        return offered
