"""Replicas pacing at their share of one account's budget: no 429s, the headroom left free, no budget lost."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.gorgias_fakes import FakeClock, FakeTime, ServerBucket, credential
from worker.core.config.account import RateLimitSettings
from worker.core.grouping.demand_shares import HEARTBEAT_S, DemandBoard, DemandMeter, DemandRamp, worth_setting
from worker.gorgias.ratelimit import AccountRateLimiter, RateLimiterRegistry
from worker.gorgias.share import MIN_SHARE, BudgetShares, partition_share


def cold(clock: FakeClock | FakeTime, capacity: int = 40, per_seconds: float = 20.0, headroom: int = 2,
         ) -> AccountRateLimiter:
    rate = RateLimitSettings(per_seconds=per_seconds, headroom=headroom)  # assume_full_at_start
    return AccountRateLimiter(rate, capacity, clock=clock, sleep=clock.sleep)


class TestPartitionShare:
    def test_fraction_of_the_partitions(self) -> None:
        assert partition_share(3, 12) == pytest.approx(0.25)
        assert partition_share(12, 12) == 1.0

    def test_no_partition_keeps_a_small_share(self) -> None:
        assert partition_share(0, 12) == MIN_SHARE

    def test_unknown_total_is_the_whole_budget(self) -> None:
        assert partition_share(0, 0) == 1.0


class TestBudgetShares:
    def test_sets_the_accounts_limiter(self) -> None:
        registry = RateLimiterRegistry(clock=FakeClock())
        shares = BudgetShares(registry)
        cred = credential()
        assert shares.assigned("tickets", cred, 2, 8) == pytest.approx(0.25)
        assert registry.get(cred).share == pytest.approx(0.25)

    def test_destinations_of_one_account_average(self) -> None:
        registry = RateLimiterRegistry(clock=FakeClock())
        shares = BudgetShares(registry)
        cred = credential()
        shares.assigned("tickets", cred, 4, 4)
        assert shares.assigned("tags", cred, 0, 4) == pytest.approx((1 + MIN_SHARE) / 2)

    def test_other_accounts_are_left_alone(self) -> None:
        registry = RateLimiterRegistry(clock=FakeClock())
        shares = BudgetShares(registry)
        shares.assigned("tickets", credential(domain="acme"), 1, 4)
        assert registry.get(credential(domain="other")).share == 1.0


class TestShareOfTheLimiter:
    async def test_a_share_scales_the_bucket_and_its_drain(self) -> None:
        clock = FakeClock()
        lim = cold(clock)
        lim.set_share(0.25)
        assert lim.usable == pytest.approx(38 * 0.25)
        assert lim.drain_per_s == pytest.approx(0.475)  # a quarter of 38 per 20 s
        assert lim.level == pytest.approx(38 * 0.25)  # a cold start was full: so is its share
        waits = [await lim.acquire() for _ in range(3)]
        assert waits == pytest.approx([1 / 0.475] * 3)

    async def test_a_larger_share_starts_its_new_part_full(self) -> None:
        clock = FakeClock()
        lim = cold(clock)
        lim.set_share(0.5)
        clock.now += 1000  # drained
        assert lim.level == 0
        lim.set_share(1.0)  # took over partitions whose calls may still fill the account's bucket
        assert lim.level == pytest.approx(19)

    def test_a_smaller_share_scales_the_level(self) -> None:
        lim = cold(FakeClock())
        lim.set_share(0.5)
        assert lim.level == pytest.approx(19)

    def test_the_header_counts_every_replica(self) -> None:
        clock = FakeClock()
        lim = cold(clock)
        lim.set_share(0.2)
        clock.now += 1000
        lim.observe(32, 40)
        assert lim.level == pytest.approx(6.4)  # a fifth of the account's level: 32 / 5

    def test_a_share_must_be_positive(self) -> None:
        with pytest.raises(ValueError):
            cold(FakeClock()).set_share(0)


# --------------------------------------------------------------------------------------------------
# Property: replicas joining, leaving and rebalancing, each sending as fast as its limiter allows, plus a
# foreign client inside the headroom: the account's bucket never overflows, and the budget is used.


def split(partitions: int, members: list[int]) -> dict[int, int]:
    """Round-robin assignment: member -> number of partitions."""
    counts = dict.fromkeys(members, 0)
    for p in range(partitions):
        counts[members[p % len(members)]] += 1
    return counts


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    partitions=st.integers(min_value=1, max_value=16),
    first=st.integers(min_value=1, max_value=8),
    changes=st.lists(st.tuples(st.floats(1.0, 50.0), st.integers(1, 8)), max_size=4),
    foreign_every=st.sampled_from([None, 4.0, 9.0]),
)
# complexity: a simulation loop with its checks inline
def test_replicas_never_overflow_the_account_and_leave_the_headroom(  # noqa: C901
    partitions: int, first: int, changes: list[tuple[float, int]], foreign_every: float | None
) -> None:
    capacity, per_seconds, headroom, until = 20, 4.0, 2, 60.0
    time = FakeTime(start=0.0)
    server = ServerBucket(capacity, per_seconds)
    refused: list[tuple[str, float]] = []
    limiters: dict[int, AccountRateLimiter] = {}
    owned: dict[int, int] = {}
    alive: set[int] = set()

    def rebalance(members: int) -> None:
        for gone in alive - set(range(members)):
            alive.discard(gone)  # the replica stops; its calls stay in the account's bucket
        for m in range(members):
            if m not in alive:
                alive.add(m)
                limiters[m] = cold(time, capacity, per_seconds, headroom)
        counts = split(partitions, sorted(alive))
        for m in alive:
            owned[m] = counts[m]
            limiters[m].set_share(partition_share(counts[m], partitions))

    async def replica(m: int) -> None:
        while time.now < until and m in alive:
            if not owned.get(m):
                await time.sleep(0.1)
                continue
            await limiters[m].acquire()
            if m in alive and owned.get(m) and time.now < until:
                if not server.hit(time.now):
                    refused.append((f"replica {m}", time.now))
                limiters[m].observe(int(server.level), capacity)  # the call-limit header (truncated)

    async def coordinator() -> None:
        rebalance(first)
        tasks = [asyncio.ensure_future(replica(m)) for m in sorted(alive)]
        for at, members in sorted(changes):
            await time.sleep(at - time.now)
            before = set(alive)
            rebalance(members)
            tasks += [asyncio.ensure_future(replica(m)) for m in sorted(alive - before)]
        await asyncio.gather(*tasks)

    async def foreign() -> None:  # a burst of `headroom` calls, at most headroom / per_seconds calls/s
        while foreign_every is not None and time.now < until:
            await time.sleep(foreign_every)
            for _ in range(headroom):
                if not server.hit(time.now):
                    refused.append(("foreign", time.now))

    asyncio.run(time.run(coordinator(), foreign()))
    assert refused == []
    assert server.peak <= capacity - headroom + 1 + 1e-6  # ours fill at most capacity - headroom


def test_five_replicas_use_the_whole_budget() -> None:
    capacity, per_seconds, headroom, until = 20, 4.0, 2, 40.0
    time = FakeTime(start=0.0)
    server = ServerBucket(capacity, per_seconds)
    accepted: list[float] = []
    counts = split(12, list(range(5)))

    async def replica(m: int) -> None:
        lim = cold(time, capacity, per_seconds, headroom)
        lim.set_share(partition_share(counts[m], 12))
        while True:
            await lim.acquire()
            if time.now >= until:
                return
            assert server.hit(time.now)
            accepted.append(time.now)

    asyncio.run(time.run(*(replica(m) for m in range(5))))
    steady = [t for t in accepted if 10 <= t < 40]
    assert len(steady) >= 0.95 * 30 * (capacity - headroom) / per_seconds  # ≥ 95 % of 4.5 calls/s


# --------------------------------------------------------------------------------------------------
# Another integration on the account calling more than the headroom: the replicas, reading its calls in
# the call-limit header, yield to it. Regression: adopting the header's level minus the headroom let
# the replicas fill the headroom too, so the foreign client (and then the replicas) drew 429s.


@pytest.mark.parametrize("replicas", [1, 3])
def test_replicas_yield_to_a_foreign_client_beyond_the_headroom(replicas: int) -> None:
    capacity, per_seconds, headroom, until = 40, 20.0, 2, 300.0
    time = FakeTime(start=0.0)
    server = ServerBucket(capacity, per_seconds)
    refused: list[tuple[str, float]] = []
    ours: list[float] = []

    async def call(lim: AccountRateLimiter, latency: float) -> None:
        await time.sleep(latency)  # Gorgias' latency: the header comes back after later calls went out
        if server.hit(time.now):
            ours.append(time.now)
        else:
            refused.append(("replica", time.now))
        lim.observe(math.ceil(server.level - 1e-9), capacity)  # the call-limit header

    async def replica(seed: int) -> None:
        lim = cold(time, capacity, per_seconds, headroom)
        lim.set_share(1 / replicas)
        calls = []
        while True:
            await lim.acquire()
            if time.now >= until:
                break
            calls.append(asyncio.ensure_future(call(lim, 0.3 + 0.3 * ((seed + len(calls)) % 7) / 6)))
        await asyncio.gather(*calls)

    async def foreign() -> None:  # 0.5 calls/s: five times the headroom's 2 per 20 s
        gaps = [0.7, 3.1, 1.6, 2.9, 1.2, 2.5]  # 2 s on average, never in step with ours
        n = 0
        while time.now < until:
            await time.sleep(gaps[n % len(gaps)])
            n += 1
            if not server.hit(time.now):
                refused.append(("foreign", time.now))

    asyncio.run(time.run(foreign(), *(replica(r) for r in range(replicas))))
    assert refused == []
    steady = [t for t in ours if 60 <= t < until]
    # what is left once the foreign client's 0.5 calls/s are served: 2 - 0.5 calls/s, minus a margin
    assert len(steady) >= 0.9 * (until - 60) * (capacity / per_seconds - 0.5)


# --------------------------------------------------------------------------------------------------
# Shares that follow demand (worker.core.grouping.demand_shares, carried by worker.kafka.demand): each
# replica hears the others' demand a moment late, as on the demand topic, and paces at its share.

ACCOUNT = "acme/basic"
HEARD_AFTER_S = 0.3  # a demand published reaches the other replicas this much later


class DemandReplica:
    """One replica: its limiter, what it heard, the calls it has waiting, and whether it runs."""

    def __init__(self, name: str, time: FakeTime, backlog: int = 0) -> None:
        self.name = name
        self.lim = cold(time)
        self.board = DemandBoard(name)
        self.ramp = DemandRamp()
        self.meter = DemandMeter()
        self.backlog = backlog
        self.taken = 0
        self.alive = True
        self.own = 0

    def measure(self, now: float) -> int:  # as DemandExchange._run
        self.own = self.meter.demand(self.backlog, self.taken, now, self.lim.account_usable)
        return self.own

    def settle(self, now: float) -> None:  # as DemandExchange._apply
        alone = self.board.fresh(now) and not self.board.others(ACCOUNT, now)
        share = self.board.share(ACCOUNT, self.ramp.step(self.own, now, alone), now)
        if worth_setting(self.lim.share, share):
            self.lim.set_share(share)


# complexity: a simulation of replicas, their exchange and a foreign client, as nested tasks
def demand_run(  # noqa: C901
    replicas: list[DemandReplica], until: float, foreign_per_s: float = 0.0,
    events: list[tuple[float, Callable[[], None]]] | None = None,
) -> tuple[list[float], list[tuple[str, float]], FakeTime]:
    """Run the replicas (and a foreign client) against one 40/20 s account; returns our accepted calls'
    times and the refusals."""
    time = replicas[0].lim._clock
    assert isinstance(time, FakeTime)
    server = ServerBucket(40, 20.0)
    ours: list[float] = []
    refused: list[tuple[str, float]] = []

    async def deliver(to: DemandReplica, sender: str, calls: int) -> None:
        await time.sleep(HEARD_AFTER_S)
        to.board.heard(ACCOUNT, sender, calls, time.now)

    async def exchange(r: DemandReplica) -> None:
        next_beat, pending = 0.0, []
        while time.now < until and r.alive:
            own = r.measure(time.now)
            if time.now >= next_beat:
                next_beat = time.now + HEARTBEAT_S
                pending += [asyncio.ensure_future(deliver(o, r.name, own)) for o in replicas]
            r.settle(time.now)
            await time.sleep(0.25)
        await asyncio.gather(*pending)

    async def call(r: DemandReplica, latency: float) -> None:
        await time.sleep(latency)
        if server.hit(time.now):
            ours.append(time.now)
        else:
            refused.append((r.name, time.now))
        r.lim.observe(math.ceil(server.level - 1e-9), 40)  # the call-limit header

    async def sender(r: DemandReplica) -> None:  # as the account's dispatcher: woken when the share changes
        calls = []
        while time.now < until and r.alive:
            wait = r.lim.wait_s()
            if r.backlog <= 0 or wait > 0:
                await time.sleep(min(0.25, wait) if r.backlog > 0 else 0.1)
                continue
            r.lim.take()
            r.taken += 1
            r.backlog -= 1
            calls.append(asyncio.ensure_future(call(r, 0.3 + 0.3 * (len(calls) % 7) / 6)))
        await asyncio.gather(*calls)

    async def foreign() -> None:
        gaps = [0.7, 3.1, 1.6, 2.9, 1.2, 2.5]  # 2 s on average, never in step with ours
        n = 0
        while foreign_per_s and time.now < until:
            await time.sleep(gaps[n % len(gaps)] * 0.5 / foreign_per_s)
            n += 1
            if not server.hit(time.now):
                refused.append(("foreign", time.now))

    async def script() -> None:
        for at, do in events or []:
            await time.sleep(at - time.now)
            do()

    asyncio.run(time.run(foreign(), script(), *(exchange(r) for r in replicas), *(sender(r) for r in replicas)))
    return ours, refused, time


@pytest.mark.parametrize("replicas", [2, 3])
def test_a_skewed_backlog_gets_the_whole_budget_on_the_replica_holding_it(replicas: int) -> None:
    time = FakeTime(start=0.0)
    group = [DemandReplica("r0", time, backlog=10**6)] + [DemandReplica(f"r{i}", time) for i in range(1, replicas)]
    ours, refused, _ = demand_run(group, until=200.0)
    assert refused == []
    steady = [t for t in ours if 40 <= t < 200]
    assert len(steady) >= 0.95 * 160 * 38 / 20  # ≥ 95 % of (limit - headroom)


def test_demand_moving_to_another_replica_moves_the_budget_without_429s() -> None:
    time = FakeTime(start=0.0)
    a, b, c = DemandReplica("a", time, backlog=10**6), DemandReplica("b", time), DemandReplica("c", time)

    def move() -> None:
        a.backlog, b.backlog = 0, 10**6

    def spread() -> None:
        a.backlog = c.backlog = 10**6

    ours, refused, _ = demand_run([a, b, c], until=240.0, events=[(80.0, move), (160.0, spread)])
    assert refused == []
    for start in (20, 100, 180):  # after each move, the budget is used again within a few seconds
        assert len([t for t in ours if start <= t < start + 60]) >= 0.95 * 60 * 38 / 20


def test_a_killed_replicas_share_returns_to_the_others_within_15_s() -> None:
    time = FakeTime(start=0.0)
    group = [DemandReplica(f"r{i}", time, backlog=10**6) for i in range(3)]

    def kill() -> None:
        group[2].alive = False  # SIGKILL: no more heartbeats, its calls stay in the account's bucket

    ours, refused, _ = demand_run(group, until=120.0, events=[(60.0, kill)])
    assert refused == []
    assert len([t for t in ours if 75 <= t < 120]) >= 0.95 * 45 * 38 / 20


@pytest.mark.parametrize("replicas", [1, 3])
def test_shares_by_demand_yield_to_a_foreign_client_beyond_the_headroom(replicas: int) -> None:
    time = FakeTime(start=0.0)
    group = [DemandReplica("r0", time, backlog=10**6)] + [DemandReplica(f"r{i}", time) for i in range(1, replicas)]
    ours, refused, _ = demand_run(group, until=300.0, foreign_per_s=0.5)
    assert refused == []
    steady = [t for t in ours if 60 <= t < 300]
    assert len(steady) >= 0.9 * 240 * (40 / 20 - 0.5)
