"""Stopping while calls are held: a stop's cancellation is never lost, even when it lands in the very turn of
the loop in which the hold ends (Python 3.11's asyncio.wait_for dropped it; the call then went on to Gorgias
after the stop)."""

from __future__ import annotations

import asyncio
import logging
from types import SimpleNamespace

import pytest

from worker.core.config.delivery import Coalesce
from worker.core.config.endpoint import EndpointSettings
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


class OpenGate(HeldGate):
    held = False
    reason = None
    credential = SimpleNamespace(account_key="acme/app")

    def held_for(self) -> float:
        return 0.0


def test_the_scopes_an_app_was_not_granted_are_in_the_status_and_warned_of(caplog: pytest.LogCaptureFixture) -> None:
    dest = SimpleNamespace(name="tickets", endpoint=EndpointSettings(template="create_ticket"),
                           credential=SimpleNamespace(client_id="app-1", account_key="acme/app"),
                           delivery=SimpleNamespace(coalesce=Coalesce.NONE))
    grant: list[str | None] = [None]
    holds = DestinationHolds(dest, OpenGate(), lambda: None, lambda: grant[0])  # type: ignore[arg-type]
    holds.warn_missing_scopes()
    assert holds.status(True, 0)["scopes_missing"] == [] and caplog.records == []  # the grant is not known yet
    grant[0] = "openid offline account:read tickets:read tags:read tags:write"
    holds.warn_missing_scopes()
    assert holds.status(True, 0)["scopes_missing"] == ["tickets:write"]
    [warning] = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert "not granted scope tickets:write" in warning.getMessage() and "app-1" in warning.getMessage()
    grant[0] = "openid offline write:all"
    assert holds.status(True, 0)["scopes_missing"] == []
