"""The delivery shell's errors, and reading Gorgias's error envelope.

Lower-level exceptions (httpx, aiohttp, asyncio timeouts) are translated into :class:`TransportError`
(:func:`translate_exception`, here) at the HTTP boundary in :mod:`worker.gorgias.client`; nothing
above it sees a library exception.
"""

from __future__ import annotations

import errno
import html
import re
from typing import Any, Literal

import aiohttp
import httpx
import orjson

TransportKind = Literal["timeout", "connect", "read", "write", "protocol", "pool"]

MAX_REASON_CHARS = 300
_HTML_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)


class GorgiasError(Exception):
    """Base of the errors raised by the Gorgias delivery shell."""


class TransportError(GorgiasError):
    """One attempt failed below HTTP: no (complete) response was received.

    ``kind`` names the phase that failed: ``connect`` (TCP/TLS connect, including its timeout),
    ``pool`` (no free connection in time), ``write`` (sending the request), ``read`` (receiving the
    response), ``timeout`` (the response did not arrive in time), ``protocol`` (malformed or missing
    response, or a request that could not be formed). ``maybe_sent`` is True when the request may have
    reached Gorgias and been acted on: Gorgias has no idempotency keys, so a retry may duplicate it.
    """

    def __init__(self, kind: TransportKind, maybe_sent: bool, message: str) -> None:
        super().__init__(kind, maybe_sent, message)
        self.kind: TransportKind = kind
        self.maybe_sent = maybe_sent
        self.message = message

    def __str__(self) -> str:
        sent = "request may have been sent" if self.maybe_sent else "request not sent"
        return f"{self.kind} error ({sent}): {self.message}"

    def __repr__(self) -> str:
        return f"TransportError(kind={self.kind!r}, maybe_sent={self.maybe_sent!r}, message={self.message!r})"


class ForeignOriginError(GorgiasError, ValueError):
    """A request URL outside the credential's origins: credentials are never sent anywhere else."""


def redact(text: str, secret: str) -> str:
    """``text`` with every occurrence of ``secret`` replaced (a no-op for empty secrets)."""
    if secret and secret in text:
        return text.replace(secret, "***")
    return text


def gorgias_error_message(body: bytes, content_type: str | None = None) -> str | None:
    """The readable message of a Gorgias error response, or None when the body has none.

    Gorgias answers ``{"error": {"msg": "...", "data": {"field": ["problem", ...]}}}``; field
    problems are appended (``Failed to create ticket (sender: Missing data for required field.)``).
    Non-JSON bodies (an unknown subdomain answers an HTML page) give their first line of text.
    """
    if not body:
        return None
    try:
        parsed: Any = orjson.loads(body)
    except orjson.JSONDecodeError:
        return _text_message(body, content_type)
    text: str | None = None
    if isinstance(parsed, dict):
        error = parsed.get("error")
        if isinstance(error, dict):
            msg = error.get("msg")
            text = str(msg) if msg is not None else None
            problems = _field_problems(error.get("data"))
            if problems:
                text = f"{text} ({problems})" if text else problems
        elif isinstance(error, str):
            text = error
        elif isinstance(parsed.get("message"), str):
            text = parsed["message"]
    return _shorten(text) if text else None


def _text_message(body: bytes, content_type: str | None) -> str | None:
    text = body[:4096].decode("utf-8", errors="replace")
    if (content_type and "html" in content_type.lower()) or text.lstrip()[:1] == "<":
        title = _HTML_TITLE.search(text)
        return _shorten(html.unescape(title.group(1))) if title and title.group(1).strip() else None
    first = text.strip().split("\n", 1)[0]
    return _shorten(first) if first else None


def _field_problems(data: Any, prefix: str = "") -> str:
    if not isinstance(data, dict):
        return ""
    parts: list[str] = []
    for key, value in data.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            nested = _field_problems(value, f"{path}.")
            if nested:
                parts.append(nested)
        elif isinstance(value, list):
            parts.append(f"{path}: {' '.join(str(v) for v in value)}")
        else:
            parts.append(f"{path}: {value}")
    return "; ".join(parts)


def _shorten(text: str) -> str:
    text = " ".join(text.split())
    if len(text) > MAX_REASON_CHARS:
        return text[: MAX_REASON_CHARS - 1] + "…"
    return text


# complexity: a flat table: one isinstance check per transport exception kind
def translate_exception(exc: BaseException, timeout_s: float) -> tuple[TransportKind, bool, str]:  # noqa: C901
    """(kind, maybe_sent, message) for an exception raised while sending one request.

    httpx_aiohttp maps aiohttp errors onto httpx classes coarsely (a server that drops the connection
    after the request was written becomes ``httpx.ConnectTimeout``), so the original aiohttp error,
    kept as ``__cause__``, decides when there is one.
    """
    cause = exc.__cause__
    if isinstance(cause, aiohttp.ClientError):
        return _from_aiohttp(cause)
    if isinstance(exc, aiohttp.ClientError):
        return _from_aiohttp(exc)
    text = _describe(exc)
    if isinstance(exc, httpx.PoolTimeout):
        return "pool", False, f"no free connection within the pool timeout ({text})"
    if isinstance(exc, httpx.ConnectTimeout):
        return "connect", False, f"connect timed out ({text})"
    if isinstance(exc, httpx.TimeoutException):
        return "timeout", True, text
    if isinstance(exc, httpx.ConnectError | httpx.ProxyError):
        return "connect", False, text
    if isinstance(exc, httpx.WriteError):
        return "write", True, text
    if isinstance(exc, httpx.ReadError | httpx.CloseError | httpx.NetworkError):
        return "read", True, text
    if isinstance(exc, httpx.LocalProtocolError | httpx.UnsupportedProtocol):
        return "protocol", False, text
    if isinstance(exc, httpx.RequestError):
        return "protocol", True, text
    if isinstance(exc, TimeoutError):
        return "timeout", True, f"no complete response within {timeout_s:g} s"
    return "protocol", True, text


def _from_aiohttp(exc: aiohttp.ClientError) -> tuple[TransportKind, bool, str]:
    text = _describe(exc)
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return "connect", False, f"connect timed out ({text})"
    if isinstance(exc, aiohttp.ServerTimeoutError):
        return "timeout", True, text
    if isinstance(exc, aiohttp.ClientConnectorError):
        return "connect", False, text
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "protocol", True, text
    if isinstance(exc, aiohttp.ClientOSError) and exc.errno == errno.EPIPE:
        return "write", True, text
    if isinstance(exc, aiohttp.ClientConnectionError | aiohttp.ClientPayloadError):
        return "read", True, text
    if isinstance(exc, aiohttp.InvalidURL):
        return "protocol", False, text
    return "protocol", True, text


def _describe(exc: BaseException) -> str:
    try:
        text = str(exc).strip()
    except Exception:  # a half-built third-party exception must not hide the failure
        text = ""
    name = type(exc).__name__
    return f"{name}: {text}" if text and text != name else name
