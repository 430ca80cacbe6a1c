"""A store on Kafka: named, versioned entries of one deployment on a compacted topic, followed by every
replica — the one piece that runtime destinations, credentials and OAuth tokens are each a use of.

Reading. Every replica reads the whole topic (no consumer group, ``read_committed``) to its end before it
says it is ready, then follows it: each change reaches every replica within a fetch. Only keys of this
deployment (``<deployment>/<name>``) are taken; a value that does not parse is kept aside for its key
(:attr:`CompactedStore.unreadable`, with the reason) and the others are read on.

Writing. A write expects something (nothing, a version, anything: :mod:`worker.core.store.writes`) and
must be checked against every write before it, on any replica. Kafka gives that without a leader:
each write is one transaction of a producer whose transactional id is the store's own
(``<topic>.writer``); starting such a producer fences every earlier one (its open transaction is
aborted), so a writer that has started, read the store to its end and committed has seen every write
committed before its own, and a writer fenced meanwhile fails to commit and tries again. Readers skip
aborted writes (``read_committed``). Two creates of one name at once: exactly one commits, the other
finds the entry and is refused.

The topic is created compacted (one partition: one order of changes for every replica); a topic of
that name that exists without compaction is refused in one line naming the setting, because deleting
its old records would forget entries.
"""

from __future__ import annotations

import asyncio
import logging
import random
import socket
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

import aiokafka
from aiokafka import TopicPartition
from aiokafka.errors import (
    InvalidProducerEpoch,
    KafkaError,
    ProducerFenced,
    TransactionalIdAuthorizationFailed,
)

from worker.core.config.kafka import KafkaSettings
from worker.core.config.topics import TopicSpec
from worker.core.store.entries import StoredEntry, UnreadableEntry, decode_entry, encode_entry
from worker.core.store.writes import ANYTHING, PRESENT, Expect, check, next_version
from worker.kafka.clients import (
    TopicMisconfigured,
    ensure_topic,
    make_consumer,
    make_producer,
    read_ranges,
    stop_client,
)

log = logging.getLogger(__name__)

WRITE_ATTEMPTS = 6  # a write fenced by another replica's is tried again, this many times in all
SYNC_TIMEOUT_S = 30.0  # how long a write waits for this replica to have read the store to its end
TRANSACTION_TIMEOUT_MS = 10_000  # a writer that dies mid-write holds readers back at most this long
FOLLOW_WAIT_MS = 500

T = TypeVar("T")


class KeyScope(Protocol):
    """How a deployment scopes its keys (:class:`worker.core.config.deployment.Deployment` is one)."""

    def key(self, entry: str | bytes | None) -> bytes: ...

    def entry(self, key: bytes | None) -> str | None: ...


class StoreUnavailable(Exception):
    """The store cannot be used now (the topic is refused, Kafka does not answer, writes keep colliding)."""


def _now_iso(clock: Callable[[], float]) -> str:
    return datetime.fromtimestamp(clock(), UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


async def prepare_store_topic(settings: KafkaSettings, topic: str, setting: str) -> list[int]:
    """Create the store topic compacted with one partition (:mod:`worker.core.config.topics`), or accept an
    existing compacted one; an existing topic that is not compacted is refused naming ``setting``. Returns its
    partitions."""
    try:
        return await ensure_topic(settings, topic, TopicSpec("store", setting, 1, True, None))
    except TopicMisconfigured as exc:
        raise StoreUnavailable(str(exc)) from None


class CompactedStore:
    """One deployment's entries on a compacted topic: read to the end at :meth:`start`, then followed;
    written with :meth:`put` and :meth:`delete`. ``on_change(name)`` runs for every change read after
    the start (this replica's own writes included)."""

    def __init__(
        self,
        settings: KafkaSettings,
        topic: str,
        scope: KeyScope,
        setting: str,
        on_change: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.topic = topic
        self.scope = scope
        self.setting = setting  # the config setting naming the topic, for error messages
        self.on_change = on_change
        self.clock = clock
        self.entries: dict[str, StoredEntry] = {}
        self.unreadable: dict[str, str] = {}  # name -> why its stored value cannot be read
        self.caught_up = asyncio.Event()
        self._deleted_at: dict[str, int] = {}  # the version each deleted entry had, for its re-creation
        self._consumer: aiokafka.AIOKafkaConsumer | None = None
        self._partitions: list[TopicPartition] = []
        self._positions: dict[TopicPartition, int] = {}
        self._progress = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None
        self._write_lock = asyncio.Lock()
        self._written: dict[TopicPartition, int] = {}  # just past the last record this replica wrote

    @property
    def transactional_id(self) -> str:
        return f"{self.topic}.writer"

    # ---------------------------------------------------------------------------------------------
    # reading

    async def start(self) -> None:
        """Read the topic to its current end (the store's state at start), then keep following it."""
        parts = await prepare_store_topic(self.settings, self.topic, self.setting)
        consumer = make_consumer(self.settings, None, isolation_level="read_committed")
        await consumer.start()
        self._consumer = consumer
        self._partitions = [TopicPartition(self.topic, p) for p in parts]
        consumer.assign(self._partitions)
        starts = await consumer.beginning_offsets(self._partitions)
        ends = await consumer.end_offsets(self._partitions)
        async for msg in read_ranges(consumer, {tp: (starts[tp], ends[tp]) for tp in self._partitions}):
            self._take(msg.key, msg.value, msg.offset)
        for tp in self._partitions:
            self._positions[tp] = await consumer.position(tp)
        self.caught_up.set()
        log.info("store %s: %d entr%s read", self.topic, len(self.entries), "y" if len(self.entries) == 1 else "ies")
        self._task = asyncio.get_running_loop().create_task(self._follow(consumer), name=f"store:{self.topic}")

    def _take(self, key: bytes | None, value: bytes | None, offset: int) -> str | None:
        """Apply one record; the name it changed (None for another deployment's key)."""
        name = self.scope.entry(key)
        if name is None:
            return None
        if value is None:  # a tombstone: the entry was deleted
            old = self.entries.pop(name, None)
            if old is not None:
                self._deleted_at[name] = old.version
            self.unreadable.pop(name, None)
            return name
        try:
            entry = decode_entry(name, value, offset)
        except UnreadableEntry as exc:
            self.unreadable[name] = f"{exc} (offset {offset} of {self.topic})"
            old = self.entries.pop(name, None)
            if old is not None:
                self._deleted_at[name] = old.version
            log.warning("store %s: entry %s cannot be read: %s", self.topic, name, exc)
            return name
        self.unreadable.pop(name, None)
        self.entries[name] = entry
        return name

    async def _follow(self, consumer: aiokafka.AIOKafkaConsumer) -> None:
        while True:
            try:
                fetched = await consumer.getmany(*self._partitions, timeout_ms=FOLLOW_WAIT_MS)
                changed: list[str] = []
                for messages in fetched.values():
                    for msg in messages:
                        name = self._take(msg.key, msg.value, msg.offset)
                        if name is not None:
                            changed.append(name)
                for tp in self._partitions:
                    self._positions[tp] = await consumer.position(tp)
            except KafkaError as exc:  # keep following; the broker may come back
                log.warning("store %s: %s", self.topic, exc)
                await asyncio.sleep(1)
                continue
            async with self._progress:
                self._progress.notify_all()
            if self.on_change is not None:
                for name in dict.fromkeys(changed):
                    self.on_change(name)

    async def sync(self, timeout: float = SYNC_TIMEOUT_S) -> None:
        """Wait until this replica has read every write committed so far."""
        consumer = self._consumer
        if consumer is None:
            raise StoreUnavailable(f"store {self.topic} is not started")
        ends = await consumer.end_offsets(self._partitions)
        await self._reach(ends, timeout)

    async def _reach(self, targets: dict[TopicPartition, int], timeout: float) -> None:
        def reached() -> bool:
            return all(self._positions.get(tp, 0) >= end for tp, end in targets.items())

        try:
            async with self._progress, asyncio.timeout(timeout):  # not wait_for: 3.11's can drop a cancel
                await self._progress.wait_for(reached)
        except TimeoutError:
            raise StoreUnavailable(f"store {self.topic}: this replica has not read it to its end within "
                                   f"{timeout:.0f} s; try again") from None

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            await stop_client(consumer, 2.0)

    def version_of(self, name: str) -> int | None:
        """The stored version of ``name``: an unreadable entry counts as present (it can be replaced or
        deleted, not created again)."""
        entry = self.entries.get(name)
        if entry is not None:
            return entry.version
        if name in self.unreadable:
            return self._deleted_at.get(name, 0)
        return None

    # ---------------------------------------------------------------------------------------------
    # writing

    async def put(self, name: str, document: dict[str, Any], expect: Expect = ANYTHING) -> StoredEntry:
        """Write ``document`` as ``name`` if the store holds what ``expect`` says (else a
        :class:`~worker.core.store.writes.WriteRefused`); returns the entry as written."""
        async def write(producer: aiokafka.AIOKafkaProducer) -> StoredEntry:
            current = self.version_of(name)
            check(name, current, expect)
            version = next_version(current, self._deleted_at.get(name))
            at, by = _now_iso(self.clock), socket.gethostname()
            offset = await self._send(producer, name, encode_entry(version, document, at, by))
            return StoredEntry(name, version, document, at, by, offset)

        return await self._write(write)

    async def delete(self, name: str, expect: Expect = PRESENT) -> int:
        """Tombstone ``name`` if the store holds what ``expect`` says; returns the version deleted."""
        async def write(producer: aiokafka.AIOKafkaProducer) -> int:
            current = self.version_of(name)
            check(name, current, expect)
            await self._send(producer, name, None)
            return current or 0

        return await self._write(write)

    async def _send(self, producer: aiokafka.AIOKafkaProducer, name: str, value: bytes | None) -> int:
        """One record in one transaction; its offset once committed."""
        await producer.begin_transaction()
        sent = await producer.send(self.topic, value, key=self.scope.key(name))
        await producer.commit_transaction()
        meta = await sent
        self._written = {TopicPartition(meta.topic, meta.partition): int(meta.offset) + 1}
        return int(meta.offset)

    async def _write(self, write: Callable[[aiokafka.AIOKafkaProducer], Awaitable[T]]) -> T:
        """Run ``write`` as the deployment's only writer of this store, then wait until this replica has
        read it back; tried again when another replica's write fenced it."""
        if self._consumer is None:
            raise StoreUnavailable(f"store {self.topic} is not started")
        async with self._write_lock:
            for attempt in range(1, WRITE_ATTEMPTS + 1):
                producer = make_producer(self.settings, transactional_id=self.transactional_id,
                                         transaction_timeout_ms=TRANSACTION_TIMEOUT_MS)
                try:
                    await producer.start()  # fences every earlier writer of this store
                    await self.sync()  # so the check below sees every write committed before this one
                    result = await write(producer)
                except (ProducerFenced, InvalidProducerEpoch) as exc:
                    log.info("store %s: write fenced by another replica's (%s); attempt %d of %d",
                             self.topic, type(exc).__name__, attempt, WRITE_ATTEMPTS)
                    await asyncio.sleep(random.uniform(0.05, 0.2) * attempt)
                    continue
                except TransactionalIdAuthorizationFailed:
                    raise StoreUnavailable(
                        f"store {self.topic}: Kafka refuses transactional id {self.transactional_id}; the worker's "
                        "principal needs WRITE and DESCRIBE on it (see docs/operations.md)") from None
                finally:
                    await producer.stop()
                # this replica shows the write before it returns (the end offset would not do: Kafka marks
                # a transaction committed just after it answers the commit)
                await self._reach(self._written, SYNC_TIMEOUT_S)
                return result
        raise StoreUnavailable(f"store {self.topic}: {WRITE_ATTEMPTS} attempts collided with other writers; "
                               "try again")
