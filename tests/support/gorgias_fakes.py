"""Test doubles shared by the Gorgias delivery tests: a fake clock, requests, credentials, senders."""

from __future__ import annotations

import asyncio
import heapq
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import orjson

from worker.core.config.account import AuthType, Credential, RateLimitSettings
from worker.core.config.delivery import DeliverySettings
from worker.core.requests.request import RenderedRequest
from worker.gorgias.client import HttpResult
from worker.gorgias.errors import TransportError

SECRET = "s3cr3t-api-key-do-not-log"
TOKEN = "oauth-access-token-do-not-log"


def request(
    url: str = "https://acme.gorgias.com/api/tickets",
    *,
    method: str = "POST",
    body: bytes | None = b'{"subject": "hi"}',
    headers: dict[str, str] | None = None,
    content_type: str | None = "application/json",
) -> RenderedRequest:
    return RenderedRequest(
        method=method, url=url, headers=headers or {}, body=body, content_type=content_type
    )


def credential(
    *,
    domain: str = "acme",
    auth: AuthType = AuthType.BASIC,
    base_url: str | None = None,
    requests: int | None = None,
    per_seconds: float = 20.0,
    headroom: int = 0,
    enabled: bool = True,
    username: str = "agent@acme.com",
) -> Credential:
    rate = RateLimitSettings(
        enabled=enabled, requests=requests, per_seconds=per_seconds, headroom=headroom, assume_full_at_start=False
    )
    if auth is AuthType.BASIC:
        return Credential(
            domain=domain,
            username=username,
            api_key_env="GORGIAS_TEST_KEY",
            base_url=base_url,
            rate_limit=rate,
        )
    return Credential(
        domain=domain,
        auth=AuthType.OAUTH,
        access_token_env="GORGIAS_TEST_TOKEN",
        base_url=base_url,
        rate_limit=rate,
    )


def settings(**overrides: Any) -> DeliverySettings:
    values: dict[str, Any] = {
        "connect_timeout_s": 1.0,
        "timeout_s": 2.0,
        "max_attempts": 5,
        "max_retry_time_s": 300.0,
        "backoff_initial_s": 0.5,
        "backoff_max_s": 30.0,
    }
    values.update(overrides)
    return DeliverySettings(**values)


def result(
    status: int,
    body: Any = None,
    *,
    headers: dict[str, str] | None = None,
    raw: bytes | None = None,
    elapsed_s: float = 0.01,
) -> HttpResult:
    all_headers = {k.lower(): v for k, v in (headers or {}).items()}
    if raw is None:
        raw = b"" if body is None else orjson.dumps(body)
        if body is not None:
            all_headers.setdefault("content-type", "application/json")
    return HttpResult(status=status, headers=all_headers, body_bytes=raw, elapsed_s=elapsed_s)


class FakeClock:
    """Time that only moves when someone sleeps: ``sleep`` advances the clock at once (one caller)."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += max(0.0, seconds)
        await asyncio.sleep(0)


class FakeTime:
    """A virtual clock for several concurrent tasks: sleepers wake in time order, time jumps between.

    ``run(*coros)`` drives them: it lets every runnable task run, then advances the clock to the
    earliest pending sleep and wakes it, until all coroutines are done.
    """

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self._timers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = 0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._timers, (self.now + max(0.0, seconds), self._seq, future))
        self._seq += 1
        await future

    async def run(self, *coros: Coroutine[Any, Any, Any], settle: int = 20) -> list[Any]:
        tasks = [asyncio.ensure_future(c) for c in coros]
        while True:
            for _ in range(settle):
                await asyncio.sleep(0)
            if all(t.done() for t in tasks):
                return [t.result() for t in tasks]
            while self._timers and self._timers[0][2].cancelled():
                heapq.heappop(self._timers)
            if not self._timers:
                for t in tasks:
                    t.cancel()
                raise AssertionError("deadlock: tasks wait but nobody sleeps")
            when, _, future = heapq.heappop(self._timers)
            self.now = max(self.now, when)
            future.set_result(None)


@dataclass
class ScriptedSender:
    """A Sender that answers from a script, one step per attempt; the last step repeats for ever."""

    script: list[HttpResult | TransportError]
    sent: list[Any] = field(default_factory=list)
    sent_at: list[float] = field(default_factory=list)
    clock: Callable[[], float] | None = None
    closed: bool = False

    async def send(self, req: Any) -> HttpResult:
        self.sent.append(req)
        if self.clock is not None:
            self.sent_at.append(self.clock())
        if not self.script:
            raise AssertionError("more attempts than scripted")
        step = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        if isinstance(step, TransportError):
            raise step
        return step

    async def aclose(self) -> None:
        self.closed = True


class CountingTokens:
    """Records which attempt numbers asked for a token (1 = the call's first token, granted up front)."""

    def __init__(self) -> None:
        self.asked: list[int] = []

    async def token(self, attempt: int) -> float:
        self.asked.append(attempt)
        return 0.0


class ServerBucket:
    """Gorgias's side: capacity slots, draining continuously; a request over capacity would be a 429."""

    def __init__(self, capacity: int, per_seconds: float) -> None:
        self.capacity = capacity
        self.rate = capacity / per_seconds
        self.level = 0.0
        self.at: float | None = None
        self.peak = 0.0

    def hit(self, now: float) -> bool:
        if self.at is not None:
            self.level = max(0.0, self.level - (now - self.at) * self.rate)
        self.at = now
        if self.level + 1 > self.capacity + 1e-6:
            return False
        self.level += 1
        self.peak = max(self.peak, self.level)
        return True
