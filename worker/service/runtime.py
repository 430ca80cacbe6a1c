"""The worker's runtime: shared Kafka producer and Gorgias delivery, one pipeline per destination, control."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from aiokafka.errors import KafkaError

from worker.core.chain.record_chain import build_renderer
from worker.core.config.deployment import Store
from worker.core.config.worker_config import Destination, WorkerConfig
from worker.core.templates import configured_for
from worker.gorgias.delivery import DeliveryService
from worker.gorgias.dispatch import Dispatchers
from worker.gorgias.share import BudgetShares
from worker.host import metrics
from worker.kafka.clients import (
    MAX_REQUEST_BYTES,
    ensure_topic,
    make_producer,
    outcome_limits,
    topic_max_message_bytes,
    wait_for_broker,
)
from worker.kafka.control import UNSCOPED_CONTROL_TOPIC, ControlReader, unscoped_commands
from worker.kafka.pipeline import DestinationPipeline
from worker.kafka.publisher import Publisher

log = logging.getLogger("worker.runtime")

HEALTH_INTERVAL_S = 5.0  # how often the broker is probed
HEALTH_PROBE_TIMEOUT_S = 5.0
OUTAGE_LOG_INTERVAL_S = 30.0  # one line per destination per interval while Kafka is unreachable


def _creates(dest: Destination) -> bool:
    """Does ``dest`` create objects (a create template, whose records are looked up after a crash; or a job
    template, whose job ids are marked so that a restarted worker follows them)?"""
    if dest.endpoint.template is None:
        return False
    configured = configured_for(dest)
    return bool(configured.template.creates) or configured.job_polling is not None


class Runtime:
    """Starts and stops everything a worker process runs, in the right order."""

    def __init__(self, config: WorkerConfig) -> None:
        self.config = config
        self.pipelines: dict[str, DestinationPipeline] = {}
        self.control: ControlReader | None = None
        self.delivery: DeliveryService | None = None
        self._producer: Any = None
        self.ready = asyncio.Event()  # started, and Kafka can be read and written (/health/ready)
        self.started = False
        self.trouble: str | None = None  # why the worker cannot consume or record outcomes right now
        self._trouble_since = 0.0
        self._last_outage_log = float("-inf")
        self._publisher: Publisher | None = None
        self._health: asyncio.Task[None] | None = None
        self.failed: BaseException | None = None
        self.failure = asyncio.Event()

    def _on_fatal(self, exc: BaseException) -> None:
        self.failed = exc
        self.failure.set()

    async def start(self) -> None:
        config = self.config
        topics = {d.dead_letter_topic for d in config.destinations}
        topics |= {d.response_webhook.topic for d in config.destinations if d.response_webhook.enabled}
        creating = {d.name for d in config.destinations if _creates(d)}
        intents = config.kafka.store_topic(Store.INTENTS) if creating else None
        if intents is not None:
            topics.add(intents)

        async def prepare_topics() -> tuple[dict[str, list[int]], dict[str, int]]:
            found = {topic: await ensure_topic(config.kafka, topic, partitions=3) for topic in sorted(topics)}
            return found, await topic_max_message_bytes(config.kafka, sorted(topics))

        partitions, topic_limits = await wait_for_broker(
            "preparing the outcome topics", prepare_topics, config.worker.broker_wait_s
        )
        limits = outcome_limits(topic_limits, MAX_REQUEST_BYTES)
        log.info("outcome documents fitted to %s", ", ".join(f"{t}: {n} bytes" for t, n in sorted(limits.items())))
        producer = make_producer(config.kafka)
        await producer.start()
        self._producer = producer
        self.delivery = DeliveryService()
        publisher = Publisher(producer, limits)
        self._publisher = publisher
        shares = BudgetShares(self.delivery.limiters)  # one per process: destinations of an account add up
        dispatchers = Dispatchers()  # one per Gorgias account, shared by the destinations on it
        for dest in config.destinations:
            outcome_topics = [dest.dead_letter_topic]
            if dest.response_webhook.enabled:
                outcome_topics.append(dest.response_webhook.topic)
            if intents is not None and dest.name in creating:
                outcome_topics.append(intents)
            outcome_partitions = [(t, p) for t in outcome_topics for p in partitions[t]]
            pipeline = DestinationPipeline(
                config, dest, build_renderer(dest), self.delivery, publisher, self._on_fatal, outcome_partitions,
                shares=shares,
                intent_topic=intents if dest.name in creating else None,
                dispatchers=dispatchers,
            )
            self.pipelines[dest.name] = pipeline
        self.control = ControlReader(config.kafka, self.apply_command)
        await self.control.start()
        await self._warn_unscoped_commands()
        for pipeline in self.pipelines.values():
            await pipeline.start()
        self.started = True
        self.ready.set()
        self._health = asyncio.get_running_loop().create_task(self._watch_health(), name="health")
        log.info("worker ready: %d destination(s): %s", len(self.pipelines),
                 ", ".join(f"{n} ({'active' if p.active else 'paused'})" for n, p in self.pipelines.items()))

    async def _warn_unscoped_commands(self) -> None:
        """Control records of the old format (keyed by destination name alone) are never applied: name, once,
        those that would have changed one of this worker's destinations, and how to apply them now."""
        kafka = self.config.kafka
        own_topic = kafka.store_topic(Store.CONTROL)
        for topic in sorted({UNSCOPED_CONTROL_TOPIC, own_topic}):
            try:
                words = await unscoped_commands(kafka, [topic])
            except KafkaError as exc:
                log.debug("could not look for unscoped control records on %s: %s", topic, exc)
                continue
            for name, active in sorted(words.items()):
                pipeline = self.pipelines.get(name)
                if pipeline is None or pipeline.active == active:
                    continue
                log.warning(
                    "destination %s: an old control record on %s (keyed by the name alone) says %s; it is not "
                    "applied, as control records now belong to a deployment (here %s, on %s): run "
                    "`gorgias-worker %s %s` to apply it", name, topic, "active" if active else "paused",
                    kafka.scope.name, own_topic, "activate" if active else "pause", name,
                    extra={"destination": name},
                )

    def apply_command(self, name: str, active: bool) -> None:
        pipeline = self.pipelines.get(name)
        if pipeline is None:
            log.debug("control command for destination %s, which this worker does not run", name)
            return
        pipeline.set_active(active)

    async def _watch_health(self) -> None:
        while True:
            await asyncio.sleep(HEALTH_INTERVAL_S)
            await self.check_health()

    async def check_health(self) -> None:
        """Probe Kafka and the outcome writes; readiness follows, and an outage is logged calmly."""
        problems: list[str] = []
        producer = self._producer
        if producer is not None:
            try:
                await asyncio.wait_for(producer.client.fetch_all_metadata(), HEALTH_PROBE_TIMEOUT_S)
            except (KafkaError, OSError, TimeoutError) as exc:
                problems.append(f"Kafka unreachable ({str(exc) or type(exc).__name__})")
        if self._publisher is not None and not self._publisher.healthy:
            problems.append(self._publisher.trouble or "outcome records cannot be written")
        now = time.monotonic()
        if problems:
            self.ready.clear()
            if self.trouble is None:
                self._trouble_since = now
            self.trouble = "; ".join(problems)
            if now - self._last_outage_log >= OUTAGE_LOG_INTERVAL_S:
                self._last_outage_log = now
                for name, pipeline in self.pipelines.items():
                    log.warning(
                        "destination %s cannot consume or record outcomes for %.0f s: %s; %d record(s) wait for "
                        "their outcome", name, now - self._trouble_since, self.trouble, pipeline.partitions.in_flight,
                        extra={"destination": name},
                    )
        elif self.trouble is not None:
            for name in self.pipelines:
                log.info("destination %s recovered: Kafka answers again after %.0f s", name,
                         now - self._trouble_since, extra={"destination": name})
            self.trouble = None
            self._last_outage_log = float("-inf")
            if self.started:
                self.ready.set()

    async def stop(self) -> None:
        self.ready.clear()
        self.started = False
        if self._health is not None:
            self._health.cancel()
            await asyncio.gather(self._health, return_exceptions=True)
        grace = self.config.worker.shutdown_grace_s
        await asyncio.gather(*(p.stop(grace) for p in self.pipelines.values()), return_exceptions=True)
        if self.control is not None:
            await self.control.stop()
        if self._producer is not None:
            await self._producer.stop()
        if self.delivery is not None:
            await self.delivery.aclose()
        log.info("worker stopped")

    def status(self) -> dict[str, Any]:
        return {
            "ready": self.ready.is_set(),
            "trouble": self.trouble,
            "failed": str(self.failed) if self.failed else None,
            "destinations": [p.status() for p in self.pipelines.values()],
            "accounts": self.account_status(),
        }

    def account_status(self) -> dict[str, dict[str, Any]]:
        """Per account: its budget's level (requests in the leaky bucket), capacity and calls waiting."""
        out: dict[str, dict[str, Any]] = {}
        if self.delivery is None:
            return out
        for dest in self.config.destinations:
            key = dest.credential.account_key
            if key in out:
                continue
            limiter = self.delivery.limiters.get(dest.credential)
            out[key] = {"level": round(limiter.level, 2), "capacity": limiter.capacity,
                        "waiting": metrics.account_waiting(key),
                        "destinations": [d.name for d in self.config.destinations if d.credential.account_key == key]}
        return out

    def metrics_text(self) -> bytes:
        if self.delivery is not None:
            for dest in self.config.destinations:
                limiter = self.delivery.limiters.get(dest.credential)
                metrics.RATE_LIMIT_LEVEL.labels(dest.credential.account_key).set(limiter.level)
                metrics.RATE_LIMIT_CAPACITY.labels(dest.credential.account_key).set(limiter.capacity)
        return metrics.render()
