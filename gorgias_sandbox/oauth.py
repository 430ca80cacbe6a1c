"""Gorgias' OAuth server, as the sandbox plays it: ``https://{domain}.gorgias.com/oauth/token`` (and
``/oauth/authorize``, :mod:`gorgias_sandbox.oauth_codes`).

An OAuth app (``client_id``, ``client_secret``) acts for one user of the account. The token endpoint takes
a form-encoded body (each parameter once) and the client's credentials either in the body (``client_id``,
``client_secret``) or as HTTP Basic, not both; a wrong client is ``401 invalid_client``. Two grants:

* ``authorization_code`` (RFC 6749 §4.1.3): ``code`` from ``/oauth/authorize`` and the same
  ``redirect_uri`` that request named; a code works once, for the client it was issued to, until it
  expires. Reused, expired, another client's or another redirect URI: ``400 invalid_grant`` (a reused code
  also revokes every token it gave). The answer has a ``refresh_token`` when the scope holds ``offline``.
* ``refresh_token`` (§6): a refresh token of the app is exchanged for an access token; with rotation on,
  the answer holds a new refresh token and the old one is refused from then on (``400 invalid_grant``),
  as a revoked or unknown one is.

Answers: ``{"access_token", "token_type": "Bearer", "expires_in", "scope"[, "refresh_token"]}`` with
``Cache-Control: no-store``. Access tokens expire after the configured lifetime (Gorgias: 24 h; tests use
20 s): an expired one is a 401 on ``/api``, as an unknown one is. They count against the account's OAuth
budget (80 / 20 s).
"""

from __future__ import annotations

import base64
import binascii
import itertools
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import parse_qs

from gorgias_sandbox.auth import Principal
from gorgias_sandbox.oauth_codes import (
    AuthorizationCodes,
    AuthorizeAnswer,
    redirection_uri,
    refusal_page,
    request_error,
    single_values,
    with_query,
)
from gorgias_sandbox.settings import AccountSettings, OAuthAppSettings

TOKEN_PATH = "/oauth/token"
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


@dataclass(frozen=True)
class _Grant:
    """One authorization of the app by its user: the tokens it gave share its number and scope."""

    number: int
    scope: str


@dataclass
class _App:
    settings: OAuthAppSettings
    domain: str
    principal: Principal
    refresh_tokens: dict[str, _Grant] = field(default_factory=dict)


@dataclass(frozen=True)
class _Access:
    domain: str
    principal: Principal
    expires_at: float
    grant: int
    scope: str


@dataclass(frozen=True)
class TokenAnswer:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


def _oauth_error(status: int, code: str, description: str) -> TokenAnswer:
    headers = {"WWW-Authenticate": 'Basic realm="oauth"'} if status == 401 else {}
    return TokenAnswer(status, {"error": code, "error_description": description}, headers)


class OAuthServer:
    """The OAuth apps of every account: their refresh tokens, the codes and the access tokens issued."""

    def __init__(self, accounts: list[AccountSettings], principal_of: Callable[[str, str], Principal],
                 clock: Callable[[], float], lifetime_s: float, rotate: bool, code_lifetime_s: float = 600.0) -> None:
        self._accounts = accounts
        self._principal_of = principal_of
        self._clock = clock
        self.lifetime_s = lifetime_s
        self.rotate = rotate
        self.codes = AuthorizationCodes(clock, code_lifetime_s)
        self._apps: dict[tuple[str, str], _App] = {}
        self._access: dict[str, _Access] = {}
        self._grants = itertools.count(1)
        self.token_requests = 0
        self.tokens_issued = 0
        self.refused: dict[str, int] = {}
        self.issued: list[str] = []  # every token given out (for tests that look for them where they must not be)
        self.reset()

    def reset(self) -> None:
        """The configured apps with their configured refresh tokens; no code nor access token issued."""
        self._apps.clear()
        self._access.clear()
        self.codes.reset()
        self.token_requests = self.tokens_issued = 0
        self.refused = {}
        self.issued = []
        for account in self._accounts:
            for app in account.oauth_apps:
                principal = self._principal_of(account.domain, app.user)
                state = _App(app, account.domain, principal)
                if app.refresh_token:
                    state.refresh_tokens[app.refresh_token] = self._new_grant(app.scope)
                self._apps[(account.domain, app.client_id)] = state

    def _new_grant(self, scope: str) -> _Grant:
        return _Grant(next(self._grants), scope)

    # -- the authorization endpoint ------------------------------------------------------------

    def authorization(self, domain: str, params: dict[str, list[str]]) -> AuthorizeAnswer:
        """Answer one ``GET /oauth/authorize``, approved at once by the app's user (no login page)."""
        form, repeated = single_values(params)
        app = self._apps.get((domain, form.get("client_id", "")))
        if app is None or "client_id" in repeated:
            return refusal_page("client_id is missing or is not an app of this account.")
        if "redirect_uri" in repeated:
            return refusal_page("redirect_uri was sent more than once.")
        target = redirection_uri(form.get("redirect_uri"), app.settings.redirect_uris)
        if isinstance(target, AuthorizeAnswer):
            return target
        state = {"state": form["state"]} if "state" in form else {}
        error = request_error(form, repeated)
        if error is not None:
            return AuthorizeAnswer(302, with_query(target, {"error": error[0], "error_description": error[1],
                                                            **state}))
        code = self.codes.issue(domain, app.settings.client_id, form.get("redirect_uri"), form["scope"])
        return AuthorizeAnswer(302, with_query(target, {"code": code, **state}))

    # -- the token endpoint -------------------------------------------------------------------

    def token(self, domain: str, content_type: str, raw: bytes, authorization: str | None) -> TokenAnswer:
        """Answer one ``POST /oauth/token``."""
        self.token_requests += 1
        if content_type != "application/x-www-form-urlencoded":
            return self._refuse(_oauth_error(400, "invalid_request",
                                             "send the parameters form-encoded (application/x-www-form-urlencoded)"))
        form, repeated = single_values(parse_qs(raw.decode("utf-8", "replace"), keep_blank_values=True))
        if repeated:
            return self._refuse(_oauth_error(400, "invalid_request", f"parameter(s) {', '.join(repeated)} sent "
                                                                     "more than once"))
        app = self._client(domain, form, authorization)
        if isinstance(app, TokenAnswer):
            return self._refuse(app)
        grant = form.get("grant_type")
        if grant == "refresh_token":
            answer = self._refresh_grant(app, form.get("refresh_token", ""))
        elif grant == "authorization_code":
            answer = self._code_grant(app, form)
        else:
            answer = _oauth_error(400, "unsupported_grant_type", f"grant_type {grant!r} is not supported here; "
                                                                 "use authorization_code or refresh_token")
        return answer if answer.status == 200 else self._refuse(answer)

    def _client(self, domain: str, form: dict[str, str], authorization: str | None) -> _App | TokenAnswer:
        """The app that authenticated (HTTP Basic or the body, one of them), or the refusal."""
        client_id, client_secret = form.get("client_id"), form.get("client_secret")
        basic = _basic(authorization)
        if basic is not None:
            if client_secret is not None:
                return _oauth_error(400, "invalid_request", "authenticate the client one way: HTTP Basic or "
                                                            "client_id and client_secret in the body, not both")
            client_id, client_secret = basic
        app = self._apps.get((domain, client_id or ""))
        if app is None or not client_secret or not secrets.compare_digest(client_secret, app.settings.client_secret):
            return _oauth_error(401, "invalid_client", "Client authentication failed.")
        return app

    def _refresh_grant(self, app: _App, presented: str) -> TokenAnswer:
        grant = app.refresh_tokens.get(presented)
        if grant is None:
            return _oauth_error(400, "invalid_grant", "The refresh token is invalid, expired or revoked.")
        if self.rotate:
            del app.refresh_tokens[presented]
        return TokenAnswer(200, self._issue(app, grant, with_refresh=self.rotate), _NO_STORE)

    def _code_grant(self, app: _App, form: dict[str, str]) -> TokenAnswer:
        value = form.get("code")
        if value is None:
            return _oauth_error(400, "invalid_request", "code is required with grant_type authorization_code")
        redeemed = self.codes.redeem(value, app.domain, app.settings.client_id, form.get("redirect_uri"))
        if redeemed.revoke_grant is not None:
            self._revoke_grant(app, redeemed.revoke_grant)
        if redeemed.code is None:
            return _oauth_error(400, "invalid_grant", redeemed.error)
        grant = self._new_grant(redeemed.code.scope)
        self.codes.mark_used(value, redeemed.code, grant.number)
        offline = "offline" in grant.scope.split(" ")
        return TokenAnswer(200, self._issue(app, grant, with_refresh=offline), _NO_STORE)

    def _refuse(self, answer: TokenAnswer) -> TokenAnswer:
        code = str(answer.body["error"])
        self.refused[code] = self.refused.get(code, 0) + 1
        return answer

    def _issue(self, app: _App, grant: _Grant, with_refresh: bool) -> dict[str, Any]:
        access = "oat-" + secrets.token_urlsafe(24)
        self.issued.append(access)
        self._access[access] = _Access(app.domain, app.principal, self._clock() + self.lifetime_s, grant.number,
                                       grant.scope)
        self.tokens_issued += 1
        body: dict[str, Any] = {"access_token": access, "token_type": "Bearer", "expires_in": int(self.lifetime_s),
                                "scope": grant.scope}
        if with_refresh:
            fresh = "ort-" + secrets.token_urlsafe(24)
            app.refresh_tokens[fresh] = grant
            self.issued.append(fresh)
            body["refresh_token"] = fresh
        return body

    def _revoke_grant(self, app: _App, number: int) -> None:
        """Every token of one authorization (RFC 6749 §4.1.2: a code used twice)."""
        for token in [t for t, g in app.refresh_tokens.items() if g.number == number]:
            del app.refresh_tokens[token]
        for token in [t for t, a in self._access.items() if a.grant == number]:
            del self._access[token]

    # -- what /api and the admin routes ask ----------------------------------------------------

    def caller(self, token: str, domain: str) -> Principal | None:
        """The caller an issued access token stands for on account ``domain`` (with the token's scope), while it
        has not expired."""
        found = self._access.get(token)
        if found is None or found.domain != domain:
            return None
        if self._clock() >= found.expires_at:
            del self._access[token]
            return None
        return replace(found.principal, scope=found.scope)

    def authorize(self, domain: str, client_id: str, scope: str | None = None) -> str:
        """A new refresh token for the app, as the authorization-code flow would give, granted ``scope`` (default:
        the app's configured one; KeyError: no such app)."""
        app = self._apps[(domain, client_id)]
        fresh = "ort-" + secrets.token_urlsafe(24)
        app.refresh_tokens[fresh] = self._new_grant(app.settings.scope if scope is None else scope)
        return fresh

    def revoke(self, domain: str, client_id: str, refresh_token: str | None) -> int:
        """Revoke one refresh token of the app, or all of them (and its access tokens) when None."""
        app = self._apps[(domain, client_id)]
        if refresh_token is not None:
            return int(app.refresh_tokens.pop(refresh_token, None) is not None)
        count = len(app.refresh_tokens)
        app.refresh_tokens.clear()
        for token in [t for t, a in self._access.items() if a.domain == app.domain and a.principal == app.principal]:
            del self._access[token]
        return count

    def describe(self, with_tokens: bool = False) -> dict[str, Any]:
        """The OAuth server's settings and counts; ``with_tokens`` adds every token it issued."""
        extra = {"issued": list(self.issued)} if with_tokens else {}
        return {**extra,
            "access_token_lifetime_s": self.lifetime_s,
            "rotate_refresh_tokens": self.rotate,
            "code_lifetime_s": self.codes.lifetime_s,
            "codes_issued": self.codes.issued,
            "token_requests": self.token_requests,
            "tokens_issued": self.tokens_issued,
            "refused": dict(sorted(self.refused.items())),
            "apps": [{"account": a.domain, "client_id": a.settings.client_id, "user": a.settings.user,
                      "redirect_uris": list(a.settings.redirect_uris), "refresh_tokens": len(a.refresh_tokens)}
                     for a in self._apps.values()],
        }


def _basic(header: str | None) -> tuple[str, str] | None:
    if not header or not header.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    client_id, sep, client_secret = decoded.partition(":")
    return (client_id, client_secret) if sep else None
