"""The worker's HTTP control surface: health, status, activate/pause, metrics (and preview/test)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import SecretStr

from worker.core.chain.preview import preview
from worker.core.config.base import ConfigError, Problem
from worker.core.config.deployment import Store
from worker.core.config.worker_config import Destination
from worker.core.templates import check_templates
from worker.gorgias.endpoint_trial import EndpointTestError, plan_test, send_test
from worker.kafka.control import send_command
from worker.service.config_loading import parse_text
from worker.service.console_api import console_routes
from worker.service.console_page import page_routes, security_headers
from worker.service.control_http import (
    READ_ONLY_METHODS,
    RUNTIME,
    TOKEN,
    error,
    json_body,
    json_response,
    token_refusal,
)
from worker.service.credentials_api import credential_routes
from worker.service.destinations_api import destination_routes
from worker.service.runtime import Runtime

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


async def live(request: web.Request) -> web.Response:
    """The process is up and its loop answers."""
    runtime = request.app[RUNTIME]
    if runtime.failed is not None:
        return json_response({"status": "failed", "error": str(runtime.failed)}, status=500)
    return json_response({"status": "ok"})


async def ready(request: web.Request) -> web.Response:
    """Every pipeline started and the control topic was read: safe to send traffic and count on it."""
    runtime = request.app[RUNTIME]
    if runtime.ready.is_set() and runtime.failed is None:
        return json_response({"status": "ready"})
    if runtime.failed is None and runtime.trouble is not None:  # Kafka unreachable: back by itself when it is
        return json_response({"status": "unavailable", "trouble": runtime.trouble}, status=503)
    return json_response({"status": "starting" if runtime.failed is None else "failed"}, status=503)


async def metrics(request: web.Request) -> web.Response:
    body = request.app[RUNTIME].metrics_text()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def destinations(request: web.Request) -> web.Response:
    return json_response(request.app[RUNTIME].status())


def _pipeline_status(request: web.Request) -> dict[str, Any] | None:
    return request.app[RUNTIME].destination_status(request.match_info["name"])


async def destination(request: web.Request) -> web.Response:
    status = _pipeline_status(request)
    if status is None:
        return error(404, f"no destination named {request.match_info['name']!r}")
    return json_response(status)


@web.middleware
async def require_token(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every route that acts (POST, PUT, DELETE) needs ``Authorization: Bearer <token>`` when a token is
    configured: 401 when the header is missing or not a bearer token, 403 when the token is wrong."""
    if request.method in READ_ONLY_METHODS:
        return await handler(request)
    return token_refusal(request) or await handler(request)


async def validate_config(request: web.Request) -> web.Response:
    """A config (YAML or JSON body) in; ``{"ok": bool, "errors": [...], "warnings": [...]}`` out.

    ``${VAR}`` references resolve to their ``:-default`` only, and secrets are not read.
    """
    raw = await request.read()
    try:
        # never the worker's own environment: a ${VAR} or a GORGIAS_WORKER__ variable could echo a secret back
        cfg = parse_text(raw.decode("utf-8", "replace"), "request body", environ={})
    except ConfigError as exc:
        return json_response({"ok": False, "errors": [p.as_dict() for p in exc.items], "warnings": []})
    problems = [Problem.from_line(line) for line in check_templates(cfg)]
    return json_response({
        "ok": not problems, "errors": [p.as_dict() for p in problems], "warnings": cfg.warnings(),
        "destinations": [d.name for d in cfg.destinations],
    })


def _set_active(active: bool) -> Handler:
    async def handler(request: web.Request) -> web.Response:
        runtime = request.app[RUNTIME]
        name = request.match_info["name"]
        saved = runtime.saved.stored(name) if runtime.saved is not None else None
        if name not in runtime.pipelines and name not in runtime.failed_destinations and saved is None:
            return error(404, f"no destination named {name!r}")
        await send_command(runtime.config.kafka, name, active)
        runtime.apply_command(name, active)  # this replica at once; the others through the topic
        topic = runtime.config.kafka.store_topic(Store.CONTROL)
        return json_response({"destination": name, "active": active, "propagated_via": topic})

    return handler


def create_control_app(
    runtime: Runtime, extra_routes: list[web.RouteDef] | None = None, token: SecretStr | None = None
) -> web.Application:
    """The control API; with ``token``, its POST routes need it as a bearer token."""
    app = web.Application(middlewares=[security_headers, require_token])
    app[RUNTIME] = runtime
    app[TOKEN] = token
    app.add_routes([
        web.get("/health/live", live),
        web.get("/health/ready", ready),
        web.get("/metrics", metrics),
        web.get("/destinations", destinations),
        *destination_routes(),
        *credential_routes(),
        web.get("/destinations/{name}", destination),
        web.post("/destinations/{name}/activate", _set_active(True)),
        web.post("/destinations/{name}/pause", _set_active(False)),
        web.post("/destinations/{name}/preview", preview_requests),
        web.post("/destinations/{name}/test", test_endpoint),
        web.post("/validate", validate_config),
        *console_routes(),
        *page_routes(),
        *(extra_routes or []),
    ])
    return app


# --------------------------------------------------------------------------------------------------
# Sample payloads and endpoint testing (worker.core.chain.preview, worker.gorgias.endpoint_trial)

MAX_PREVIEW_RECORDS = 1000


def _configured(runtime: Runtime, name: str) -> Destination:
    """The destination named in the route, or a 404 answer."""
    try:
        return runtime.destination(name)
    except KeyError:
        raise web.HTTPNotFound(text=orjson.dumps({"error": f"no destination named {name!r}"}).decode(),
                               content_type="application/json") from None


async def preview_requests(request: web.Request) -> web.Response:
    """``{"records": [...]}`` -> the requests the destination's settings make of them (and the dead letters)."""
    runtime = request.app[RUNTIME]
    name = request.match_info["name"]
    dest = _configured(runtime, name)
    doc = await json_body(request)
    records = doc.get("records") if isinstance(doc, dict) else None
    if not isinstance(records, list):
        return error(400, 'send {"records": [record, ...]}')
    if len(records) > MAX_PREVIEW_RECORDS:
        return error(400, f"at most {MAX_PREVIEW_RECORDS} records per preview (got {len(records)})")
    pipeline = runtime.pipelines.get(name)
    try:
        items = preview(dest, records, renderer=pipeline.chain.renderer if pipeline is not None else None,
                        max_record_bytes=runtime.config.kafka.max_record_bytes)
    except ValueError as exc:
        return error(400, str(exc))
    return json_response({"destination": name, "items": [item.as_dict() for item in items]})


async def test_endpoint(request: web.Request) -> web.Response:
    """One sample request (``{"record": {...}}`` and/or ``{"payload": ...}``, both optional): without
    ``"confirm": true`` what it would create or change and whom it would email; with it, sent once."""
    runtime = request.app[RUNTIME]
    name = request.match_info["name"]
    dest = _configured(runtime, name)
    doc = await json_body(request)
    if not isinstance(doc, dict) or set(doc) - {"record", "payload", "confirm"}:
        return error(400, 'send {"confirm": true} with {"record": {...}} and/or {"payload": ...}, or neither')
    try:
        sample, effect = plan_test(dest, doc.get("record"), doc.get("payload"))
    except (EndpointTestError, ValueError) as exc:
        return error(400, str(exc))
    if doc.get("confirm") is not True:
        return json_response({"sent": False, **effect.as_dict(), "request": sample.as_dict()})
    if runtime.delivery is None:
        return error(503, "the worker is still starting")
    result = await send_test(dest, runtime.delivery, sample)
    return json_response({"sent": True, **result.as_dict(), "effect": effect.as_dict()})
