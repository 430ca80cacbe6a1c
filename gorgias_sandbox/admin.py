"""The ``/__admin`` API (no authentication, any Host): state, counters, reset, faults, rate limit."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from gorgias_sandbox.api_requests import Sandbox, rate_specs
from gorgias_sandbox.faults import parse_fault_config
from gorgias_sandbox.render import account_state

SANDBOX_KEY = web.AppKey("sandbox", Sandbox)


def _json(payload: Any, status: int = 200) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(payload), content_type="application/json")


def _bad(msg: str) -> web.Response:
    return _json({"error": {"msg": msg}}, 400)


def _sandbox(request: web.Request) -> Sandbox:
    return request.app[SANDBOX_KEY]


async def _json_body(request: web.Request) -> Any:
    raw = await request.read()
    try:
        return orjson.loads(raw) if raw else None
    except orjson.JSONDecodeError:
        raise web.HTTPBadRequest(text='{"error":{"msg":"Invalid JSON body."}}', content_type="application/json") \
            from None


async def health(request: web.Request) -> web.Response:
    """``GET /__admin/health`` → ``{"status": "ok"}``."""
    return _json({"status": "ok"})


async def state(request: web.Request) -> web.Response:
    """``GET /__admin/state[?account=DOMAIN]``: everything one account holds (default: the first one)."""
    sandbox = _sandbox(request)
    accounts = sandbox.state.accounts
    domain = request.query.get("account") or next(iter(accounts))
    account = accounts.get(domain)
    if account is None:
        return _json({"error": {"msg": f"No account {domain!r}."}}, 404)
    sandbox.jobs.advance(account, sandbox.now())
    return _json({**account_state(account), "accounts": list(accounts)})


async def merge_tickets(request: web.Request) -> web.Response:
    """``PUT /__admin/tickets/merge?source_id=&target_id=[&account=]``: merge one ticket into another, as an
    agent does in the helpdesk (Gorgias' public API has no ticket merge). The source's messages and tags
    move to the target; afterwards every ``/api/tickets/{source_id}/*`` call answers 301 to the target."""
    sandbox = _sandbox(request)
    accounts = sandbox.state.accounts
    account = accounts.get(request.query.get("account") or next(iter(accounts)))
    source, target = request.query.get("source_id", ""), request.query.get("target_id", "")
    if account is None:
        return _json({"error": {"msg": "No such account."}}, 404)
    if not (source.isdigit() and target.isdigit()) or source == target:
        return _bad("source_id and target_id must be two different ticket ids.")
    if int(source) not in account.tickets or int(target) not in account.tickets:
        return _json({"error": {"msg": "Resource not found."}}, 404)
    account.merge_tickets(int(source), int(target), sandbox.now())
    return _json({"source_id": int(source), "target_id": int(target)})


async def set_ticket_field(request: web.Request) -> web.Response:
    """``PUT /__admin/tickets/{ticket_id}/custom-fields/{field_id}[?account=]`` with the raw JSON value
    (``null`` clears): a value as Gorgias itself writes it (its AI fills the system-managed fields that
    API clients can neither set nor remove)."""
    sandbox = _sandbox(request)
    accounts = sandbox.state.accounts
    account = accounts.get(request.query.get("account") or next(iter(accounts)))
    tid, fid = request.match_info["ticket_id"], request.match_info["field_id"]
    if account is None or not (tid.isdigit() and fid.isdigit()):
        return _json({"error": {"msg": "Resource not found."}}, 404)
    ticket = account.tickets.get(int(tid))
    definition = account.field_defs.get(int(fid))
    if ticket is None or definition is None or definition["object_type"] != "Ticket":
        return _json({"error": {"msg": "Resource not found."}}, 404)
    value = await _json_body(request)
    if value is None:
        ticket.field_values.pop(int(fid), None)
    else:
        ticket.field_values[int(fid)] = value
    return _json({"ticket_id": int(tid), "field_id": int(fid), "value": value})


async def counters(request: web.Request) -> web.Response:
    """``GET /__admin/counters``: requests by route and outcome, 429s, injected faults by kind."""
    sandbox = _sandbox(request)
    return _json(sandbox.counters.snapshot(dict(sandbox.faults.injected)))


async def reset(request: web.Request) -> web.Response:
    """``POST /__admin/reset``: fresh state, counters and rate-limit buckets (faults unchanged)."""
    _sandbox(request).reset()
    return _json({"status": "reset"})


async def get_faults(request: web.Request) -> web.Response:
    """``GET /__admin/faults``: rules with live state, seed, and counts of injected faults."""
    return _json(_sandbox(request).faults.describe())


async def put_faults(request: web.Request) -> web.Response:
    """``PUT /__admin/faults`` with ``{"rules": [...]}`` or ``{"spec": "..."}`` (+ optional ``"seed"``):
    replaces the whole fault configuration; ``{"rules": []}`` turns every fault off."""
    body = await _json_body(request)
    if not isinstance(body, dict):
        return _bad('Expected {"rules": [...]} or {"spec": "..."}.')
    seed = body.get("seed")
    if seed is not None and type(seed) is not int:
        return _bad("seed must be an integer.")
    try:
        config = parse_fault_config(body)
    except ValueError as exc:
        return _bad(str(exc))
    sandbox = _sandbox(request)
    sandbox.faults.replace(config, seed)
    return _json(sandbox.faults.describe())


async def get_rate_limit(request: web.Request) -> web.Response:
    """``GET /__admin/rate-limit``: budgets and bucket levels."""
    return _json(_sandbox(request).limiter.snapshot())


async def put_rate_limit(request: web.Request) -> web.Response:
    """``PUT /__admin/rate-limit`` with ``{"rate_limit": "40/20s" | "off", "oauth_rate_limit": ...}``
    (OAuth optional: twice the API-key capacity). Buckets start empty again."""
    body = await _json_body(request)
    if not isinstance(body, dict) or not isinstance(body.get("rate_limit"), str) or set(body) - {
        "rate_limit", "oauth_rate_limit"
    }:
        return _bad('Expected {"rate_limit": "40/20s" or "off", "oauth_rate_limit": optional}.')
    oauth = body.get("oauth_rate_limit")
    if oauth is not None and not isinstance(oauth, str):
        return _bad("oauth_rate_limit must be a string like 80/20s or off.")
    try:
        api_key, oauth_spec = rate_specs(body["rate_limit"], oauth)
    except ValueError as exc:
        return _bad(str(exc))
    sandbox = _sandbox(request)
    sandbox.limiter.configure(api_key, oauth_spec)
    return _json(sandbox.limiter.snapshot())


async def get_jobs(request: web.Request) -> web.Response:
    """``GET /__admin/jobs``: how long a ticket job runs, and how many have not ended per account."""
    sandbox = _sandbox(request)
    jobs = sandbox.jobs
    return _json({"duration_s": jobs.duration_s,
                  "running": {domain: jobs.pending(account) for domain, account in sandbox.state.accounts.items()}})


async def put_jobs(request: web.Request) -> web.Response:
    """``PUT /__admin/jobs`` with ``{"duration_s": 2.5}``: how long jobs created from now on run."""
    body = await _json_body(request)
    duration = body.get("duration_s") if isinstance(body, dict) and set(body) == {"duration_s"} else None
    if type(duration) not in (int, float) or duration < 0:  # type: ignore[operator]
        return _bad('Expected {"duration_s": seconds >= 0}.')
    _sandbox(request).jobs.duration_s = float(duration)  # type: ignore[arg-type]
    return await get_jobs(request)


async def put_credentials(request: web.Request) -> web.Response:
    """``PUT /__admin/credentials`` with ``{"email": ..., "api_key": "..." | null, "oauth_token": ...,
    "account": optional}``: the user's only valid API key (or fixed OAuth token) from now on, as when it is
    reset in Gorgias' settings; ``null`` revokes it. Keys left out stay. ``POST /__admin/reset`` restores
    the configured ones."""
    body = await _json_body(request)
    if not isinstance(body, dict) or not isinstance(body.get("email"), str) or set(body) - {
        "email", "api_key", "oauth_token", "account"
    } or not {"api_key", "oauth_token"} & set(body):
        return _bad('Expected {"email": "...", "api_key": "..." | null and/or "oauth_token": "..." | null}.')
    if any(body.get(k) is not None and not isinstance(body[k], str) for k in ("api_key", "oauth_token")):
        return _bad("api_key and oauth_token must be strings or null.")
    sandbox = _sandbox(request)
    domain = body.get("account") or next(iter(sandbox.state.accounts))
    authenticator = sandbox.authenticators.get(domain)
    if authenticator is None:
        return _json({"error": {"msg": f"No account {domain!r}."}}, 404)
    try:
        if "api_key" in body:
            authenticator.set_api_key(body["email"], body["api_key"])
        if "oauth_token" in body:
            authenticator.set_oauth_token(body["email"], body["oauth_token"])
    except KeyError:
        return _json({"error": {"msg": f"No user {body['email']!r} in account {domain!r}."}}, 404)
    return _json({"account": domain, "email": body["email"], "changed": sorted({"api_key", "oauth_token"} & set(body))})


async def get_oauth(request: web.Request) -> web.Response:
    """``GET /__admin/oauth[?tokens=true]``: token lifetime, rotation, token requests and refusals, apps (and
    every token issued, for a test that looks for them where they must not be)."""
    return _json(_sandbox(request).oauth.describe(request.query.get("tokens") == "true"))


async def put_oauth(request: web.Request) -> web.Response:
    """``PUT /__admin/oauth`` with ``{"access_token_lifetime_s": 20, "rotate_refresh_tokens": true,
    "code_lifetime_s": 600}`` (any of them)."""
    body = await _json_body(request)
    lifetimes = ("access_token_lifetime_s", "code_lifetime_s")
    if not isinstance(body, dict) or not body or set(body) - {*lifetimes, "rotate_refresh_tokens"}:
        return _bad('Expected {"access_token_lifetime_s": seconds, "rotate_refresh_tokens": true|false, '
                    '"code_lifetime_s": seconds}.')
    for name in lifetimes:
        value = body.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float) or value <= 0):
            return _bad(f"{name} must be a positive number.")
    rotate = body.get("rotate_refresh_tokens")
    if rotate is not None and not isinstance(rotate, bool):
        return _bad("rotate_refresh_tokens must be true or false.")
    oauth = _sandbox(request).oauth
    if body.get("access_token_lifetime_s") is not None:
        oauth.lifetime_s = float(body["access_token_lifetime_s"])
    if body.get("code_lifetime_s") is not None:
        oauth.codes.lifetime_s = float(body["code_lifetime_s"])
    if rotate is not None:
        oauth.rotate = rotate
    return _json(oauth.describe())


async def oauth_app_action(request: web.Request) -> web.Response:
    """``POST /__admin/oauth/authorize`` ``{"client_id", "account"?, "scope"?}``: a new refresh token for the
    app (what the user authorizing it with ``scope``, default the app's configured one, would give);
    ``POST /__admin/oauth/revoke`` ``{"client_id", "refresh_token"?, "account"?}``: revoke one refresh token,
    or every token of the app."""
    body = await _json_body(request)
    if not isinstance(body, dict) or not isinstance(body.get("client_id"), str):
        return _bad('Expected {"client_id": "...", "account": optional}.')
    sandbox = _sandbox(request)
    domain = body.get("account") or next(iter(sandbox.state.accounts))
    try:
        if request.match_info["action"] == "authorize":
            scope = body.get("scope")
            return _json({"refresh_token": sandbox.oauth.authorize(domain, body["client_id"],
                                                                   scope if isinstance(scope, str) else None)})
        token = body.get("refresh_token")
        return _json({"revoked": sandbox.oauth.revoke(domain, body["client_id"], token if isinstance(token, str)
                                                      else None)})
    except KeyError:
        return _json({"error": {"msg": f"No OAuth app {body['client_id']!r} in account {domain!r}."}}, 404)


async def routes(request: web.Request) -> web.Response:
    """``GET /__admin/routes``: every ``METHOD /api/...`` template served."""
    return _json(_sandbox(request).router.templates())


def add_admin_routes(app: web.Application) -> None:
    """Register the admin endpoints on ``app``."""
    app.router.add_get("/__admin/health", health)
    app.router.add_get("/__admin/state", state)
    app.router.add_get("/__admin/counters", counters)
    app.router.add_put("/__admin/tickets/merge", merge_tickets)
    app.router.add_put("/__admin/tickets/{ticket_id}/custom-fields/{field_id}", set_ticket_field)
    app.router.add_post("/__admin/reset", reset)
    app.router.add_get("/__admin/faults", get_faults)
    app.router.add_put("/__admin/faults", put_faults)
    app.router.add_get("/__admin/rate-limit", get_rate_limit)
    app.router.add_put("/__admin/rate-limit", put_rate_limit)
    app.router.add_get("/__admin/routes", routes)
    app.router.add_put("/__admin/credentials", put_credentials)
    app.router.add_get("/__admin/oauth", get_oauth)
    app.router.add_put("/__admin/oauth", put_oauth)
    app.router.add_post(r"/__admin/oauth/{action:authorize|revoke}", oauth_app_action)
    app.router.add_get("/__admin/jobs", get_jobs)
    app.router.add_put("/__admin/jobs", put_jobs)
