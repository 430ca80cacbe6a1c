"""Client-side leaky bucket per Gorgias account, kept in step with the server's own bucket.

Gorgias limits each account with a leaky bucket (40 requests per 20 s with an API key, 80 with OAuth)
and reports its level on every response as ``X-Gorgias-Account-Api-Call-Limit: used/limit``. Every
attempt, retries included, takes a slot here first, so a worker that is the account's only client never
triggers a 429; when other replicas or integrations share the account, :meth:`AccountRateLimiter.observe`
adopts the server's higher level and :meth:`AccountRateLimiter.refused` makes everyone wait after a 429
(until the header's level has drained, ``Retry-After`` at least).

Several replicas of the worker on one account each pace at their *share* of the account's budget (see
:mod:`worker.gorgias.share`): :meth:`AccountRateLimiter.set_share` scales the bucket's usable size and
drain rate, so the replicas together never pass ``capacity - headroom``.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable

from worker.core.config.account import Credential, RateLimitSettings

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]

CALL_LIMIT_HEADER = "x-gorgias-account-api-call-limit"
_CALL_LIMIT = re.compile(r"^\s*(\d{1,9})\s*/\s*(\d{1,9})\s*$")
_EPSILON = 1e-9


def parse_call_limit(header_value: str | None) -> tuple[int, int] | None:
    """``"10/40"`` → ``(10, 40)``; None for a missing or malformed value or a zero limit."""
    if not header_value:
        return None
    match = _CALL_LIMIT.match(header_value)
    if match is None:
        return None
    used, limit = int(match.group(1)), int(match.group(2))
    if limit <= 0:
        return None
    return used, limit


class AccountRateLimiter:
    """A leaky bucket of ``capacity`` slots draining at ``capacity / per_seconds`` slots per second.

    ``headroom`` slots are left free as margin for other clients of the account. ``acquire`` waits
    (first come, first served) until a slot is free and takes it. Time comes from the injected ``clock``
    and waiting goes through the injected ``sleep``, so tests run on a fake clock.
    """

    def __init__(
        self,
        settings: RateLimitSettings,
        capacity: int,
        *,
        name: str = "",
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, not {capacity}")
        self.name = name
        self._enabled = settings.enabled
        self._per_seconds = settings.per_seconds
        self._headroom = settings.headroom
        self._clock = clock
        self._sleep = sleep
        self._capacity = capacity
        self._share = 1.0
        # A cold start assumes the bucket is full (minus headroom): several replicas starting at once
        # send at the drain rate until the call-limit header tells them the real level.
        self._level = float(self.usable) if settings.assume_full_at_start else 0.0
        self._updated_at = clock()
        self._not_before = float("-inf")
        self._lock = asyncio.Lock()

    @classmethod
    def for_credential(
        cls, credential: Credential, *, clock: Clock = time.monotonic, sleep: Sleep = asyncio.sleep
    ) -> AccountRateLimiter:
        return cls(
            credential.rate_limit,
            credential.bucket_size(),
            name=credential.account_key,
            clock=clock,
            sleep=sleep,
        )

    @property
    def enabled(self) -> bool:
        return self._enabled

    @property
    def capacity(self) -> int:
        return self._capacity

    @property
    def share(self) -> float:
        """This worker's share of the account's budget (1.0 when it is the account's only replica)."""
        return self._share

    @property
    def account_usable(self) -> int:
        """Slots all replicas together may fill: capacity minus headroom, at least one."""
        return max(1, self._capacity - self._headroom)

    @property
    def usable(self) -> float:
        """Slots this worker fills before waiting: its share of :attr:`account_usable`, at least one."""
        return max(1.0, self.account_usable * self._share)

    @property
    def drain_per_s(self) -> float:
        """The rate at which this worker's part of the bucket drains: its share of the account's rate.

        The headroom is kept free in rate as well as in slots (``capacity - headroom`` calls per
        ``per_seconds``), so another integration can call steadily, not only in one burst.
        """
        return self.account_usable / self._per_seconds * self._share

    def set_share(self, share: float) -> None:
        """Pace at ``share`` (0 < share ≤ 1) of the account's budget from now on.

        The replicas' levels together must never count less than the account's real level. A larger
        share comes from partitions another replica owned a moment ago, whose calls may still fill the
        account's bucket: the new part of this bucket starts full and drains (so a scale-down never
        bursts). A smaller share scales the level down in proportion: the part given up is at most what
        the replicas gaining it assume full.
        """
        if not 0 < share <= 1:
            raise ValueError(f"share must be in (0, 1], not {share}")
        now = self._clock()
        self._settle(now)
        before = self.usable
        if share < self._share:
            self._level *= share / self._share
        self._share = share
        self._level += max(0.0, self.usable - before)

    @property
    def level(self) -> float:
        """Current estimate of the account's bucket level (slots in use)."""
        return self._drained(self._clock())

    @property
    def blocked_until(self) -> float | None:
        """Clock time before which nobody acquires (after a 429), or None."""
        return self._not_before if self._not_before > self._clock() else None

    def __repr__(self) -> str:
        return (
            f"AccountRateLimiter(name={self.name!r}, enabled={self._enabled}, level={self.level:.2f}, "
            f"capacity={self._capacity}, usable={self.usable})"
        )

    def _drained(self, now: float) -> float:
        elapsed = max(0.0, now - self._updated_at)
        return max(0.0, self._level - elapsed * self.drain_per_s)

    def _settle(self, now: float) -> None:
        self._level = self._drained(now)
        self._updated_at = max(now, self._updated_at)

    async def acquire(self) -> float:
        """Wait for a free slot, take it, and return the seconds waited (0.0 when disabled)."""
        if not self._enabled:
            return 0.0
        started = self._clock()
        async with self._lock:
            while True:
                wait = self.wait_s()  # how much may be spent: one formula for acquire and the dispatcher
                if wait <= 0.0:
                    self.take()
                    return max(0.0, self._clock() - started)
                await self._sleep(wait)

    # -- the token-granting side: the account's dispatcher decides who, these say when ------------

    def wait_s(self) -> float:
        """Seconds until a slot is free (0.0 when one is free now or the limiter is disabled)."""
        if not self._enabled:
            return 0.0
        now = self._clock()
        self._settle(now)
        wait = max(self._not_before - now, (self._level + 1 - self.usable) / self.drain_per_s)
        return wait if wait > _EPSILON else 0.0

    def take(self) -> None:
        """Take a slot now (after :meth:`wait_s` said 0)."""
        if self._enabled:
            self._settle(self._clock())
            self._level += 1

    def refused(self, header_value: str | None, retry_after_s: float | None) -> float:
        """After a 429: how long until the account has room again, and nobody takes a slot before then.

        The wait comes from the response's call-limit header (its level, drained at the account's rate,
        until one slot is free); ``Retry-After`` is a floor under it. Without a usable header the bucket
        counts as full.
        """
        now = self._clock()
        self._settle(now)
        parsed = parse_call_limit(header_value)
        if parsed is not None:
            used, limit = parsed
            self._capacity = limit
            # the account's level drains at the account's rate; our part of it (our share of the level,
            # as in :meth:`observe`) at ours
            account_wait = (used + 1 - limit) / (limit / self._per_seconds)
            self._level = max(self._level, used * self._share)
        else:
            account_wait = 1 / (self._capacity / self._per_seconds)
            self._level = max(self._level, self.usable)
        wait = max(0.0, account_wait, retry_after_s or 0.0)
        self._not_before = max(self._not_before, now + wait)
        return max(0.0, self._not_before - now)

    def observe(self, used: int, limit: int) -> None:
        """Sync with the server's ``used/limit``: adopt its limit, and its level when above ours.

        The header counts every client of the account: the other replicas and other integrations.
        This worker adopts its share of the whole level, so the replicas together keep the headroom free
        *above* what everyone else uses: another integration that calls more than the headroom slows
        every replica down in proportion instead of being refused. (Taking the level minus the headroom
        instead, as one release did, let the replicas fill the headroom themselves whenever another
        client used it: the other client, then the replicas, drew 429s.)
        """
        if limit <= 0 or used < 0:
            return
        now = self._clock()
        self._settle(now)
        self._capacity = limit
        mine = used * self._share
        if mine > self._level:
            self._level = mine

    def observe_header(self, header_value: str | None) -> bool:
        """:meth:`observe` from a raw header value; False when it is missing or malformed."""
        parsed = parse_call_limit(header_value)
        if parsed is None:
            return False
        self.observe(*parsed)
        return True



class RateLimiterRegistry:
    """One :class:`AccountRateLimiter` per ``credential.account_key``, shared by its destinations.

    The first credential seen for an account sets the limiter's settings; the server's call-limit header
    corrects the capacity afterwards.
    """

    def __init__(self, *, clock: Clock = time.monotonic, sleep: Sleep = asyncio.sleep) -> None:
        self._clock = clock
        self._sleep = sleep
        self._limiters: dict[str, AccountRateLimiter] = {}

    def get(self, credential: Credential) -> AccountRateLimiter:
        limiter = self._limiters.get(credential.account_key)
        if limiter is None:
            limiter = AccountRateLimiter.for_credential(credential, clock=self._clock, sleep=self._sleep)
            self._limiters[credential.account_key] = limiter
        return limiter

    def __len__(self) -> int:
        return len(self._limiters)

    def __contains__(self, account_key: object) -> bool:
        return account_key in self._limiters
