"""Who gets the next token of a Gorgias account's budget: one scheduler per account.

Every destination on the account (same domain and auth) is a *source* of calls that are due and may
start now (:class:`~worker.core.grouping.open_batches.OpenBatches` keeps per-key order and says which). The account's
rate limiter says *when* a token is free; this module says *which call* takes it:

1. **Aged share.** A call due for ``age_bound_s`` or longer is *overdue*. At least one token in
   ``aged_call_every`` goes to the oldest overdue call: once ``aged_call_every - 1`` tokens in a row have gone to
   other calls while an overdue call waited, the next one goes to the oldest overdue call. So no key
   and no destination starves, yet when the account is saturated (every call is overdue: 300 keys at 2
   calls/s come round every ~150 s, far past any useful bound) most tokens still go to full calls,
   instead of all of them going oldest first to calls of one record each.
2. **Fairness between destinations.** Otherwise the destination comes first whose share of the budget
   is most behind (stride scheduling): each token a destination takes moves its *pass* on by
   ``tokens / weight``; the weight is its records waiting (``fairness: records``, the default: shares
   in proportion to the backlog) or 1 (``fairness: equal``).
3. **Records per token.** Within that destination, the call carrying the most records per token
   (ties: the one due first). While a call waits its batch keeps filling, so this favours the keys
   whose records pile up and lets the sparse ones fill.

**A token is one request.** A call of several requests (a tag created before its write, the read of a
read-merge-write) takes one token per request: its first when it starts, each later one as it goes
(:meth:`AccountScheduler.charge_more`), and every one moves its destination's pass on. Before a call
starts its requests are not known (its body is built when it goes), so its ``tokens`` are what its
destination's calls took lately (:class:`TokensPerCall`).

**Gathering.** A candidate may be *held* until a time (:attr:`Candidate.held_until`): a job group of few
tickets (``delivery.coalesce: jobs``) gathers more for a while instead of taking a token the moment it exists,
since its tickets then wait minutes for the job. While calls wait for the budget a held candidate is not
offered, and neither is one carrying no records of its own (a call that goes with its job group); the
tokens they leave go to the other calls, or stay in the account's bucket for the groups once they are
offered. They are not held when tokens would be lost otherwise (``losing``: this worker's part of the
bucket is empty). :attr:`AccountScheduler.next_offer` says when the first held candidate is offered.

When a token is free at once (the budget is not the bottleneck) calls simply go in the order they
became ready, as they would without a budget.

Pure logic: no I/O and no clock.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

__all__ = ["AccountScheduler", "Candidate", "Fairness", "SchedulerPolicy", "Source", "TokensPerCall"]


class Fairness(StrEnum):
    RECORDS = "records"  # destinations share the budget in proportion to their records waiting
    EQUAL = "equal"  # destinations with calls waiting share the budget equally


@dataclass(frozen=True, slots=True)
class SchedulerPolicy:
    age_bound_s: float = 30.0
    fairness: Fairness = Fairness.RECORDS
    aged_call_every: int = 4  # one token in this many goes to the oldest overdue call (1: every token)


class Candidate(Protocol):
    """A call that may start now."""

    @property
    def records(self) -> int: ...

    @property
    def tokens(self) -> float:
        """Budget tokens the call is expected to take: one per request."""
        ...

    @property
    def ready_at(self) -> float: ...

    @property
    def held_until(self) -> float:
        """While calls wait for the budget, the candidate is not offered before this time (a job group
        gathering tickets); ``-inf`` for a call."""
        ...


class Source(Protocol):
    """A destination as the scheduler sees it."""

    def candidates(self) -> Iterator[Candidate]:
        """Calls that may start now, in the order they became ready (empty when paused or out of slots)."""
        ...

    def waiting_records(self) -> int:
        """Records in calls that are due and not on the wire yet."""
        ...


class AccountScheduler:
    """Chooses the next call among all the account's sources."""

    def __init__(self, policy: SchedulerPolicy | None = None) -> None:
        self.policy = policy or SchedulerPolicy()
        self._sources: dict[Source, float] = {}  # source -> pass (stride scheduling)
        self._vtime = 0.0  # pass of the last source served
        self._not_aged = 0  # tokens in a row that went elsewhere while an overdue call waited
        self._chose_aged: bool | None = None  # what the last choice was (None: no call was overdue)
        self.next_offer: float | None = None  # the last choice held candidates back: the first is offered then

    def add(self, source: Source) -> None:
        self._sources.setdefault(source, self._vtime)

    def remove(self, source: Source) -> None:
        self._sources.pop(source, None)

    def __len__(self) -> int:
        return len(self._sources)

    def choose(self, now: float, *, contended: bool, losing: bool = False) -> tuple[Source, Candidate] | None:
        """The call that takes the next token, and its source; None when no call may start.

        ``contended``: calls had to wait for this token (the budget is the bottleneck). Otherwise the
        first ready call of the source most behind goes, without looking further. ``losing``: a token not
        spent now is lost (the bucket is empty), so nothing is held.
        """
        self.next_offer = None
        if not contended:
            self._chose_aged = None  # no call waited for this token
            return self._first_ready()
        return self._choose_waiting(now, losing)

    def _first_ready(self) -> tuple[Source, Candidate] | None:
        sources = self._sources
        best_src: Source | None = None
        best_call: Candidate | None = None
        for src, pss in sources.items():
            if best_src is not None and pss >= sources[best_src]:
                continue
            call = next(src.candidates(), None)
            if call is not None:
                best_src, best_call = src, call
        if best_src is None or best_call is None:
            return None
        return best_src, best_call

    # complexity: one pass over the sources decides the call (held, aged, fair share); a decision read in one place
    def _choose_waiting(self, now: float, losing: bool) -> tuple[Source, Candidate] | None:  # noqa: C901
        sources = self._sources
        limit = now - self.policy.age_bound_s
        overdue: tuple[Source, Candidate] | None = None
        chosen: tuple[Source, Candidate] | None = None
        chosen_pass = 0.0
        held = float("inf")
        for src, pss in sources.items():
            best: Candidate | None = None
            best_rate = -1.0
            for call in src.candidates():
                if call.records == 0:
                    continue  # it goes with a group, for no token of its own
                if not losing and call.held_until > now:
                    held = min(held, call.held_until)
                    continue
                ready = call.ready_at
                if ready <= limit and (overdue is None or ready < overdue[1].ready_at
                                       or (ready == overdue[1].ready_at and call.records > overdue[1].records)):
                    overdue = (src, call)  # the oldest; of equally old ones (a job of calls), the fullest
                rate = call.records / max(1.0, call.tokens)
                if rate > best_rate or (rate == best_rate and best is not None and ready < best.ready_at):
                    best, best_rate = call, rate
            if best is None:
                continue
            if pss < self._vtime:  # it had nothing waiting: it starts at the current virtual time
                pss = sources[src] = self._vtime
            if chosen is None or pss < chosen_pass:
                chosen, chosen_pass = (src, best), pss
        if held != float("inf"):
            self.next_offer = held
        if overdue is None:
            self._chose_aged = None
            return chosen
        if self._not_aged + 1 >= self.policy.aged_call_every:
            chosen = overdue
        self._chose_aged = chosen is not None and chosen[1] is overdue[1]
        return chosen

    def charge(self, source: Source, tokens: float = 1) -> None:
        """``source`` took ``tokens`` tokens to start the call :meth:`choose` returned last: move its pass on."""
        aged, self._chose_aged = self._chose_aged, None
        if aged is None:
            self._not_aged = 0  # no call was overdue: nothing owed
        elif aged:
            self._not_aged = 0
        else:
            self._not_aged += 1
        pss = self._sources.get(source)
        if pss is not None:
            self._vtime = max(self._vtime, pss)  # the pass of the last source served
        self.charge_more(source, tokens)

    def charge_more(self, source: Source, tokens: float = 1) -> None:
        """A call of ``source`` already running took ``tokens`` more (its next request, a retry): its
        destination's share of the budget counts them too."""
        pss = self._sources.get(source)
        if pss is None:
            return
        if self.policy.fairness is Fairness.RECORDS:
            weight = max(1, source.waiting_records())
        else:
            weight = 1
        self._sources[source] = pss + tokens / weight


class TokensPerCall:
    """The requests a destination's calls make, learned from those that finished: a moving average over
    about the last ``1 / weight`` calls (it follows a destination whose tags all exist by now, say)."""

    def __init__(self, weight: float = 0.1) -> None:
        self.weight = weight
        self.value = 1.0

    def observe(self, requests: int) -> float:
        """A call made ``requests`` requests (retries not counted); returns the new estimate."""
        if requests >= 1:
            self.value += self.weight * (requests - self.value)
        return self.value
