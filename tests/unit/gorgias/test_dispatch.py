"""The account's dispatcher: tokens go to retries first (a refused call keeps its place at the front), then to
the waiting calls the scheduler picks; a paused destination's calls are held."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator

import pytest

from worker.core.config.account import RateLimitSettings
from worker.core.grouping.call_scheduler import Candidate, Fairness, SchedulerPolicy
from worker.core.grouping.open_batches import OpenBatches, QueuedCall
from worker.gorgias.dispatch import AccountDispatcher, CallTokens
from worker.gorgias.ratelimit import AccountRateLimiter


class FakeDestination:
    def __init__(self, name: str) -> None:
        self.name = name
        self.open: OpenBatches[str] = OpenBatches(None, ordered=True)
        self.started: list[str] = []
        self.active = True
        self.log: list[str] | None = None

    def candidates(self) -> Iterator[Candidate]:
        return self.open.eligible() if self.active else iter(())

    def waiting_records(self) -> int:
        return self.open.waiting_records

    def waiting_calls(self) -> int:
        return self.open.waiting_calls

    def start_call(self, call: Candidate, waited_s: float) -> None:
        assert isinstance(call, QueuedCall)
        taken = self.open.take(call)
        self.open.done(taken)
        assert self.log is not None
        self.log.append(taken.items[0])


async def until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    async def poll() -> None:
        while not condition():
            await asyncio.sleep(0.01)

    await asyncio.wait_for(poll(), timeout)


def limiter(per_token_s: float) -> AccountRateLimiter:
    settings = RateLimitSettings(requests=1, per_seconds=per_token_s, headroom=0, assume_full_at_start=False)
    return AccountRateLimiter(settings, 1, name="acme/basic")


async def test_a_retry_takes_the_next_token_before_every_waiting_call() -> None:
    log: list[str] = []
    dest = FakeDestination("d")
    dest.log = log
    for name in ("a", "b", "c"):
        dest.open.add_single(name, None, 1, 0.0)
    # a token a second: the retry below is asked for well before the next token, however loaded the machine
    dispatcher = AccountDispatcher("acme/basic", limiter(1.0), SchedulerPolicy())
    dispatcher.register(dest)
    try:
        await until(lambda: log == ["a"])  # "a" takes the free token; the next one is 1 s away

        async def retry() -> None:
            await dispatcher.retry_token()
            log.append("retry of a")

        task = asyncio.ensure_future(retry())
        await asyncio.wait_for(task, 30)
        await until(lambda: len(log) == 4, timeout=30)
        assert log == ["a", "retry of a", "b", "c"]
    finally:
        await dispatcher.unregister(dest)


async def test_calls_of_a_paused_destination_are_held_and_go_when_it_resumes() -> None:
    log: list[str] = []
    paused, running = FakeDestination("paused"), FakeDestination("running")
    paused.log = running.log = log
    paused.active = False
    paused.open.add_single("p1", None, 1, 0.0)
    running.open.add_single("r1", None, 1, 0.0)
    dispatcher = AccountDispatcher("acme/basic", limiter(0.01), SchedulerPolicy())
    dispatcher.register(paused)
    dispatcher.register(running)
    try:
        await asyncio.sleep(0.1)
        assert log == ["r1"] and paused.waiting_calls() == 1
        paused.active = True
        dispatcher.poke()
        await until(lambda: len(log) == 2)
        assert log == ["r1", "p1"]
    finally:
        await dispatcher.unregister(paused)
        await dispatcher.unregister(running)


class TwoRequestDestination(FakeDestination):
    """Every call makes two requests (a tag created, then the write): its second token is asked for while it
    runs, as a plan's next step does (CallTokens)."""

    def __init__(self, name: str, dispatcher: AccountDispatcher) -> None:
        super().__init__(name)
        self.dispatcher = dispatcher
        self.running: set[asyncio.Task[None]] = set()

    def start_call(self, call: Candidate, waited_s: float) -> None:
        super().start_call(call, waited_s)
        tokens = CallTokens(self.dispatcher, waited_s, asyncio.Event(), self)
        tokens.active.set()
        task = asyncio.ensure_future(tokens.token(2))
        self.running.add(task)
        task.add_done_callback(lambda _: self.log.append(f"{self.name}: second request") if self.log else None)


async def test_every_request_of_a_call_counts_against_its_destinations_share() -> None:
    """Equal shares between a destination whose calls make two requests and one whose calls make one: the first
    starts half as many calls, and both take the same number of tokens."""
    log: list[str] = []
    dispatcher = AccountDispatcher("acme/basic", limiter(0.01), SchedulerPolicy(fairness=Fairness.EQUAL))
    double, single = TwoRequestDestination("double", dispatcher), FakeDestination("single")
    double.log = single.log = log
    for i in range(40):
        double.open.add_single(f"d{i}", None, 1, 0.0)
        single.open.add_single(f"s{i}", None, 1, 0.0)
    dispatcher.register(double)
    dispatcher.register(single)
    try:
        await until(lambda: len(log) >= 60, timeout=10)
        tokens = log[:60]
    finally:
        await dispatcher.unregister(double)
        await dispatcher.unregister(single)
        for task in double.running:
            task.cancel()
    started_double = sum(1 for x in tokens if x[0] == "d" and x[1:].isdigit())
    started_single = sum(1 for x in tokens if x[0] == "s" and x[1:].isdigit())
    second = sum(1 for x in tokens if x.endswith("second request"))
    assert started_double + second == pytest.approx(started_single, abs=2)  # tokens: equal shares
    assert started_single == pytest.approx(2 * started_double, abs=3)


class Gathering:
    """A job group gathering tickets until ``held_until`` (wall-clock, the dispatcher's clock)."""

    records = 5
    tokens = 1.0

    def __init__(self, held_until: float) -> None:
        self.ready_at = time.time()
        self.held_until = held_until


class GatheringDestination:
    def __init__(self, group: Gathering) -> None:
        self.group: Gathering | None = group
        self.started_at: float | None = None

    def candidates(self) -> Iterator[Candidate]:
        return iter([self.group] if self.group is not None else [])

    def waiting_records(self) -> int:
        return 5 if self.group is not None else 0

    def waiting_calls(self) -> int:
        return 1 if self.group is not None else 0

    def start_call(self, call: Candidate, waited_s: float) -> None:
        self.group, self.started_at = None, time.time()


def full_bucket() -> AccountRateLimiter:
    """10 slots draining at 5 a second, starting full: the first token is 0.2 s away (calls wait for it), and
    the bucket is empty (a token not spent would be lost) only after ~1.8 s more."""
    settings = RateLimitSettings(requests=10, per_seconds=2.0, headroom=0, assume_full_at_start=True)
    return AccountRateLimiter(settings, 10, name="acme/basic")


async def test_a_gathering_group_takes_its_token_once_offered_without_a_poke() -> None:
    started = time.time()
    dest = GatheringDestination(Gathering(held_until=started + 0.6))
    dispatcher = AccountDispatcher("acme/basic", full_bucket(), SchedulerPolicy())
    dispatcher.register(dest)
    try:
        await until(lambda: dest.started_at is not None, timeout=10)
    finally:
        await dispatcher.unregister(dest)
    assert dest.started_at is not None and dest.started_at >= started + 0.6


async def test_a_gathering_group_goes_early_rather_than_let_the_bucket_empty() -> None:
    started = time.time()
    dest = GatheringDestination(Gathering(held_until=started + 600))
    dispatcher = AccountDispatcher("acme/basic", full_bucket(), SchedulerPolicy())
    dispatcher.register(dest)
    try:
        await until(lambda: dest.started_at is not None, timeout=20)
    finally:
        await dispatcher.unregister(dest)
    assert dest.started_at is not None and dest.started_at >= started + 1.5  # not before the bucket had drained
