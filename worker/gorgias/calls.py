"""What a caller of a Gorgias call plugs in: where the budget tokens come from, and the duplicate check
asked when an attempt's outcome is unknown. The outcome itself is :mod:`worker.core.outcomes.call_outcome`.

Apart from :mod:`worker.gorgias.delivery`, which makes the calls, so that the plan runner
(:mod:`worker.gorgias.plan_runner`) and the duplicate checks speak of calls without importing it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal, Protocol

from worker.core.config.account import Credential
from worker.core.requests.request import RenderedRequest
from worker.gorgias.client import HttpResult
from worker.gorgias.errors import TransportError
from worker.gorgias.holds import CredentialGate

__all__ = ["AttemptTokens", "Holds", "HookDecision", "UnknownOutcomeAttempt", "UnknownOutcomeHook"]


@dataclass(frozen=True, slots=True)
class UnknownOutcomeAttempt:
    """An attempt whose outcome is unknown (the request may have reached Gorgias): the hook's input."""

    request: RenderedRequest
    credential: Credential
    attempt: int
    error: TransportError
    holds: Holds | None = None
    """The call's holds: the duplicate check's own requests wait out a refused credential like the call."""


@dataclass(frozen=True, slots=True)
class HookDecision:
    """The hook's answer: ``done`` (the request did take effect; ``result`` stands for its response)
    or ``retry`` (send it again): ``absent`` when the check showed it did not take effect, plain
    ``retry`` when that cannot be known (the outcome stays unknown if no later attempt succeeds)."""

    action: Literal["done", "retry"]
    result: HttpResult | None = None
    checked: bool = False

    @classmethod
    def done(cls, result: HttpResult) -> HookDecision:
        return cls("done", result, checked=True)

    @classmethod
    def absent(cls) -> HookDecision:
        return cls("retry", checked=True)

    @classmethod
    def retry(cls) -> HookDecision:
        return cls("retry")


UnknownOutcomeHook = Callable[[UnknownOutcomeAttempt], Awaitable[HookDecision]]


class AttemptTokens(Protocol):
    """Where a call's attempts get their budget tokens (default: straight from the account's limiter)."""

    async def token(self, attempt: int) -> float:
        """Wait for the token of attempt ``attempt`` (1 = the first) and return the seconds waited."""
        ...




class Holds(Protocol):
    """How a caller that can hold its calls (a destination pipeline) lets one wait out Gorgias refusing its
    credential (401) or its route (403) instead of failing. Without one, a refusal fails the call like any 4xx."""

    async def credential_held(self, gate: CredentialGate) -> str | None:
        """Wait until ``gate`` opens again: None, or why to give up (the call then fails with that reason)."""
        ...

    async def route_refused(self, reason: str, *, scope: str | None = None) -> str | None:
        """Hold the call's destination for ``reason`` (``scope``: the OAuth scope Gorgias said is missing, when
        it did) and wait until the call may try again (None), or why to give up."""
        ...

    def route_answered(self) -> None:
        """The call got an answer other than 401/403: a hold of its destination for a refused route ends."""
        ...
