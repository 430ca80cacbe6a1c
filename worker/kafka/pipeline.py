"""One destination's pipeline: Kafka → record chain → account dispatcher → delivery → outcome → commit.

The pipeline owns an aiokafka consumer in its own consumer group (``<group_id>.<destination>``) and its
life: start, the consume loop, pause and activation, rebalances, stop. It consumes records into the
record chain (:mod:`worker.core.chain.record_chain`: decode, prepare, group); due calls wait there for
the account's dispatcher, which starts them through :mod:`worker.kafka.running_calls` (render, send,
record the outcome, free the call's slot). What it owns of the source partitions (offsets, commits with
checkpoints, revoke, assign, recovery) is :mod:`worker.kafka.partitions`: a source offset is committed
only once the outcome of its record (a response event or a dead-letter record) has been acknowledged
by Kafka. Recording outcomes (and their metrics) is :mod:`worker.kafka.outcome_recorder`.

Why not a faust agent per destination: faust acks an event when the agent raises and ``take()`` acks
its whole buffer when the loop body returns, so an agent cannot hold a record unacknowledged while
its call is on the wire and still read on; and an agent iteration costs far more per record than a
``getmany()`` loop (see docs/benchmarks.md). The faust app hosts the pipelines as services instead.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

import aiokafka
from aiokafka import ConsumerRebalanceListener, TopicPartition

from worker.core.chain.record_chain import RecordChain
from worker.core.config.worker_config import Destination, WorkerConfig
from worker.core.progress.offsets import TopicPartitionKey
from worker.core.records.record import SourceRef
from worker.core.requests.rendering import RequestRenderer
from worker.gorgias.delivery import DeliveryService
from worker.gorgias.dispatch import Dispatchers
from worker.gorgias.sending import DestinationSender
from worker.gorgias.share import BudgetShares
from worker.host import metrics
from worker.kafka.back_pressure import BackPressure
from worker.kafka.clients import make_consumer, stop_client
from worker.kafka.held_calls import DestinationHolds
from worker.kafka.outcome_recorder import OutcomeRecorder
from worker.kafka.partitions import Partitions
from worker.kafka.polling import BUSY_POLL_WAIT_S, IDLE_POLL_WAIT_S, consumer_options, poll
from worker.kafka.publisher import Publisher
from worker.kafka.recovery import SharedEndOffsets
from worker.kafka.running_calls import CallTasks, RunningCalls

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
        outcome_ends: SharedEndOffsets | None = None,
    ) -> None:
        self.config = config
        self._outcome_ends = outcome_ends  # the outcome topics' end offsets, read once for pipelines starting together
        self.dest = dest
        self.on_fatal = on_fatal
        self.clock = clock
        self._limiters = delivery.limiters
        self._shares = shares if shares is not None else BudgetShares(delivery.limiters)
        # The account's dispatcher decides which waiting call takes the next token (shared by the
        # destinations on one Gorgias account).
        self._dispatchers = dispatchers if dispatchers is not None else Dispatchers(clock=clock)
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
        # Records in, calls out: decode, prepare, group (open batches) and render (worker.core.chain.record_chain).
        self.chain = RecordChain(dest, config.kafka.max_record_bytes, renderer)
        self.sender = DestinationSender(dest, delivery)
        self.tasks = CallTasks(dest.name)  # calls running and outcomes being recorded: a stop waits for them
        # Create templates mark each call's records on ``intent_topic`` before the create goes on the wire
        # (worker.kafka.recovery): after a crash only marked records without an outcome are looked up.
        self.partitions = Partitions(config, dest, clock, outcome_partitions or [], intent_topic)
        self.outcomes = OutcomeRecorder(dest, publisher, self.partitions, clock, self._fail, self.tasks.spawn,
                                        config.kafka.scope, intent_topic)
        # Gorgias refusing the credential (401) or a route (403) holds calls like a pause (worker.kafka.held_calls)
        self.holds = DestinationHolds(dest, delivery.gates.get(dest.credential, dest.delivery), self._poke,
                                      lambda: delivery.granted_scope(dest.credential))
        self.calls = RunningCalls(dest, self.chain, self.sender, self.outcomes, self.partitions, self.holds,
                                  self.tasks, may_start=self._may_start, activated=self._activated, fail=self._fail,
                                  clock=clock)
        self._m_consumed = metrics.RECORDS_CONSUMED.labels(dest.name)
        self._m_rebalances = metrics.REBALANCES.labels(dest.name)
        metrics.DESTINATION_ACTIVE.labels(dest.name).set(1 if self.active else 0)

    # ---------------------------------------------------------------------------------------------
    # lifecycle

    @property
    def group_id(self) -> str:
        return self.dest.consumer_group(self.config.kafka.group_id)

    async def start(self) -> None:
        dest = self.dest
        # once the credential's start check has the app's token, its grant is known: say what it lacks
        self.holds.gate.start_check().add_done_callback(self._credential_checked)
        self.calls.attach(self._dispatchers.get(dest.credential, self._limiters.get(dest.credential)))
        await self.partitions.seed(self._outcome_ends)
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
            if self.chain.open.has_eligible:
                self.calls.poke()
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
        await self.tasks.finish(grace, deadline)
        await self.calls.detach()
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            try:
                await asyncio.wait_for(self.partitions.commit(consumer), COMMIT_ON_STOP_S)
            except TimeoutError:
                log.warning("destination %s: the last commit did not finish within %.0f s (Kafka away?); records "
                            "done since the previous commit are re-delivered and found recorded after the restart",
                            self.dest.name, COMMIT_ON_STOP_S, extra={"destination": self.dest.name})
            await stop_client(consumer, LEAVE_ON_STOP_S)

    def _credential_checked(self, _: asyncio.Task[None]) -> None:
        if self.active:
            self.holds.warn_missing_scopes()

    def set_active(self, active: bool) -> None:
        """Activate or pause consumption (paused: partitions paused, nothing read and dropped)."""
        if active != self.active:
            log.info("destination %s %s", self.dest.name, "activated" if active else "paused",
                     extra={"destination": self.dest.name})
            if active:
                self.holds.warn_missing_scopes()
        self.active = active
        if active:
            self._activated.set()
        else:
            self._activated.clear()
        metrics.DESTINATION_ACTIVE.labels(self.dest.name).set(1 if active else 0)
        self._apply_pause()
        if active:
            self.calls.poke()  # calls held while paused go now

    def status(self, records: dict[str, int] | None = None) -> dict[str, Any]:
        """The destination's state for the status routes; ``records``: its delivered and dead-lettered counts
        when the caller read them for every destination at once (:func:`worker.host.metrics.records_by_destination`)."""
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
            "calls_on_wire": self.calls.on_wire,
            "calls_in_flight": self.calls.on_wire,  # deprecated name of calls_on_wire, kept for one release
            # state, and due calls not on the wire: waiting for their account's budget (or a slot, or their key's
            # previous call) while active, held while paused or held (worker.kafka.held_calls)
            **self.holds.status(self.active, self.chain.open.waiting_calls),
            "grouped_records": self.chain.open.grouped_records,
            "skipped_after_recovery": self.partitions.skipped_after_recovery,
            "budget_share": round(self._limiters.get(self.dest.credential).share, 4),
            "jobs_followed": self.sender.watch.watched if self.sender.watch is not None else 0,
            "partitions": self.partitions.status(consumer, assigned),
            "records": {**(records if records is not None else metrics.records_since_start(self.dest.name)),
                        "unknown": self.outcomes.records_unknown},
            "last_error": self.outcomes.last_error,
        }

    # ---------------------------------------------------------------------------------------------
    # records in

    def _poll_timeout(self) -> float:
        deadline = self.chain.open.next_deadline()
        if deadline is None:
            idle = not self.chain.open.grouped_records and self.partitions.idle
            return IDLE_POLL_WAIT_S if idle else BUSY_POLL_WAIT_S
        return max(0.0, min(BUSY_POLL_WAIT_S, deadline - self.clock()))

    def _handle(self, tpk: TopicPartitionKey, msg: Any, now: float) -> None:
        inherited = self.partitions.consume(tpk, msg.offset)
        if inherited is None:
            return  # delivered before a crash, its outcome is on Kafka: finished, not sent again
        source = SourceRef(tpk.topic, tpk.partition, msg.offset, msg.key, msg.timestamp)
        rejected = self.chain.take_in(msg.value, source, tuple(msg.headers or ()), now, *inherited)
        if rejected is not None:
            self.outcomes.dead_letter_now(rejected)

    def _may_start(self) -> bool:
        """Whether calls may start now (the account's dispatcher asks): not while paused, stopping or failed."""
        return self.active and not self._stopping and self._fatal is None

    def _poke(self) -> None:
        self.calls.poke()

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
        if throttled and self.chain.open.flush_grouped(self.clock()):
            self.calls.poke()  # batches that could only wait out their windows go now
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
            if self.chain.open.grouped_records:
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
        share = self._shares.assigned(self.dest.name, self.dest.credential, len(assigned), total)
        log.info("destination %s: %d of %d partition(s), %.1f%% of account %s's budget", self.dest.name,
                 len(assigned), total, 100 * share, self.dest.credential.account_key)
        if not assigned:
            return
        start = self.dest.start_position()
        if (self.partitions.settles(start) or not self.active or self.back_pressure.throttled
                or self._stopping):
            consumer.pause(*assigned)  # at once, before any record of these partitions is handed out
        await self.partitions.settle(consumer, assigned, start, self._apply_pause)

