"""Duplicate-safe creates: Gorgias has no idempotency key, so creates carry an ``external_id`` to look up.

A create whose connection drops after the request was written (``apply_then_drop``, a timeout) may
or may not have been applied; sending it again could make a second ticket, customer or message.
So the create templates stamp a deterministic ``external_id`` on what they create (the record's own
``external_id`` when it has one, ``template_options.external_id.from``, or
``nx-<sha256(destination|topic|partition|offset)[:24]>`` of the record's *original* coordinates: a
replayed record carries them in its ``gorgias-replay-of`` header, so a replay stamps the same id as
the first delivery) and :class:`Deduper` looks it up:

* **before retrying an attempt whose outcome is unknown** (the delivery service's
  ``unknown_outcome_hook``): found → the call is done, its response is the existing object (status
  201, header ``x-gorgias-worker-dedupe``); not found → the create is sent again. When the unanswered
  attempt timed out (Gorgias may still be applying it), a lookup that finds nothing looks once more
  after :data:`RECHECK_AFTER_S` before concluding the object is absent;
* **before the first attempt** (:meth:`Deduper.before_first_attempt`): always for a replayed record
  (``gorgias-replay-of`` header), whatever the policy says; otherwise per
  ``template_options.dedupe.lookup_before_create``: ``replayed`` (default) for calls carrying a record
  the pipeline flagged as possibly delivered before a restart (``record.extra["possibly_delivered"]``),
  ``always`` for every call, ``never``.

Lookups, one per resource, on routes real Gorgias serves:

* tickets ``GET /api/tickets?external_id=…``, then, when absent, the same with ``trashed=true``
  (trashed tickets count; sources disagree on whether ``trashed=true`` adds the trashed tickets or
  lists only them, so both are asked), then ``GET /api/tickets/{id}`` for the full ticket; if that
  last read fails, the listing's ticket is the answer (the object exists: that is proof enough);
* customers ``GET /api/customers?external_id=…``;
* messages ``GET /api/messages?ticket_id=…&order_by=created_datetime:desc&limit=100``, newest first,
  following ``meta.next_cursor`` through every page until the ``external_id`` is found;
* tags ``GET /api/tags?search=<name>&limit=100`` (a case-insensitive substring search: the exact name
  is matched here), every page;
* satisfaction surveys ``GET /api/satisfaction-surveys?ticket_id=…`` (one per ticket).

Each lookup is an ordinary call through the delivery service, with the destination's own retry budget
(``delivery.max_attempts``, ``max_retry_time_s``) and rate limiter. If a lookup fails for good, the
call is not sent (before a first attempt) or not sent again (after an unknown outcome): it ends as
``unknown`` or ``failed`` with the reason, dead-lettered, rather than risking a duplicate.

Cost: nothing while calls succeed. One lookup (two for a found ticket, more for long message lists or
tag searches matching many names) per unknown outcome and per replayed create. ``lookup_before_create:
always`` adds one rate-limited GET to every create: against the API-key budget (40 calls / 20 s, 2 per
second sustained) creates drop from ~2 to ~1 per second, so it is meant for replays, not steady traffic.

Limits: whether a list shows a create made a moment ago is undocumented; the second look after a
timeout covers a create still being applied for a few seconds, not longer. ``external_id`` is taken
as the identity of the object: two records bringing the same ``external_id`` make one object.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Final
from urllib.parse import urlencode, urlsplit

import orjson

from worker.core.config.delivery import DeliverySettings
from worker.core.config.worker_config import Destination
from worker.core.outcomes.call_outcome import AttemptRecord, CallOutcome, counted_attempts
from worker.core.records.record import POSSIBLY_DELIVERED
from worker.core.requests.rendering import Prepared
from worker.core.requests.request import RenderedRequest
from worker.core.templates import configured_for
from worker.core.templates.model import ConfiguredTemplate
from worker.gorgias.calls import Holds, HookDecision, UnknownOutcomeAttempt
from worker.gorgias.client import HttpResult
from worker.gorgias.delivery import DeliveryService

__all__ = ["DEDUPE_HEADER", "POSSIBLY_DELIVERED", "RECHECK_AFTER_S", "Deduper", "LookupFailed", "hook_for"]

log = logging.getLogger(__name__)

DEDUPE_HEADER: Final = "x-gorgias-worker-dedupe"
PAGE_LIMIT: Final = 100
MAX_PAGES: Final = 1000
"""A safety stop for listings whose cursor never ends (100,000 messages or tags)."""
RECHECK_AFTER_S: Final = 2.0
"""After a timed-out create, how long to wait before looking a second time when the first look found nothing."""


class LookupFailed(Exception):
    """The duplicate check could not be made (its GET failed)."""


def _body(request: RenderedRequest) -> Any:
    if not request.body:
        return None
    try:
        return orjson.loads(request.body)
    except orjson.JSONDecodeError:
        return None


@dataclass(slots=True)
class _Trace:
    """The lookup calls made for one decision (their attempts and rate-limit waits)."""

    attempts: list[AttemptRecord] = field(default_factory=list)
    waited: float = 0.0
    requests: int = 0  # lookup requests made: each one's attempts are marked as a step of their own
    holds: Holds | None = None  # the call's: a lookup waits out a refused credential like the call itself


def _get(url: str) -> RenderedRequest:
    return RenderedRequest("GET", url, {"Accept": "application/json"}, None, None)


class Deduper:
    """The duplicate check of one create destination: an ``unknown_outcome_hook`` and a pre-check."""

    def __init__(
        self,
        dest: Destination,
        delivery: DeliveryService,
        configured: ConfiguredTemplate,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.dest = dest
        self.delivery = delivery
        self.configured = configured
        self.resource = configured.template.creates or ""
        self.settings: DeliverySettings = dest.delivery  # lookups get the same retry budget as calls
        self.policy = configured.dedupe.lookup_before_create
        self.on_unknown_outcome = configured.dedupe.on_unknown_outcome
        self.sleep = sleep
        self.recheck_after_s = RECHECK_AFTER_S
        self.lookups = 0  # GETs made, for metrics and tests

    # ---------------------------------------------------------------------------------------------
    # the two entry points

    async def __call__(self, attempt: UnknownOutcomeAttempt) -> HookDecision:
        """``unknown_outcome_hook``: did the create whose answer was lost take effect?"""
        if not self.on_unknown_outcome or self.identity(attempt.request) is None:
            return HookDecision.retry()  # cannot be checked: the outcome stays unknown unless a retry succeeds
        found = await self.find_existing(attempt.request, _Trace(holds=attempt.holds))
        if found is None and attempt.error.kind == "timeout":  # it may still be being applied: look again
            await self.sleep(self.recheck_after_s)
            found = await self.find_existing(attempt.request, _Trace(holds=attempt.holds))
        if found is None:
            log.info("%s: no %s was created by the unanswered attempt %d; sending it again",
                     self.dest.name, self.resource, attempt.attempt)
            return HookDecision.absent()
        log.info("%s: the unanswered attempt %d did create it: %s", self.dest.name, attempt.attempt,
                 found.header(DEDUPE_HEADER))
        return HookDecision.done(found)

    def wants_lookup_first(self, items: Sequence[Prepared]) -> bool:
        if self.policy == "always" or self.may_exist(items):
            return True
        return False

    def may_exist(self, items: Sequence[Prepared]) -> bool:
        """Whether an earlier delivery of these records may have created the object: a replay (always
        looked up, whatever the policy) or, unless the policy is ``never``, a crash-recovered record."""
        if any(item.record.replay_of is not None for item in items):
            return True
        return self.policy != "never" and any(item.record.extra.get(POSSIBLY_DELIVERED) for item in items)

    async def before_first_attempt(self, request: RenderedRequest, items: Sequence[Prepared],
                                   holds: Holds | None = None) -> CallOutcome | None:
        """A finished outcome when the object exists already (nothing is sent), else None (send it)."""
        if not self.wants_lookup_first(items):
            return None
        started_wall, started = time.time(), time.monotonic()
        trace = _Trace(holds=holds)
        try:
            found = await self.find_existing(request, trace)
        except Exception as exc:  # never raise into the pipeline: the call fails (dead letter, retryable)
            earlier = self.may_exist(items)
            reason = (f"the duplicate check before sending this create failed, so it was not sent"
                      f"{' (an earlier delivery may have created it: outcome unknown)' if earlier else ''}: "
                      f"{type(exc).__name__}: {exc}")
            return self._outcome(None, trace, started_wall, started, reason, unknown=earlier)
        if found is None:
            return None
        log.info("%s: not sent again, it exists already: %s", self.dest.name, found.header(DEDUPE_HEADER))
        return self._outcome(found, trace, started_wall, started, None)

    def _outcome(
        self, found: HttpResult | None, trace: _Trace, started_wall: float, started: float, reason: str | None,
        unknown: bool = False,
    ) -> CallOutcome:
        return CallOutcome(
            ok=found is not None,
            status=found.status if found is not None else None,
            response_headers=dict(found.headers) if found is not None else {},
            response_body=orjson.loads(found.body_bytes) if found is not None else None,
            attempts=counted_attempts(a for a in trace.attempts if a.step == trace.requests),
            attempt_log=trace.attempts,
            rate_limit_wait_s=trace.waited,
            started_at=started_wall,
            finished_at=time.time(),
            latency_s=max(0.0, time.monotonic() - started),
            final_reason=reason,
            retryable=found is None,
            outcome_unknown=unknown,
            resolved_by_hook=found is not None,
        )

    # ---------------------------------------------------------------------------------------------
    # lookups

    def identity(self, request: RenderedRequest) -> tuple[str, Any] | None:
        """What identifies the object ``request`` creates (``("external_id", "nx-…")``), or None when
        nothing does: such a create cannot be checked."""
        body = _body(request)
        if not isinstance(body, Mapping):
            return None
        if self.resource in ("ticket", "customer", "message"):
            value = body.get("external_id")
            if self.resource == "message" and _ticket_of_message(urlsplit(request.url).path) is None:
                return None
            return ("external_id", value) if isinstance(value, str) and value else None
        if self.resource == "tag":
            name = body.get("name")
            return ("name", name) if isinstance(name, str) and name else None
        if self.resource == "survey":
            ticket_id = body.get("ticket_id")
            return ("ticket_id", ticket_id) if isinstance(ticket_id, int) else None
        return None

    async def find_existing(self, request: RenderedRequest, trace: _Trace | None = None) -> HttpResult | None:
        """The object ``request`` creates, when Gorgias holds it already (as a 201-like result); None when
        it does not, or when nothing identifies it (see :meth:`identity`)."""
        key = self.identity(request)
        if key is None:
            return None
        trace = trace if trace is not None else _Trace()
        field, value = key
        parts = urlsplit(request.url)
        origin = f"{parts.scheme}://{parts.netloc}"
        started = time.monotonic()
        found: Any = None
        if self.resource == "ticket":
            found = await self._ticket(trace, origin, value)
        elif self.resource == "customer":
            found = await self._find(trace, origin, "/api/customers", {field: value}, field, value, pages=1)
        elif self.resource == "message":
            query = {"ticket_id": _ticket_of_message(parts.path), "order_by": "created_datetime:desc"}
            found = await self._find(trace, origin, "/api/messages", query, field, value)
        elif self.resource == "tag":
            found = await self._find(trace, origin, "/api/tags", {"search": value}, field, value)
        elif self.resource == "survey":
            found = await self._find(trace, origin, "/api/satisfaction-surveys", {field: value}, field, value, pages=1)
        if found is None:
            return None
        note = f"existing {self.resource} {found.get('id')} found by {field}={value}"
        return HttpResult(
            status=201,
            headers={"content-type": "application/json", DEDUPE_HEADER: note},
            body_bytes=orjson.dumps(found),
            elapsed_s=time.monotonic() - started,
        )

    async def _call(self, trace: _Trace, url: str) -> Any:
        self.lookups += 1
        outcome = await self.delivery.call(_get(url), self.dest.credential, self.settings, holds=trace.holds)
        trace.requests += 1
        trace.attempts.extend(replace(a, step=trace.requests) for a in outcome.attempt_log)
        trace.waited += outcome.rate_limit_wait_s
        if not outcome.ok:
            path = urlsplit(url).path
            raise LookupFailed(f"GET {path}: {outcome.final_reason}")
        return outcome.response_body

    async def _ticket(self, trace: _Trace, origin: str, external_id: str) -> Any:
        listed = None
        for trashed in ({}, {"trashed": "true"}):  # trashed=true may list only trashed tickets: ask both ways
            listed = await self._find(trace, origin, "/api/tickets", {"external_id": external_id, **trashed},
                                      "external_id", external_id, pages=1)
            if listed is not None:
                break
        if listed is None or "id" not in listed:
            return listed
        try:  # the full ticket (with its messages) for the response event
            full = await self._call(trace, f"{origin}/api/tickets/{int(listed['id'])}")
        except LookupFailed as exc:  # the listing found it: that is proof enough
            log.warning("%s: ticket %s exists; reading it in full failed (%s), answering with the listing",
                        self.dest.name, listed["id"], exc)
            return listed
        return full if isinstance(full, Mapping) else listed

    async def _find(
        self, trace: _Trace, origin: str, path: str, query: Mapping[str, Any], field: str, value: Any,
        pages: int = MAX_PAGES,
    ) -> Any:
        """The first item of a listing whose ``field`` equals ``value``, following cursors for ``pages``."""
        params: dict[str, Any] = {**query, "limit": PAGE_LIMIT}
        seen: set[str] = set()
        for _ in range(pages):
            listing = await self._call(trace, f"{origin}{path}?{urlencode(params)}")
            for item in _items(listing):
                if isinstance(item, Mapping) and item.get(field) == value:
                    return item
            cursor = _next_cursor(listing)
            if cursor is None or cursor in seen:
                return None
            seen.add(cursor)
            params["cursor"] = cursor
        return None


def _ticket_of_message(create_path: str) -> int | None:
    """``/api/tickets/{id}/messages`` -> id."""
    parts = create_path.strip("/").split("/")
    if len(parts) >= 3 and parts[:2] == ["api", "tickets"] and parts[2].isdigit():
        return int(parts[2])
    return None


def _next_cursor(listing: Any) -> str | None:
    meta = listing.get("meta") if isinstance(listing, Mapping) else None
    cursor = meta.get("next_cursor") if isinstance(meta, Mapping) else None
    return cursor if isinstance(cursor, str) and cursor else None


def _items(listing: Any) -> list[Any]:
    if isinstance(listing, Mapping):
        data = listing.get("data")
        return data if isinstance(data, list) else []
    return listing if isinstance(listing, list) else []


_CACHE: weakref.WeakKeyDictionary[DeliveryService, dict[int, tuple[Destination, Deduper | None]]] = (
    weakref.WeakKeyDictionary()
)


def hook_for(dest: Destination, delivery: DeliveryService) -> Deduper | None:
    """The duplicate check of ``dest`` (built once per destination and delivery service), or None when
    its endpoint creates nothing (a manual configuration, or a template that is not a create)."""
    try:
        per_delivery = _CACHE.setdefault(delivery, {})
    except TypeError:  # a delivery stand-in that cannot be weakly referenced: build it each time
        per_delivery = {}
    cached = per_delivery.get(id(dest))
    if cached is not None and cached[0] is dest:
        return cached[1]
    deduper: Deduper | None = None
    if dest.endpoint.template is not None:
        configured = configured_for(dest)
        if configured.template.creates:
            deduper = Deduper(dest, delivery, configured)
    per_delivery[id(dest)] = (dest, deduper)
    return deduper
