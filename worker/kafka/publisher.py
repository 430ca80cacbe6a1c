"""Publishing outcome records (response events, dead letters, intent marks): each made to fit its topic,
acknowledged by Kafka, retried while Kafka is unreachable."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiokafka
from aiokafka.errors import KafkaError, KafkaTimeoutError, MessageSizeTooLargeError
from aiokafka.structs import RecordMetadata

from worker.core.outcomes.fit import fit_parts
from worker.kafka.clients import DEFAULT_TOPIC_MAX_MESSAGE_BYTES, MAX_REQUEST_BYTES, outcome_limits

log = logging.getLogger(__name__)

# Outcome records are retried while Kafka is unreachable (their source offsets stay uncommitted).
RETRY_FIRST_S = 0.5
RETRY_MAX_S = 10.0
TROUBLE_LOG_INTERVAL_S = 30.0
# A document is never fitted below this (a skeleton of record references always fits in it).
SMALLEST_LIMIT = 16 * 1024
# An outcome record is keyed by its source record's key, unless that key is longer than this: then by
# the key's sha256 (the same key always lands on the same partition; the document keeps the key itself).
MAX_KEY_BYTES = 1024


def _transient(exc: KafkaError) -> bool:
    return bool(exc.retriable) or isinstance(exc, KafkaTimeoutError)


class Publisher:
    """Produces outcome records, each made to fit its topic, and waits until Kafka acknowledges them.

    While Kafka is unreachable a record is retried (with a growing pause, logged once per interval)
    instead of failing: its source offsets stay uncommitted meanwhile, so nothing is lost or sent
    again. Only an error that a retry cannot cure is raised.
    """

    def __init__(
        self,
        producer: aiokafka.AIOKafkaProducer,
        limits: dict[str, int] | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.producer = producer
        self.limits = limits or {}
        self.default_limit = outcome_limits({"": DEFAULT_TOPIC_MAX_MESSAGE_BYTES}, MAX_REQUEST_BYTES)[""]
        self.clock = clock
        self.sleep = sleep
        self.trouble: str | None = None  # why outcomes cannot be recorded right now
        self._retrying = 0
        self._last_trouble_log = float("-inf")

    @property
    def healthy(self) -> bool:
        return self._retrying == 0

    def limit_for(self, topic: str, key: bytes | None, headers: list[tuple[str, bytes]]) -> int:
        envelope = len(key or b"") + sum(len(k) + len(v) for k, v in headers)
        return max(SMALLEST_LIMIT, self.limits.get(topic, self.default_limit) - envelope)

    async def publish(
        self, topic: str, value: dict[str, Any], key: bytes | None, headers: list[tuple[str, bytes]]
    ) -> RecordMetadata:
        if key is not None and len(key) > MAX_KEY_BYTES:
            key = b"sha256:" + hashlib.sha256(key).hexdigest().encode()
        limit = self.limit_for(topic, key, headers)
        while True:
            try:
                meta = None
                for payload in fit_parts(value, limit):  # one but in the rarest case; in order, on one partition
                    meta = await self._send(topic, payload, key, headers)
                assert meta is not None
                return meta
            except MessageSizeTooLargeError:
                if limit <= SMALLEST_LIMIT:
                    raise
                # the broker's limit is lower than the one learnt at start (changed since): fit tighter
                limit = max(SMALLEST_LIMIT, limit // 2)
                log.warning("an outcome record did not fit topic %s; fitting it in %d bytes", topic, limit)

    async def _send(
        self, topic: str, payload: bytes, key: bytes | None, headers: list[tuple[str, bytes]]
    ) -> RecordMetadata:
        """Send one record, waiting out transient Kafka errors."""
        pause = RETRY_FIRST_S
        retrying = False
        try:
            while True:
                try:
                    future = await self.producer.send(topic, payload, key=key, headers=headers)
                    meta: RecordMetadata = await future
                except KafkaError as exc:
                    if not _transient(exc):
                        raise
                    if not retrying:
                        retrying = True
                        self._retrying += 1
                    self._note_trouble(topic, exc, pause)
                    await self.sleep(pause)
                    pause = min(pause * 2, RETRY_MAX_S)
                    continue
                return meta
        finally:
            if retrying:
                self._retrying -= 1
                if self._retrying == 0:
                    log.info("outcome records are written again (topic %s)", topic)
                    self.trouble = None

    def _note_trouble(self, topic: str, exc: KafkaError, pause: float) -> None:
        now = self.clock()
        self.trouble = f"cannot write to {topic}: {exc}"
        if now - self._last_trouble_log >= TROUBLE_LOG_INTERVAL_S:
            self._last_trouble_log = now
            log.warning("%s; %d outcome record(s) waiting, retrying every %.0f s at most", self.trouble,
                        self._retrying, RETRY_MAX_S)
