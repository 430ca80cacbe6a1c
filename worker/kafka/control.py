"""Save & activate at runtime: a compacted control topic read by every replica.

Each record is keyed by ``<deployment>/<destination>`` and says whether it is active. Every replica reads
the whole topic (no consumer group) from the beginning and keeps reading, so `gorgias-worker activate`
or `pause`, or the HTTP control routes, reach every replica without a restart; compaction keeps the
latest word per destination. Records of other deployments are ignored, so deployments sharing a cluster
(or a control topic) never pause each other. A destination with no control record uses its config's
``active``.

Before deployments, records were keyed by destination name alone on ``gorgias-worker.control``. They are
never applied (that is how one deployment paused another), but a starting worker names in one warning
those that would have paused one of its destinations (:func:`unscoped_commands`).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Callable
from typing import Any

import aiokafka
import orjson
from aiokafka import TopicPartition
from aiokafka.errors import KafkaError

from worker.core.config.deployment import Deployment, Store, is_unscoped
from worker.core.config.kafka import KafkaSettings
from worker.core.config.topics import TopicKind
from worker.core.outcomes.documents import iso_time
from worker.kafka.clients import (
    ensure_topic,
    existing_partitions,
    make_consumer,
    make_producer,
    read_ranges,
    stop_client,
)

log = logging.getLogger(__name__)

# Where every deployment kept its control records before they were scoped (the old default).
UNSCOPED_CONTROL_TOPIC = "gorgias-worker.control"


def control_value(active: bool, by: str | None = None) -> bytes:
    return orjson.dumps({"active": active, "at": iso_time(time.time()), "by": by or socket.gethostname()})


def parse_control(scope: Deployment | None, key: bytes | None, value: bytes | None) -> tuple[str, bool] | None:
    """``(destination, active)`` from a control record of deployment ``scope`` (None: an unscoped record of
    the old format); None for other deployments' records, tombstones and junk."""
    if scope is not None:
        name = scope.entry(key)
    else:
        name = key.decode("utf-8", "replace") if key is not None and is_unscoped(key) else None
    if name is None or value is None:
        return None
    try:
        doc = orjson.loads(value)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(doc, dict) or not isinstance(doc.get("active"), bool):
        return None
    return name, doc["active"]


async def send_command(settings: KafkaSettings, destination: str, active: bool) -> None:
    """Publish an activate/pause command for every replica of this deployment."""
    topic = settings.store_topic(Store.CONTROL)
    await ensure_topic(settings, topic, TopicKind.CONTROL)
    producer = make_producer(settings)
    await producer.start()
    try:
        await producer.send_and_wait(topic, control_value(active), key=settings.scope.key(destination))
    finally:
        await producer.stop()


async def unscoped_commands(settings: KafkaSettings, topics: list[str]) -> dict[str, bool]:
    """The old-format (unscoped) control records of ``topics`` that exist, read to their end: the last word
    per destination name. Nothing is created."""
    found = await existing_partitions(settings, topics)
    if not found:
        return {}
    consumer = make_consumer(settings, None, isolation_level="read_uncommitted")
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for topic, parts in found.items() for p in parts]
        consumer.assign(tps)
        starts = await consumer.beginning_offsets(tps)
        ends = await consumer.end_offsets(tps)
        words: dict[str, bool] = {}
        async for msg in read_ranges(consumer, {tp: (starts[tp], ends[tp]) for tp in tps}):
            parsed = parse_control(None, msg.key, msg.value)
            if parsed is not None:
                words[parsed[0]] = parsed[1]
        return words
    finally:
        await stop_client(consumer)


async def read_commands(settings: KafkaSettings) -> dict[str, bool]:
    """The current word of the control topic, read to its end (for `gorgias-worker status`)."""
    reader = ControlReader(settings, lambda name, active: None)
    await reader.start()
    try:
        return dict(reader.state)
    finally:
        await reader.stop()


class ControlReader:
    """Follows the control topic and calls ``apply(destination, active)`` for each command."""

    def __init__(self, settings: KafkaSettings, apply: Callable[[str, bool], None]) -> None:
        self.settings = settings
        self.apply = apply
        self.state: dict[str, bool] = {}
        self._consumer: aiokafka.AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None
        self.caught_up = asyncio.Event()

    async def start(self) -> None:
        """Read the topic to its current end (so startup honours saved commands), then keep following."""
        topic = self.settings.store_topic(Store.CONTROL)
        parts = await ensure_topic(self.settings, topic, TopicKind.CONTROL)
        consumer = make_consumer(self.settings, None, isolation_level="read_uncommitted")
        await consumer.start()
        self._consumer = consumer
        tps = [TopicPartition(topic, p) for p in parts]
        consumer.assign(tps)
        starts = await consumer.beginning_offsets(tps)
        ends = await consumer.end_offsets(tps)
        async for msg in read_ranges(consumer, {tp: (starts[tp], ends[tp]) for tp in tps}):
            self._take(msg.key, msg.value, apply=False)
        for name, active in self.state.items():  # the saved state, once: not every pause and activate of the past
            self.apply(name, active)
        self.caught_up.set()
        self._task = asyncio.get_running_loop().create_task(self._follow(consumer), name="control-reader")

    def _consume(self, fetched: dict[Any, list[Any]]) -> None:
        for messages in fetched.values():
            for msg in messages:
                self._take(msg.key, msg.value)

    def _take(self, key: bytes | None, value: bytes | None, apply: bool = True) -> None:
        parsed = parse_control(self.settings.scope, key, value)
        if parsed is not None:
            name, active = parsed
            self.state[name] = active
            if apply:
                self.apply(name, active)

    async def _follow(self, consumer: aiokafka.AIOKafkaConsumer) -> None:
        while True:
            try:
                self._consume(await consumer.getmany(timeout_ms=1000))
            except KafkaError as exc:  # keep following; the broker may come back
                log.warning("control topic: %s", exc)
                await asyncio.sleep(1)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._consumer is not None:
            await stop_client(self._consumer, 2.0)
