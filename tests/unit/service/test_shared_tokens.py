"""Waiting for another replica's token (StoreTokenShare.changed) ends when the wait is cancelled, even when the
cancellation lands in the very turn of the loop in which the store changes (Python 3.11's asyncio.wait_for
dropped it, and the wait went on until its deadline). The scope an app was granted is shared in clear."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from worker.core.store.entries import StoredEntry
from worker.gorgias.oauth import SharedToken, TokenState
from worker.host.secret_box import SecretBox, new_key
from worker.service.shared_tokens import StoreTokenShare, shared_scope


class UnchangedStore:
    """A store whose entry keeps its version (the change notified is not the one waited for)."""

    def version_of(self, key: str) -> int:
        return 1


async def test_a_cancel_landing_as_the_store_changes_ends_the_wait() -> None:
    share = StoreTokenShare(UnchangedStore(), box=None)  # type: ignore[arg-type]
    waiting = asyncio.create_task(share.changed("app", 1, timeout=600))
    await asyncio.sleep(0)  # waiting for the entry to change
    share.notify("app")
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(waiting, 10)


class MemoryStore:
    """The credentials store's entries, in memory: what StoreTokenShare reads and writes."""

    def __init__(self) -> None:
        self.entries: dict[str, StoredEntry] = {}

    def version_of(self, key: str) -> int | None:
        entry = self.entries.get(key)
        return None if entry is None else entry.version

    async def put(self, key: str, document: dict[str, Any], expect: Any) -> StoredEntry:
        entry = StoredEntry(key, (self.version_of(key) or 0) + 1, document, "2026-12-07T08:00:00Z", "test")
        self.entries[key] = entry
        return entry


async def test_the_scope_granted_is_shared_in_clear_beside_the_encrypted_tokens() -> None:
    store = MemoryStore()
    share = StoreTokenShare(store, SecretBox([new_key().encode()]))  # type: ignore[arg-type]
    state = TokenState("access-secret", "refresh-secret", 2e9, "seed-secret", 20.0, "openid offline tickets:read")
    await share.write("oauth-token:acme:app", SharedToken(None, state), None)
    document = store.entries["oauth-token:acme:app"].document
    assert document["scope"] == "openid offline tickets:read" and "access-secret" not in str(document)
    read = share.read("oauth-token:acme:app").state
    assert read is not None and read.scope == "openid offline tickets:read" and read.access_token == "access-secret"
    del document["scope"]  # an entry written before the scope was kept
    read = share.read("oauth-token:acme:app").state
    assert read is not None and read.scope is None


async def test_the_scope_granted_reads_without_the_key_and_is_none_when_unknown() -> None:
    """What GET /credentials shows of an app no destination of this replica uses yet (another replica's token)."""
    store = MemoryStore()
    share = StoreTokenShare(store, SecretBox([new_key().encode()]))  # type: ignore[arg-type]
    assert shared_scope(store, "oauth-token:acme:app") is None  # type: ignore[arg-type]  # no entry yet
    state = TokenState("access-secret", "refresh-secret", 2e9, "seed-secret", 20.0, "openid offline tickets:read")
    await share.write("oauth-token:acme:app", SharedToken(None, state), None)
    assert shared_scope(store, "oauth-token:acme:app") == "openid offline tickets:read"  # type: ignore[arg-type]
    await share.write("oauth-token:acme:app", SharedToken(1, None, "replica-b", 2e9), 1)  # a lease, no tokens
    assert shared_scope(store, "oauth-token:acme:app") is None  # type: ignore[arg-type]
