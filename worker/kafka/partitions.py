"""The source partitions one destination's consumer owns: how far each is done, its commits with
checkpoints, and what happens when partitions move between workers (revoke, assign, recovery).

* **Offsets**: records finish out of order; :class:`~worker.core.progress.offsets.OffsetTracker` says how far each
  partition may be committed. A commit carries a checkpoint (:mod:`worker.kafka.recovery`): from where
  the outcome topics must be read to find what a crashed owner had already recorded.
* **Ownership** (:class:`~worker.core.progress.ownership.Ownership`): a revoked partition's epoch moves on, so a
  call claimed under the old ownership is neither sent nor recorded by this worker; the revocation waits
  (up to the shutdown grace) for the calls already on the wire, then commits what they finished.
* **Assignment**: a partition the group never committed starts at ``start_from``'s timestamp; with
  outcome topics, the records past the committed offset whose outcome is already on Kafka are skipped
  (:meth:`consume` says so), and those that may have reached Gorgias are flagged for the duplicate checks
  (:meth:`consume` says that too).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

import aiokafka
from aiokafka import TopicPartition
from aiokafka.errors import CommitFailedError, KafkaError

from worker.core.config.worker_config import Destination, StartPosition, WorkerConfig
from worker.core.progress.offsets import OffsetTracker, TopicPartitionKey
from worker.core.progress.ownership import Claim, Ownership
from worker.core.progress.recovery_marks import ConsumptionMarks, Inheritance, Inherited, LeftBehind, Watermarks
from worker.core.records.record import SourceRef
from worker.host import metrics
from worker.kafka.clients import committed_offsets
from worker.kafka.recovery import SharedEndOffsets, end_offsets, scan_outcomes

log = logging.getLogger(__name__)

COMMIT_INTERVAL_S = 0.5
COMMIT_WARNING_INTERVAL_S = 30.0


def key_of(tp: TopicPartition) -> TopicPartitionKey:
    return TopicPartitionKey(tp.topic, tp.partition)


class Partitions:
    """One destination consumer's partitions: offsets, ownership, commits, revoke and assign."""

    def __init__(self, config: WorkerConfig, dest: Destination, clock: Callable[[], float],
                 outcome_partitions: list[tuple[str, int]], intent_topic: str | None) -> None:
        self.config = config
        self.dest = dest
        self.clock = clock
        self.tracker = OffsetTracker()
        self.ownership = Ownership()
        self.outcome_partitions = outcome_partitions
        self.watermarks = Watermarks()
        self.marks = ConsumptionMarks()
        self._intent_partitions = {tp for tp in outcome_partitions if tp[0] == intent_topic}
        # After a crash: records whose outcome a previous owner recorded (skipped), records that may have
        # reached Gorgias (for the duplicate checks), Gorgias jobs created (followed, not redone).
        self._left = LeftBehind()
        self.skipped_after_recovery = 0
        self._settling = 0  # assignments still seeking or recovering (their partitions stay paused)
        self._last_commit = 0.0
        self._commit_failing_since: float | None = None
        self._last_commit_warning = float("-inf")

    async def seed(self, ends: SharedEndOffsets | None = None) -> None:
        """Before consuming: where the outcome topics end now (the first checkpoints); ``ends`` shares the read
        with the pipelines starting at the same time."""
        partitions = self.outcome_partitions
        found = await (ends.read(partitions) if ends is not None else end_offsets(self.config.kafka, partitions))
        self.watermarks.seed(found)

    # -- records -------------------------------------------------------------------------------------

    def chunk(self, tp: TopicPartitionKey, first_offset: int) -> None:
        """A fetched chunk of ``tp`` starts at ``first_offset`` (for the consumption marks)."""
        self.marks.chunk(tp, first_offset, self.watermarks.scan_from())

    def consume(self, tp: TopicPartitionKey, offset: int) -> Inherited | None:
        """Count a consumed record in. None when its outcome is on Kafka already (finished at once, not sent
        again); else what a previous owner left of it (:class:`~worker.core.progress.recovery_marks.LeftBehind`)."""
        self.tracker.consumed(tp, offset)
        inherited = self._left.take(tp, offset)
        if inherited is None:
            self.skipped_after_recovery += 1
            self.tracker.finished(tp, offset)
        return inherited

    def finished(self, sources: Iterable[SourceRef]) -> None:
        """These records have their outcome on Kafka: their offsets may be committed."""
        finished = self.tracker.finished
        tpk: TopicPartitionKey | None = None
        for s in sources:
            if tpk is None or s.partition != tpk.partition or s.topic != tpk.topic:
                tpk = TopicPartitionKey(s.topic, s.partition)
            finished(tpk, s.offset)

    def claim(self, sources: Iterable[SourceRef]) -> Claim:
        """Hold a call's partitions: true while still ours; release it when the call is over."""
        return self.ownership.claim(sources)

    def acknowledged(self, topic: str, partition: int, offset: int) -> None:
        """An outcome (or intent) record this worker produced is on Kafka."""
        self.watermarks.acknowledged(topic, partition, offset)

    @property
    def pending_records(self) -> int:
        """Records consumed whose outcome is not recorded yet."""
        return self.tracker.pending_records

    @property
    def idle(self) -> bool:
        """Nothing to finish, commit or settle: no record consumed without its outcome, every finished offset
        committed, no assignment being settled."""
        return self.tracker.pending_records == 0 and self._settling == 0 and not self.tracker.committable()

    def status(self, consumer: aiokafka.AIOKafkaConsumer | None,
               assigned: list[TopicPartition]) -> list[dict[str, Any]]:
        """Per assigned partition: offset last committed by this worker, end offset (last fetch), lag."""
        out = []
        for tp in assigned:
            committed = self.tracker.committed(key_of(tp))
            end = consumer.highwater(tp) if consumer is not None else None
            lag = None if end is None or committed is None else max(0, end - committed)
            out.append({"topic": tp.topic, "partition": tp.partition, "committed": committed, "end": end, "lag": lag})
        return out

    # -- commits -------------------------------------------------------------------------------------

    async def maybe_commit(self, consumer: aiokafka.AIOKafkaConsumer) -> None:
        if self.clock() - self._last_commit >= COMMIT_INTERVAL_S:
            await self.commit(consumer)

    async def commit(self, consumer: aiokafka.AIOKafkaConsumer, only: set[TopicPartitionKey] | None = None) -> None:
        """Commit how far each partition is done (``only``: just these, even if no longer assigned), with
        its checkpoint. A failed commit is retried by the next one; a warning says so every 30 s."""
        self._last_commit = self.clock()
        positions = self.tracker.committable()
        if only is not None:
            positions = {tp: pos for tp, pos in positions.items() if tp in only}
        else:
            assigned = {key_of(tp) for tp in consumer.assignment()}
            positions = {tp: pos for tp, pos in positions.items() if tp in assigned}
        if not positions:
            return
        current = self.watermarks.scan_from()
        try:
            await consumer.commit({
                TopicPartition(tp.topic, tp.partition): (
                    pos, self.marks.checkpoint(tp, pos, current, self.tracker.consumed_upto(tp))
                )
                for tp, pos in positions.items()
            })
        except (CommitFailedError, KafkaError) as exc:
            self._commit_failed(exc)
            return
        if self._commit_failing_since is not None:
            log.info("destination %s: commits succeed again after %.0f s", self.dest.name,
                     self.clock() - self._commit_failing_since, extra={"destination": self.dest.name})
            self._commit_failing_since = None
            self._last_commit_warning = float("-inf")
        self.tracker.mark_committed(positions)
        for tp, pos in positions.items():
            high = consumer.highwater(TopicPartition(tp.topic, tp.partition))
            if high is not None:
                metrics.CONSUMER_LAG.labels(self.dest.name, tp.topic, str(tp.partition)).set(max(0, high - pos))

    def _commit_failed(self, exc: Exception) -> None:
        now = self.clock()
        if self._commit_failing_since is None:
            self._commit_failing_since = now
        if now - self._last_commit_warning >= COMMIT_WARNING_INTERVAL_S:  # not one line per attempt
            self._last_commit_warning = now
            log.warning("destination %s: commit failed for %.0f s (%s); retrying", self.dest.name,
                        now - self._commit_failing_since, exc, extra={"destination": self.dest.name})

    # -- partitions moving ---------------------------------------------------------------------------

    async def revoke(self, consumer: aiokafka.AIOKafkaConsumer | None, revoked: set[TopicPartition],
                     drop_waiting: Callable[[set[TopicPartitionKey]], None]) -> None:
        """Before partitions move to another worker: calls not on the wire yet are dropped
        (``drop_waiting``: the new owner sends them), those on the wire get the shutdown grace to finish,
        then what is done is committed and the partitions are forgotten."""
        keys = {key_of(tp) for tp in revoked}
        if not keys:
            return
        self.ownership.revoke(keys)
        drop_waiting(keys)
        deadline = self.clock() + max(1.0, self.config.worker.shutdown_grace_s)
        while self.ownership.busy(keys) and self.clock() < deadline:
            await asyncio.sleep(0.02)
        if consumer is not None:
            await self.commit(consumer, only=keys)
        for tp in keys:
            self.tracker.forget(tp)
            self.marks.forget(tp)
            self.ownership.forget(tp)
            try:  # the new owner reports this partition's lag from now on
                metrics.CONSUMER_LAG.remove(self.dest.name, tp.topic, str(tp.partition))
            except KeyError:
                pass

    @property
    def recovering(self) -> bool:
        """An assignment is still being settled: its partitions stay paused."""
        return self._settling > 0

    def settles(self, start: StartPosition) -> bool:
        """Whether a new assignment must be settled (seeked or recovered) before it is consumed."""
        return bool(self.outcome_partitions) or not isinstance(start, str)

    async def settle(self, consumer: aiokafka.AIOKafkaConsumer, assigned: set[TopicPartition], start: StartPosition,
                     settled: Callable[[], None]) -> None:
        """Make newly assigned partitions ready to consume: those never committed start at ``start_from``'s
        timestamp; with outcome topics, what a previous owner recorded is found. ``settled`` is called
        once they may be consumed (to resume them)."""
        recover = bool(self.outcome_partitions)
        if not isinstance(start, str):
            self._settling += 1
            try:
                await self.seek_new(consumer, assigned, start)
            finally:
                self._settling -= 1
                if not recover:
                    settled()
        if recover:
            self._settling += 1
            try:
                await self.recover(consumer, assigned)
            finally:
                self._settling -= 1
                settled()

    async def seek_new(self, consumer: aiokafka.AIOKafkaConsumer, assigned: set[TopicPartition],
                       start: datetime) -> None:
        """``start_from: <timestamp>``: partitions the group never committed start at the first record at
        or after it (at the end when there is none yet)."""
        committed = await committed_offsets(self.config.kafka, self.dest.consumer_group(self.config.kafka.group_id),
                                            assigned)
        fresh = [tp for tp in assigned if tp not in committed or committed[tp].offset < 0]
        if not fresh:
            return
        found = await consumer.offsets_for_times({tp: int(start.timestamp() * 1000) for tp in fresh})
        for tp in fresh:
            at = found.get(tp)
            if at is None:
                await consumer.seek_to_end(tp)
            else:
                consumer.seek(tp, at.offset)
            log.info("destination %s: %s:%d has no committed offset; starting at %s (start_from %s)",
                     self.dest.name, tp.topic, tp.partition, "the end" if at is None else f"offset {at.offset}",
                     self.dest.start_from,
                     extra={"destination": self.dest.name, "topic": tp.topic, "partition": tp.partition,
                            "offset": None if at is None else at.offset})

    async def recover(self, consumer: aiokafka.AIOKafkaConsumer, assigned: set[TopicPartition]) -> None:
        """Find records past the committed offsets whose outcome a previous owner already recorded."""
        committed = await committed_offsets(self.config.kafka, self.dest.consumer_group(self.config.kafka.group_id),
                                            assigned)
        inherited = Inheritance.of({key_of(tp): (om.offset, om.metadata) for tp, om in committed.items()},
                                   self._intent_partitions)
        found, intended, jobs = await scan_outcomes(self.config.kafka, self.dest.name, inherited.scan_from,
                                                    inherited.positions)
        self._left.learn(inherited, self._intent_partitions, found, intended, jobs)
        if not found:
            return
        for tpk, last in inherited.last_recorded(found).items():
            self.marks.inherit(tpk, last, inherited.scans[tpk])
        log.info("destination %s: %d record(s) past the committed offsets were already delivered before a "
                 "restart; they will not be sent again", self.dest.name, len(found),
                 extra={"destination": self.dest.name})
