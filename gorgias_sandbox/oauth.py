"""Gorgias' OAuth server, as the sandbox plays it: ``POST https://{domain}.gorgias.com/oauth/token``.

An OAuth app (``client_id``, ``client_secret``) acts for one user of the account. Its refresh tokens
(scope ``offline``) are exchanged for access tokens with ``grant_type=refresh_token`` (RFC 6749 §6):
a form-encoded body with ``refresh_token``, and the client's credentials either in the body
(``client_id``, ``client_secret``) or as HTTP Basic. The answer is ``{"access_token", "token_type":
"Bearer", "expires_in", "scope"}``, plus a new ``refresh_token`` when rotation is on: the old one is
then refused from that moment (``400 invalid_grant``), as a revoked or unknown one is. A wrong client is
``401 invalid_client``. Access tokens expire after the configured lifetime (Gorgias: 24 h; tests use
20 s): an expired one is a 401 on ``/api``, as an unknown one is. They count against the account's OAuth
budget (80 / 20 s).
"""

from __future__ import annotations

import base64
import binascii
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from gorgias_sandbox.auth import Principal
from gorgias_sandbox.settings import AccountSettings, OAuthAppSettings

TOKEN_PATH = "/oauth/token"


@dataclass
class _App:
    settings: OAuthAppSettings
    domain: str
    principal: Principal
    refresh_tokens: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class TokenAnswer:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


def _oauth_error(status: int, code: str, description: str) -> TokenAnswer:
    headers = {"WWW-Authenticate": 'Basic realm="oauth"'} if status == 401 else {}
    return TokenAnswer(status, {"error": code, "error_description": description}, headers)


class OAuthServer:
    """The OAuth apps of every account: their refresh tokens and the access tokens issued."""

    def __init__(self, accounts: list[AccountSettings], principal_of: Callable[[str, str], Principal],
                 clock: Callable[[], float], lifetime_s: float, rotate: bool) -> None:
        self._accounts = accounts
        self._principal_of = principal_of
        self._clock = clock
        self.lifetime_s = lifetime_s
        self.rotate = rotate
        self._apps: dict[tuple[str, str], _App] = {}
        self._access: dict[str, tuple[str, Principal, float]] = {}  # token -> (account, caller, expires at)
        self.token_requests = 0
        self.tokens_issued = 0
        self.refused: dict[str, int] = {}
        self.issued: list[str] = []  # every token given out (for tests that look for them where they must not be)
        self.reset()

    def reset(self) -> None:
        """The configured apps with their configured refresh tokens; no access token issued."""
        self._apps.clear()
        self._access.clear()
        self.token_requests = self.tokens_issued = 0
        self.refused = {}
        self.issued = []
        for account in self._accounts:
            for app in account.oauth_apps:
                principal = self._principal_of(account.domain, app.user)
                state = _App(app, account.domain, principal)
                if app.refresh_token:
                    state.refresh_tokens.add(app.refresh_token)
                self._apps[(account.domain, app.client_id)] = state

    # -- the token endpoint -------------------------------------------------------------------

    def token(self, domain: str, content_type: str, raw: bytes, authorization: str | None) -> TokenAnswer:
        """Answer one ``POST /oauth/token``."""
        self.token_requests += 1
        if content_type != "application/x-www-form-urlencoded":
            return self._refuse(_oauth_error(400, "invalid_request",
                                             "send the parameters form-encoded (application/x-www-form-urlencoded)"))
        form = {k: v[-1] for k, v in parse_qs(raw.decode("utf-8", "replace"), keep_blank_values=True).items()}
        client_id, client_secret = form.get("client_id"), form.get("client_secret")
        basic = _basic(authorization)
        if basic is not None:
            client_id, client_secret = basic
        app = self._apps.get((domain, client_id or ""))
        if app is None or not client_secret or not secrets.compare_digest(client_secret, app.settings.client_secret):
            return self._refuse(_oauth_error(401, "invalid_client", "Client authentication failed."))
        grant = form.get("grant_type")
        if grant != "refresh_token":
            return self._refuse(_oauth_error(400, "unsupported_grant_type", f"grant_type {grant!r} is not supported "
                                                                            "here; use refresh_token"))
        presented = form.get("refresh_token", "")
        if presented not in app.refresh_tokens:
            return self._refuse(_oauth_error(400, "invalid_grant", "The refresh token is invalid, expired or revoked."))
        return TokenAnswer(200, self._issue(app, presented), {"Cache-Control": "no-store", "Pragma": "no-cache"})

    def _refuse(self, answer: TokenAnswer) -> TokenAnswer:
        code = str(answer.body["error"])
        self.refused[code] = self.refused.get(code, 0) + 1
        return answer

    def _issue(self, app: _App, presented: str) -> dict[str, Any]:
        access = "oat-" + secrets.token_urlsafe(24)
        self.issued.append(access)
        self._access[access] = (app.domain, app.principal, self._clock() + self.lifetime_s)
        self.tokens_issued += 1
        body: dict[str, Any] = {"access_token": access, "token_type": "Bearer", "expires_in": int(self.lifetime_s),
                                "scope": app.settings.scope}
        if self.rotate:
            app.refresh_tokens.discard(presented)
            fresh = "ort-" + secrets.token_urlsafe(24)
            app.refresh_tokens.add(fresh)
            self.issued.append(fresh)
            body["refresh_token"] = fresh
        return body

    # -- what /api and the admin routes ask ----------------------------------------------------

    def caller(self, token: str, domain: str) -> Principal | None:
        """The caller an issued access token stands for on account ``domain``, while it has not expired."""
        found = self._access.get(token)
        if found is None or found[0] != domain:
            return None
        _, principal, expires_at = found
        if self._clock() >= expires_at:
            del self._access[token]
            return None
        return principal

    def authorize(self, domain: str, client_id: str) -> str:
        """A new refresh token for the app, as the authorization-code flow would give (KeyError: no such app)."""
        app = self._apps[(domain, client_id)]
        fresh = "ort-" + secrets.token_urlsafe(24)
        app.refresh_tokens.add(fresh)
        return fresh

    def revoke(self, domain: str, client_id: str, refresh_token: str | None) -> int:
        """Revoke one refresh token of the app, or all of them (and its access tokens) when None."""
        app = self._apps[(domain, client_id)]
        if refresh_token is not None:
            found = refresh_token in app.refresh_tokens
            app.refresh_tokens.discard(refresh_token)
            return int(found)
        count = len(app.refresh_tokens)
        app.refresh_tokens.clear()
        for token in [t for t, (d, p, _) in self._access.items() if d == app.domain and p == app.principal]:
            del self._access[token]
        return count

    def describe(self, with_tokens: bool = False) -> dict[str, Any]:
        """The OAuth server's settings and counts; ``with_tokens`` adds every token it issued."""
        extra = {"issued": list(self.issued)} if with_tokens else {}
        return {**extra,
            "access_token_lifetime_s": self.lifetime_s,
            "rotate_refresh_tokens": self.rotate,
            "token_requests": self.token_requests,
            "tokens_issued": self.tokens_issued,
            "refused": dict(sorted(self.refused.items())),
            "apps": [{"account": a.domain, "client_id": a.settings.client_id, "user": a.settings.user,
                      "refresh_tokens": len(a.refresh_tokens)} for a in self._apps.values()],
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
