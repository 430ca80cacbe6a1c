"""The error responses the sandbox produces, with Gorgias's envelope and wording."""

from __future__ import annotations

from typing import Any

UNAUTHORIZED = "Unauthorized."
FORBIDDEN = "Forbidden."  # INF: the 403 message is not documented
NOT_FOUND = "Resource not found."
METHOD_NOT_ALLOWED = "The specified HTTP method is not allowed."
ALREADY_EXISTS = "The resource already exists."
TOO_MANY_REQUESTS = "Too many requests."  # INF: the 429 body is not documented
EXTERNAL_SERVICE = "An external service had an issue."
INTERNAL_ERROR = "Internal server error."  # INF: injected 500s
BAD_GATEWAY = "Bad gateway."  # INF: injected 502s
CUSTOMER_MERGED = "Customer was merged with another one."
INVALID_JSON = "Invalid JSON body."  # INF
UNSUPPORTED_MEDIA_TYPE = "Unsupported media type: send application/json."  # INF
PAYLOAD_TOO_LARGE = "Payload too large."  # INF

UNKNOWN_HOST_HTML = (
    b"<!doctype html>\n<html lang=en>\n<title>404 Not Found</title>\n<h1>Not Found</h1>\n"
    b"<p>The requested URL was not found on the server. If you entered the URL manually please check "
    b"your spelling and try again.</p>\n"
)
"""Body of the HTML 404 served for a Host that is not a configured account (real Gorgias: a Flask page)."""


class ApiError(Exception):
    """An error answer: ``status`` with ``{"error": {"msg": msg, "data": data}}`` (``data`` only if given)."""

    def __init__(self, status: int, msg: str, data: dict[str, Any] | None = None, *,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(f"{status} {msg}")
        self.status = status
        self.msg = msg
        self.data = data
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        """The JSON body of the answer."""
        error: dict[str, Any] = {"msg": self.msg}
        if self.data is not None:
            error["data"] = self.data
        return {"error": error}


def conflict() -> ApiError:
    """409 ``The resource already exists.``"""
    return ApiError(409, ALREADY_EXISTS)


def invalid(msg: str, data: dict[str, Any]) -> ApiError:
    """400 with field errors in ``data``."""
    return ApiError(400, msg, data)
