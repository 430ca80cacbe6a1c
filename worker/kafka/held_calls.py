"""A destination's calls held while Gorgias refuses its credential (401) or its route (403).

Held is like paused: calls not on the wire yet stay in their open batches (they keep filling, nothing is
committed for them), and a call that got the refusal waits (:class:`CallHolds`, the delivery's
:class:`~worker.gorgias.calls.Holds`) until its credential's gate opens or, for a 403, until its back-off
is over and it tries again. With ``delivery.dead_letter_held_calls`` a hold that outlasts
``delivery.max_retry_time_s`` dead-letters the held calls instead, saying why.

Stopping never waits for a hold: calls held are not on the wire, so :meth:`DestinationHolds.stop`
cancels them at once (abandoned, not committed, sent after the restart, as SIGTERM does with every call
still waiting).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from worker.core.chain.record_chain import RecordChain, Rejected
from worker.core.config.worker_config import Destination
from worker.core.templates.scopes import missing_scopes, needed_scopes
from worker.gorgias.holds import CredentialGate, RouteHold
from worker.kafka.outcome_recorder import OutcomeRecorder

log = logging.getLogger(__name__)


class DestinationHolds:
    """What holds one destination's calls: its credential's gate (401) and its own route hold (403); and the
    OAuth scopes it needs that its app was not granted (``granted``: the app's current grant, None unknown)."""

    def __init__(self, dest: Destination, gate: CredentialGate, poke: Callable[[], None],
                 granted: Callable[[], str | None] = lambda: None) -> None:
        self.dest = dest
        self.gate = gate
        self.route = RouteHold(dest.name)
        self._granted = granted
        self._poke = poke
        self._waiting: set[asyncio.Task[Any]] = set()
        self._stopping = False
        gate.attach(dest.name, poke)

    @property
    def held(self) -> bool:
        return self.gate.held or self.route.held

    def reason(self) -> str | None:
        if self.gate.held:
            return f"Gorgias refuses credential {self.gate.describe()}: {self.gate.reason}"
        if self.route.held:
            if self.route.scope is not None:
                return self.route.reason  # it says so itself (worker.core.templates.scopes.scope_refusal)
            return f"Gorgias refuses the credential's user a route: {self.route.reason}"
        return None

    def held_for(self) -> float:
        return max(self.gate.held_for(), self.route.held_for())

    def scopes_missing(self) -> list[str]:
        """The scopes the destination needs that its OAuth app's grant lacks (none when the grant is unknown)."""
        granted = self._granted()
        if granted is None:
            return []
        return list(missing_scopes(needed_scopes(self.dest.endpoint, self.dest.delivery.coalesce), granted))

    def warn_missing_scopes(self) -> None:
        """At start, once the app's grant is known, and when the destination is activated: one WARNING line
        when the grant lacks scopes it needs (a warning only: the table is our reading of Gorgias' scopes)."""
        missing = self.scopes_missing()
        if not missing:
            return
        credential, endpoint = self.dest.credential, self.dest.endpoint
        what = f"template {endpoint.template}" if endpoint.template else f"{endpoint.method} {endpoint.url}"
        log.warning("destination %s: OAuth app %s (%s) was not granted scope %s, which %s needs by our reading of "
                    "Gorgias' scopes (README, OAuth apps, step 2): Gorgias may refuse its calls (HTTP 403: held, not "
                    "dead-lettered). Authorize the app again with that scope and give the worker the new refresh "
                    "token (step 3)", self.dest.name, credential.client_id, credential.account_key,
                    " ".join(missing), what, extra={"destination": self.dest.name})

    def expired(self) -> str | None:
        """With ``delivery.dead_letter_held_calls``, once a hold has lasted ``max_retry_time_s``: the reason its
        calls are dead-lettered with; else None (they wait)."""
        delivery = self.dest.delivery
        if not delivery.dead_letter_held_calls or not self.held:
            return None
        held_for = self.held_for()
        if held_for < delivery.max_retry_time_s:
            return None
        return (f"held for {held_for:.0f} s, longer than delivery.max_retry_time_s ({delivery.max_retry_time_s:g} s), "
                f"so dead-lettered as delivery.dead_letter_held_calls asks: {self.reason()}")

    async def wait(self, waiting: Awaitable[Any]) -> str | None:
        """Wait for ``waiting`` (the gate opening, a back-off) while held: None, or the reason to give up."""
        task = asyncio.current_task()
        if self._stopping or task is None:
            if asyncio.iscoroutine(waiting):
                waiting.close()
            raise asyncio.CancelledError  # not on the wire: abandoned like every waiting call
        self._waiting.add(task)
        try:
            if not self.dest.delivery.dead_letter_held_calls:
                await waiting
                return None
            left = self.dest.delivery.max_retry_time_s - self.held_for()
            try:  # asyncio.timeout, not wait_for: 3.11's wait_for drops a stop's cancel landing as the gate opens
                async with asyncio.timeout(max(0.0, left)):
                    await waiting
            except TimeoutError:
                return self.expired() or "held longer than delivery.max_retry_time_s"
            return None
        finally:
            self._waiting.discard(task)

    def route_refused(self, reason: str, scope: str | None = None) -> float:
        """Hold the destination for a refused route (``scope``: the OAuth scope Gorgias said is missing); the
        back-off before the refused call tries again."""
        self.route.hold(reason, self.dest.credential, scope)
        return self.route.next_delay()

    def route_works(self) -> None:
        if self.route.held:
            self.route.release()
            self._poke()

    def dead_letter_expired(self, chain: RecordChain, outcomes: OutcomeRecorder) -> None:
        """A hold past the retry budget, with ``delivery.dead_letter_held_calls``: the calls it holds go to the
        dead-letter topic, unsent, with the reason."""
        reason = self.expired()
        if reason is None:
            return
        for pending in list(chain.open.eligible()):
            made = chain.take(pending)
            if isinstance(made, Rejected):
                outcomes.dead_letter_now(made)
            else:
                outcomes.give_up(made, reason, chain.done)

    def stop(self) -> None:
        """Cancel every call waiting out a hold (none of them is on the wire)."""
        self._stopping = True
        for task in list(self._waiting):
            task.cancel()

    def status(self, active: bool, waiting_calls: int) -> dict[str, Any]:
        """The destination's state (``active``, ``paused`` or ``held`` with the reason), its due calls waiting
        for the budget or held, and its credential's state."""
        gate = self.gate
        holding = not active or self.held
        return {
            "state": "paused" if not active else "held" if self.held else "active",
            "calls_waiting_for_budget": 0 if holding else waiting_calls,
            "held_calls": waiting_calls if holding else 0,
            "reason": self.reason(),
            "scopes_missing": self.scopes_missing(),
            "credential": {"account": gate.credential.account_key, "state": "held" if gate.held else "ok",
                           "reason": gate.reason, "held_for_s": round(gate.held_for(), 1)},
        }

    def for_call(self) -> CallHolds:
        return CallHolds(self)


class CallHolds:
    """One call's :class:`~worker.gorgias.calls.Holds`: how it waits out a refusal."""

    __slots__ = ("holds", "refused_route")

    def __init__(self, holds: DestinationHolds) -> None:
        self.holds = holds
        self.refused_route = False

    async def credential_held(self, gate: CredentialGate) -> str | None:
        return await self.holds.wait(gate.wait_open())

    async def route_refused(self, reason: str, *, scope: str | None = None) -> str | None:
        self.refused_route = True
        return await self.holds.wait(asyncio.sleep(self.holds.route_refused(reason, scope)))

    def route_answered(self) -> None:
        if self.refused_route:
            self.refused_route = False
            self.holds.route_works()
