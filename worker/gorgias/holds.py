"""Gorgias refusing a credential or a route holds calls; it does not dead-letter them.

A 401 means Gorgias does not take the credential (a wrong, revoked or expired API key or token): every
other call of it would get the same answer. So the credential's :class:`CredentialGate` closes, like a
pause: the destinations using it start no call (their records keep gathering in open batches), and a call
that got the 401 waits at the gate. Before closing, the secret is read again (a rotated Secret file): when
it changed, the call is simply sent again with it. While closed, the gate probes ``GET /api/account``
through the account's budget with back-off, reading the secret again before each probe, and opens by
itself once Gorgias takes the credential. One log line per change says which credential and what to do;
``gorgias_worker_credential_held{account}`` is 1 while closed.

A 403 means the credential's user may not use that route (a role without the permission; or, saying
``insufficient_scope``, an OAuth app not granted the scope it needs): only that destination is held
(:class:`RouteHold`), and the refused call itself is tried again with back-off, since a refused request
changed nothing.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Iterator

from worker.core.config.account import AuthType, Credential
from worker.core.config.delivery import DeliverySettings
from worker.gorgias.account_check import AccountCheck, check_account
from worker.gorgias.client import ClientKey, ClientRegistry, Sender, client_key
from worker.gorgias.oauth import RefreshRefused
from worker.gorgias.ratelimit import RateLimiterRegistry
from worker.host import metrics

log = logging.getLogger(__name__)

__all__ = ["CredentialGate", "CredentialGates", "RouteHold"]

PROBE_FIRST_S = 1.0
PROBE_MAX_S = 30.0
ROUTE_RETRY_FIRST_S = 2.0
ROUTE_RETRY_MAX_S = 60.0

Renewer = Callable[[Credential, DeliverySettings], Awaitable[bool]]


def describe_credential(credential: Credential) -> str:
    """``acme/basic (agent@acme.com, API key from env $GORGIAS_API_KEY)``: which one, never its secret."""
    if credential.auth is AuthType.OAUTH_APP:
        return (f"{credential.account_key} (OAuth app {credential.client_id}, refresh token from "
                f"{credential.secret().describe()})")
    what = "API key" if credential.auth is AuthType.BASIC else "access token"
    who = f"{credential.username}, " if credential.username else ""
    return f"{credential.account_key} ({who}{what} from {credential.secret().describe()})"


def how_to_fix(credential: Credential) -> str:
    if credential.auth is AuthType.OAUTH_APP:
        return (f"authorize OAuth app {credential.client_id} again (scope offline) and give the worker its new "
                f"refresh token in {credential.secret().describe()}, or check its client id and secret; the worker "
                "tries it again before every check")
    what = f"API key of {credential.username}" if credential.auth is AuthType.BASIC else "access token"
    ref = credential.secret()
    if ref.file is not None:
        return f"put a valid {what} in {ref.file} (read again before every check: no restart needed)"
    return (f"give ${ref.env} a valid {what} and restart the worker (a variable cannot change under a running "
            f"process; a file given with *_file can)")


class CredentialGate:
    """Open while Gorgias takes one credential; closed (held) from its first 401 until a probe succeeds."""

    def __init__(self, credential: Credential, settings: DeliverySettings, clients: ClientRegistry,
                 limiters: RateLimiterRegistry, on_change: Callable[[CredentialGate], None], renew: Renewer, *,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep, rng: random.Random | None = None,
                 probe_first_s: float = PROBE_FIRST_S, probe_max_s: float = PROBE_MAX_S) -> None:
        self.credential = credential
        self.settings = settings
        self.clients = clients
        self.limiters = limiters
        self.users: list[str] = []  # destinations using it, for log lines and status
        self.reason: str | None = None
        self.since: float | None = None  # clock time the gate closed
        self.probes = 0
        self.last_check: AccountCheck | None = None
        self._on_change = on_change
        self._renew_secret = renew
        self._clock = clock
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._probe_first_s = probe_first_s
        self._probe_max_s = probe_max_s
        self._open = asyncio.Event()
        self._open.set()
        self._renewing = asyncio.Lock()
        self._listeners: list[Callable[[], None]] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._start_check: asyncio.Task[None] | None = None

    @property
    def held(self) -> bool:
        return not self._open.is_set()

    def describe(self) -> str:
        return describe_credential(self.credential)

    def held_for(self) -> float:
        """Seconds since the gate closed (0.0 while open)."""
        return 0.0 if self.since is None else max(0.0, self._clock() - self.since)

    def attach(self, destination: str, on_open: Callable[[], None]) -> None:
        """``destination`` uses this credential; ``on_open`` is called whenever the gate opens again."""
        if destination not in self.users:
            self.users.append(destination)
        self._listeners.append(on_open)

    async def wait_open(self) -> None:
        await self._open.wait()

    def client(self) -> Sender:
        return self.clients.get(self.credential, self.settings)

    async def renew(self) -> bool:
        """Read (or refresh) the secret again; True when calls now carry a new one."""
        async with self._renewing:
            return await self._renew_secret(self.credential, self.settings)

    def refresh_soon(self) -> None:
        """Read the secret again now (its store changed); a held credential is checked at once with it."""
        async def refresh() -> None:
            try:
                await self.renew()
                if not self.held:
                    return
            except LookupError as exc:
                log.warning("credential %s: %s", self.describe(), exc, extra={"account": self.credential.account_key})
                return
            result = await self.check()
            if self.held and result.authenticated:
                self._release(result)

        self._spawn(refresh(), "credential-refresh")

    async def refused(self, used: Sender, reason: str, *, may_renew: bool = True) -> bool:
        """A request sent with client ``used`` got a 401. True: the credential was renewed since (or is now),
        send it again at once; False: the gate is closed (and probing), wait for it to open."""
        if self.clients.current(self.credential) is not used:
            return True
        if self.held:
            return False
        if may_renew:
            try:
                if await self.renew() or self.clients.current(self.credential) is not used:
                    return True
            except LookupError as exc:
                reason = f"{reason}; and the secret cannot be read now: {exc}"
        self.hold(reason)
        return False

    def hold(self, reason: str) -> None:
        """Close the gate (once) and start probing."""
        if self.held:
            return
        self._open.clear()
        self.reason = reason
        self.since = self._clock()
        self._on_change(self)
        users = ", ".join(self.users) or "none yet"
        log.warning("credential %s refused by Gorgias (%s): calls of destinations %s are held, neither sent nor "
                    "dead-lettered; checking GET /api/account with back-off until it works. Fix: %s",
                    self.describe(), reason, users, how_to_fix(self.credential),
                    extra={"account": self.credential.account_key})
        self._spawn(self._probe(), "credential-probe")

    def _release(self, check: AccountCheck) -> None:
        held_for = self._clock() - (self.since or self._clock())
        self.reason = None
        self.since = None
        self._open.set()
        self._on_change(self)
        log.info("credential %s works again after %.0f s (GET /api/account: HTTP %s, call limit %s): calls of "
                 "destinations %s resume", self.describe(), held_for, check.status, check.call_limit or "-",
                 ", ".join(self.users) or "none", extra={"account": self.credential.account_key})
        for listener in list(self._listeners):
            listener()

    async def check(self) -> AccountCheck:
        """One ``GET /api/account`` through the account's budget with the current secret."""
        try:
            client = self.client()
        except LookupError as exc:
            result = AccountCheck(False, None, None, None, 0.0, f"the secret cannot be read: {exc}")
        else:
            result = await check_account(client, self.credential, self.limiters.get(self.credential))
        self.last_check = result
        return result

    async def check_at_start(self) -> AccountCheck:
        """The start's check: logs the account and its call limit, or the problem (a 401 closes the gate). An
        OAuth app first gets its access token (the deployment's, or a refreshed one)."""
        if self.credential.auth is AuthType.OAUTH_APP:
            try:
                await self.renew()
            except RefreshRefused as exc:
                self.hold(str(exc))
            except LookupError as exc:
                log.warning("credential %s: no access token yet: %s", self.describe(), exc,
                            extra={"account": self.credential.account_key})
        if self.held:
            return AccountCheck(False, None, None, None, 0.0, self.reason)
        result = await self.check()
        if result.refused:
            self.hold(result.error or "HTTP 401")
        elif result.ok:
            log.info("credential %s: account %s answers (GET /api/account in %.0f ms), call limit %s",
                     self.describe(), (result.account or {}).get("domain", self.credential.domain), result.latency_ms,
                     result.call_limit or "not reported", extra={"account": self.credential.account_key})
        else:
            log.warning("credential %s could not be checked (GET /api/account: %s); its calls will tell",
                        self.describe(), result.error, extra={"account": self.credential.account_key})
        return result

    def start_check(self) -> asyncio.Task[None]:
        """:meth:`check_at_start` in a task of its own, once: later calls return the same task."""
        if self._start_check is None:
            async def run() -> None:
                await self.check_at_start()

            self._start_check = self._spawn(run(), "credential-check")
        return self._start_check

    async def _probe(self) -> None:
        delay = self._probe_first_s
        while self.held:
            await self._sleep(self._rng.uniform(delay / 2, delay))
            delay = min(self._probe_max_s, delay * 2)
            try:
                await self.renew()
            except LookupError as exc:
                self.reason = f"the secret cannot be read: {exc}"
                continue
            result = await self.check()
            self.probes += 1
            if result.authenticated:
                self._release(result)
                return
            if result.refused:
                self.reason = result.error or self.reason

    def _spawn(self, coro: Awaitable[None], name: str) -> asyncio.Task[None]:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        task.set_name(f"{name}:{self.credential.account_key}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def aclose(self) -> None:
        tasks, self._tasks = set(self._tasks), set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


class CredentialGates:
    """One :class:`CredentialGate` per client identity (:func:`~worker.gorgias.client.client_key`)."""

    def __init__(self, clients: ClientRegistry, limiters: RateLimiterRegistry, *,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                 rng: random.Random | None = None, renew: Renewer | None = None) -> None:
        self.clients = clients
        self.limiters = limiters
        self._clock = clock
        self._sleep = sleep
        self._rng = rng
        self._renew = renew
        self._gates: dict[ClientKey, CredentialGate] = {}

    def get(self, credential: Credential, settings: DeliverySettings) -> CredentialGate:
        key = client_key(credential)
        gate = self._gates.get(key)
        if gate is None:
            renew = self._renew or self._reread
            gate = CredentialGate(credential, settings, self.clients, self.limiters, self._changed, renew,
                                  clock=self._clock, sleep=self._sleep, rng=self._rng)
            self._gates[key] = gate
            metrics.CREDENTIAL_HELD.labels(credential.account_key).set(0)
        return gate

    def __iter__(self) -> Iterator[CredentialGate]:
        return iter(list(self._gates.values()))

    async def _reread(self, credential: Credential, settings: DeliverySettings) -> bool:
        return self.clients.renew(credential, settings)

    def secret_changed(self, name: str) -> None:
        """The credentials store changed credential ``name``: its clients take the new secret now."""
        for gate in self:
            if gate.credential.name == name and gate.credential.stored:
                gate.refresh_soon()

    def _changed(self, gate: CredentialGate) -> None:
        account = gate.credential.account_key
        held = any(g.held for g in self._gates.values() if g.credential.account_key == account)
        metrics.CREDENTIAL_HELD.labels(account).set(1 if held else 0)

    async def aclose(self) -> None:
        for gate in self:
            await gate.aclose()


class RouteHold:
    """A destination held because Gorgias refuses its credential's user a route (HTTP 403)."""

    def __init__(self, destination: str, clock: Callable[[], float] = time.monotonic,
                 first_s: float = ROUTE_RETRY_FIRST_S, max_s: float = ROUTE_RETRY_MAX_S) -> None:
        self.destination = destination
        self.reason: str | None = None
        self.scope: str | None = None  # the OAuth scope Gorgias said is missing ("": none named), when it did
        self.since: float | None = None
        self._clock = clock
        self._first_s = first_s
        self._max_s = max_s
        self._tries = 0

    @property
    def held(self) -> bool:
        return self.since is not None

    def hold(self, reason: str, credential: Credential, scope: str | None = None) -> None:
        self._tries += 1
        if self.held:
            return
        self.reason = reason
        self.scope = scope
        self.since = self._clock()
        if scope is not None:
            log.warning("destination %s held: %s; its calls are held, neither sent nor dead-lettered, and the "
                        "refused call is tried again with back-off", self.destination, reason,
                        extra={"destination": self.destination})
            return
        user = credential.username or "the token's user"
        log.warning("destination %s held: Gorgias refuses %s this route (%s); its calls are held, neither sent nor "
                    "dead-lettered, and the refused call is tried again with back-off. Fix: give %s a role that may "
                    "do this, or use another credential", self.destination, user, reason, user,
                    extra={"destination": self.destination})

    def held_for(self) -> float:
        return 0.0 if self.since is None else max(0.0, self._clock() - self.since)

    def next_delay(self) -> float:
        return min(self._max_s, self._first_s * 2.0 ** max(0, self._tries - 1))

    def release(self) -> None:
        if not self.held:
            return
        held_for = self._clock() - (self.since or self._clock())
        self.reason = None
        self.scope = None
        self.since = None
        self._tries = 0
        log.info("destination %s: Gorgias answers its refused route again after %.0f s; held calls resume",
                 self.destination, held_for, extra={"destination": self.destination})
