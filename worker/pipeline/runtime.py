"""The worker's runtime: shared Kafka producer and Gorgias delivery, one pipeline per destination, control."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from worker import metrics
from worker.config import Destination, WorkerConfig
from worker.control import ControlReader
from worker.gorgias.delivery import DeliveryService
from worker.gorgias.share import BudgetShares
from worker.pipeline.destination import DestinationPipeline
from worker.pipeline.kafka import ensure_topic, make_producer
from worker.pipeline.outcomes import Publisher
from worker.rendering import RequestRenderer

log = logging.getLogger("worker.runtime")


def build_renderer(dest: Destination) -> RequestRenderer:
    """The request renderer of a destination: its template's, or the manual configuration's."""
    if dest.endpoint.template is not None:
        from worker.templates import renderer_for

        return renderer_for(dest)
    return RequestRenderer(dest)


class Runtime:
    """Starts and stops everything a worker process runs, in the right order."""

    def __init__(self, config: WorkerConfig) -> None:
        self.config = config
        self.pipelines: dict[str, DestinationPipeline] = {}
        self.control: ControlReader | None = None
        self.delivery: DeliveryService | None = None
        self._producer: Any = None
        self.ready = asyncio.Event()
        self.failed: BaseException | None = None
        self.failure = asyncio.Event()

    def _on_fatal(self, exc: BaseException) -> None:
        self.failed = exc
        self.failure.set()

    async def start(self) -> None:
        config = self.config
        topics = {d.dead_letter_topic for d in config.destinations}
        topics |= {d.response_webhook.topic for d in config.destinations if d.response_webhook.enabled}
        partitions = {topic: await ensure_topic(config.kafka, topic, partitions=3) for topic in sorted(topics)}
        producer = make_producer(config.kafka)
        await producer.start()
        self._producer = producer
        self.delivery = DeliveryService()
        publisher = Publisher(producer)
        shares = BudgetShares(self.delivery.limiters)  # one per process: destinations of an account add up
        for dest in config.destinations:
            outcome_topics = [dest.dead_letter_topic]
            if dest.response_webhook.enabled:
                outcome_topics.append(dest.response_webhook.topic)
            outcome_partitions = [(t, p) for t in outcome_topics for p in partitions[t]]
            pipeline = DestinationPipeline(
                config, dest, build_renderer(dest), self.delivery, publisher, self._on_fatal, outcome_partitions,
                shares=shares,
            )
            self.pipelines[dest.name] = pipeline
        self.control = ControlReader(config.kafka, self.apply_command)
        await self.control.start()
        for pipeline in self.pipelines.values():
            await pipeline.start()
        self.ready.set()
        log.info("worker ready: %d destination(s): %s", len(self.pipelines),
                 ", ".join(f"{n} ({'active' if p.active else 'paused'})" for n, p in self.pipelines.items()))

    def apply_command(self, name: str, active: bool) -> None:
        pipeline = self.pipelines.get(name)
        if pipeline is None:
            log.debug("control command for destination %s, which this worker does not run", name)
            return
        pipeline.set_active(active)

    async def stop(self) -> None:
        self.ready.clear()
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
            "failed": str(self.failed) if self.failed else None,
            "destinations": [p.status() for p in self.pipelines.values()],
        }

    def metrics_text(self) -> bytes:
        if self.delivery is not None:
            for dest in self.config.destinations:
                limiter = self.delivery.limiters.get(dest.credential)
                metrics.RATE_LIMIT_LEVEL.labels(dest.credential.account_key).set(limiter.level)
                metrics.RATE_LIMIT_CAPACITY.labels(dest.credential.account_key).set(limiter.capacity)
        return metrics.render()
