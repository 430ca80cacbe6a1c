"""The authorization endpoint of Gorgias' OAuth server, as the sandbox plays it (RFC 6749 §4.1).

``GET https://{domain}.gorgias.com/oauth/authorize?response_type=code&client_id=..&redirect_uri=..
&scope=..&state=..`` is what a browser opens when a user authorizes an app. The sandbox has no login
page: it acts as the app's user, signed in, who approves at once. The answer is a ``302`` to the
redirection URI with ``code`` (and ``state`` when one was sent); a request it cannot trust to redirect
(client unknown or missing, redirection URI missing, malformed or not registered) is a ``400`` page that
redirects nowhere (§4.1.2.1); the other refusals redirect with ``error`` (``invalid_request``,
``unsupported_response_type``, ``invalid_scope``). A code is short-lived (the configured lifetime, RFC: at
most 10 minutes advised), bound to the client and to the redirection URI of the request, and works once
(:meth:`AuthorizationCodes.redeem`): using it again is refused and revokes what it gave (§4.1.2).
"""

from __future__ import annotations

import html
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

AUTHORIZE_PATH = "/oauth/authorize"
_SCOPE_CHARS = frozenset(chr(c) for c in range(0x21, 0x7F)) - {'"', "\\"}  # RFC 6749 §3.3 NQCHAR


@dataclass(frozen=True)
class AuthorizeAnswer:
    """A redirect (``location``) or a page that redirects nowhere (``page``)."""

    status: int
    location: str | None = None
    page: str | None = None


@dataclass(frozen=True)
class Code:
    """What one authorization code stands for."""

    domain: str
    client_id: str
    redirect_uri: str | None  # as the authorization request named it (None: it named none)
    scope: str
    expires_at: float


@dataclass(frozen=True)
class Redemption:
    """A code exchanged: what it stood for, or why not, and the grant to revoke when it was used before."""

    code: Code | None
    error: str = ""
    revoke_grant: int | None = None


def single_values(params: Mapping[str, Sequence[str]]) -> tuple[dict[str, str], list[str]]:
    """The parameters, and the names of those sent more than once (RFC 6749 §3.1: each at most once);
    one sent without a value counts as omitted."""
    repeated = sorted(k for k, values in params.items() if len([v for v in values if v]) > 1)
    return {k: v for k, values in params.items() for v in values if v}, repeated


def request_error(form: dict[str, str], repeated: list[str]) -> tuple[str, str] | None:
    """The error (code, description) an authorization request redirects with, once its client and
    redirection URI are known to be good; None when it can be granted."""
    if repeated:
        return "invalid_request", f"parameter(s) {', '.join(repeated)} sent more than once"
    response_type = form.get("response_type")
    if response_type is None:
        return "invalid_request", "response_type is required (code)"
    if response_type != "code":
        return "unsupported_response_type", f"response_type {response_type!r} is not supported; use code"
    problem = scope_problem(form.get("scope"))
    return None if problem is None else ("invalid_scope", problem)


def refusal_page(reason: str) -> AuthorizeAnswer:
    page = (f"<!doctype html><title>Authorization refused</title><h1>This app cannot be authorized</h1>"
            f"<p>{html.escape(reason)}</p>")
    return AuthorizeAnswer(400, page=page)


def with_query(uri: str, params: dict[str, str]) -> str:
    """``uri`` with ``params`` added to its query, keeping the query it has (RFC 6749 §3.1.2)."""
    parts = urlsplit(uri)
    query = urlencode([*parse_qsl(parts.query, keep_blank_values=True), *params.items()])
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))


def redirection_uri(given: str | None, registered: Sequence[str]) -> str | AuthorizeAnswer:
    """Where to send the browser (§3.1.2): the registered URI named exactly, the only registered one when
    none is named, or (none registered) any absolute URI without a fragment, which must then be named."""
    if given is None:
        if len(registered) == 1:
            return registered[0]
        return refusal_page("redirect_uri is required: the app has "
                             + ("several redirection URIs registered." if registered else "none registered."))
    parts = urlsplit(given)
    if not parts.scheme or not parts.netloc or "#" in given:
        return refusal_page("redirect_uri must be an absolute URI without a fragment.")
    if registered and given not in registered:
        return refusal_page("redirect_uri is not one the app registered.")
    return given


def scope_problem(scope: str | None) -> str | None:
    """Why a requested scope is refused (``invalid_scope``): missing, or not space-separated scope tokens."""
    if scope is None:
        return "scope is required (space-separated, e.g. 'openid offline tickets:write')"
    if any(not token or set(token) - _SCOPE_CHARS for token in scope.split(" ")):
        return "scope must be scope tokens separated by single spaces"
    return None


class AuthorizationCodes:
    """The codes handed out and not yet expired, those already exchanged with the grant each gave."""

    def __init__(self, clock: Callable[[], float], lifetime_s: float) -> None:
        self._clock = clock
        self.lifetime_s = lifetime_s
        self._open: dict[str, Code] = {}
        self._used: dict[str, tuple[Code, int]] = {}
        self.issued = 0

    def reset(self) -> None:
        self._open.clear()
        self._used.clear()
        self.issued = 0

    def issue(self, domain: str, client_id: str, redirect_uri: str | None, scope: str) -> str:
        """A new code for this client, redirection URI and scope."""
        self._forget_expired()
        value = "oac-" + secrets.token_urlsafe(24)
        self._open[value] = Code(domain, client_id, redirect_uri, scope, self._clock() + self.lifetime_s)
        self.issued += 1
        return value

    def redeem(self, value: str, domain: str, client_id: str, redirect_uri: str | None) -> Redemption:
        """The code exchanged by ``client_id`` with ``redirect_uri`` (§4.1.3), once."""
        self._forget_expired()
        used = self._used.get(value)
        if used is not None and used[0].domain == domain:
            return Redemption(None, "The authorization code was already used; the tokens it gave are revoked.",
                              revoke_grant=used[1])
        code = self._open.get(value)
        if code is None or code.domain != domain:
            return Redemption(None, "The authorization code is invalid or expired.")
        if code.client_id != client_id:
            return Redemption(None, "The authorization code was issued to another client.")
        if code.redirect_uri is not None and redirect_uri != code.redirect_uri:
            return Redemption(None, "redirect_uri is not the one the authorization request named.")
        del self._open[value]
        return Redemption(code)

    def mark_used(self, value: str, code: Code, grant: int) -> None:
        """Remember a redeemed code until it would have expired, with the grant its tokens belong to."""
        self._used[value] = (code, grant)

    def _forget_expired(self) -> None:
        now = self._clock()
        self._open = {v: code for v, code in self._open.items() if code.expires_at > now}
        self._used = {v: used for v, used in self._used.items() if used[0].expires_at > now}
