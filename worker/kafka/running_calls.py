"""One destination's calls from their token to their recorded outcome: call slots, the tasks that run them,
and calls that only follow their Gorgias job.

The account's dispatcher (:mod:`worker.gorgias.dispatch`) sees a destination as its :class:`RunningCalls`:
the calls that may start now (none while the pipeline says no, while held, or while every call slot is
taken), and :meth:`RunningCalls.start_call` once one has its token. The call is rendered from what it
holds then, claimed against its partitions, sent, and its outcome recorded; its slot is freed when it is
off the wire (with intent marks: once its outcome is on Kafka). What a stop waits for and what it
abandons is :class:`CallTasks`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable, Coroutine, Iterator
from functools import partial
from typing import Any

from worker.core.chain.job_coalescing import JobGroup, Riding
from worker.core.chain.record_chain import RecordChain, Rejected
from worker.core.config.worker_config import Destination
from worker.core.grouping.call_scheduler import Candidate
from worker.core.grouping.open_batches import QueuedCall
from worker.core.outcomes.call_outcome import CallOutcome
from worker.core.progress.ownership import Claim
from worker.core.requests.call import RenderedCall
from worker.gorgias.dispatch import AccountDispatcher, CallTokens
from worker.gorgias.sending import DestinationSender
from worker.host import metrics
from worker.host.logs import call_context, source_fields
from worker.kafka.held_calls import DestinationHolds
from worker.kafka.outcome_recorder import OutcomeRecorder
from worker.kafka.partitions import Partitions

log = logging.getLogger(__name__)


class CallTasks:
    """The tasks of one destination's calls: those a stop waits for (calls on the wire, outcomes being
    recorded) and those it abandons at once (calls off the wire that only wait for their Gorgias job: the
    job is on the intent topic, its next owner follows it)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._running: set[asyncio.Task[Any]] = set()
        self._following: set[asyncio.Task[Any]] = set()

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    def follow(self, task: asyncio.Task[Any]) -> None:
        """``task`` only waits for its Gorgias job now: a stop abandons it."""
        self._following.add(task)

    def unfollow(self, task: asyncio.Task[Any]) -> None:
        self._following.discard(task)

    async def finish(self, grace: float, deadline: float) -> None:
        """Abandon the calls following a job; give the others until ``deadline`` (monotonic), then cancel
        them (``grace`` is the period, for the warning)."""
        for following in list(self._following):
            following.cancel()
        tasks = set(self._running)
        if not tasks:
            return
        _, unfinished = await asyncio.wait(tasks, timeout=max(0.0, deadline - time.monotonic()))
        if unfinished:
            log.warning("destination %s: abandoning %d call(s) still on the wire after %.1f s grace",
                        self.name, len(unfinished), grace, extra={"destination": self.name})
            for t in unfinished:
                t.cancel()
            await asyncio.gather(*unfinished, return_exceptions=True)


class RunningCalls:
    """A destination as its account's dispatcher sees it (:class:`worker.gorgias.dispatch.Destination`): the
    calls that may start, and each call started, sent and recorded. ``may_start`` is the pipeline's say
    (active, not stopping, not failed); ``activated`` is set while active (retries wait on it)."""

    def __init__(self, dest: Destination, chain: RecordChain, sender: DestinationSender, outcomes: OutcomeRecorder,
                 partitions: Partitions, holds: DestinationHolds, tasks: CallTasks, *,
                 may_start: Callable[[], bool], activated: asyncio.Event,
                 fail: Callable[[BaseException, str], None], clock: Callable[[], float] = time.time) -> None:
        self.dest = dest
        self.chain = chain
        self.sender = sender
        self.outcomes = outcomes
        self.partitions = partitions
        self.holds = holds
        self.tasks = tasks
        self._may_start = may_start
        self._activated = activated
        self._fail = fail
        self._clock = clock  # the account's scheduler's clock: a lane freed now is eligible from now
        self._slots = dest.delivery.max_in_flight
        self.on_wire = 0  # calls started and not delivered yet (each holds a slot)
        self.dispatcher: AccountDispatcher | None = None
        self._m_on_wire = (metrics.CALLS_ON_WIRE.labels(dest.name), metrics.CALLS_IN_FLIGHT.labels(dest.name))

    def attach(self, dispatcher: AccountDispatcher) -> None:
        """Take part in ``dispatcher``'s account (the destinations sharing a Gorgias account's budget)."""
        self.dispatcher = dispatcher
        dispatcher.register(self)

    async def detach(self) -> None:
        if self.dispatcher is not None:
            await self.dispatcher.unregister(self)

    def poke(self) -> None:
        """Something changed (a call became due, a slot freed, the destination resumed): the dispatcher looks again."""
        if self.dispatcher is not None:
            self.dispatcher.poke()

    # -- as the dispatcher sees it ------------------------------------------------------------------

    def candidates(self) -> Iterator[Candidate]:
        """Calls that may start now (coalescing into jobs: and their job groups); none while paused, stopping
        or out of call slots (they are held)."""
        if not self._may_start() or self.on_wire >= self._slots or self.holds.held:
            return iter(())
        return self.chain.candidates()

    def waiting_records(self) -> int:
        return self.chain.open.waiting_records

    def waiting_calls(self) -> int:
        return self.chain.open.waiting_calls

    def start_call(self, call: Candidate, waited_s: float) -> None:
        """Called by the account's dispatcher once ``call`` has its token: render it from what it holds now
        (a job group: one Gorgias job over its calls' tickets) and send it."""
        made: RenderedCall | Rejected
        if isinstance(call, JobGroup):
            made = self.chain.take_job(call)
        else:
            if isinstance(call, Riding):  # the budget was free at once: it goes alone, as the first ready call
                call = call.call
            assert isinstance(call, QueuedCall)
            made = self.chain.take(call)
        if isinstance(made, Rejected):
            self.outcomes.dead_letter_now(made)
            return
        # claimed now, not when its task first runs: a rebalance in between then waits for it (and the
        # call, finding its partition gone, sends nothing) instead of committing around a call still to go
        claim = self.partitions.claim(made.sources)
        self.on_wire += 1
        for gauge in self._m_on_wire:
            gauge.inc()
        self.tasks.spawn(self._run_call(made, waited_s, claim))

    # -- one call ------------------------------------------------------------------------------------

    async def _run_call(self, call: RenderedCall, waited_s: float, claim: Claim) -> None:
        """Deliver one call (its first token is taken), free its slot and lane, then record its outcome."""
        dispatcher = self.dispatcher
        tokens = CallTokens(dispatcher, waited_s, self._activated, self) if dispatcher is not None else None
        context = call_context.set(source_fields(self.dest.name, call.sources))
        outcome: CallOutcome | None = None  # before the try: its finally reads it on every path
        slot = _Slot(self._free_slot)
        job = _FollowedJob(self.tasks, claim, slot)
        try:
            if not claim():  # its partition moved to another worker, which sends it
                claim.release()
                return
            mark = partial(self.outcomes.mark_intent, call) if self.outcomes.marks_intents else None
            outcome = await self.sender.send(call, tokens, mark, self.holds.for_call(), job.following)
        except asyncio.CancelledError:
            claim.release()
            raise
        except Exception as exc:
            claim.release()
            self._fail(exc, "delivery failed unexpectedly")
            return
        finally:
            job.over()
            call_context.reset(context)
            if outcome is not None and not call.coalesced:  # a job's reads are shared: not a call's requests
                self.chain.open.call_made(outcome.requests)
            self.chain.done(call, self._clock())  # the key's next call may go (a job's: each of its tickets')
            # With intent marks the slot is held until the outcome is on Kafka, so that the records
            # marked and without an outcome after a crash are at most max_in_flight calls' worth.
            hold = outcome is not None and self.outcomes.marks_intents
            if not hold:
                slot.free()
        try:
            if job.followed:  # a job's records whose partitions moved meanwhile are their new owner's to record
                call = _owned(call, claim)
            if call.items:
                await self.outcomes.record(call, outcome)
        finally:
            claim.release()
            if hold:
                slot.free()

    def _free_slot(self) -> None:
        self.on_wire -= 1
        for gauge in self._m_on_wire:
            gauge.dec()
        self.poke()


class _Slot:
    """A running call's call slot, freed once (when its job is followed, or when its outcome is recorded)."""

    __slots__ = ("freed", "release")

    def __init__(self, release: Callable[[], None]) -> None:
        self.release = release
        self.freed = False

    def free(self) -> None:
        if not self.freed:
            self.freed = True
            self.release()


class _FollowedJob:
    """A call whose Gorgias job is created and marked (or taken over): it is off the wire. Its slot is free
    for other calls, a rebalance does not wait for it, a stop abandons it (the job's next owner follows it)."""

    __slots__ = ("claim", "followed", "slot", "task", "tasks")

    def __init__(self, tasks: CallTasks, claim: Claim, slot: _Slot) -> None:
        self.tasks = tasks
        self.claim = claim
        self.slot = slot
        self.followed = False
        self.task: asyncio.Task[Any] | None = None

    def following(self) -> None:
        self.followed = True
        self.claim.stop_counting()
        self.slot.free()
        self.task = asyncio.current_task()
        if self.task is not None:
            self.tasks.follow(self.task)

    def over(self) -> None:
        if self.task is not None:
            self.tasks.unfollow(self.task)


def _owned(call: RenderedCall, claim: Claim) -> RenderedCall:
    """``call`` with only the records whose partitions are still ours."""
    if claim():
        return call
    return dataclasses.replace(call, items=[p for p in call.items if claim.owns(p.record.source)])
