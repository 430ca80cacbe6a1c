"""What became of each call and each rejected record, recorded: the response event and the dead letter
on Kafka (acknowledged before their source offsets may be committed), intent marks, the call's metrics,
the destination's last error and its records whose outcome is unknown.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from aiokafka.errors import KafkaError

from worker.core.chain.record_chain import Rejected
from worker.core.config.deployment import Deployment
from worker.core.config.worker_config import Destination
from worker.core.outcomes.call_outcome import CallOutcome, retry_causes
from worker.core.outcomes.dead_letters import dead_letter, delivery_dead_letter
from worker.core.outcomes.documents import DeadLetterStage, Outcome, iso_time
from worker.core.outcomes.response_events import outcome_kind, response_event
from worker.core.progress.recovery_marks import intent_document
from worker.core.records.record import SourceRef
from worker.core.requests.call import RenderedCall
from worker.host import metrics
from worker.host.logs import source_fields
from worker.kafka.partitions import Partitions
from worker.kafka.publisher import Publisher

log = logging.getLogger(__name__)


class OutcomeRecorder:
    """Records one destination's outcomes. ``fail`` stops the destination (an outcome that cannot be
    written must not be committed past); ``spawn`` runs a task the pipeline waits for at shutdown."""

    def __init__(self, dest: Destination, publisher: Publisher, partitions: Partitions, clock: Callable[[], float],
                 fail: Callable[[BaseException, str], None], spawn: Callable[[Coroutine[Any, Any, None]], None],
                 scope: Deployment, intent_topic: str | None = None) -> None:
        self.dest = dest
        self.scope = scope
        self.publisher = publisher
        self.partitions = partitions
        self.clock = clock
        self._fail = fail
        self._spawn = spawn
        self.intent_topic = intent_topic
        self.last_error: dict[str, str] | None = None  # {"at", "message"}, for status
        self.records_unknown = 0  # dead-lettered with outcome unknown (the call may have reached Gorgias)
        name = dest.name
        self._outcome_headers = {kind: [("destination", name.encode()), ("outcome", kind.value.encode())]
                                 for kind in Outcome}
        self._m_delivered = metrics.RECORDS_DELIVERED.labels(name)
        self._m_batch = metrics.BATCH_SIZE.labels(name)
        self._m_latency = metrics.CALL_DURATION.labels(name)
        self._m_request = metrics.REQUEST_LATENCY.labels(name)
        self._m_budget_wait = metrics.BUDGET_WAIT.labels(dest.credential.account_key)
        self._m_e2e = metrics.END_TO_END_LATENCY.labels(name)
        self._m_calls: dict[int | None, Any] = {}  # final status -> its CALLS counter
        # Dead-letter series exist at 0 from the start, so that alerts see their first increase.
        self._m_dead = {stage: metrics.RECORDS_DEAD_LETTERED.labels(name, stage.value) for stage in DeadLetterStage}
        self._m_unknown = metrics.RECORDS_OUTCOME_UNKNOWN.labels(name)

    async def mark_intent(self, call: RenderedCall, job_id: int | None = None) -> None:
        """Record on Kafka that ``call``'s records are about to reach Gorgias (acknowledged before it goes), or
        that Gorgias created job ``job_id`` for them (acknowledged before the job is followed)."""
        assert self.intent_topic is not None
        sources = call.sources
        doc = intent_document(self.scope.name, self.dest.name, ((s.topic, s.partition, s.offset) for s in sources),
                              job_id)
        meta = await self.publisher.publish(self.intent_topic, doc, self.scope.key(sources[0].key),
                                            [("destination", self.dest.name.encode()), ("kind", b"intent")])
        self.partitions.acknowledged(meta.topic, meta.partition, meta.offset)

    def _observe(self, call: RenderedCall, outcome: CallOutcome) -> None:
        """The call's metrics: its size and duration, each attempt's wait and latency, its status, retries."""
        self._m_batch.observe(len(call.items))
        self._m_latency.observe(outcome.latency_s)
        for attempt in outcome.attempt_log:
            self._m_budget_wait.observe(attempt.rate_limit_wait_s)
            if attempt.error_kind != "refused":  # refused before sending (foreign origin): no request made
                self._m_request.observe(attempt.elapsed_s)
        status = outcome.status
        counter = self._m_calls.get(status)
        if counter is None:
            counter = self._m_calls[status] = metrics.CALLS.labels(
                self.dest.name, str(status) if status is not None else "error")
        counter.inc()
        if len(outcome.attempt_log) > 1:
            for cause in retry_causes(outcome.attempt_log):  # retries of one request, not later steps
                metrics.RETRIES.labels(self.dest.name, cause).inc()

    async def record(self, call: RenderedCall, outcome: CallOutcome) -> None:
        """Publish the call's response event (and its dead letter when it failed), then finish its records."""
        dest = self.dest
        n = len(call.items)
        self._observe(call, outcome)
        publish_response = dest.response_webhook.enabled
        if publish_response or not outcome.ok:  # the document is built only when it is written
            key = call.sources[0].key
            event = response_event(self.scope.name, dest, call, outcome)
            headers = self._outcome_headers[outcome_kind(outcome)]
            try:
                waits = []
                if publish_response:
                    waits.append(self.publisher.publish(dest.response_webhook.topic, event, key, headers))
                if not outcome.ok:
                    letter = delivery_dead_letter(dest, call, event, outcome.finished_at)
                    self.note_error(f"deliver: {letter.get('reason')}")
                    waits.append(self.publisher.publish(dest.dead_letter_topic, letter, key,
                                                        [*headers, ("stage", b"deliver")]))
                # one publish is awaited as it is (gather would wrap it in a task of its own)
                for meta in [await waits[0]] if len(waits) == 1 else await asyncio.gather(*waits):
                    self.partitions.acknowledged(meta.topic, meta.partition, meta.offset)
            except (KafkaError, OSError) as exc:
                self._fail(exc, f"could not record the outcome of a call carrying {n} record(s)")
                return
        if outcome.ok:
            self._m_delivered.inc(n)
        else:
            log.warning("dead letter (stage deliver) of %d record(s): %s", n, outcome.final_reason,
                        extra={**source_fields(dest.name, call.sources), "stage": "deliver"})
            self._m_dead[DeadLetterStage.DELIVER].inc(n)
            if outcome.outcome_unknown:
                self.records_unknown += n
                self._m_unknown.inc(n)
        self.finish(call.sources)

    def give_up(self, call: RenderedCall, reason: str, done: Callable[[RenderedCall], None]) -> None:
        """Record ``call`` as failed without sending it (held longer than its retry budget): its dead letter
        says why. ``done`` frees its key's lane first."""
        claim = self.partitions.claim(call.sources)

        async def run() -> None:
            try:
                done(call)
                if claim():  # else its partition moved to another worker, which sends it
                    await self.record(call, CallOutcome.unsent(reason, self.clock()))
            finally:
                claim.release()

        self._spawn(run())

    def dead_letter_now(self, rejected: Rejected) -> None:
        """Write the dead letter of records the chain rejected (unless their partition moved away first)."""
        dest = self.dest
        stage, reason, sources = rejected.stage, rejected.reason, rejected.sources
        letter = dead_letter(self.scope.name, dest, stage, reason, rejected.items, failed_at=self.clock())
        self.note_error(f"{stage.value}: {reason}")
        headers = [("destination", dest.name.encode()), ("stage", stage.value.encode())]

        async def publish() -> None:
            try:
                meta = await self.publisher.publish(dest.dead_letter_topic, letter, rejected.key, headers)
                self.partitions.acknowledged(meta.topic, meta.partition, meta.offset)
            except (KafkaError, OSError) as exc:
                self._fail(exc, "could not write a dead-letter record")
                return
            self._m_dead[stage].inc(len(sources))
            log.warning("dead letter (stage %s) of %d record(s): %s", stage.value, len(sources), reason,
                        extra={**source_fields(dest.name, sources), "stage": stage.value})
            self.finish(sources)

        claim = self.partitions.claim(sources)

        async def run() -> None:
            try:
                if claim():  # else its partition moved to another worker, which writes it
                    await publish()
            finally:
                claim.release()

        self._spawn(run())  # tracked with the calls, so that a shutdown waits for it too

    @property
    def marks_intents(self) -> bool:
        """Whether calls of this destination are marked on the intent topic before they go."""
        return self.intent_topic is not None

    def finish(self, sources: list[SourceRef]) -> None:
        self.partitions.finished(sources)
        oldest = min((s.timestamp_ms for s in sources if s.timestamp_ms is not None), default=None)
        if oldest is not None:  # once per call: its oldest record's wait
            self._m_e2e.observe(max(0.0, self.clock() - oldest / 1000))

    def note_error(self, message: str) -> None:
        self.last_error = {"at": iso_time(self.clock()), "message": message}

