"""The headers a call carries on the wire: the client sends them, ``preview`` shows them (credential masked).

Written once so that what ``preview`` and ``test`` print is what the client really sends. Pure.
"""

from __future__ import annotations

from worker.core.requests.request import RenderedRequest

USER_AGENT = "nexset-gorgias-worker/0.1"
# Set by the worker (or the HTTP library) itself: a rendered request's own value is never sent.
WORKER_HEADERS = frozenset({"authorization", "host", "content-length", "transfer-encoding"})


def wire_headers(request: RenderedRequest, authorization: str, host: str | None = None) -> dict[str, str]:
    """``request``'s headers as sent: content type, ``Accept`` and ``User-Agent`` unless given, the
    ``authorization`` value, and ``host`` as the ``Host`` header when the call goes to another origin
    (a credential's ``base_url``)."""
    headers = {"Host": host} if host is not None else {}
    headers["Authorization"] = authorization
    if request.content_type is not None:
        headers["Content-Type"] = request.content_type
    skipped = WORKER_HEADERS | ({"content-type"} if request.content_type is not None else set())
    headers.update((k, v) for k, v in request.headers.items() if k.lower() not in skipped)
    if not any(k.lower() == "accept" for k in headers):
        headers["Accept"] = "application/json"
    if not any(k.lower() == "user-agent" for k in headers):
        headers["User-Agent"] = USER_AGENT
    return headers
