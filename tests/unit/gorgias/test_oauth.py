"""OAuth apps (issue 25): replicas sharing one token state refresh once for the deployment, follow rotated
refresh tokens, never use an old one again, start a new lineage from a new configured token, and say what
to do when Gorgias refuses the refresh token."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import pytest

from worker.core.config.account import AuthType, Credential
from worker.gorgias.oauth import OAuthApp, RefreshRefused, ShareConflict, SharedToken

SECRET = "client-secret-9d"


class MemoryShare:
    """The credentials store's token entries, in memory, with its optimistic writes."""

    def __init__(self) -> None:
        self.entries: dict[str, SharedToken] = {}
        self.writes = 0
        self._changed = asyncio.Condition()

    def read(self, key: str) -> SharedToken:
        return self.entries.get(key, SharedToken(None, None))

    async def write(self, key: str, entry: SharedToken, expect_version: int | None) -> int:
        await asyncio.sleep(0)  # a write takes a moment: others may run meanwhile
        current = self.entries.get(key)
        if (current.version if current else None) != expect_version:
            raise ShareConflict(key)
        version = (expect_version or 0) + 1
        self.entries[key] = SharedToken(version, entry.state, entry.lease_by, entry.lease_until, entry.refused)
        self.writes += 1
        async with self._changed:
            self._changed.notify_all()
        return version

    async def changed(self, key: str, seen: int | None, timeout: float) -> None:
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: self.read(key).version != seen), timeout)


@dataclass
class FakeGorgias:
    """The OAuth server: valid refresh tokens, rotation, and every token request."""

    valid: set[str]
    rotate: bool = True
    lifetime: int = 20
    requests: list[str] = field(default_factory=list)
    issued: int = 0
    scope: dict[str, str] = field(default_factory=dict)  # refresh token -> the scope its answer says

    async def refresh(self, credential: Credential, refresh_token: str, client_secret: str) -> dict[str, Any]:
        self.requests.append(refresh_token)
        await asyncio.sleep(0)
        assert client_secret == SECRET
        if refresh_token not in self.valid:
            raise RefreshRefused("invalid_grant")
        self.issued += 1
        answer: dict[str, Any] = {"access_token": f"access-{self.issued}", "expires_in": self.lifetime}
        if refresh_token in self.scope:
            answer["scope"] = self.scope[refresh_token]
        if self.rotate:
            self.valid.discard(refresh_token)
            answer["refresh_token"] = f"refresh-{self.issued}"
            self.valid.add(answer["refresh_token"])
        return answer

    async def aclose(self) -> None:
        return None


class Clock:
    def __init__(self) -> None:
        self.now = 1_750_000_000.0

    def __call__(self) -> float:
        return self.now


def app_credential() -> Credential:
    return Credential(domain="acme", auth=AuthType.OAUTH_APP, client_id="sandbox-client",
                      client_secret_env="GORGIAS_TEST_CLIENT_SECRET", refresh_token_env="GORGIAS_TEST_REFRESH")


@pytest.fixture(autouse=True)
def secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GORGIAS_TEST_CLIENT_SECRET", SECRET)
    monkeypatch.setenv("GORGIAS_TEST_REFRESH", "first-refresh")


def replicas(n: int, share: MemoryShare, gorgias: FakeGorgias, clock: Clock) -> list[OAuthApp]:
    return [OAuthApp(app_credential(), share, gorgias, clock=clock) for _ in range(n)]


async def test_three_replicas_refresh_once_and_share_the_token() -> None:
    share, gorgias, clock = MemoryShare(), FakeGorgias({"first-refresh"}), Clock()
    apps = replicas(3, share, gorgias, clock)
    await asyncio.gather(*(a.ensure() for a in apps))
    assert gorgias.requests == ["first-refresh"]  # one refresh for the deployment
    assert {a.access_token().get_secret_value() for a in apps} == {"access-1"}
    assert share.read(apps[0].key).state is not None and share.read(apps[0].key).lease_by is None

    for lifetime in range(2, 7):  # five more lifetimes: each time one replica refreshes, the others follow
        clock.now += 16  # within the refresh margin of a 20 s token
        await asyncio.gather(*(a.ensure() for a in apps))
        assert {a.access_token().get_secret_value() for a in apps} == {f"access-{lifetime}"}
    assert len(gorgias.requests) == 6
    # rotation: every refresh used the newest refresh token, none was used twice
    assert gorgias.requests == ["first-refresh"] + [f"refresh-{i}" for i in range(1, 6)]


async def test_a_restarted_replica_starts_from_the_newest_refresh_token() -> None:
    share, gorgias, clock = MemoryShare(), FakeGorgias({"first-refresh"}), Clock()
    (first,) = replicas(1, share, gorgias, clock)
    await first.ensure()
    clock.now += 30  # the token expired while no replica ran
    (restarted,) = replicas(1, share, gorgias, clock)
    await restarted.ensure()
    assert gorgias.requests == ["first-refresh", "refresh-1"]  # not the configured one, rotated away long ago
    assert restarted.access_token().get_secret_value() == "access-2"


async def test_a_401_renews_even_a_token_that_has_not_expired() -> None:
    share, gorgias, clock = MemoryShare(), FakeGorgias({"first-refresh"}, rotate=False), Clock()
    a, b = replicas(2, share, gorgias, clock)
    await a.ensure()
    await b.ensure()
    assert await a.ensure(stale="access-1")  # Gorgias refused access-1
    assert a.access_token().get_secret_value() == "access-2"
    assert await b.ensure(stale="access-1") and len(gorgias.requests) == 2  # b takes a's, no second refresh


async def test_a_refused_refresh_token_says_what_to_do_and_a_new_one_starts_a_new_lineage(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    share, gorgias, clock = MemoryShare(), FakeGorgias(set()), Clock()
    (app,) = replicas(1, share, gorgias, clock)
    with pytest.raises(RefreshRefused, match="authorize the app again") as refused:
        await app.ensure()
    assert "env $GORGIAS_TEST_REFRESH" in str(refused.value) and "first-refresh" not in str(refused.value)
    entry = share.read(app.key)
    assert entry.lease_by is None and entry.refused == "invalid_grant"  # the lease is given back
    gorgias.valid.add("authorized-again")
    monkeypatch.setenv("GORGIAS_TEST_REFRESH", "authorized-again")  # the operator's new refresh token
    await app.ensure()
    assert gorgias.requests[-1] == "authorized-again" and app.access_token().get_secret_value() == "access-1"


async def test_the_scope_a_token_was_granted_is_kept_and_shared_and_a_new_refresh_token_brings_a_new_grant(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    share, gorgias, clock = MemoryShare(), FakeGorgias({"first-refresh"}, rotate=False), Clock()
    gorgias.scope["first-refresh"] = "openid offline tickets:read"
    a, b = replicas(2, share, gorgias, clock)
    await a.ensure()
    await b.ensure()
    assert a.current is not None and a.current.scope == "openid offline tickets:read"
    assert b.current is not None and b.current.scope == "openid offline tickets:read"  # from the share
    assert not await a.ensure() and len(gorgias.requests) == 1  # the same refresh token: the token is kept
    gorgias.valid.add("authorized-again")
    gorgias.scope["authorized-again"] = "openid offline tickets:read tickets:write"
    monkeypatch.setenv("GORGIAS_TEST_REFRESH", "authorized-again")
    assert await a.ensure()  # a new refresh token: a new lineage at once, with its grant
    assert a.current is not None and a.current.scope == "openid offline tickets:read tickets:write"


async def test_a_lease_held_by_another_replica_is_waited_for() -> None:
    share, gorgias, clock = MemoryShare(), FakeGorgias({"first-refresh"}), Clock()
    a, b = replicas(2, share, gorgias, clock)
    lease = SharedToken(None, None, lease_by=b.me, lease_until=clock.now + 30)
    await share.write(a.key, lease, None)

    async def b_finishes() -> None:
        await asyncio.sleep(0.05)
        await b.share.write(b.key, SharedToken(1, None), 1)  # b gives the lease back without a token
    waiting = asyncio.ensure_future(a.ensure())
    await b_finishes()
    await asyncio.wait_for(waiting, 5)
    assert gorgias.requests == ["first-refresh"] and a.access_token().get_secret_value() == "access-1"


def test_the_state_never_shows_its_tokens() -> None:
    from worker.gorgias.oauth import TokenState

    state = TokenState("access-secret", "refresh-secret", 1.0, "seed-secret")
    assert "secret" not in repr(state) and "secret" not in str(SharedToken(1, state))
