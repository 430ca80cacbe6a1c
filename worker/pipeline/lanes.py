"""Concurrency with per-key order: calls of one key run one after another, keys run side by side.

Each submitted call names a lane (its key, or ``None`` for calls with no order to keep). A call
starts after the previous call of its lane has *delivered* (its HTTP exchange is over) and while
fewer than ``limit`` calls are in flight overall. What happens after delivery (publishing the
outcome) runs outside the lane and outside the limit, so slow acknowledgements don't hold up
the next call of the key.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, TypeVar

T = TypeVar("T")


class Abandoned(Exception):
    """Raised by a call's ``deliver`` to drop the call unsent (its records stay uncommitted)."""


class Lanes:
    """Runs ``deliver`` then ``after`` for each submitted call, keeping per-lane order of ``deliver``."""

    def __init__(self, limit: int) -> None:
        self._sem = asyncio.Semaphore(limit)
        self._tails: dict[Hashable, asyncio.Future[None]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self.in_flight = 0
        self._closed = False

    def submit(
        self,
        lane: Hashable | None,
        deliver: Callable[[], Awaitable[T]],
        after: Callable[[T], Awaitable[None]],
    ) -> asyncio.Task[None]:
        loop = asyncio.get_running_loop()
        prev = self._tails.get(lane) if lane is not None else None
        delivered: asyncio.Future[None] = loop.create_future()
        if lane is not None:
            self._tails[lane] = delivered

        async def run() -> None:
            try:
                if prev is not None:
                    await asyncio.shield(prev)
                async with self._sem:
                    if self._closed:
                        return  # abandoned before it started: its records stay uncommitted
                    self.in_flight += 1
                    try:
                        result = await deliver()
                    except Abandoned:
                        return
                    finally:
                        self.in_flight -= 1
            finally:
                if not delivered.done():
                    delivered.set_result(None)
                if lane is not None and self._tails.get(lane) is delivered:
                    del self._tails[lane]
            await after(result)

        task = loop.create_task(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def close(self) -> None:
        """Start no more calls: those already delivering finish, those still waiting are abandoned."""
        self._closed = True

    @property
    def pending(self) -> int:
        """Calls submitted and not finished (waiting, delivering or publishing)."""
        return len(self._tasks)

    async def wait_all(self, timeout: float | None) -> bool:
        """Wait for every submitted call; False when the timeout expired first."""
        if not self._tasks:
            return True
        _, pending = await asyncio.wait(set(self._tasks), timeout=timeout)
        return not pending

    async def cancel_all(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
