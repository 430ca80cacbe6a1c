"""The OAuth tokens the replicas share, as entries of the credentials store (issue 25).

An app's entry (``oauth-token:<domain>:<client_id>``) holds the deployment's newest access and refresh
tokens and the refresh token they grew from (``seed``), each encrypted under the workers' key like every
stored secret (:mod:`worker.host.secret_box`), when the access token expires, the scope it was granted (in
clear: not a secret), and the lease of the replica refreshing it now. Writes are the store's optimistic
ones (:mod:`worker.kafka.store`): of two replicas taking the lease at once exactly one wins.
:class:`~worker.gorgias.oauth.OAuthApp` does the rest.
"""

from __future__ import annotations

import asyncio
from typing import Any

from worker.core.store.writes import ABSENT, Expect, WriteRefused
from worker.gorgias.oauth import ShareConflict, SharedToken, TokenState
from worker.host.secret_box import STORED, SecretBox
from worker.kafka.store import CompactedStore

PREFIX = "oauth-token:"
_TOKENS = ("access_token", "refresh_token", "seed")


def is_token_entry(name: str) -> bool:
    return name.startswith(PREFIX)


class StoreTokenShare:
    """:class:`~worker.gorgias.oauth.TokenShare` on the credentials store."""

    def __init__(self, store: CompactedStore, box: SecretBox) -> None:
        self.store = store
        self.box = box
        self._changes: dict[str, asyncio.Event] = {}

    def read(self, key: str) -> SharedToken:
        entry = self.store.entries.get(key)
        if entry is None:
            return SharedToken(self.store.version_of(key), None)
        doc = entry.document
        raw_lease = doc.get("lease")
        lease: dict[str, Any] = raw_lease if isinstance(raw_lease, dict) else {}
        refused = doc.get("refused")
        return SharedToken(entry.version, self._state(doc), lease.get("by"), float(lease.get("until") or 0.0),
                           refused if isinstance(refused, str) else None)

    def _state(self, doc: dict[str, Any]) -> TokenState | None:
        encrypted = doc.get("encrypted")
        if not isinstance(encrypted, dict) or not all(isinstance(encrypted.get(k), str) for k in _TOKENS):
            return None
        try:
            plain = {k: self.box.decrypt(encrypted[k]) for k in _TOKENS}
        except LookupError:
            return None  # another key made it: this replica starts a lineage of its own from its seed
        scope = doc.get("scope")
        return TokenState(plain["access_token"], plain["refresh_token"], float(doc.get("expires_at") or 0.0),
                          plain["seed"], float(doc.get("lifetime_s") or 3600.0),
                          scope if isinstance(scope, str) else None)

    async def write(self, key: str, entry: SharedToken, expect_version: int | None) -> int:
        doc: dict[str, Any] = {"kind": "oauth_token", "refused": entry.refused,
                               "lease": {"by": entry.lease_by, "until": entry.lease_until} if entry.lease_by else None}
        if entry.state is not None:
            state = entry.state
            doc["expires_at"] = state.expires_at
            doc["lifetime_s"] = state.lifetime_s
            doc["scope"] = state.scope  # what the app was granted: not a secret
            doc["encrypted"] = {"access_token": self.box.encrypt(state.access_token),
                                "refresh_token": self.box.encrypt(state.refresh_token),
                                "seed": self.box.encrypt(state.seed)}
        expect = ABSENT if expect_version is None else Expect(version=expect_version)
        try:
            written = await self.store.put(key, doc, expect)
        except WriteRefused as exc:
            raise ShareConflict(str(exc)) from None
        return written.version

    async def changed(self, key: str, seen: int | None, timeout: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(0.0, timeout)
        while self.store.version_of(key) == seen and loop.time() < deadline:
            event = self._changes.setdefault(key, asyncio.Event())
            event.clear()
            try:  # not wait_for: 3.11's drops a cancel landing as the event is set, and this loop would go on
                async with asyncio.timeout_at(deadline):
                    await event.wait()
            except TimeoutError:
                return

    def notify(self, key: str) -> None:
        """The store changed ``key`` (called by its follower)."""
        event = self._changes.get(key)
        if event is not None:
            event.set()


def shared_scope(store: CompactedStore, key: str) -> str | None:
    """The scope the deployment's current token of app ``key`` was granted, as its entry says (None: no entry, or
    not said): read in clear, without the key."""
    entry = store.entries.get(key)
    scope = entry.document.get("scope") if entry is not None else None
    return scope if isinstance(scope, str) else None


def token_share(store: CompactedStore) -> StoreTokenShare | None:
    """The share on ``store``, when this worker holds the key (without it an app cannot share its tokens)."""
    return StoreTokenShare(store, STORED.box) if STORED.box is not None else None
