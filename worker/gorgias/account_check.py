"""One ``GET /api/account`` through the account's budget: does Gorgias take this credential, and what is
the account's call limit? Used to check each credential at start, to probe a held one, and by the
credential test routes."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import orjson

from worker.core.config.account import Credential
from worker.core.requests.request import RenderedRequest
from worker.gorgias.client import Sender
from worker.gorgias.errors import TransportError
from worker.gorgias.ratelimit import CALL_LIMIT_HEADER, AccountRateLimiter
from worker.gorgias.retry import describe_status, parse_retry_after

ACCOUNT_PATH = "/api/account"


@dataclass(frozen=True, slots=True)
class AccountCheck:
    """What ``GET /api/account`` answered. ``error`` is readable and free of secrets."""

    ok: bool
    status: int | None
    account: dict[str, Any] | None
    call_limit: str | None
    latency_ms: float
    error: str | None

    @property
    def refused(self) -> bool:
        """Gorgias does not take the credential (HTTP 401)."""
        return self.status == 401

    @property
    def authenticated(self) -> bool:
        """Gorgias took the credential: any answer but a 401, a 429 or a 5xx (a 403 is a route it may not use)."""
        return self.status is not None and self.status not in (401, 429) and self.status < 500

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "status": self.status, "account": self.account, "call_limit": self.call_limit,
                "latency_ms": self.latency_ms, "error": self.error}


async def check_account(client: Sender, credential: Credential, limiter: AccountRateLimiter) -> AccountCheck:
    """Send ``GET /api/account`` once, after taking a token from the account's budget."""
    await limiter.acquire()
    request = RenderedRequest("GET", f"https://{credential.host}{ACCOUNT_PATH}", {"Accept": "application/json"},
                              None, None)
    started = time.perf_counter()
    try:
        result = await client.send(request)
    except TransportError as exc:
        return AccountCheck(False, None, None, None, _ms(started), str(exc))
    call_limit = result.header(CALL_LIMIT_HEADER)
    if result.status == 429:
        limiter.refused(call_limit, parse_retry_after(result.header("retry-after"), time.time()))
    else:
        limiter.observe_header(call_limit)
    ok = 200 <= result.status < 300
    body = _json(result.body_bytes) if ok else None
    account = {k: body.get(k) for k in ("domain", "status", "created_datetime") if k in body} \
        if isinstance(body, dict) else None
    return AccountCheck(ok, result.status, account, call_limit, _ms(started), None if ok else describe_status(result))


def _json(raw: bytes) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)
