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
from aiokafka.errors import (
    InvalidProducerEpoch,
    InvalidProducerIdMapping,
    KafkaError,
    KafkaTimeoutError,
    MessageSizeTooLargeError,
    OutOfOrderSequenceNumber,
    ProducerFenced,
    UnknownProducerId,
)
from aiokafka.structs import RecordMetadata

from worker.core.outcomes.fit import fit_parts
from worker.kafka.clients import DEFAULT_TOPIC_MAX_MESSAGE_BYTES, MAX_REQUEST_BYTES, outcome_limits, stop_client

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
# The idempotent producer's state no longer matches the broker's (a broker restarted on the same data, the
# producer id expired, another producer took its epoch): no retry on that producer can succeed, a new
# producer (a new id) can. What the old one had not got acknowledged is written again through the new one.
PRODUCER_STATE_ERRORS = (OutOfOrderSequenceNumber, UnknownProducerId, InvalidProducerEpoch, ProducerFenced,
                         InvalidProducerIdMapping)
CLOSE_TIMEOUT_S = 10.0

ProducerFactory = Callable[[], Awaitable[aiokafka.AIOKafkaProducer]]


def _transient(exc: KafkaError) -> bool:
    return bool(exc.retriable) or isinstance(exc, KafkaTimeoutError)


class Publisher:
    """Produces outcome records, each made to fit its topic, and waits until Kafka acknowledges them.

    While Kafka is unreachable a record is retried (with a growing pause, logged once per interval)
    instead of failing: its source offsets stay uncommitted meanwhile, so nothing is lost or sent
    again. When the producer's own state is refused (:data:`PRODUCER_STATE_ERRORS`), ``renew`` makes a new
    producer and every record not acknowledged yet is sent again through it: the same document, so the same
    ``event_id`` (a reader keeps one per id, should the old producer's write have landed after all). Only
    an error that neither cures is raised.
    """

    def __init__(
        self,
        producer: aiokafka.AIOKafkaProducer,
        limits: dict[str, int] | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        renew: ProducerFactory | None = None,
    ) -> None:
        self.producer = producer
        self.renewals = 0  # producers replaced after their state was refused
        self._renew = renew
        self._renewing = asyncio.Lock()
        self._closing: set[asyncio.Task[None]] = set()
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
        """Send one record, waiting out transient Kafka errors and renewing a producer whose state is refused."""
        pause = RETRY_FIRST_S
        retrying = False
        try:
            while True:
                sent = await self._try_send(topic, payload, key, headers)
                if not isinstance(sent, KafkaError):
                    return sent
                if not retrying:
                    retrying = True
                    self._retrying += 1
                self._note_trouble(topic, sent, pause)
                await self.sleep(pause)
                pause = min(pause * 2, RETRY_MAX_S)
        finally:
            if retrying:
                self._retrying -= 1
                if self._retrying == 0:
                    log.info("outcome records are written again (topic %s)", topic)
                    self.trouble = None

    async def _try_send(
        self, topic: str, payload: bytes, key: bytes | None, headers: list[tuple[str, bytes]]
    ) -> RecordMetadata | KafkaError:
        """One send: its metadata, or the transient error to wait out (any other is raised). A producer whose
        state Kafka refuses is renewed, and the record goes at once through the new one."""
        while True:
            producer = self.producer
            try:
                future = await producer.send(topic, payload, key=key, headers=headers)
                meta: RecordMetadata = await future
                return meta
            except PRODUCER_STATE_ERRORS as exc:
                if self._renew is None:
                    raise
                try:
                    await self._renew_producer(producer, exc)
                    continue  # at once, through the new producer
                except KafkaError as renewing:  # Kafka away meanwhile: wait like any transient error
                    if not _transient(renewing):
                        raise
                    return renewing
            except KafkaError as exc:
                if not _transient(exc):
                    raise
                return exc

    async def _renew_producer(self, failed: aiokafka.AIOKafkaProducer, exc: KafkaError) -> None:
        """Replace ``failed`` by a new producer, once however many sends saw it fail."""
        assert self._renew is not None
        async with self._renewing:
            if self.producer is not failed:
                return  # another send renewed it already
            log.warning("Kafka refused the outcome producer's state (%s): starting a new producer; outcome records "
                        "not acknowledged yet are written again (same event_id)", type(exc).__name__)
            self.producer = await self._renew()
            self.renewals += 1
        task = asyncio.get_running_loop().create_task(self._close(failed), name="old-outcome-producer")
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    @staticmethod
    async def _close(producer: aiokafka.AIOKafkaProducer, within_s: float = CLOSE_TIMEOUT_S) -> None:
        await stop_client(producer, within_s)

    async def close(self, within_s: float = CLOSE_TIMEOUT_S) -> None:
        """Stop the producer (and any replaced one still closing) within ``within_s``."""
        await asyncio.gather(self._close(self.producer, within_s), *self._closing)

    def _note_trouble(self, topic: str, exc: KafkaError, pause: float) -> None:
        now = self.clock()
        self.trouble = f"cannot write to {topic}: {exc}"
        if now - self._last_trouble_log >= TROUBLE_LOG_INTERVAL_S:
            self._last_trouble_log = now
            log.warning("%s; %d outcome record(s) waiting, retrying every %.0f s at most", self.trouble,
                        self._retrying, RETRY_MAX_S)
