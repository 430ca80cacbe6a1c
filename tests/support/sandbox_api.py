"""Calling a sandbox app in this process the way the worker calls Gorgias (the account's Host header, Basic
auth), on a fake monotonic clock; small valid bodies."""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp.test_utils import TestClient


def basic(email: str, key: str) -> str:
    return "Basic " + base64.b64encode(f"{email}:{key}".encode()).decode()


AGENT = basic("agent@acme.com", "sandbox-api-key")


OBSERVER = basic("observer@acme.com", "observer-key")


OAUTH = "Bearer sandbox-oauth-token"


HOST = "acme.gorgias.com"


class FakeClock:
    """Monotonic time that only moves when a test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Result:
    status: int
    headers: Any
    raw: bytes

    @property
    def json(self) -> Any:
        return orjson.loads(self.raw)

    @property
    def call_limit(self) -> str | None:
        return self.headers.get("X-Gorgias-Account-Api-Call-Limit")


class Api:
    """Calls the sandbox like the worker does: Host header of the account, Basic auth by default."""

    def __init__(self, client: TestClient) -> None:
        self.client = client

    async def call(self, method: str, path: str, body: Any = None, *, auth: str | None = AGENT, host: str = HOST,
                   headers: dict[str, str] | None = None, data: bytes | None = None) -> Result:
        sent: dict[str, str] = {"Host": host}
        if auth is not None:
            sent["Authorization"] = auth
        if body is not None:
            data = orjson.dumps(body)
            sent["Content-Type"] = "application/json"
        sent.update(headers or {})
        async with self.client.request(method, path, data=data, headers=sent, allow_redirects=False) as resp:
            return Result(resp.status, resp.headers, await resp.read())

    async def admin(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else orjson.dumps(body)
        async with self.client.request(method, f"/__admin/{path}", data=data) as resp:
            raw = await resp.read()
            return resp.status, orjson.loads(raw) if raw else None

    async def state(self, account: str | None = None) -> dict[str, Any]:
        status, body = await self.admin("GET", "state" + (f"?account={account}" if account else ""))
        assert status == 200
        return body  # type: ignore[no-any-return]

    @property
    def url(self) -> str:
        return str(self.client.make_url(""))


MakeApi = Callable[..., Awaitable[Api]]


def incoming_ticket(email: str = "jane@example.com", **extra: Any) -> dict[str, Any]:
    """A small valid ticket: one incoming API message from ``email``."""
    return {
        "channel": "api", "via": "api", "from_agent": False, "subject": "Where is my order?",
        "customer": {"email": email, "name": "Jane Doe"},
        "messages": [{"channel": "api", "via": "api", "from_agent": False, "sender": {"email": email},
                      "body_text": "Hi, my order has not arrived."}],
        **extra,
    }


def new_customer(email: str = "jane@example.com", **extra: Any) -> dict[str, Any]:
    """A valid customer create body: ``channels`` with a preferred email channel (required by Gorgias)."""
    return {"email": email, "channels": [{"type": "email", "address": email, "preferred": True}], **extra}


def field_values(body: dict[str, Any]) -> list[tuple[int, Any]]:
    """``[(field id, value)]`` from a custom-field values answer ``{"data": [{"field", "prediction", "value"}]}``."""
    return [(item["field"]["id"], item["value"]) for item in body["data"]]


