"""What every route group of the control API shares: the runtime and token keys, JSON answers, errors
(``{"error": "...", "errors": [{"path", "message", "suggestion"}]}``), reading a JSON body, and the
bearer-token check."""

from __future__ import annotations

import hmac
import re
from collections.abc import Mapping, Sequence
from typing import Any

import orjson
from aiohttp import web
from pydantic import SecretStr

from worker.core.config.base import Problem
from worker.core.store.writes import PRESENT, Expect
from worker.service.runtime import Runtime

__all__ = [
    "READ_ONLY_METHODS",
    "RUNTIME",
    "TOKEN",
    "error",
    "expectation",
    "invalid",
    "json_body",
    "json_response",
    "token_refusal",
]

RUNTIME: web.AppKey[Runtime] = web.AppKey("runtime", Runtime)
TOKEN: web.AppKey[SecretStr | None] = web.AppKey("control_token", SecretStr | None)  # type: ignore[arg-type]
READ_ONLY_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_ETAG = re.compile(r'^\s*(?:W/)?"?(\d+)"?\s*$')


def json_response(data: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json", headers=headers)


def error(status: int, message: str) -> web.Response:
    return json_response({"error": message}, status=status)


def invalid(problems: Sequence[Problem], message: str = "the settings are not valid") -> web.HTTPBadRequest:
    """A 400 to raise: ``error`` in one line and ``errors`` structured, for a form to show by its fields."""
    first = f": {problems[0].line}" if problems else ""
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    doc = {"error": f"{message}{first}{more}", "errors": [p.as_dict() for p in problems]}
    return web.HTTPBadRequest(text=orjson.dumps(doc).decode(), content_type="application/json")


async def json_body(request: web.Request) -> Any:
    """The request's JSON body (``{}`` when empty), or a 400 to the caller."""
    raw = await request.read()
    if not raw.strip():
        return {}
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise web.HTTPBadRequest(text=orjson.dumps({"error": f"the body is not JSON: {exc}"}).decode(),
                                 content_type="application/json") from None


def token_refusal(request: web.Request) -> web.Response | None:
    """Why ``request`` may not act (401 without a bearer token, 403 with a wrong one), or None when it may.

    The token is compared in constant time and never echoed.
    """
    token = request.app[TOKEN]
    if token is None:
        return None
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        return web.Response(
            body=orjson.dumps({"error": "this route needs `Authorization: Bearer <control token>`"}),
            status=401, content_type="application/json", headers={"WWW-Authenticate": 'Bearer realm="gorgias-worker"'},
        )
    if not hmac.compare_digest(given.strip().encode(), token.get_secret_value().encode()):
        return error(403, "the bearer token is not the control token")
    return None


def expectation(request: web.Request, default: Expect) -> Expect:
    """``If-Match: "3"`` (or ``*``: it must exist) as what the write expects; a 400 when unreadable."""
    header = request.headers.get("If-Match")
    if header is None:
        return default
    if header.strip() == "*":
        return PRESENT
    match = _ETAG.match(header)
    if match is None:
        raise web.HTTPBadRequest(text=orjson.dumps({"error": f'If-Match: give a version like "3" (got {header!r})'})
                                 .decode(), content_type="application/json")
    return Expect(version=int(match.group(1)))
