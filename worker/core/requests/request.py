"""What a call sends: one :class:`RenderedRequest`, or a :class:`Plan` of several (pure data and
decisions, no I/O).

Some templates cannot say everything in one request: a custom-field write must read the values a
ticket already has (Gorgias' bulk PUT deletes the ones it is not given), an upsert must look the
customer up before it knows whether to update or create, a tag write must make sure its tags exist.
Such a template attaches a :class:`Plan` to its :class:`RenderedRequest`. The
delivery layer (``worker.gorgias.plan_runner``) asks the plan for its next :class:`Step`, sends it with the
same rate limiter and retry rules as any request, hands the answer back, and so on until the plan says
it is done. The last step's answer is the call's answer; every step is recorded in the response event.

A plan decides from answers only, so it is tested without a network: feed it :class:`StepResult`
values and look at the next step.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

__all__ = ["MAX_STEPS", "Plan", "PlanError", "RenderedRequest", "Step", "StepRecord", "StepResult"]

MAX_STEPS: Final = 64
"""A plan that has not finished after this many steps fails (a bug in a plan must not loop forever)."""


@dataclass(frozen=True, slots=True)
class RenderedRequest:
    """One HTTP request for the client, which adds Authorization, User-Agent and (with base_url) Host."""

    method: str
    url: str
    headers: dict[str, str]
    body: bytes | None
    content_type: str | None
    plan: Plan | None = None  # more than one request executed by worker.gorgias.plan_runner
    notes: tuple[str, ...] = ()  # what a reader of ``preview`` should know, e.g. who it would email


class PlanError(Exception):
    """The plan cannot go on (an answer it cannot use); the call fails with this reason, not retried."""


@dataclass(frozen=True, slots=True)
class Step:
    """One request of a plan.

    ``accept``: statuses other than 2xx that still count as done (a tag that already exists).
    ``known_as``: a name the account is known to have once this step is done; the executor skips the
    step when it has seen that name on this account before (``tag:vip``), and remembers it after.
    ``final``: this request's answer is the call's answer (a create's duplicate check applies to it).
    ``forget``: what was known about ``known_as`` is stale: the executor drops it and sends the step.
    """

    request: RenderedRequest
    purpose: str
    accept: frozenset[int] = frozenset()
    known_as: str | None = None
    final: bool = False
    forget: bool = False


@dataclass(frozen=True, slots=True)
class StepResult:
    """What a step got: its HTTP status and parsed body (``skipped``: not sent, the name was known)."""

    step: Step
    status: int | None
    body: Any
    skipped: bool = False


@dataclass(frozen=True, slots=True)
class StepRecord:
    """One step as the response event shows it (never a body: those can be large or personal)."""

    method: str
    url: str
    purpose: str
    status: int | None
    attempts: int
    skipped: bool = False
    error: str | None = None

    def as_event(self) -> dict[str, Any]:
        return {"method": self.method, "url": self.url, "purpose": self.purpose, "status": self.status,
                "attempts": self.attempts, "skipped": self.skipped, "error": self.error}


@dataclass(frozen=True)
class Plan(ABC):
    """Decides a call's requests one at a time from the answers so far."""

    @abstractmethod
    def next_step(self, done: Sequence[StepResult]) -> Step | None:
        """The next request given the results so far; None when the call is complete.

        Raises :class:`PlanError` when an answer makes going on impossible."""

    @abstractmethod
    def describe(self) -> list[str]:
        """The requests this plan may send, one line each, for ``preview``."""
