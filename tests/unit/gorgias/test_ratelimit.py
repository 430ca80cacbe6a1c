"""AccountRateLimiter and its registry, on a virtual clock: no test sleeps for real."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.gorgias_fakes import FakeClock, FakeTime, ServerBucket, credential
from worker.core.config.account import AuthType, RateLimitSettings
from worker.gorgias.ratelimit import AccountRateLimiter, RateLimiterRegistry, parse_call_limit


def limiter(
    clock: FakeClock | FakeTime,
    *,
    capacity: int = 40,
    per_seconds: float = 20.0,
    headroom: int = 0,
    enabled: bool = True,
) -> AccountRateLimiter:
    rate = RateLimitSettings(
        enabled=enabled, per_seconds=per_seconds, headroom=headroom, assume_full_at_start=False
    )
    return AccountRateLimiter(rate, capacity, clock=clock, sleep=clock.sleep)


class TestParseCallLimit:
    @pytest.mark.parametrize(
        ("value", "expected"),
        [("10/40", (10, 40)), (" 3 / 80 ", (3, 80)), ("0/40", (0, 40)), ("41/40", (41, 40))],
    )
    def test_valid(self, value: str, expected: tuple[int, int]) -> None:
        assert parse_call_limit(value) == expected

    @pytest.mark.parametrize(
        "value", [None, "", "40", "a/b", "10/0", "-1/40", "10/40/2", "1.5/40", "10 of 40"]
    )
    def test_junk_is_none(self, value: str | None) -> None:
        assert parse_call_limit(value) is None


class TestBucket:
    async def test_burst_up_to_capacity_without_waiting(self) -> None:
        clock = FakeClock()
        bucket = limiter(clock, capacity=5)
        waits = [await bucket.acquire() for _ in range(5)]
        assert waits == [0.0] * 5
        assert bucket.level == pytest.approx(5)
        assert clock.sleeps == []

    async def test_waits_for_the_drain_when_full(self) -> None:
        clock = FakeClock()
        bucket = limiter(clock, capacity=40, per_seconds=20.0)  # drains 2 per second
        for _ in range(40):
            await bucket.acquire()
        waited = await bucket.acquire()
        assert waited == pytest.approx(0.5)
        assert bucket.level == pytest.approx(40)

    async def test_headroom_slots_stay_free(self) -> None:
        clock = FakeClock()
        bucket = limiter(clock, capacity=10, per_seconds=10.0, headroom=2)
        assert bucket.usable == 8
        for _ in range(8):
            assert await bucket.acquire() == 0.0
        assert await bucket.acquire() == pytest.approx(1.25)  # the headroom's rate stays free too: 8 per 10 s

    async def test_drains_continuously(self) -> None:
        clock = FakeClock()
        bucket = limiter(clock, capacity=40, per_seconds=20.0)
        for _ in range(10):
            await bucket.acquire()
        clock.now += 2.5
        assert bucket.level == pytest.approx(5.0)
        clock.now += 100
        assert bucket.level == 0.0

    async def test_disabled_never_waits(self) -> None:
        clock = FakeClock()
        bucket = limiter(clock, capacity=1, enabled=False)
        bucket.refused(None, 60)
        for _ in range(100):
            assert await bucket.acquire() == 0.0
        assert clock.sleeps == []

    def test_capacity_must_be_positive(self) -> None:
        with pytest.raises(ValueError, match="at least 1"):
            limiter(FakeClock(), capacity=0)

    def test_for_credential_uses_bucket_size(self) -> None:
        clock = FakeClock()
        assert AccountRateLimiter.for_credential(credential(), clock=clock, sleep=clock.sleep).capacity == 40
        oauth = credential(auth=AuthType.OAUTH)
        assert AccountRateLimiter.for_credential(oauth, clock=clock, sleep=clock.sleep).capacity == 80
        custom = credential(requests=7)
        assert AccountRateLimiter.for_credential(custom, clock=clock, sleep=clock.sleep).capacity == 7


class TestServerSync:
    async def test_observe_adopts_a_higher_server_level(self) -> None:
        clock = FakeClock()
        bucket = limiter(clock, capacity=40)
        await bucket.acquire()
        bucket.observe(39, 40)  # other clients of the account used the rest
        assert bucket.level == pytest.approx(39)
        assert await bucket.acquire() == 0.0
        assert await bucket.acquire() == pytest.approx(0.5)

    async def test_observe_keeps_our_higher_estimate(self) -> None:
        clock = FakeClock()
        bucket = limiter(clock, capacity=40)
        for _ in range(10):
            await bucket.acquire()
        bucket.observe(3, 40)  # a late response from before our burst
        assert bucket.level == pytest.approx(10)

    async def test_observe_adopts_the_server_limit(self) -> None:
        clock = FakeClock()
        bucket = limiter(clock, capacity=80, per_seconds=20.0)
        bucket.observe(0, 40)
        assert bucket.capacity == 40
        assert bucket.drain_per_s == pytest.approx(2.0)
        for _ in range(40):
            await bucket.acquire()
        assert await bucket.acquire() == pytest.approx(0.5)

    def test_observe_header_ignores_junk(self) -> None:
        bucket = limiter(FakeClock(), capacity=40)
        assert bucket.observe_header("garbage") is False
        assert bucket.observe_header(None) is False
        assert bucket.observe_header("12/40") is True
        assert bucket.level == pytest.approx(12)

    async def test_a_refusal_blocks_until_retry_after(self) -> None:
        clock = FakeClock()
        bucket = limiter(clock, capacity=40)
        start = clock.now
        bucket.refused(None, 5.0)
        assert bucket.blocked_until == pytest.approx(start + 5.0)
        await bucket.acquire()
        assert clock.now >= start + 5.0
        assert bucket.blocked_until is None

    async def test_a_refusal_without_a_header_counts_the_bucket_as_full(self) -> None:
        clock = FakeClock()
        bucket = limiter(clock, capacity=10, per_seconds=10.0, headroom=4)  # 6 usable, 0.6 per second
        bucket.refused(None, 3.0)
        assert bucket.level == pytest.approx(6)  # our part of the bucket is full
        bucket.refused(None, 0.0)
        assert bucket.level == pytest.approx(6)
        # after the 3 s of Retry-After our part holds 4.2: the next slot is free at once
        assert await bucket.acquire() == pytest.approx(3.0)

    async def test_a_refusal_never_shortens_an_earlier_one(self) -> None:
        clock = FakeClock()
        bucket = limiter(clock, capacity=40)
        bucket.refused(None, 10.0)
        bucket.refused(None, 1.0)
        assert bucket.blocked_until == pytest.approx(clock.now + 10.0)

    async def test_observe_while_a_waiter_sleeps_is_honoured(self) -> None:
        time = FakeTime()
        bucket = limiter(time, capacity=4, per_seconds=4.0)  # 1 per second

        async def scenario() -> float:
            for _ in range(4):
                await bucket.acquire()
            waiter = asyncio.ensure_future(bucket.acquire())
            await asyncio.sleep(0)
            bucket.refused(None, 3.0)  # while the waiter sleeps its 1 s
            return await waiter

        [waited] = await time.run(scenario())
        assert waited >= 3.0


class TestFairness:
    async def test_concurrent_waiters_are_served_in_arrival_order(self) -> None:
        time = FakeTime()
        bucket = limiter(time, capacity=2, per_seconds=2.0)  # 1 per second
        order: list[int] = []

        async def take(i: int, arrive_at: float) -> float:
            await time.sleep(arrive_at)
            await bucket.acquire()
            order.append(i)
            return time.now

        results = await time.run(*(take(i, i * 0.01) for i in range(6)))
        assert order == list(range(6))
        # two at once, then one per second
        assert results[2] == pytest.approx(1000.0 + 1.0, abs=1e-6)
        assert results[5] == pytest.approx(1000.0 + 4.0, abs=1e-6)

    async def test_a_penalty_does_not_let_later_arrivals_overtake(self) -> None:
        time = FakeTime()
        bucket = limiter(time, capacity=1, per_seconds=1.0)
        order: list[str] = []

        async def take(name: str, arrive_after: float) -> None:
            await time.sleep(arrive_after)
            await bucket.acquire()
            order.append(name)

        async def penalty() -> None:
            await time.sleep(0.5)
            bucket.refused(None, 5.0)

        await time.run(take("first", 0.0), take("A", 0.1), penalty(), take("B", 0.6))
        assert order == ["first", "A", "B"]

    async def test_a_cancelled_waiter_does_not_block_the_queue(self) -> None:
        time = FakeTime()
        bucket = limiter(time, capacity=1, per_seconds=1.0)

        async def scenario() -> float:
            await bucket.acquire()
            first = asyncio.ensure_future(bucket.acquire())
            second = asyncio.ensure_future(bucket.acquire())
            await asyncio.sleep(0)
            first.cancel()
            return await second

        [waited] = await time.run(scenario())
        assert waited == pytest.approx(1.0)


class TestRegistry:
    def test_one_limiter_per_account(self) -> None:
        clock = FakeClock()
        registry = RateLimiterRegistry(clock=clock, sleep=clock.sleep)
        a = registry.get(credential(domain="acme"))
        assert registry.get(credential(domain="acme", username="other@acme.com")) is a
        assert registry.get(credential(domain="other")) is not a
        assert registry.get(credential(domain="acme", auth=AuthType.OAUTH)) is not a
        assert len(registry) == 3
        assert "acme/basic" in registry


# --------------------------------------------------------------------------------------------------
# Property: with the limiter as the account's only client, a server-side bucket never overflows.


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    capacity=st.integers(min_value=1, max_value=80),
    headroom=st.integers(min_value=0, max_value=5),
    per_seconds=st.sampled_from([1.0, 10.0, 20.0, 7.5]),
    arrivals=st.lists(st.floats(min_value=0.0, max_value=60.0, allow_nan=False), min_size=1, max_size=150),
    observed=st.lists(st.tuples(st.integers(0, 150), st.integers(0, 100)), max_size=5),
)
def test_server_bucket_never_overflows(
    capacity: int,
    headroom: int,
    per_seconds: float,
    arrivals: list[float],
    observed: list[tuple[int, int]],
) -> None:
    time = FakeTime(start=0.0)
    bucket = limiter(time, capacity=capacity, per_seconds=per_seconds, headroom=headroom)
    server = ServerBucket(capacity, per_seconds)
    rejected: list[float] = []
    granted: list[float] = []

    async def client(arrive_at: float, index: int) -> None:
        await time.sleep(arrive_at)
        if index < len(observed):  # stale or low server reports must never loosen the limit
            used, _ = observed[index]
            bucket.observe(min(used, capacity), capacity)
        await bucket.acquire()
        granted.append(time.now)
        if not server.hit(time.now):
            rejected.append(time.now)

    asyncio.run(time.run(*(client(t, i) for i, t in enumerate(arrivals))))
    assert len(granted) == len(arrivals)
    assert rejected == []
    assert server.peak <= max(1, capacity - headroom) + 1e-6


def test_sequential_acquires_take_the_drain_time() -> None:
    time = FakeTime(start=0.0)
    bucket = limiter(time, capacity=40, per_seconds=20.0, headroom=2)

    async def burst() -> float:
        for _ in range(100):
            await bucket.acquire()
        return time.now

    [end] = asyncio.run(time.run(burst()))
    # 38 at once, then 62 more at 1.9 per second (the headroom's 2 per 20 s stay free)
    assert end == pytest.approx(62 / 1.9, abs=1e-6)


class TestColdStart:
    async def test_a_cold_limiter_sends_at_the_drain_rate_until_the_bucket_has_drained(self) -> None:
        clock = FakeClock()
        rate = RateLimitSettings(per_seconds=20.0, headroom=2)  # assume_full_at_start by default
        lim = AccountRateLimiter(rate, 40, clock=clock, sleep=clock.sleep)
        assert lim.level == pytest.approx(38)
        waits = [await lim.acquire() for _ in range(4)]
        assert waits[0] == pytest.approx(1 / 1.9)  # one slot drains every 1/1.9 s at (40 - 2)/20 s
        assert clock() == pytest.approx(1000 + 4 / 1.9)  # FakeClock starts at 1000

    async def test_two_cold_replicas_never_overrun_the_shared_bucket(self) -> None:
        clock = FakeClock()
        rate = RateLimitSettings(per_seconds=4.0, headroom=2)
        a = AccountRateLimiter(rate, 20, clock=clock, sleep=clock.sleep)
        b = AccountRateLimiter(rate, 20, clock=clock, sleep=clock.sleep)
        sent: list[float] = []
        for _ in range(10):
            for lim in (a, b):
                await lim.acquire()
                sent.append(clock())
        # server-side leaky bucket of 20 draining 5/s, starting empty: it must never overflow
        level, last = 0.0, 0.0
        for t in sent:
            level = max(0.0, level - (t - last) * 5.0) + 1
            last = t
            assert level <= 20
