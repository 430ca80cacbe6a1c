"""Duplicate-safe creates: Gorgias has no idempotency key, so creates carry an ``external_id`` to look up.

A create whose connection drops after the request was written (``apply_then_drop``, a timeout) may
or may not have been applied; sending it again could make a second ticket, customer or message.
So the create templates stamp a deterministic ``external_id`` on what they create (the record's own
``external_id`` when it has one, ``template_options.external_id.from``, or
``nx-<sha256(destination|topic|partition|offset)[:24]>``: the same record always gets the same one)
and :class:`Deduper` looks it up:

* **before retrying an attempt whose outcome is unknown** (the delivery service's
  ``unknown_outcome_hook``): found → the call is done, its response is the existing object (status
  201, header ``x-gorgias-worker-dedupe``); not found → the create is sent again;
* **before the first attempt** (:meth:`Deduper.before_first_attempt`), per
  ``template_options.dedupe.lookup_before_create``: ``replayed`` (default) only for calls carrying a
  record the pipeline flagged as possibly delivered before a restart
  (``record.extra["possibly_delivered"]``), ``always`` for every call, ``never``.

Lookups, one per resource: tickets ``GET /api/tickets?external_id=`` (then ``GET /api/tickets/{id}``
for the full ticket when found), customers ``GET /api/customers?external_id=``, messages
``GET /api/tickets/{id}/messages`` newest first (up to 5 pages of 100) matched on ``external_id``, tags
``GET /api/tags?name=`` (names are unique), satisfaction surveys ``GET /api/satisfaction-surveys?ticket_id=``
(one per ticket). Each lookup is an ordinary call through the delivery service: it takes a token from
the account's rate limiter and is retried (at most 3 attempts, 30 s) like any GET. If the lookup itself
fails, the call fails with the reason (dead letter, retryable) rather than risking a duplicate.

Cost: nothing while calls succeed. One lookup (two for a found ticket) per unknown outcome, which is
rare. ``lookup_before_create: always`` adds one rate-limited GET to every create: against the API-key
budget (40 calls / 20 s, 2 per second sustained) creates drop from ~2 to ~1 per second, so it is meant
for replays, not steady traffic. Measured against the sandbox with a 10 calls / 2 s bucket (limiter in
step, 4 in flight): 40 ticket creates took 6.1 s with ``never`` (40 calls) and 14.2 s with ``always``
(80 calls: the bucket's 10-call burst, then 5 calls a second either way).

Limits: a lookup cannot see a create that Gorgias has not finished applying yet (the delivery
service waits its backoff before asking, which covers a dropped connection; a create still being
processed after a timeout can slip through). ``external_id`` is taken as the identity of the object:
two records bringing the same ``external_id`` make one object.
"""

from __future__ import annotations

import logging
import time
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import urlencode, urlsplit

import orjson

from worker.config import DeliverySettings, Destination
from worker.gorgias.client import HttpResult
from worker.gorgias.delivery import AttemptRecord, CallAttempt, CallOutcome, DeliveryService, HookDecision
from worker.records import POSSIBLY_DELIVERED
from worker.rendering import Prepared, RenderedRequest
from worker.templates.model import ConfiguredTemplate

__all__ = ["DEDUPE_HEADER", "POSSIBLY_DELIVERED", "Deduper", "LookupFailed", "hook_for"]

log = logging.getLogger("worker.dedupe")

DEDUPE_HEADER: Final = "x-gorgias-worker-dedupe"
MESSAGE_PAGES: Final = 5
LOOKUP_ATTEMPTS: Final = 3
LOOKUP_BUDGET_S: Final = 30.0


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


def _get(url: str) -> RenderedRequest:
    return RenderedRequest("GET", url, {"Accept": "application/json"}, None, None)


class Deduper:
    """The duplicate check of one create destination: an ``unknown_outcome_hook`` and a pre-check."""

    def __init__(self, dest: Destination, delivery: DeliveryService, configured: ConfiguredTemplate) -> None:
        self.dest = dest
        self.delivery = delivery
        self.configured = configured
        self.resource = configured.template.creates or ""
        self.settings: DeliverySettings = dest.delivery.model_copy(update={
            "max_attempts": min(LOOKUP_ATTEMPTS, dest.delivery.max_attempts),
            "max_retry_time_s": min(LOOKUP_BUDGET_S, dest.delivery.max_retry_time_s),
        })
        self.policy = configured.dedupe.lookup_before_create
        self.on_unknown_outcome = configured.dedupe.on_unknown_outcome
        self.lookups = 0  # GETs made, for metrics and tests

    # ---------------------------------------------------------------------------------------------
    # the two entry points

    async def __call__(self, attempt: CallAttempt) -> HookDecision:
        """``unknown_outcome_hook``: did the create whose answer was lost take effect?"""
        if not self.on_unknown_outcome:
            return HookDecision.retry()
        found = await self.find_existing(attempt.request)
        if found is None:
            log.info("%s: no %s was created by the unanswered attempt %d; sending it again",
                     self.dest.name, self.resource, attempt.attempt)
            return HookDecision.retry()
        log.info("%s: the unanswered attempt %d did create it: %s", self.dest.name, attempt.attempt,
                 found.header(DEDUPE_HEADER))
        return HookDecision.done(found)

    def wants_lookup_first(self, items: Sequence[Prepared]) -> bool:
        if self.policy == "always":
            return True
        if self.policy == "never":
            return False
        return any(item.record.extra.get(POSSIBLY_DELIVERED) for item in items)

    async def before_first_attempt(self, request: RenderedRequest, items: Sequence[Prepared]) -> CallOutcome | None:
        """A finished outcome when the object exists already (nothing is sent), else None (send it)."""
        if not self.wants_lookup_first(items):
            return None
        started_wall, started = time.time(), time.monotonic()
        trace = _Trace()
        try:
            found = await self.find_existing(request, trace)
        except Exception as exc:  # never raise into the pipeline: the call fails (dead letter, retryable)
            reason = (f"the duplicate check before sending this create failed, so it was not sent: "
                      f"{type(exc).__name__}: {exc}")
            return self._outcome(None, trace, started_wall, started, reason)
        if found is None:
            return None
        log.info("%s: not sent again, it exists already: %s", self.dest.name, found.header(DEDUPE_HEADER))
        return self._outcome(found, trace, started_wall, started, None)

    def _outcome(
        self, found: HttpResult | None, trace: _Trace, started_wall: float, started: float, reason: str | None
    ) -> CallOutcome:
        return CallOutcome(
            ok=found is not None,
            status=found.status if found is not None else None,
            response_headers=dict(found.headers) if found is not None else {},
            response_body=orjson.loads(found.body_bytes) if found is not None else None,
            attempts=len(trace.attempts),
            attempt_log=trace.attempts,
            rate_limit_wait_s=trace.waited,
            started_at=started_wall,
            finished_at=time.time(),
            latency_s=max(0.0, time.monotonic() - started),
            final_reason=reason,
            retryable=found is None,
            outcome_unknown=False,
            resolved_by_hook=found is not None,
        )

    # ---------------------------------------------------------------------------------------------
    # lookups

    async def find_existing(self, request: RenderedRequest, trace: _Trace | None = None) -> HttpResult | None:
        """The object ``request`` creates, when Gorgias holds it already (as a 201-like result)."""
        trace = trace if trace is not None else _Trace()
        body = _body(request)
        if not isinstance(body, Mapping):
            return None
        parts = urlsplit(request.url)
        origin = f"{parts.scheme}://{parts.netloc}"
        started = time.monotonic()
        resource = self.resource
        found: Any = None
        how = ""
        if resource in ("ticket", "customer", "message"):
            value = body.get("external_id")
            if not isinstance(value, str) or not value:
                return None  # nothing identifies it: the create cannot be made safe
            how = f"external_id={value}"
            if resource == "ticket":
                found = await self._first(trace, origin, "/api/tickets", {"external_id": value}, "external_id", value)
                if found is not None and "id" in found:
                    found = await self._fetch(trace, f"{origin}/api/tickets/{int(found['id'])}")
            elif resource == "customer":
                found = await self._first(trace, origin, "/api/customers", {"external_id": value}, "external_id", value)
            else:
                found = await self._message(trace, origin, parts.path, value)
        elif resource == "tag":
            name = body.get("name")
            if not isinstance(name, str):
                return None
            how = f"name={name}"
            found = await self._first(trace, origin, "/api/tags", {"name": name}, "name", name)
        elif resource == "survey":
            ticket_id = body.get("ticket_id")
            if not isinstance(ticket_id, int):
                return None
            how = f"ticket_id={ticket_id}"
            found = await self._first(trace, origin, "/api/satisfaction-surveys", {"ticket_id": ticket_id},
                                      "ticket_id", ticket_id)
        if found is None:
            return None
        note = f"existing {resource} {found.get('id')} found by {how}"
        return HttpResult(
            status=201,
            headers={"content-type": "application/json", DEDUPE_HEADER: note},
            body_bytes=orjson.dumps(found),
            elapsed_s=time.monotonic() - started,
        )

    async def _call(self, trace: _Trace, url: str) -> Any:
        self.lookups += 1
        outcome = await self.delivery.call(_get(url), self.dest.credential, self.settings)
        trace.attempts.extend(outcome.attempt_log)
        trace.waited += outcome.rate_limit_wait_s
        if not outcome.ok:
            path = urlsplit(url).path
            raise LookupFailed(f"GET {path}: {outcome.final_reason}")
        return outcome.response_body

    async def _fetch(self, trace: _Trace, url: str) -> Any:
        found = await self._call(trace, url)
        return found if isinstance(found, Mapping) else None

    async def _first(
        self, trace: _Trace, origin: str, path: str, query: Mapping[str, Any], field: str, value: Any
    ) -> Any:
        listing = await self._call(trace, f"{origin}{path}?{urlencode({**query, 'limit': 30})}")
        for item in _items(listing):
            if isinstance(item, Mapping) and item.get(field) == value:
                return item
        return None

    async def _message(self, trace: _Trace, origin: str, create_path: str, external_id: str) -> Any:
        base = f"{origin}{create_path.rstrip('/')}"  # /api/tickets/{id}/messages
        query: dict[str, Any] = {"limit": 100, "order_by": "created_datetime:desc"}
        for _ in range(MESSAGE_PAGES):
            listing = await self._call(trace, f"{base}?{urlencode(query)}")
            for item in _items(listing):
                if isinstance(item, Mapping) and item.get("external_id") == external_id:
                    return item
            cursor = (listing.get("meta") or {}).get("next_cursor") if isinstance(listing, Mapping) else None
            if not cursor:
                return None
            query["cursor"] = cursor
        return None


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
        from worker.templates import configured_for

        configured = configured_for(dest)
        if configured.template.creates:
            deduper = Deduper(dest, delivery, configured)
    per_delivery[id(dest)] = (dest, deduper)
    return deduper
