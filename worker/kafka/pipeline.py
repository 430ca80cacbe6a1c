"""One destination's pipeline: Kafka → record chain → account dispatcher → delivery → outcome → commit.

The pipeline owns an aiokafka consumer in its own consumer group (``<group_id>.<destination>``). It
consumes records into the record chain (:mod:`worker.core.chain.record_chain`: decode, prepare, group), hands due calls
to the account's dispatcher, and once a call has its token renders it, sends it and publishes its outcome.
What it owns of the source partitions (offsets, commits with checkpoints, revoke, assign, recovery) is
:mod:`worker.kafka.partitions`: a source offset is committed only once the outcome of its record (a
response event or a dead-letter record) has been acknowledged by Kafka. Recording outcomes (and their
metrics) is :mod:`worker.kafka.outcome_recorder`.

Why not a faust agent per destination: faust acks an event when the agent raises and ``take()`` acks
its whole buffer when the loop body returns, so an agent cannot hold a record unacknowledged while
its call is in flight and still read on; and an agent iteration costs far more per record than a
``getmany()`` loop (see docs/benchmarks.md). The faust app hosts the pipelines as services instead.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

import aiokafka
from aiokafka import ConsumerRebalanceListener, TopicPartition

from worker.core.chain.job_coalescing import JobGroup
from worker.core.chain.record_chain import RecordChain, Rejected
from worker.core.config.worker_config import Destination, WorkerConfig
from worker.core.grouping.call_scheduler import Candidate, TokensPerCall
from worker.core.grouping.open_batches import QueuedCall
from worker.core.outcomes.call_outcome import CallOutcome
from worker.core.progress.offsets import TopicPartitionKey
from worker.core.progress.ownership import Claim
from worker.core.records.record import SourceRef
from worker.core.requests.call import RenderedCall
from worker.core.requests.rendering import RequestRenderer
from worker.gorgias.delivery import DeliveryService
from worker.gorgias.dispatch import AccountDispatcher, CallTokens, Dispatchers
from worker.gorgias.sending import DestinationSender
from worker.gorgias.share import BudgetShares
from worker.host import metrics
from worker.host.logs import call_context, source_fields
from worker.kafka.back_pressure import BackPressure
from worker.kafka.clients import make_consumer, stop_client
from worker.kafka.held_calls import DestinationHolds
from worker.kafka.outcome_recorder import OutcomeRecorder
from worker.kafka.partitions import Partitions
from worker.kafka.polling import BUSY_POLL_WAIT_S, IDLE_POLL_WAIT_S, consumer_options, poll
from worker.kafka.publisher import Publisher

log = logging.getLogger(__name__)

# A stop's last steps after the grace period: the final commit, then leaving the group. Together they stay
# under STOP_MARGIN_S, so a pipeline's stop always ends within grace + STOP_MARGIN_S.
COMMIT_ON_STOP_S = 2.0
LEAVE_ON_STOP_S = 2.0
STOP_MARGIN_S = 5.0
PARTITION_FETCH_BYTES = 2 * 1024 * 1024


class DestinationPipeline(ConsumerRebalanceListener):  # type: ignore[misc]
    """Consumes one destination's topics and delivers them, committing only recorded outcomes. It is its
    consumer's rebalance listener too (partitions revoked and assigned)."""

    def __init__(
        self,
        config: WorkerConfig,
        dest: Destination,
        renderer: RequestRenderer,
        delivery: DeliveryService,
        publisher: Publisher,
        on_fatal: Callable[[BaseException], None],
        outcome_partitions: list[tuple[str, int]] | None = None,
        clock: Callable[[], float] = time.time,
        shares: BudgetShares | None = None,
        intent_topic: str | None = None,
        dispatchers: Dispatchers | None = None,
    ) -> None:
        self.config = config
        self.dest = dest
        # Records in, calls out: decode, prepare, group (open batches) and render (worker.core.chain.record_chain).
        self.chain = RecordChain(dest, config.kafka.max_record_bytes, renderer)
        self.delivery = delivery
        self.sender = DestinationSender(dest, delivery)
        self.on_fatal = on_fatal
        self.clock = clock
        self.shares = shares if shares is not None else BudgetShares(delivery.limiters)
        self.budget_share = 1.0
        self._slots = dest.delivery.max_in_flight
        self._on_wire = 0  # calls started and not delivered yet (each holds a slot)
        self._tasks: set[asyncio.Task[None]] = set()  # calls running and outcomes being recorded
        # calls off the wire that only wait for their Gorgias job to end: a stop does not wait for them
        self._following: set[asyncio.Task[Any]] = set()
        # The account's dispatcher decides which waiting call takes the next token (shared by the
        # destinations on one Gorgias account).
        self._dispatchers = dispatchers if dispatchers is not None else Dispatchers(clock=clock)
        self.dispatcher: AccountDispatcher | None = None
        self._tokens_per_call = TokensPerCall()  # requests per call, for the scheduler's records per token
        self._activated = asyncio.Event()  # set while active: retries of running calls wait on it
        if dest.active:
            self._activated.set()
        self.active = dest.active
        self.back_pressure = BackPressure(dest)
        self._stopping = False
        self._wake = asyncio.Event()  # ends an idle poll: stopping, or a failure
        self._consumer: aiokafka.AIOKafkaConsumer | None = None
        self._fatal: BaseException | None = None
        self._task: asyncio.Task[None] | None = None
        # Create templates mark each call's records on ``intent_topic`` before the create goes on the wire
        # (worker.kafka.recovery): after a crash only marked records without an outcome are looked up.
        self.partitions = Partitions(config, dest, clock, outcome_partitions or [], intent_topic)
        self.outcomes = OutcomeRecorder(dest, publisher, self.partitions, clock, self._fail, self._spawn,
                                       config.kafka.scope, intent_topic)
        # Gorgias refusing the credential (401) or a route (403) holds calls like a pause (worker.kafka.held_calls)
        self.holds = DestinationHolds(dest, delivery.gates.get(dest.credential, dest.delivery),
                                      lambda: self.dispatcher.poke() if self.dispatcher is not None else None)
        self._bind_metrics(dest.name)

    def _bind_metrics(self, name: str) -> None:
        """The destination's metric series, looked up once."""
        self._m_consumed = metrics.RECORDS_CONSUMED.labels(name)
        self._m_rebalances = metrics.REBALANCES.labels(name)
        self._m_on_wire = (metrics.CALLS_ON_WIRE.labels(name), metrics.CALLS_IN_FLIGHT.labels(name))
        metrics.DESTINATION_ACTIVE.labels(name).set(1 if self.active else 0)

    # ---------------------------------------------------------------------------------------------
    # lifecycle

    @property
    def group_id(self) -> str:
        return self.dest.consumer_group(self.config.kafka.group_id)

    async def start(self) -> None:
        dest = self.dest
        self.dispatcher = self._dispatchers.get(dest.credential, self.delivery.limiters.get(dest.credential))
        self.dispatcher.register(self)
        await self.partitions.seed()
        start = self.dest.start_position()
        # A member finishing the calls of revoked partitions (up to the shutdown grace) stays in the group.
        rebalance_timeout_ms = int((max(1.0, self.config.worker.shutdown_grace_s) + 10) * 1000)
        # 2 MB per partition: on a 1,000,000-record backlog a peak RSS of 203-212 MB instead of 285-289 MB with
        # 4 MB, for 5 % more calls (docs/benchmarks.md, section 6)
        consumer = make_consumer(
            self.config.kafka, self.group_id, max_partition_fetch_bytes=PARTITION_FETCH_BYTES,
            auto_offset_reset="latest" if start == "latest" else "earliest",
            rebalance_timeout_ms=rebalance_timeout_ms, **consumer_options(),
        )
        consumer.subscribe(self.dest.source_topics, listener=self)
        self._consumer = consumer  # before start: the first assignment may come while it starts
        await consumer.start()
        self._task = asyncio.get_running_loop().create_task(self._run(consumer), name=f"pipeline:{self.dest.name}")

    async def _run(self, consumer: aiokafka.AIOKafkaConsumer) -> None:
        """Consume until :meth:`stop` is called (or a fatal error)."""
        try:
            await self._loop(consumer)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._fail(exc, "the consume loop failed")

    async def _loop(self, consumer: aiokafka.AIOKafkaConsumer) -> None:
        max_records = self.config.kafka.fetch_max_records
        while not self._stopping:
            timeout = self._poll_timeout()
            fetched = await poll(consumer, timeout, max_records, self._wake)
            now = self.clock()
            for tp, messages in fetched.items():
                self._m_consumed.inc(len(messages))
                tpk = TopicPartitionKey(tp.topic, tp.partition)
                self.partitions.chunk(tpk, messages[0].offset)
                for msg in messages:
                    self._handle(tpk, msg, now)
            self.chain.open.tick(self.clock())
            if self.active:  # a hold past the retry budget dead-letters its calls, if the user asks for that
                self.holds.dead_letter_expired(self.chain, self.outcomes)
            if self.chain.open.has_eligible and self.dispatcher is not None:
                self.dispatcher.poke()
            self._apply_pause()
            await self.partitions.maybe_commit(consumer)
            if self._fatal is not None:
                return

    async def stop(self, grace: float) -> None:
        """Stop reading, finish the calls on the wire within ``grace`` seconds, commit exactly what is done. Returns
        within ``grace`` + :data:`STOP_MARGIN_S` whatever the state: Kafka away, a rebalance under way."""
        deadline = time.monotonic() + grace
        self._stopping = True
        self._wake.set()
        self.holds.stop()  # calls held by a refused credential are not on the wire: abandoned at once
        task = self._task
        if task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(task), timeout=min(5.0, grace))
            except TimeoutError:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        # Records still being grouped or waiting for their turn are abandoned (not committed, so
        # re-delivered after the restart): with _stopping set the dispatcher starts none of them. Calls
        # already on the wire get what is left of the grace period to finish. Calls waiting for their
        # Gorgias job are abandoned at once: their job is on the intent topic, the next owner follows it.
        for following in list(self._following):
            following.cancel()
        tasks = set(self._tasks)
        if tasks:
            _, unfinished = await asyncio.wait(tasks, timeout=max(0.0, deadline - time.monotonic()))
            if unfinished:
                log.warning("destination %s: abandoning %d call(s) still in flight after %.1f s grace",
                            self.dest.name, len(unfinished), grace)
                for t in unfinished:
                    t.cancel()
                await asyncio.gather(*unfinished, return_exceptions=True)
        if self.dispatcher is not None:
            await self.dispatcher.unregister(self)
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            try:
                await asyncio.wait_for(self.partitions.commit(consumer), COMMIT_ON_STOP_S)
            except TimeoutError:
                log.warning("destination %s: the last commit did not finish within %.0f s (Kafka away?); records "
                            "done since the previous commit are re-delivered and found recorded after the restart",
                            self.dest.name, COMMIT_ON_STOP_S, extra={"destination": self.dest.name})
            await stop_client(consumer, LEAVE_ON_STOP_S)

    def set_active(self, active: bool) -> None:
        """Activate or pause consumption (paused: partitions paused, nothing read and dropped)."""
        if active != self.active:
            log.info("destination %s %s", self.dest.name, "activated" if active else "paused",
                     extra={"destination": self.dest.name})
        self.active = active
        if active:
            self._activated.set()
        else:
            self._activated.clear()
        metrics.DESTINATION_ACTIVE.labels(self.dest.name).set(1 if active else 0)
        self._apply_pause()
        if active and self.dispatcher is not None:
            self.dispatcher.poke()  # calls held while paused go now

    def status(self) -> dict[str, Any]:
        consumer = self._consumer
        assigned = sorted(consumer.assignment(), key=lambda t: (t.topic, t.partition)) if consumer else []
        return {
            "name": self.dest.name,
            "endpoint": self.dest.endpoint.summary(),
            "active": self.active,
            "throttled": self.back_pressure.throttled,
            "group_id": self.group_id,
            "start_from": self.dest.start_from,
            "assigned_partitions": [f"{tp.topic}:{tp.partition}" for tp in assigned],
            "pending_records": self.partitions.pending_records,
            "calls_on_wire": self._on_wire,
            "calls_in_flight": self._on_wire,  # deprecated name of calls_on_wire, kept for one release
            # state, and due calls not on the wire: waiting for their account's budget (or a slot, or their key's
            # previous call) while active, held while paused or held (worker.kafka.held_calls)
            **self.holds.status(self.active, self.chain.open.waiting_calls),
            "grouped_records": self.chain.open.pending,
            "skipped_after_recovery": self.partitions.skipped_after_recovery,
            "budget_share": round(self.budget_share, 4),
            "jobs_followed": self.sender.watch.watched if self.sender.watch is not None else 0,
            "partitions": self.partitions.status(consumer, assigned),
            "records": {**metrics.records_since_start(self.dest.name), "unknown": self.outcomes.records_unknown},
            "last_error": self.outcomes.last_error,
        }

    # ---------------------------------------------------------------------------------------------
    # records in

    def _poll_timeout(self) -> float:
        deadline = self.chain.open.next_deadline()
        if deadline is None:
            idle = not self.chain.open.pending and self.partitions.idle
            return IDLE_POLL_WAIT_S if idle else BUSY_POLL_WAIT_S
        return max(0.0, min(BUSY_POLL_WAIT_S, deadline - self.clock()))

    def _handle(self, tpk: TopicPartitionKey, msg: Any, now: float) -> None:
        if not self.partitions.consumed(tpk, msg.offset):
            return  # delivered before a crash, its outcome is on Kafka: finished, not sent again
        source = SourceRef(tpk.topic, tpk.partition, msg.offset, msg.key, msg.timestamp)
        rejected = self.chain.take_in(msg.value, source, tuple(msg.headers or ()), now,
                                      self.partitions.take_possibly_delivered(tpk, msg.offset),
                                      self.partitions.created_job(tpk, msg.offset))
        if rejected is not None:
            self.outcomes.dead_letter_now(rejected)

    # ---------------------------------------------------------------------------------------------
    # calls

    def candidates(self) -> Iterator[Candidate]:
        """Calls that may start now (coalescing into jobs: and their job groups); none while paused, stopping
        or out of call slots (they are held)."""
        if (not self.active or self._stopping or self._fatal is not None or self._on_wire >= self._slots
                or self.holds.held):
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
            assert isinstance(call, QueuedCall)
            made = self.chain.take(call)
        if isinstance(made, Rejected):
            self.outcomes.dead_letter_now(made)
            return
        # claimed now, not when its task first runs: a rebalance in between then waits for it (and the
        # call, finding its partition gone, sends nothing) instead of committing around a call still to go
        claim = self.partitions.claim(made.sources)
        self._on_wire += 1
        for gauge in self._m_on_wire:
            gauge.inc()
        self._spawn(self._run_call(made, waited_s, claim))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run_call(self, call: RenderedCall, waited_s: float, claim: Claim) -> None:
        """Deliver one call (its first token is taken), free its slot and lane, then record its outcome."""
        dest = self.dest
        sources = call.sources
        dispatcher = self.dispatcher
        tokens = CallTokens(dispatcher, waited_s, self._activated, self) if dispatcher is not None else None
        context = call_context.set(source_fields(dest.name, sources))
        outcome: CallOutcome | None = None  # before the try: its finally reads it on every path
        slot = _Slot(self, dispatcher)
        job = _FollowedJob(self._following, claim, slot)
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
                self.chain.open.tokens_per_call = self._tokens_per_call.observe(outcome.requests)
            self.chain.done(call)  # the key's next call may go (a job's: each of its tickets' next calls)
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

    def free_slot(self, dispatcher: AccountDispatcher | None) -> None:
        self._on_wire -= 1
        for gauge in self._m_on_wire:
            gauge.dec()
        if dispatcher is not None:
            dispatcher.poke()

    def _fail(self, exc: BaseException, what: str) -> None:
        self.outcomes.note_error(f"{what}: {exc}")
        log.error("destination %s: %s: %s; stopping so that nothing is committed past it",
                  self.dest.name, what, exc, extra={"destination": self.dest.name})
        self._wake.set()
        if self._fatal is None:
            self._fatal = RuntimeError(f"destination {self.dest.name}: {what}: {exc}")
            self.on_fatal(self._fatal)

    # ---------------------------------------------------------------------------------------------
    # pause, commit, rebalance

    def _apply_pause(self) -> None:
        consumer = self._consumer
        if consumer is None:
            return
        throttled = self.back_pressure.update(self.partitions.pending_records)
        if throttled and self.chain.open.flush_grouped(self.clock()) and self.dispatcher is not None:
            self.dispatcher.poke()  # batches that could only wait out their windows go now
        want_paused = self._stopping or not self.active or throttled or self.partitions.recovering
        assigned = consumer.assignment()
        paused = consumer.paused()
        if want_paused:
            todo = assigned - paused
            if todo:
                consumer.pause(*todo)
        elif paused:
            consumer.resume(*paused)

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        """Before partitions move to another worker: finish their records and commit them."""

        def drop_waiting(keys: set[TopicPartitionKey]) -> None:
            # records still being grouped or waiting for a token are left to the new owner
            if self.chain.open.pending:
                self.chain.open.drop_where(
                    lambda p: TopicPartitionKey(p.record.source.topic, p.record.source.partition) in keys)

        await self.partitions.revoke(self._consumer, revoked, drop_waiting)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        consumer = self._consumer
        if consumer is None:
            return
        # Eager rebalancing: ``assigned`` is the whole new assignment. Pace at the matching share.
        self._m_rebalances.inc()
        total = sum(len(consumer.partitions_for_topic(t) or ()) for t in self.dest.source_topics)
        self.budget_share = self.shares.assigned(self.dest.name, self.dest.credential, len(assigned), total)
        log.info("destination %s: %d of %d partition(s), %.1f%% of account %s's budget", self.dest.name,
                 len(assigned), total, 100 * self.budget_share, self.dest.credential.account_key)
        if not assigned:
            return
        start = self.dest.start_position()
        if (self.partitions.settles(start) or not self.active or self.back_pressure.throttled
                or self._stopping):
            consumer.pause(*assigned)  # at once, before any record of these partitions is handed out
        await self.partitions.settle(consumer, assigned, start, self._apply_pause)


class _Slot:
    """A running call's call slot, freed once (when its job is followed, or when its outcome is recorded)."""

    __slots__ = ("dispatcher", "freed", "pipeline")

    def __init__(self, pipeline: DestinationPipeline, dispatcher: AccountDispatcher | None) -> None:
        self.pipeline = pipeline
        self.dispatcher = dispatcher
        self.freed = False

    def free(self) -> None:
        if not self.freed:
            self.freed = True
            self.pipeline.free_slot(self.dispatcher)


class _FollowedJob:
    """A call whose Gorgias job is created and marked (or taken over): it is off the wire. Its slot is free
    for other calls, a rebalance does not wait for it, a stop abandons it (the job's next owner follows it)."""

    __slots__ = ("claim", "followed", "following_tasks", "slot", "task")

    def __init__(self, following_tasks: set[asyncio.Task[Any]], claim: Claim, slot: _Slot) -> None:
        self.following_tasks = following_tasks
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
            self.following_tasks.add(self.task)

    def over(self) -> None:
        if self.task is not None:
            self.following_tasks.discard(self.task)


def _owned(call: RenderedCall, claim: Claim) -> RenderedCall:
    """``call`` with only the records whose partitions are still ours."""
    if claim():
        return call
    return dataclasses.replace(call, items=[p for p in call.items if claim.owns(p.record.source)])
