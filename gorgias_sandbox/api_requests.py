"""The request pipeline of ``/api``: account by Host, auth, faults, rate limit, routing, handling.

Order for each request (documented in docs/sandbox.md):

1. injected latency;
2. ``Host`` → account (unknown: HTML 404);
3. authentication (401);
4. maintenance window (503) and 429 bursts (fault injection);
5. the account's leaky bucket (429, nothing applied);
6. route and method (404 / 405; PATCH is always 405), role (403), an OAuth token's scope (403
   ``insufficient_scope``, :mod:`gorgias_sandbox.scopes`);
7. injected 500/502/503, dropped or hung connection - decided before anything is applied;
8. body parsing and the handler, which validates everything before changing anything;
9. ``apply_then_drop``: the change is kept but the answer never sent.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from typing import Any

import orjson
from aiohttp import web

from gorgias_sandbox import errors
from gorgias_sandbox.auth import Authenticator, Principal
from gorgias_sandbox.counters import Counters
from gorgias_sandbox.errors import ApiError
from gorgias_sandbox.faults import FaultInjector, Injected
from gorgias_sandbox.job_runner import JobQueue
from gorgias_sandbox.oauth import TOKEN_PATH, OAuthServer
from gorgias_sandbox.oauth_codes import AUTHORIZE_PATH
from gorgias_sandbox.ratelimit import Clock, RateLimiter, RateSpec, parse_rate
from gorgias_sandbox.routes_account import ROUTES as ACCOUNT_ROUTES
from gorgias_sandbox.routes_custom_fields import ROUTES as CUSTOM_FIELD_ROUTES
from gorgias_sandbox.routes_customers import ROUTES as CUSTOMER_ROUTES
from gorgias_sandbox.routes_jobs import ROUTES as JOB_ROUTES
from gorgias_sandbox.routes_jobs import finish_job
from gorgias_sandbox.routes_messages import ROUTES as MESSAGE_ROUTES
from gorgias_sandbox.routes_surveys import ROUTES as SURVEY_ROUTES
from gorgias_sandbox.routes_tags import ROUTES as TAG_ROUTES
from gorgias_sandbox.routes_tickets import ROUTES as TICKET_ROUTES
from gorgias_sandbox.routes_users import ROUTES as USER_ROUTES
from gorgias_sandbox.routing import Call, Match, Route, Router
from gorgias_sandbox.scopes import scope_refusal
from gorgias_sandbox.settings import SandboxSettings
from gorgias_sandbox.state import AccountState, SandboxState
from gorgias_sandbox.timestamps import Timestamps, WallClock

CALL_LIMIT = "X-Gorgias-Account-Api-Call-Limit"
JSON = "application/json"
ALL_ROUTES: tuple[Route, ...] = (*TICKET_ROUTES, *MESSAGE_ROUTES, *CUSTOMER_ROUTES, *CUSTOM_FIELD_ROUTES,
                                 *TAG_ROUTES, *SURVEY_ROUTES, *USER_ROUTES, *JOB_ROUTES, *ACCOUNT_ROUTES)
_ERROR_MESSAGES = {500: errors.INTERNAL_ERROR, 502: errors.BAD_GATEWAY, 503: errors.EXTERNAL_SERVICE}
_BODY_METHODS = frozenset({"POST", "PUT", "DELETE", "PATCH"})


def rate_specs(rate_limit: str, oauth_rate_limit: str | None) -> tuple[RateSpec | None, RateSpec | None]:
    """The API-key and OAuth budgets; OAuth defaults to twice the API-key capacity over the same window."""
    api_key = parse_rate(rate_limit)
    if oauth_rate_limit is not None:
        return api_key, parse_rate(oauth_rate_limit)
    return api_key, None if api_key is None else RateSpec(api_key.capacity * 2, api_key.window_s)


def _json(status: int, payload: Any, headers: dict[str, str]) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(payload), headers=headers, content_type=JSON)


def _error(exc: ApiError, headers: dict[str, str]) -> web.Response:
    if exc.headers:
        headers = {**headers, **exc.headers}
    if exc.status == 301:
        return web.Response(status=301, headers=headers)  # merged objects: an empty body and Location
    return _json(exc.status, exc.body(), headers)


_MERGEABLE = {"/api/tickets/{": "merged_tickets", "/api/customers/{": "merged_customers"}


def merged_redirect(account: AccountState, template: str, params: tuple[int, ...], path: str) -> None:
    """301 (empty body, ``Location`` = the same path on the surviving object) for any call under
    ``/api/tickets/{id}`` or ``/api/customers/{id}`` whose id was merged into another one."""
    for prefix, attribute in _MERGEABLE.items():
        if template.startswith(prefix) and params:
            target = getattr(account, attribute).get(params[0])
            if target is not None:
                resource = prefix[:-1]
                location = resource + str(target) + path[len(resource) + len(str(params[0])):]
                raise ApiError(301, "Moved Permanently.", headers={"Location": location})


def _unknown_host() -> web.Response:
    return web.Response(status=404, body=errors.UNKNOWN_HOST_HTML, content_type="text/html", charset="utf-8")


def _drop(request: web.Request) -> web.Response:
    """Close the connection without answering (the returned response is never written)."""
    transport = request.transport
    if transport is not None:
        transport.close()
    return web.Response(status=499)


class Sandbox:
    """A sandbox's state, limiter, faults and counters, and the ``/api`` request pipeline."""

    def __init__(self, settings: SandboxSettings, clock: Clock | None = None, wall: WallClock | None = None,
                 routes: Iterable[Route] = ALL_ROUTES) -> None:
        self.settings = settings
        self.clock: Clock = clock or time.monotonic
        self.timestamps = Timestamps(wall)
        self.state = SandboxState(settings.accounts, self.now())
        self.authenticators = {
            a.domain: Authenticator(a, self.state.accounts[a.domain].users_by_email) for a in settings.accounts
        }
        self.limiter = RateLimiter(*rate_specs(settings.rate_limit, settings.oauth_rate_limit), self.clock)
        self.oauth = OAuthServer(settings.accounts, lambda domain, email: self.authenticators[domain].principal(
            email, "oauth"), self.clock, settings.oauth_access_token_lifetime_s, settings.oauth_rotate_refresh_tokens,
            settings.oauth_code_lifetime_s)
        self.faults = FaultInjector(settings.fault_config(), settings.seed, self.clock, settings.hang_max_s)
        self.jobs = JobQueue(self.clock, settings.job_duration_s, finish_job, self.faults.job_failure)
        self.counters = Counters()
        self.router = Router(routes)
        self.stopping = asyncio.Event()

    def now(self) -> str:
        """The current time in Gorgias's format."""
        return self.timestamps.now()

    def reset(self) -> None:
        """Fresh state, counters, buckets and the configured credentials (the fault configuration stays)."""
        self.state.reset(self.now())
        for authenticator in self.authenticators.values():
            authenticator.reset()
        self.oauth.reset()
        self.jobs.forget()
        self.counters.reset()
        self.faults.reset_counts()
        self.limiter.reset()

    async def _hang(self, request: web.Request, injected: Injected) -> web.Response:
        """Never answer: wait until the bound (or the server stops), then close the connection."""
        try:
            await asyncio.wait_for(self.stopping.wait(), injected.hang_s)
        except TimeoutError:
            pass
        return _drop(request)

    # complexity: the documented order of a request's checks (docs/sandbox.md), one branch each
    async def handle(self, request: web.Request) -> web.StreamResponse:  # noqa: C901
        """Answer one request that is not for ``/__admin``.

        Gorgias' order of checks, each of which may answer first: the host (the account), the
        credentials, an injected outage, the account's budget, the route and the caller's permission,
        an injected fault; then the route's handler.
        """
        method = request.method
        path = request.path
        is_api = path == "/api" or path.startswith("/api/")
        match = self.router.resolve(path) if is_api else None
        template = None if match is None else match.template
        if self.faults.active:
            delay = self.faults.latency_s(method, template)
            if delay > 0:
                await asyncio.sleep(delay)
        route_key = f"{method} {template or '(no route)'}"

        domain = request.headers.get("Host", "").split(".", 1)[0].split(":", 1)[0].lower()
        account = self.state.accounts.get(domain)
        if account is not None and path.rstrip("/") == TOKEN_PATH and method == "POST":
            return await self._token(request, domain)
        if account is not None and path.rstrip("/") == AUTHORIZE_PATH and method == "GET":
            return self._authorize(request, domain)
        if account is None or not is_api:
            self.counters.record("(unknown host)" if account is None else route_key, 404)
            return _unknown_host()
        self.jobs.advance(account, self.now())  # background jobs whose time has come start or finish first
        principal = self._authenticate(domain, account, request.headers.get("Authorization"), route_key)
        if isinstance(principal, web.Response):
            return principal
        headers: dict[str, str] = {}
        refused = self._outage(method, template, domain, principal.auth_type, route_key)
        if refused is None:  # not `or`: an aiohttp response is a mapping, false when empty
            refused = self._admit(domain, principal.auth_type, route_key, headers)
        if refused is not None:
            return refused
        route = self._route(match, method, principal, route_key, headers)
        if isinstance(route, web.Response):
            return route
        if self.faults.active:
            injected = await self._injected(request, template, route_key, headers)
            if injected is not None:
                return injected
        assert match is not None  # a route was found
        response = await self._answer(request, route, match, account, principal, headers)
        if self.faults.active and self.faults.drop_after_applying(method, template):
            self.counters.record(route_key, "dropped")
            return _drop(request)
        self.counters.record(route_key, response.status)
        return response

    async def _token(self, request: web.Request, domain: str) -> web.Response:
        """``POST /oauth/token`` (:mod:`gorgias_sandbox.oauth`)."""
        raw = await request.read()
        answer = self.oauth.token(domain, request.content_type, raw, request.headers.get("Authorization"))
        self.counters.record(f"POST {TOKEN_PATH}", answer.status)
        return _json(answer.status, answer.body, answer.headers)

    def _authorize(self, request: web.Request, domain: str) -> web.Response:
        """``GET /oauth/authorize`` (:mod:`gorgias_sandbox.oauth_codes`): a redirect, or a page redirecting nowhere."""
        params = {key: request.query.getall(key) for key in set(request.query.keys())}
        answer = self.oauth.authorization(domain, params)
        self.counters.record(f"GET {AUTHORIZE_PATH}", answer.status)
        if answer.location is not None:
            headers = {"Location": answer.location, "Cache-Control": "no-store"}
            return web.Response(status=answer.status, headers=headers)
        return web.Response(status=answer.status, text=answer.page, content_type="text/html")

    def _authenticate(
        self, domain: str, account: AccountState, authorization: str | None, route_key: str
    ) -> Principal | web.Response:
        """The caller, or the 401 answer (with the call-limit header of the budget the credential would use)."""
        principal = self.authenticators[domain].authenticate(authorization)
        if principal is None and authorization and authorization.lower().startswith("bearer "):
            principal = self.oauth.caller(authorization[7:].strip(), domain)
        if principal is not None and principal.user_id in account.users:
            return principal
        auth_type = self.authenticators[domain].auth_type_of(authorization)
        used = self.limiter.call_limit(domain, auth_type)
        self.counters.record(route_key, 401)
        return _error(ApiError(401, errors.UNAUTHORIZED), {} if used is None else {CALL_LIMIT: used})

    def _outage(self, method: str, template: str | None, domain: str, auth_type: str,
                route_key: str) -> web.Response | None:
        """An injected maintenance (503) or rate-limit storm (429) answer, if one is set for this call."""
        gate = self.faults.gate(method, template) if self.faults.active else None
        if gate is None:
            return None
        used = self.limiter.call_limit(domain, auth_type)
        gate_headers = {} if used is None else {CALL_LIMIT: used}
        self.counters.record(route_key, gate.status)
        if gate.kind == "maintenance":
            return _error(ApiError(503, errors.EXTERNAL_SERVICE), gate_headers)
        gate_headers["Retry-After"] = str(gate.retry_after_s)
        return _error(ApiError(429, errors.TOO_MANY_REQUESTS), gate_headers)

    def _admit(self, domain: str, auth_type: str, route_key: str, headers: dict[str, str]) -> web.Response | None:
        """Take the call from the account's budget (its call-limit header goes into ``headers``), or the 429."""
        admission = self.limiter.admit(domain, auth_type)
        if admission is None:
            return None
        headers[CALL_LIMIT] = admission.call_limit
        if admission.allowed:
            return None
        headers["Retry-After"] = str(admission.retry_after_s)
        self.counters.record(route_key, 429)
        return _error(ApiError(429, errors.TOO_MANY_REQUESTS), headers)

    def _route(self, match: Match | None, method: str, principal: Principal, route_key: str,
               headers: dict[str, str]) -> Route | web.Response:
        """The route of the method, or the 404/405 (no such route) or 403 (not allowed to this caller: its role,
        or its OAuth token's scope, :mod:`gorgias_sandbox.scopes`) answer."""
        route = None if match is None else match.routes.get(method)
        if route is None:
            status = 405 if method == "PATCH" or match is not None else 404
            self.counters.record(route_key, status)
            msg = errors.METHOD_NOT_ALLOWED if status == 405 else errors.NOT_FOUND
            return _error(ApiError(status, msg), headers)
        if (route.writes and principal.read_only) or (route.admin_only and principal.role != "admin"):
            self.counters.record(route_key, 403)
            return _error(ApiError(403, errors.FORBIDDEN), headers)
        refusal = None if principal.scope is None else scope_refusal(principal.scope, method, route.template)
        if refusal is not None:
            self.counters.record(route_key, 403)
            return _error(refusal, headers)
        return route

    async def _injected(self, request: web.Request, template: str | None, route_key: str,
                        headers: dict[str, str]) -> web.StreamResponse | None:
        """An injected error, dropped connection or hung call before the route is handled, if one is due."""
        injected = self.faults.before_handling(request.method, template)
        if injected is None:
            return None
        if injected.kind == "error":
            self.counters.record(route_key, injected.status)
            return _error(ApiError(injected.status, _ERROR_MESSAGES[injected.status]), headers)
        if injected.kind == "drop":
            self.counters.record(route_key, "dropped")
            return _drop(request)
        self.counters.record(route_key, "hung")
        return await self._hang(request, injected)

    async def _answer(self, request: web.Request, route: Route, match: Match, account: AccountState,
                      principal: Principal, headers: dict[str, str]) -> web.Response:
        """The route handler's answer (or its error) to the request."""
        try:
            body = await self._body(request) if request.method in _BODY_METHODS and request.body_exists else None
            merged_redirect(account, match.template, match.params, request.path)
            call = Call(account, principal, match.params, request.query, body, self.now(), request.path, self.jobs)
            reply = route.handler(call)
        except ApiError as exc:
            return _error(exc, headers)
        if reply.payload is None:
            return web.Response(status=reply.status, headers=headers)
        return _json(reply.status, reply.payload, headers)

    async def _body(self, request: web.Request) -> Any:
        try:
            raw = await request.read()
        except web.HTTPRequestEntityTooLarge:
            raise ApiError(413, errors.PAYLOAD_TOO_LARGE) from None
        if not raw:
            return None
        content_type = request.content_type
        if content_type != "application/octet-stream" and "json" not in content_type:
            # aiohttp reports application/octet-stream when no Content-Type was sent: accepted (INF).
            raise ApiError(415, errors.UNSUPPORTED_MEDIA_TYPE)
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise ApiError(400, errors.INVALID_JSON) from None
