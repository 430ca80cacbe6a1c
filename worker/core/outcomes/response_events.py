"""A call's response event, built as a plain dict of the :class:`~worker.core.outcomes.documents.ResponseEvent`
shape: the request (credential headers redacted, the body as captured), the response, every attempt."""

from __future__ import annotations

import hashlib
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson

from worker.core.config.base import SECRET_HEADERS
from worker.core.config.delivery import BodyCapture
from worker.core.config.worker_config import Destination
from worker.core.outcomes.call_outcome import AttemptRecord, CallOutcome
from worker.core.outcomes.documents import Outcome, iso_time
from worker.core.records.record import SourceRef
from worker.core.requests.call import RenderedCall

REDACTED = "[redacted]"


def redact_headers(headers: dict[str, str]) -> dict[str, str]:
    return {k: (REDACTED if k.lower() in SECRET_HEADERS else v) for k, v in headers.items()}


def event_id(deployment: str, destination: str, sources: list[SourceRef]) -> str:
    text = f"{deployment}/{destination}" + "".join([f"|{s.topic}:{s.partition}:{s.offset}" for s in sources])
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def request_info(
    method: str, url: str, headers: dict[str, str], body: bytes | None, capture: BodyCapture,
    decoded: Any = None,
) -> dict[str, Any]:
    """The request part of an event. ``decoded``: the value ``body`` encodes, when the caller has it
    already (it is not parsed again)."""
    info: dict[str, Any] = {
        "method": method,
        "url": url,
        "headers": redact_headers(headers),
        "body": None,
        "body_sha256": None,
        "body_bytes": len(body or b""),
    }
    if body:
        if capture is BodyCapture.FULL and decoded is not None:
            info["body"] = decoded
        elif capture is BodyCapture.FULL:
            try:
                info["body"] = orjson.loads(body)
            except orjson.JSONDecodeError:
                info["body"] = body.decode("utf-8", "replace")
        elif capture is BodyCapture.HASH:
            info["body_sha256"] = hashlib.sha256(body).hexdigest()
    return info


def _attempt(a: AttemptRecord) -> dict[str, Any]:
    ok = a.status is not None and 200 <= a.status < 300
    return {
        "status": a.status,
        "error": None if ok else a.reason,
        "elapsed_ms": round(a.elapsed_s * 1000, 3),
        "rate_limit_wait_ms": round(a.rate_limit_wait_s * 1000, 3),
        "step": a.step,
        "held": a.held,
    }


def response_event(deployment: str, dest: Destination, call: RenderedCall, outcome: CallOutcome) -> dict[str, Any]:
    """The response event of a call (the response topic's record value), shaped as ResponseEvent."""
    wanted = dest.response_webhook.response_headers
    req = call.request
    batch = call.batch
    event: dict[str, Any] = {
        "schema_version": 1,
        "event_id": event_id(deployment, dest.name, call.sources),
        "deployment": deployment,
        "destination": dest.name,
        "outcome": outcome_kind(outcome).value,
        "request": request_info(req.method, req.url, req.headers, req.body, dest.response_webhook.request_body,
                                _encoded_record(call)),
        "response": {
            "status": outcome.status,
            "headers": {k: v for k, v in outcome.response_headers.items() if k in wanted},
            "body": outcome.response_body,
            "error": None if outcome.ok else outcome.final_reason,
        },
        "attempts": outcome.attempts,
        "attempt_log": [_attempt(a) for a in outcome.attempt_log],
        "latency_ms": round(outcome.latency_s * 1000, 3),
        "rate_limit_wait_ms": round(outcome.rate_limit_wait_s * 1000, 3),
        "started_at": iso_time(outcome.started_at),
        "finished_at": iso_time(outcome.finished_at),
        "record_count": len(call.items),
        "records": [s.as_event() for s in call.sources],
        "batch": None
        if batch is None
        else {
            "algorithm": dest.batching.algorithm.value,
            "key": list(batch.key),
            "flush_reason": batch.reason.value,
            "size": len(batch.items),
        },
        "merged": outcome.merged.as_event() if outcome.merged is not None else None,
        "reduced": None,
        "part": None,
    }
    if outcome.steps:
        event["steps"] = [step.as_event() for step in outcome.steps]
    if outcome.jobs:
        event["jobs"] = [job.as_event() for job in outcome.jobs]
    merge = customer_merge(req.url, outcome) if outcome.ok else None
    if merge is not None:
        event["customer_merge"] = merge
    return event


def customer_merge(url: str, outcome: CallOutcome) -> dict[str, Any] | None:
    """For a delivered ``PUT /api/customers/merge?source_id=&target_id=``: the customer merged away and the
    one kept (the id of the customer Gorgias answered with, else the target's), for the response event."""
    parts = urlsplit(url)
    if not parts.path.rstrip("/").endswith("/api/customers/merge"):
        return None
    query = parse_qs(parts.query)
    source, target = (query.get(k, [""])[0] for k in ("source_id", "target_id"))
    body = outcome.response_body
    kept: Any = body.get("id") if isinstance(body, dict) else None
    if not isinstance(kept, int) or isinstance(kept, bool):
        kept = int(target) if target.isdigit() else target
    return {"merged_away_id": int(source) if source.isdigit() else source, "kept_id": kept}


def _encoded_record(call: RenderedCall) -> Any:
    """The body of a one-record call whose request body is that record's own encoding, else None."""
    if len(call.items) == 1 and call.request.body is call.items[0].body_bytes:
        return call.items[0].body
    return None


def outcome_kind(outcome: CallOutcome) -> Outcome:
    """Delivered, failed, or unknown (it failed, but an attempt may have taken effect)."""
    if outcome.ok:
        return Outcome.DELIVERED
    return Outcome.UNKNOWN if outcome.outcome_unknown else Outcome.FAILED
