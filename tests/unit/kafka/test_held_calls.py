"""Stopping while calls are held: a stop's cancellation is never lost, even when it lands in the very turn of
the loop in which the hold ends (Python 3.11's asyncio.wait_for dropped it; the call then went on to Gorgias
after the stop)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest

from worker.kafka.held_calls import DestinationHolds


class HeldGate:
    """A credential gate that is closed: only what DestinationHolds asks of it."""

    held = True

    def attach(self, name: str, poke: object) -> None:
        return None

    def held_for(self) -> float:
        return 1.0


@pytest.mark.parametrize("dead_letter_held_calls", [True, False])
async def test_a_stop_landing_as_the_hold_ends_cancels_the_call(dead_letter_held_calls: bool) -> None:
    dest = SimpleNamespace(name="dest", delivery=SimpleNamespace(dead_letter_held_calls=dead_letter_held_calls,
                                                                 max_retry_time_s=600.0))
    holds = DestinationHolds(dest, HeldGate(), lambda: None)  # type: ignore[arg-type]
    opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    call = asyncio.create_task(holds.wait(opened))
    await asyncio.sleep(0)  # the call waits for its credential's gate
    opened.set_result(None)  # the key works again...
    call.cancel()  # ...in the same turn as the worker stops
    with pytest.raises(asyncio.CancelledError):
        await call
