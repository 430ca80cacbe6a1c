"""Endpoint testing: send one sample request with a destination's current settings and show the answer.

The request is the first one :func:`worker.core.chain.preview.preview` makes for the sample record (the user's
record, else the template's example record), or the user's edited payload in place of its body. It
goes through the real :class:`~worker.gorgias.delivery.DeliveryService` with the real credential and
the account's rate limiter, with exactly one attempt: no retry, so a test never sends anything twice.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import orjson

from worker.core.chain.preview import PreviewDeadLetter, PreviewRequest, masked_headers, preview
from worker.core.chain.sample_effects import Effect, describe_effect, undo_for
from worker.core.config.worker_config import Destination
from worker.core.requests.request import RenderedRequest
from worker.core.templates import get_template
from worker.gorgias.delivery import DeliveryService

__all__ = [
    "EndpointTestError",
    "EndpointTestResult",
    "deletion",
    "plan_test",
    "run_test",
    "sample_request",
    "send_once",
    "send_test",
]

JSON = "application/json"


class EndpointTestError(Exception):
    """No request can be made to test with (no sample record, or the sample is dead-lettered)."""


@dataclass(frozen=True)
class EndpointTestResult:
    """What was sent and what came back."""

    request: PreviewRequest
    status: int | None
    headers: dict[str, str]
    body: Any
    error: str | None
    elapsed_ms: float
    rate_limit_wait_ms: float
    undo: dict[str, Any] | None = None  # the delete that undoes what the test created

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "request": self.request.as_dict(),
            "response": {"status": self.status, "headers": self.headers, "body": self.body},
            "error": self.error,
            "elapsed_ms": round(self.elapsed_ms, 3),
            "rate_limit_wait_ms": round(self.rate_limit_wait_ms, 3),
            "undo": self.undo,
        }

    def lines(self) -> list[str]:
        req = self.request.request
        out = [f"{req.method} {req.url}"]
        if self.status is None:
            out.append(f"-> no response: {self.error}")
            return out
        waited = f" (waited {self.rate_limit_wait_ms:.0f} ms for the rate limit)" if self.rate_limit_wait_ms else ""
        out.append(f"-> HTTP {self.status} in {self.elapsed_ms:.0f} ms{waited}")
        out.extend(f"{k}: {v}" for k, v in self.headers.items())
        if self.body is not None:
            out.append("")
            if isinstance(self.body, str):
                out.append(self.body)
            else:
                out.extend(orjson.dumps(self.body, option=orjson.OPT_INDENT_2).decode().splitlines())
        if self.error and not self.ok:
            out.append("")
            out.append(f"error: {self.error}")
        if self.undo is not None:
            out += ["", f"the test created {self.undo['what']}; to delete it: {self.undo['method']} {self.undo['url']}"]
        return out


def example_record(dest: Destination) -> dict[str, Any] | None:
    """The template's example record, when the destination uses a template."""
    if dest.endpoint.template is None:
        return None
    record = get_template(dest.endpoint.template).example.get("record")
    return dict(record) if isinstance(record, dict) else None


def sample_request(dest: Destination, record: Any = None, payload: Any = None) -> PreviewRequest:
    """The request to test with: the first preview request of ``record`` (default: the template's example
    record), with ``payload`` (any JSON value) as its body when given."""
    sample = record if record is not None else example_record(dest)
    if sample is None:
        raise EndpointTestError(
            "no sample record: give one (--record FILE, or {\"record\": {...}}); manual endpoints have no example"
        )
    items = preview(dest, [sample])
    for item in items:
        if isinstance(item, PreviewRequest):
            chosen = item
            break
    else:
        dead = next((i for i in items if isinstance(i, PreviewDeadLetter)), None)
        reason = dead.reason if dead is not None else "it makes no request"
        raise EndpointTestError(f"the sample record cannot make a request ({reason})")
    if payload is None:
        return chosen
    request = replace(chosen.request, body=orjson.dumps(payload), content_type=JSON,
                      headers={**chosen.request.headers})
    return replace(chosen, request=request, headers=masked_headers(dest, request))


async def send_test(dest: Destination, delivery: DeliveryService, sample: PreviewRequest) -> EndpointTestResult:
    """Send ``sample`` once (one attempt, rate limit respected) and report the answer, with the delete that
    undoes what it created."""
    effect = describe_effect(dest, sample)
    result = await send_once(dest, delivery, sample)
    undo = undo_for(effect, sample, result.status, result.body)
    return replace(result, undo=undo.as_dict(dest.credential.origin) if undo is not None else None)


async def send_once(dest: Destination, delivery: DeliveryService, sample: PreviewRequest) -> EndpointTestResult:
    """Send ``sample``'s request once (no retry) through the account's rate limiter."""
    settings = dest.delivery.model_copy(update={"max_attempts": 1})
    request: RenderedRequest = sample.request
    outcome = await delivery.call(request, dest.credential, settings)
    return EndpointTestResult(
        request=sample,
        status=outcome.status,
        headers=dict(outcome.response_headers),
        body=outcome.response_body,
        error=outcome.final_reason,
        elapsed_ms=outcome.latency_s * 1000,
        rate_limit_wait_ms=outcome.rate_limit_wait_s * 1000,
    )


def plan_test(dest: Destination, record: Any = None, payload: Any = None) -> tuple[PreviewRequest, Effect]:
    """The request a test would send and what it would do (nothing is sent)."""
    sample = sample_request(dest, record, payload)
    return sample, describe_effect(dest, sample)


def deletion(dest: Destination, url: str) -> PreviewRequest:
    """A ``DELETE url`` request with ``dest``'s credential, to undo what a test created."""
    request = RenderedRequest("DELETE", url, {}, None, None)
    return PreviewRequest(request, masked_headers(dest, request), [])


async def run_test(dest: Destination, record: Any = None, payload: Any = None,
                   delivery: DeliveryService | None = None) -> EndpointTestResult:
    """:func:`sample_request` then :func:`send_test`, with a delivery service of its own unless given."""
    sample = sample_request(dest, record, payload)
    if delivery is not None:
        return await send_test(dest, delivery, sample)
    async with DeliveryService() as own:
        return await send_test(dest, own, sample)
