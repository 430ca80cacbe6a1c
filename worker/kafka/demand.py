"""Every replica's demand on each Gorgias account, exchanged on the deployment's compacted demand topic.

Each replica publishes, about once a second (:data:`~worker.core.grouping.demand_shares.HEARTBEAT_S`),
one entry per account its destinations use, keyed ``<deployment>/<account>/<replica>``, with the calls it
has waiting (``{"calls": 12, "at": <epoch s>}``), plus one entry of its own (account ``*``) that says it
is alive even with no destination. Every replica reads the whole topic (no consumer group) and follows it;
what it heard, and when, makes its :class:`~worker.core.grouping.demand_shares.DemandBoard`, from which
each account's share is recomputed four times a second and put in force on the account's rate limiter
(:class:`~worker.core.grouping.demand_shares.DemandRamp`: its own demand lower at once, higher once the
others have heard it).

A clean stop withdraws the replica's entries (tombstones); a SIGKILLed replica's entries expire after 7.5
silent seconds, and whoever reads an entry silent for a minute withdraws it, so the topic keeps only the
live replicas. The arithmetic is in :mod:`worker.core.grouping.demand_shares`; this module only moves it.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
import uuid
from collections.abc import Callable
from typing import Any

import aiokafka
import orjson
from aiokafka import TopicPartition
from aiokafka.errors import KafkaError

from worker.core.config.account import Credential
from worker.core.config.deployment import Store
from worker.core.config.kafka import KafkaSettings
from worker.core.config.topics import TopicKind
from worker.core.grouping.demand_shares import (
    FORGET_AFTER_S,
    HEARTBEAT_S,
    DemandBoard,
    DemandMeter,
    DemandRamp,
    worth_setting,
)
from worker.gorgias.dispatch import Dispatchers
from worker.gorgias.ratelimit import RateLimiterRegistry
from worker.kafka.clients import ensure_topic, make_consumer, make_producer, read_ranges, stop_client

log = logging.getLogger(__name__)

TICK_S = 0.25  # shares are recomputed this often
ALIVE = "*"  # the account of a replica's own entry: alive, with or without destinations
ECHO_WAIT_S = 10.0  # at start, how long to wait for this replica's first entry to come back
_LOG_STEP = 0.1  # a share change this large is logged at info


def new_replica_id() -> str:
    """This process's name on the demand topic: its host and a random part (never the key separator)."""
    return f"{socket.gethostname().replace('/', '_')}-{uuid.uuid4().hex[:8]}"


def parse_demand(name: str | None, value: bytes | None) -> tuple[str, str, dict[str, Any] | None] | None:
    """``(account, replica, document or None for a tombstone)`` of an entry ``<account>/<replica>``; None for
    junk (no separator, a value that is not a JSON object with an integer ``calls``)."""
    if name is None or "/" not in name:
        return None
    account, replica = name.rsplit("/", 1)
    if not account or not replica:
        return None
    if value is None:
        return account, replica, None
    try:
        doc = orjson.loads(value)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(doc, dict) or not isinstance(doc.get("calls"), int):
        return None
    return account, replica, doc


class DemandExchange:
    """Publishes this replica's demand per account, follows everyone's, and puts each account's share in
    force on its rate limiter."""

    def __init__(
        self,
        settings: KafkaSettings,
        dispatchers: Dispatchers,
        limiters: RateLimiterRegistry,
        *,
        replica: str | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.topic = settings.store_topic(Store.DEMAND)
        self.scope = settings.scope
        self.replica = replica or new_replica_id()
        self.board = DemandBoard(self.replica)
        self._dispatchers = dispatchers
        self._limiters = limiters
        self._now = monotonic
        self._wall = wall
        self._ramps: dict[str, DemandRamp] = {}
        self._meters: dict[str, DemandMeter] = {}
        self._demands: dict[str, int] = {}  # account -> this replica's demand, as last measured
        self._logged: dict[str, float] = {}  # account -> the share last logged
        self._published: set[str] = set()  # accounts with an entry of this replica on the topic
        self._forgotten: list[tuple[str, str]] = []  # entries found silent for long: to withdraw
        self._consumer: aiokafka.AIOKafkaConsumer | None = None
        self._producer: aiokafka.AIOKafkaProducer | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._warned = False

    # -- lifecycle ----------------------------------------------------------------------------------

    async def start(self) -> None:
        """Read the topic to its end, publish this replica's first entry and wait until it comes back."""
        parts = await ensure_topic(self.settings, self.topic, TopicKind.DEMAND)
        consumer = make_consumer(self.settings, None, isolation_level="read_uncommitted", fetch_max_wait_ms=100)
        await consumer.start()
        self._consumer = consumer
        tps = [TopicPartition(self.topic, p) for p in parts]
        consumer.assign(tps)
        starts = await consumer.beginning_offsets(tps)
        ends = await consumer.end_offsets(tps)
        async for msg in read_ranges(consumer, {tp: (starts[tp], ends[tp]) for tp in tps}):
            self._take(msg.key, msg.value, at_start=True)
        self._producer = make_producer(self.settings, linger_ms=0)
        await self._producer.start()
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._follow(consumer, tps), name="demand-follow"),
                       loop.create_task(self._run(), name="demand-shares")]
        deadline = self._now() + ECHO_WAIT_S
        while not self.board.fresh(self._now()) and self._now() < deadline:
            await asyncio.sleep(0.05)
        log.info("budget shares follow demand (topic %s, replica %s)%s", self.topic, self.replica,
                 "" if self.board.fresh(self._now()) else ": not heard back yet, the floor until then")

    async def stop(self) -> None:
        """Withdraw this replica's entries (the others take its part at once) and stop."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._producer is not None:
            try:
                async with asyncio.timeout(2.0):
                    await self._send_all([(a, None) for a in {*self._published, ALIVE}])
            except (KafkaError, OSError, TimeoutError) as exc:
                log.warning("demand topic: withdrawing this replica's entries: %s", exc)
            await stop_client(self._producer, 2.0)
        if self._consumer is not None:
            await stop_client(self._consumer, 2.0)

    # -- shares ---------------------------------------------------------------------------------------

    def settle(self, credential: Credential) -> float:
        """Put ``credential``'s account's share in force now (a pipeline was just assigned partitions)."""
        limiter = self._limiters.get(credential)
        account = credential.account_key
        self._apply(account, self._demands.get(account, 0), self._now())
        return limiter.share

    def _apply(self, account: str, own: int, now: float) -> None:
        dispatcher = next((d for d in self._dispatchers.serving() if d.account == account), None)
        if dispatcher is None or not dispatcher.limiter.enabled:
            return
        limiter = dispatcher.limiter
        board = self.board
        alone = board.fresh(now) and not board.others(account, now)
        counted = self._ramps.setdefault(account, DemandRamp()).step(own, now, alone)
        share = board.share(account, counted, now)
        if worth_setting(limiter.share, share):
            limiter.set_share(share)
            dispatcher.budget_changed()
            if abs(share - self._logged.get(account, 1.0)) >= _LOG_STEP:
                self._logged[account] = share
                log.info("account %s: %.1f%% of its budget here (%d call(s) waiting here, %d other replica(s))",
                         account, 100 * share, own, len(board.others(account, now)))

    async def _run(self) -> None:
        next_beat = 0.0
        while True:
            now = self._now()
            demands = {d.account: self._meters.setdefault(d.account, DemandMeter()).demand(
                           d.demand, d.taken, now, d.limiter.account_usable)
                       for d in self._dispatchers.serving() if d.limiter.enabled}
            self._demands = demands
            for account, own in demands.items():
                self._apply(account, own, now)
            if now >= next_beat:
                next_beat = now + HEARTBEAT_S
                await self._beat(demands, now)
            await asyncio.sleep(TICK_S)

    async def _beat(self, demands: dict[str, int], now: float) -> None:
        """Publish this replica's demands (and its own entry), withdraw the accounts it no longer uses and
        the entries silent for long."""
        gone = self._published - set(demands)
        self._forgotten += self.board.silent(now, FORGET_AFTER_S)
        writes: list[tuple[str, int | None]] = [(ALIVE, 0), *demands.items(), *((a, None) for a in gone)]
        try:
            await self._send_all(writes)
            for account, replica in self._forgotten:
                assert self._producer is not None
                await self._producer.send(self.topic, None, key=self.scope.key(f"{account}/{replica}"))
                self.board.withdrawn(account, replica)
            self._forgotten = []
            self._published = set(demands)
            self._warned = False
        except (KafkaError, OSError) as exc:
            if not self._warned:  # once per outage: the floor is kept meanwhile (the board is not fresh)
                log.warning("demand topic %s: cannot publish this replica's demand: %s", self.topic, exc)
                self._warned = True

    async def _send_all(self, writes: list[tuple[str, int | None]]) -> None:
        producer = self._producer
        assert producer is not None
        at = self._wall()
        sent = [await producer.send(self.topic, None if calls is None else orjson.dumps({"calls": calls, "at": at}),
                                    key=self.scope.key(f"{account}/{self.replica}"))
                for account, calls in writes]
        await asyncio.gather(*sent)

    # -- reading --------------------------------------------------------------------------------------

    def _take(self, key: bytes | None, value: bytes | None, at_start: bool = False) -> None:
        parsed = parse_demand(self.scope.entry(key), value)
        if parsed is None:
            return
        account, replica, doc = parsed
        if doc is None:
            self.board.withdrawn(account, replica)
            return
        written = doc.get("at")
        if at_start and isinstance(written, int | float) and self._wall() - written > FORGET_AFTER_S:
            self._forgotten.append((account, replica))  # gone long ago: withdrawn at the first beat
            return
        self.board.heard(account, replica, doc["calls"], self._now())

    async def _follow(self, consumer: aiokafka.AIOKafkaConsumer, tps: list[TopicPartition]) -> None:
        while True:
            try:
                fetched = await consumer.getmany(*tps, timeout_ms=1000)
            except KafkaError as exc:  # keep following; the board goes stale meanwhile (the floor)
                log.warning("demand topic %s: %s", self.topic, exc)
                await asyncio.sleep(1)
                continue
            for messages in fetched.values():
                for msg in messages:
                    self._take(msg.key, msg.value)
