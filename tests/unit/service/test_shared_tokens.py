"""Waiting for another replica's token (StoreTokenShare.changed) ends when the wait is cancelled, even when the
cancellation lands in the very turn of the loop in which the store changes (Python 3.11's asyncio.wait_for
dropped it, and the wait went on until its deadline)."""

from __future__ import annotations

import asyncio

import pytest

from worker.service.shared_tokens import StoreTokenShare


class UnchangedStore:
    """A store whose entry keeps its version (the change notified is not the one waited for)."""

    def version_of(self, key: str) -> int:
        return 1


async def test_a_cancel_landing_as_the_store_changes_ends_the_wait() -> None:
    share = StoreTokenShare(UnchangedStore(), box=None)  # type: ignore[arg-type]
    waiting = asyncio.create_task(share.changed("app", 1, timeout=600))
    await asyncio.sleep(0)  # waiting for the entry to change
    share.notify("app")
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(waiting, 10)
