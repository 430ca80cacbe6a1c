"""OAuth apps that stay valid: access tokens from a refresh token, refreshed ahead of time, once for the
whole deployment.

An ``auth: oauth_app`` credential holds an app's client id and secret and a refresh token (scope
``offline``). :class:`OAuthApp` exchanges the refresh token at the account's ``/oauth/token``
(``grant_type=refresh_token``) for an access token, which calls carry until shortly before it expires
(``expires_in``); a call answered 401 has it renewed once (:mod:`worker.gorgias.holds`).

Every replica of a deployment shares one token state through a :class:`TokenShare` (the credentials
store: the newest access and refresh tokens, encrypted, and a lease). Before refreshing, a replica takes
the lease with an optimistic write (only one of several racing replicas can win it); the others wait for
the entry to change and use what the winner wrote. So one refresh serves the deployment, and when Gorgias
answers with a new refresh token (rotation) the old one is never used again, by anyone: a restarted
replica starts from the stored one. The entry remembers which configured refresh token it grew from
(``seed``, encrypted): an operator who gives the worker a new refresh token (the app authorized again)
starts a new lineage. A refresh token Gorgias refuses (``invalid_grant``: revoked or expired) is a held
credential, not dead letters.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any, Protocol

import httpx
import orjson
from pydantic import SecretStr

from worker.core.config.account import AuthType, Credential
from worker.host.environment import resolve_secret
from worker.host.logs import register_secret

log = logging.getLogger(__name__)

LEASE_S = 30.0  # a replica refreshing holds the lease this long at most (then another may take over)
TOKEN_TIMEOUT_S = 15.0
MAX_ROUNDS = 20  # lease attempts in one renewal before giving up for now


class RefreshRefused(LookupError):
    """Gorgias refused the refresh token or the client (the credential is held until a new one is given)."""


class ShareConflict(Exception):
    """The shared entry changed since it was read (another replica wrote): read it again."""


@dataclass(frozen=True)
class TokenState:
    """The deployment's current tokens of one app (never logged: their repr hides them)."""

    access_token: str
    refresh_token: str
    expires_at: float  # epoch seconds
    seed: str  # the configured refresh token this lineage grew from
    lifetime_s: float = 3600.0  # what `expires_in` said when it was issued
    scope: str | None = None  # what the token answer said it was granted (not a secret); None: not said

    def __repr__(self) -> str:
        return f"TokenState(expires_at={self.expires_at:.0f})"


@dataclass(frozen=True)
class SharedToken:
    """The shared entry of an app as a replica reads it."""

    version: int | None  # None: no entry yet
    state: TokenState | None
    lease_by: str | None = None
    lease_until: float = 0.0
    refused: str | None = None

    def leased_by_other(self, me: str, now: float) -> bool:
        return self.lease_by is not None and self.lease_by != me and self.lease_until > now


class TokenShare(Protocol):
    """Where the replicas of a deployment share an app's tokens (the credentials store)."""

    def read(self, key: str) -> SharedToken: ...

    async def write(self, key: str, entry: SharedToken, expect_version: int | None) -> int:
        """Write ``entry`` if the stored version is still ``expect_version`` (None: no entry); its new version,
        or :class:`ShareConflict`."""
        ...

    async def changed(self, key: str, seen: int | None, timeout: float) -> None:
        """Wait (at most ``timeout``) until the entry is no longer at version ``seen``."""
        ...


def app_key(credential: Credential) -> str:
    """The shared entry's name: one per app and account, whichever credentials name it."""
    return f"oauth-token:{credential.domain}:{credential.client_id}"


class RefreshGrant(Protocol):
    """Who exchanges a refresh token (:class:`TokenEndpoint`; tests plug in their own)."""

    async def refresh(self, credential: Credential, refresh_token: str, client_secret: str) -> dict[str, Any]: ...

    async def aclose(self) -> None: ...


class TokenEndpoint:
    """``POST {origin}/oauth/token`` with the refresh grant (the client's credentials in the form)."""

    def __init__(self, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self._client = httpx.AsyncClient(transport=transport, timeout=TOKEN_TIMEOUT_S, follow_redirects=False)

    async def refresh(self, credential: Credential, refresh_token: str, client_secret: str) -> dict[str, Any]:
        """The token answer; :class:`RefreshRefused` when Gorgias refuses the grant or the client, LookupError
        when it cannot be asked now (its message never holds a secret)."""
        form = {"grant_type": "refresh_token", "refresh_token": refresh_token,
                "client_id": credential.client_id or "", "client_secret": client_secret}
        try:
            answer = await self._client.post(credential.token_url, data=form,
                                             headers={"Host": credential.host, "Accept": "application/json"})
        except httpx.HTTPError as exc:
            raise LookupError(f"{credential.token_url} could not be reached: {type(exc).__name__}") from None
        body = _json(answer.content)
        if answer.status_code == 200 and isinstance(body.get("access_token"), str):
            return body
        code = str(body.get("error") or f"HTTP {answer.status_code}")
        if answer.status_code in (400, 401) and code in ("invalid_grant", "invalid_client", "unauthorized_client"):
            raise RefreshRefused(code)
        raise LookupError(f"{credential.token_url} answered {answer.status_code} ({code})")

    async def aclose(self) -> None:
        await self._client.aclose()


def _json(raw: bytes) -> dict[str, Any]:
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


class OAuthApp:
    """One app's access token on this replica: adopted from the share, or refreshed under its lease."""

    def __init__(self, credential: Credential, share: TokenShare, endpoint: RefreshGrant, *,
                 on_token: Callable[[], None] = lambda: None, clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self.credential = credential
        self.key = app_key(credential)
        self.share = share
        self.endpoint = endpoint
        self.on_token = on_token  # the access token changed: clients carry the new one
        self.me = f"{socket.gethostname()}:{os.getpid()}:{random.randrange(1 << 30)}"
        self.current: TokenState | None = None
        self.refreshes = 0  # token requests this replica made
        self._clock = clock
        self._sleep = sleep
        self._lock = asyncio.Lock()

    def access_token(self) -> SecretStr:
        """The access token calls carry now (LookupError before the first one)."""
        if self.current is None:
            raise LookupError(f"OAuth app {self.credential.client_id} has no access token yet")
        return SecretStr(self.current.access_token)

    def margin(self, state: TokenState | None = None) -> float:
        """How long before expiry a token is refreshed: a quarter of its lifetime, between 2 s and 5 min."""
        return 60.0 if state is None else max(2.0, min(300.0, state.lifetime_s / 4))

    def _fresh(self, state: TokenState | None, seed: str) -> bool:
        return state is not None and state.seed == seed and state.expires_at - self._clock() > 2.0

    async def ensure(self, *, stale: str | None = None) -> bool:
        """Make sure this replica holds a token that is not about to expire and is not ``stale`` (the one a 401
        refused): adopt the deployment's, or refresh it under the lease. True when the token changed."""
        async with self._lock:
            before = self.current
            for _ in range(MAX_ROUNDS):
                if await self._round(stale):
                    break
            else:
                raise LookupError(f"OAuth app {self.credential.client_id}: the token could not be renewed now "
                                  "(other replicas keep holding the refresh); trying again")
            return self.current is not before

    async def _round(self, stale: str | None) -> bool:
        """One look at the share: True once this replica holds a good token."""
        seed = self._seed()
        shared = self.share.read(self.key)
        state = shared.state
        now = self._clock()
        if self._fresh(state, seed) and state is not None and state.access_token != stale:
            self._adopt(state)
            if state.expires_at - now > self.margin(state) or shared.leased_by_other(self.me, now):
                return True  # good enough; or someone refreshes it already
        if shared.leased_by_other(self.me, now):
            await self.share.changed(self.key, shared.version, shared.lease_until - now + 0.5)
            return False
        base = state.refresh_token if state is not None and state.seed == seed else seed
        lease = replace(shared, lease_by=self.me, lease_until=now + LEASE_S)
        try:
            version = await self.share.write(self.key, lease, shared.version)
        except ShareConflict:
            await self._sleep(random.uniform(0.01, 0.1))
            return False
        await self._refresh(base, seed, replace(lease, version=version))
        return True

    async def _refresh(self, base: str, seed: str, leased: SharedToken) -> None:
        """Exchange ``base`` under the lease and write what came back (the lease released either way)."""
        secret = resolve_secret(self.credential.secret_ref("client_secret")).get_secret_value()
        self.refreshes += 1
        try:
            answer = await self.endpoint.refresh(self.credential, base, secret)
        except RefreshRefused as exc:
            await self._release(leased, refused=str(exc))
            raise RefreshRefused(
                f"Gorgias refused the refresh token of OAuth app {self.credential.client_id} ({exc}: revoked, "
                f"expired or already rotated away): authorize the app again and give the worker the new refresh "
                f"token ({self._where()})") from None
        except LookupError:
            await self._release(leased, refused=None)
            raise
        expires_in = answer.get("expires_in")
        lifetime = float(expires_in) if isinstance(expires_in, int | float) and expires_in > 0 else 3600.0
        rotated = answer.get("refresh_token")
        scope = answer.get("scope")
        state = TokenState(str(answer["access_token"]), rotated if isinstance(rotated, str) else base,
                           self._clock() + lifetime, seed, lifetime, scope if isinstance(scope, str) else None)
        for value in (state.access_token, state.refresh_token):
            register_secret(value)
        await self._publish(SharedToken(leased.version, state), leased.version)
        self._adopt(state)
        log.info("OAuth app %s (%s): access token refreshed for the deployment, valid %.0f s%s",
                 self.credential.client_id, self.credential.domain, lifetime,
                 "; refresh token rotated" if isinstance(rotated, str) else "",
                 extra={"account": self.credential.account_key})

    async def _publish(self, entry: SharedToken, version: int | None) -> None:
        """Write the new tokens; only this replica writes while it holds the lease, so a conflict is Kafka's
        hiccup: the write is tried again (a rotated refresh token must not be lost)."""
        for attempt in range(5):
            try:
                await self.share.write(self.key, entry, version)
                return
            except ShareConflict:
                version = self.share.read(self.key).version
                await self._sleep(0.2 * (attempt + 1))
        raise LookupError(f"OAuth app {self.credential.client_id}: the new tokens could not be shared")

    async def _release(self, leased: SharedToken, refused: str | None) -> None:
        try:
            await self.share.write(self.key, replace(leased, lease_by=None, lease_until=0.0, refused=refused),
                                   leased.version)
        except ShareConflict:
            pass  # someone wrote meanwhile: nothing of ours to release

    def _adopt(self, state: TokenState) -> None:
        if self.current is None or self.current.access_token != state.access_token:
            self.current = state
            register_secret(state.access_token)
            self.on_token()

    def _seed(self) -> str:
        return resolve_secret(self.credential.secret_ref("refresh_token")).get_secret_value()

    def _where(self) -> str:
        ref = self.credential.secret_ref("refresh_token")
        if ref.stored is not None:
            return f"PUT /credentials/{self.credential.name} with refresh_token"
        return f"in {ref.describe()}"

    def due_in(self) -> float:
        """Seconds until this replica should look at the token again."""
        if self.current is None:
            return 0.0
        jitter = random.uniform(0.0, min(1.0, self.margin(self.current) / 4))
        return max(0.5, self.current.expires_at - self._clock() - self.margin(self.current) + jitter)

    def adopt_shared(self) -> None:
        """The share changed: take a newer token another replica wrote (no request)."""
        try:
            seed = self._seed()
        except LookupError:
            return
        state = self.share.read(self.key).state
        if self._fresh(state, seed) and state is not None and (
                self.current is None or state.expires_at > self.current.expires_at):
            self._adopt(state)


def is_app(credential: Credential) -> bool:
    return credential.auth is AuthType.OAUTH_APP


class OAuthApps:
    """This replica's OAuth apps, one per app and account, each refreshed ahead of time in a task of its own.

    ``renew_clients(credential)`` is called whenever an app's access token changes, for every credential
    naming it, so that calls carry the new token from their next attempt.
    """

    def __init__(self, renew_clients: Callable[[Credential], None], endpoint: RefreshGrant | None = None, *,
                 clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self.share: TokenShare | None = None  # the deployment's (set once the credentials store runs)
        self.endpoint: RefreshGrant = endpoint or TokenEndpoint()
        self._renew_clients = renew_clients
        self._clock = clock
        self._sleep = sleep
        self._apps: dict[str, OAuthApp] = {}
        self._users: dict[str, dict[int, Credential]] = {}  # app key -> the credentials naming it
        self._tasks: dict[str, asyncio.Task[None]] = {}

    def get(self, credential: Credential) -> OAuthApp:
        """The app of ``credential`` (LookupError without a share: its tokens cannot be shared)."""
        key = app_key(credential)
        app = self._apps.get(key)
        if app is None:
            if self.share is None:
                raise LookupError("an OAuth app's tokens are shared by the replicas encrypted in the credentials "
                                  "store, and this worker has none: set worker.secrets_key_env or "
                                  "worker.secrets_key_file")
            app = OAuthApp(credential, self.share, self.endpoint, on_token=lambda: self._token_changed(key),
                           clock=self._clock, sleep=self._sleep)
            self._apps[key] = app
            self._tasks[key] = asyncio.get_running_loop().create_task(self._keep_fresh(app), name=f"oauth:{key}")
        self._users.setdefault(key, {})[id(credential)] = credential
        return app

    def access_token(self, credential: Credential) -> SecretStr:
        """What a client of ``credential`` carries now (the ClientRegistry's secret for an app)."""
        return self.get(credential).access_token()

    async def renew(self, credential: Credential) -> bool:
        """After a 401 (or to get the first token): a token other than the one calls carry now."""
        app = self.get(credential)
        return await app.ensure(stale=app.current.access_token if app.current is not None else None)

    def shared_changed(self, key: str) -> None:
        """The share's entry ``key`` changed (another replica refreshed): take its token."""
        app = self._apps.get(key)
        if app is not None:
            app.adopt_shared()

    def _token_changed(self, key: str) -> None:
        for credential in list(self._users.get(key, {}).values()):
            self._renew_clients(credential)

    async def _keep_fresh(self, app: OAuthApp) -> None:
        """Refresh ahead of expiry, once for the deployment (a failure is logged and tried again later)."""
        while True:
            await self._sleep(app.due_in())
            try:
                await app.ensure()
            except LookupError as exc:
                log.warning("OAuth app %s (%s): %s", app.credential.client_id, app.credential.domain, exc,
                            extra={"account": app.credential.account_key})
                await self._sleep(10.0)

    def granted_scope(self, credential: Credential) -> str | None:
        """The scope the app's current access token was granted, as the token answer said (None: unknown)."""
        app = self._apps.get(app_key(credential))
        return None if app is None or app.current is None else app.current.scope

    def requests(self) -> int:
        """Token requests this replica made."""
        return sum(app.refreshes for app in self._apps.values())

    async def aclose(self) -> None:
        tasks, self._tasks = list(self._tasks.values()), {}
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.endpoint.aclose()
