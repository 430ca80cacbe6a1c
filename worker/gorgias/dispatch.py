"""Hands out a Gorgias account's tokens: one dispatcher per account, shared by its destinations.

The account's rate limiter (:mod:`worker.gorgias.ratelimit`) says how much this worker may spend and
when the next token is free; the account's :class:`~worker.core.grouping.call_scheduler.AccountScheduler` says which
waiting call takes it. The dispatcher joins the two in one task per account: it waits until a token is
free *and* a call may start, picks the call, takes the token and starts the call through its
destination (:class:`Destination`), which then runs it in one task of its own. Calls that wait hold no
task: they are entries in their destination's open batches, and keep filling while they wait.

A call already running that must try again (a 429, a 5xx, a dropped connection), or that goes on with
its next request (a plan of several), asks for its next token with :meth:`AccountDispatcher.retry_token`:
such requests are served before any waiting call, in the order they asked, so a refused call keeps its
place at the front of the account's queue. Each such token is charged to the call's destination, as its
first was: one token per request in the destinations' shares.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Iterator
from typing import Protocol, cast

from worker.core.config.account import Credential
from worker.core.grouping.call_scheduler import AccountScheduler, Candidate, Fairness, SchedulerPolicy
from worker.gorgias.ratelimit import AccountRateLimiter
from worker.host import metrics

log = logging.getLogger(__name__)

__all__ = ["AccountDispatcher", "CallTokens", "Destination", "Dispatchers"]


class Destination(Protocol):
    """A destination pipeline as its account's dispatcher sees it."""

    def candidates(self) -> Iterator[Candidate]: ...

    def waiting_records(self) -> int: ...

    def waiting_calls(self) -> int: ...

    def start_call(self, call: Candidate, waited_s: float) -> None:
        """Take ``call`` out of the open batches and send it (its first attempt's token is taken)."""
        ...


class CallTokens:
    """A call's budget tokens (:class:`~worker.gorgias.calls.AttemptTokens`): the first was granted by the
    account's dispatcher before the call started; each retry asks it again and is served before every
    waiting call. While the destination is paused a retry is held too (it is not on the wire): it asks
    for its token once the destination is activated (``active`` is set)."""

    __slots__ = ("active", "dispatcher", "first_wait", "source")

    def __init__(self, dispatcher: AccountDispatcher, first_wait: float, active: asyncio.Event,
                 source: Destination | None = None) -> None:
        self.dispatcher = dispatcher
        self.first_wait = first_wait
        self.active = active
        self.source = source  # the destination charged for the call's later tokens

    async def token(self, attempt: int) -> float:
        if attempt == 1:
            return self.first_wait
        held = 0.0
        if not self.active.is_set():
            started = time.monotonic()
            await self.active.wait()
            held = time.monotonic() - started
        return held + await self.dispatcher.retry_token(self.source)


class AccountDispatcher:
    def __init__(
        self,
        account: str,
        limiter: AccountRateLimiter,
        policy: SchedulerPolicy,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.account = account
        self.limiter = limiter
        self.scheduler = AccountScheduler(policy)
        self._clock = clock
        self._wake = asyncio.Event()
        self._budget_changed = asyncio.Event()  # the limiter's share changed: the wait for a token is another
        self._front: deque[tuple[asyncio.Future[None], Destination | None]] = deque()
        self._task: asyncio.Task[None] | None = None
        self._dests: list[Destination] = []
        self._gauge = metrics.CALLS_WAITING_FOR_BUDGET.labels(account)
        self.taken = 0  # tokens taken so far (a running count: the demand exchange reads what it took lately)

    def register(self, dest: Destination) -> None:
        self._dests.append(dest)
        self.scheduler.add(dest)
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name=f"dispatch:{self.account}")

    async def unregister(self, dest: Destination) -> None:
        if dest in self._dests:
            self._dests.remove(dest)
        self.scheduler.remove(dest)
        if not self._dests and self._task is not None:
            task, self._task = self._task, None
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    def poke(self) -> None:
        """Something changed (a call became due, a slot freed, a destination resumed): look again."""
        self._wake.set()

    def budget_changed(self) -> None:
        """The limiter's share changed: a wait for the next token computed before is wrong now."""
        self._budget_changed.set()
        self._wake.set()

    async def retry_token(self, source: Destination | None = None) -> float:
        """A token for a running call's next attempt or request, served before every waiting call and charged
        to ``source`` (its destination); returns the wait."""
        started = self._clock()
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._front.append((fut, source))
        self._wake.set()
        await fut
        return max(0.0, self._clock() - started)

    @property
    def waiting(self) -> int:
        """Calls due and not on the wire, across the account's destinations."""
        return sum(d.waiting_calls() for d in self._dests)

    @property
    def demand(self) -> int:
        """What this worker asks of the account's budget now: calls due, and running calls' next requests."""
        return self.waiting + len(self._front)

    @property
    def serving(self) -> bool:
        """Does a destination of this worker use the account (registered and not stopped)?"""
        return bool(self._dests)

    def _any_candidate(self) -> bool:
        return any(next(d.candidates(), None) is not None for d in self._dests)

    async def _run(self) -> None:
        limiter = self.limiter
        scheduler = self.scheduler
        front = self._front
        contended = False  # the next token had to be waited for: the budget is the bottleneck
        burst = 0
        while True:
            self._wake.clear()
            while front and front[0][0].done():  # a retry that was cancelled (shutdown)
                front.popleft()
            if not front and not self._any_candidate():
                self._gauge.set(self.waiting)
                contended = False
                burst = 0
                await self._wake.wait()
                continue
            wait = limiter.wait_s() if limiter.enabled else 0.0
            if wait > 0:
                contended = True
                self._gauge.set(self.waiting)
                await self._sleep_for_token(wait)  # meanwhile the waiting calls keep filling
                continue
            if front:
                limiter.take()
                self.taken += 1
                fut, charged = front.popleft()
                fut.set_result(None)
                if charged is not None:
                    scheduler.charge_more(charged)
                continue
            losing = limiter.enabled and limiter.level < 1  # a token not spent now is lost: nothing is held
            picked = scheduler.choose(self._clock(), contended=contended, losing=losing)
            if picked is None:
                await self._wait_for_offer(scheduler.next_offer)
                continue
            source, call = picked
            dest = cast(Destination, source)  # every source registered here is one
            limiter.take()
            self.taken += 1
            scheduler.charge(dest)  # its first request's token; later ones are charged as they are taken
            try:
                dest.start_call(call, max(0.0, self._clock() - call.ready_at))
            except Exception:  # one destination's bug must not stop the account's other destinations
                log.exception("account %s: starting a call failed", self.account)
            # calls held back (job groups gathering): the room they leave is theirs, not the first ready call's
            contended = scheduler.next_offer is not None
            burst += 1
            if burst % 64 == 0:
                await asyncio.sleep(0)  # let the consume loops run during a long burst

    async def _wait_for_offer(self, offer: float | None) -> None:
        """Nothing may take the free token now; calls held back (``offer``: when the first is offered) wait until
        then, or until this worker's part of the bucket is empty (a token not spent would be lost), or a poke."""
        if offer is None:
            await self._wake.wait()
            return
        limiter = self.limiter
        until_empty = (limiter.level - 1) / limiter.drain_per_s if limiter.enabled else 0.0
        wait = max(0.05, min(offer - self._clock(), until_empty))
        try:
            async with asyncio.timeout(wait):
                await self._wake.wait()
        except TimeoutError:
            pass

    async def _sleep_for_token(self, wait: float) -> None:
        """Sleep until the next token is free, or until the share changes (a larger share frees it sooner)."""
        self._budget_changed.clear()
        try:
            # asyncio.timeout, not wait_for: 3.11's wait_for can drop a cancellation landing as the event is
            # set, and unregister() would wait for this task forever
            async with asyncio.timeout(wait):
                await self._budget_changed.wait()
        except TimeoutError:
            pass


class Dispatchers:
    """One :class:`AccountDispatcher` per ``credential.account_key``; the first credential's settings win.

    ``clock`` must be the pipelines' clock: calls' ages are measured on it (wall-clock seconds by default).
    """

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._by_account: dict[str, AccountDispatcher] = {}

    def get(self, credential: Credential, limiter: AccountRateLimiter) -> AccountDispatcher:
        key = credential.account_key
        dispatcher = self._by_account.get(key)
        if dispatcher is None:
            rl = credential.rate_limit
            policy = SchedulerPolicy(age_bound_s=rl.age_bound_s, fairness=Fairness(rl.fairness),
                                     aged_call_every=rl.aged_call_every)
            dispatcher = AccountDispatcher(key, limiter, policy, clock=self._clock)
            self._by_account[key] = dispatcher
        return dispatcher

    def serving(self) -> list[AccountDispatcher]:
        """The dispatchers of the accounts this worker's destinations use now."""
        return [d for d in self._by_account.values() if d.serving]
