"""The destination console's page: HTML, CSS and ES modules shipped inside the package (no CDN, no
build step), served at ``/`` and ``/console``, and the headers every answer of the web port carries.

The page only talks to the control API. Its Content-Security-Policy allows scripts, styles and
requests from this origin alone, no inline script or style, and no framing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from importlib import resources

from aiohttp import web

__all__ = ["ASSETS", "CONTENT_SECURITY_POLICY", "page_routes", "security_headers"]

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
}
TYPES = {".html": "text/html", ".css": "text/css", ".js": "text/javascript"}


def _assets() -> dict[str, tuple[bytes, str]]:
    """Every file of the page by its URL path under ``/console/``, with its content type (read once)."""
    root = resources.files("worker.service") / "console"
    found: dict[str, tuple[bytes, str]] = {}

    def walk(folder: resources.abc.Traversable, prefix: str) -> None:
        for entry in folder.iterdir():
            if entry.is_dir():
                walk(entry, f"{prefix}{entry.name}/")
                continue
            kind = TYPES.get("." + entry.name.rsplit(".", 1)[-1])
            if kind is not None:
                found[prefix + entry.name] = (entry.read_bytes(), kind)

    walk(root, "")
    return found


ASSETS = _assets()


async def page(_request: web.Request) -> web.Response:
    body, kind = ASSETS["index.html"]
    return web.Response(body=body, content_type=kind, charset="utf-8", headers={"Cache-Control": "no-cache"})


async def asset(request: web.Request) -> web.Response:
    found = ASSETS.get(request.match_info["path"])
    if found is None:
        raise web.HTTPNotFound(text="no such file", content_type="text/plain")
    body, kind = found
    return web.Response(body=body, content_type=kind, charset="utf-8", headers={"Cache-Control": "no-cache"})


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def security_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every answer of the web port: no sniffing, no framing, this origin only."""
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        exc.headers.update(HEADERS)
        raise
    response.headers.update(HEADERS)
    return response


def page_routes() -> list[web.RouteDef]:
    return [
        web.get("/", page),
        web.get("/console", page),
        web.get("/console/", page),
        web.get("/console/{path:.+}", asset),
    ]
