"""The credentials saved at runtime: this deployment's credentials store, as named credentials, and the
writes of the REST API.

The store (:mod:`worker.kafka.store`) holds one document per credential on ``kafka.credentials_topic``
(default ``<deployment>.credentials``): its settings and, for a secret given in the body, the secret
encrypted under the workers' key (:mod:`worker.core.store.credentials`, :mod:`worker.host.secret_box`).
Every replica follows it: the encrypted secrets go to :data:`~worker.host.secret_box.STORED`, where a
call's client reads them, and ``on_change(name)`` tells the runtime, which renews the clients of that
credential (a key rotated by ``PUT`` is used from each replica's next call) and re-reads the saved
destinations that name it.
"""

from __future__ import annotations

import logging
import posixpath
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from worker.core.config.account import Credential
from worker.core.config.base import ConfigError
from worker.core.config.deployment import Store
from worker.core.config.worker_config import WorkerConfig
from worker.core.store.credentials import (
    ENCRYPTED,
    CredentialBody,
    ReferencePolicy,
    check_body,
    credential_of,
    public_view,
)
from worker.core.store.entries import StoredEntry
from worker.core.store.writes import ABSENT, ANYTHING, PRESENT, Expect
from worker.host.secret_box import KEY_SETTINGS, STORED
from worker.kafka.store import CompactedStore
from worker.service.shared_tokens import is_token_entry

log = logging.getLogger(__name__)

TOPIC_SETTING = "kafka.credentials_topic"


class FileDefinedCredential(Exception):
    """A write to a credential the config file defines (409: change it in the file)."""


class CredentialInUse(Exception):
    """A delete of a credential destinations use (409 naming them)."""


class NoSecretsKey(Exception):
    """A secret given in a body, and no key to encrypt it with."""


@dataclass(frozen=True)
class CredentialWrite:
    entry: StoredEntry
    created: bool


def reference_policy(config: WorkerConfig) -> ReferencePolicy:
    """What references a saved credential may use, from the worker's settings: never the worker's own
    secrets' variables."""
    worker, kafka = config.worker, config.kafka
    reserved = {v for v in (kafka.sasl_password_env, kafka.ssl_key_password_env, worker.control_token_env,
                            worker.secrets_key_env) if v}
    files = {posixpath.normpath(v) for v in (kafka.sasl_password_file, kafka.ssl_key_password_file, kafka.ssl_keyfile,
                                             worker.control_token_file, worker.secrets_key_file) if v}
    return ReferencePolicy(worker.credential_env_prefix, frozenset(reserved), tuple(worker.credential_file_dirs),
                           tuple(worker.credential_origins), frozenset(files))


class SavedCredentials:
    """This deployment's credentials store, as credentials."""

    def __init__(self, config: WorkerConfig, on_change: Callable[[str], None] | None = None) -> None:
        kafka = config.kafka
        self.config = config
        self.topic = kafka.store_topic(Store.CREDENTIALS)
        self.store = CompactedStore(kafka, self.topic, kafka.scope, TOPIC_SETTING, self._changed)
        self.file_credentials = dict(config.credentials)
        self.policy = reference_policy(config)
        self.on_change = on_change
        self._published: dict[str, list[str]] = {}  # credential -> the STORED names it put there

    async def start(self) -> None:
        await self.store.start()
        for name in self.names():
            self._publish(name)

    async def stop(self) -> None:
        await self.store.stop()

    def _changed(self, name: str) -> None:
        if not is_token_entry(name):
            self._publish(name)
        if self.on_change is not None:
            self.on_change(name)

    def names(self) -> list[str]:
        """The saved credentials' names, readable or not (the OAuth apps' shared tokens are not credentials)."""
        return sorted(n for n in {*self.store.entries, *self.store.unreadable} if not is_token_entry(n))

    def _publish(self, name: str) -> None:
        """Put the entry's encrypted secrets where calls read them (and take back those it no longer has)."""
        entry = self.store.entries.get(name)
        tokens = entry.document.get(ENCRYPTED) if entry is not None else None
        tokens = tokens if isinstance(tokens, dict) else {}
        for stale in self._published.pop(name, []):
            STORED.set(stale, None)
        names = []
        for secret, token in tokens.items():
            if isinstance(token, str):
                STORED.set(f"{name}/{secret}", token)
                names.append(f"{name}/{secret}")
        self._published[name] = names

    # ---------------------------------------------------------------------------------------------
    # reading

    def credentials(self) -> dict[str, Credential]:
        """Every saved credential that can be read, by name."""
        found = {}
        for name, entry in self.store.entries.items():
            if is_token_entry(name):
                continue
            try:
                found[name] = credential_of(entry.document)
            except ConfigError:
                continue
        return found

    def problem(self, name: str) -> str | None:
        """Why a saved credential cannot be used (None: it can, or there is no such name)."""
        if name in self.store.unreadable:
            return self.store.unreadable[name]
        entry = self.store.entries.get(name)
        if entry is None:
            return None
        try:
            credential_of(entry.document)
        except ConfigError as exc:
            return f"its saved document (version {entry.version}) is not valid: {'; '.join(exc.problems)}"
        return None

    def view(self, name: str) -> dict[str, Any] | None:
        """What the API shows of a saved credential (never a secret), or None."""
        entry = self.store.entries.get(name)
        if entry is None:
            return None
        return {**public_view(entry.document), "source": "store", **entry.describe()}

    # ---------------------------------------------------------------------------------------------
    # writing

    def check(self, body: Any, name: str | None = None, keep_stored: bool = False) -> CredentialBody:
        checked = check_body(body, name, self.policy, keep_stored)
        if checked.credential.name in self.file_credentials:
            raise FileDefinedCredential(f"credential {checked.credential.name!r} is defined in the config file: "
                                        "change it there (the API changes only credentials saved at runtime)")
        return checked

    def _document(self, checked: CredentialBody) -> dict[str, Any]:
        """The document to store: the secrets given encrypted, never in plain."""
        document = dict(checked.document)
        if checked.secrets:
            box = STORED.box
            if box is None:
                raise NoSecretsKey(f"this worker has no key to encrypt the secret with: set {KEY_SETTINGS} (the "
                                   "same key on every replica), or give the secret as a variable or file reference")
            document[ENCRYPTED] = {field: box.encrypt(value) for field, value in checked.secrets.items()}
        return document

    async def create(self, body: Any) -> CredentialWrite:
        checked = self.check(body)
        name = str(checked.credential.name)
        entry = await self.store.put(name, self._document(checked), ABSENT)
        log.info("credential %s saved (version %d)", name, entry.version)
        return CredentialWrite(entry, True)

    async def replace(self, name: str, body: Any, expect: Expect = ANYTHING) -> CredentialWrite:
        """Replace (or create) ``name``. A body without the secret keeps the stored one (a change of the rate
        limit need not send the key again)."""
        current = self.store.entries.get(name)
        kept = current.document.get(ENCRYPTED) if current is not None else None
        checked = self.check(body, name, keep_stored=isinstance(kept, dict))
        document = self._document(checked)
        if checked.credential.stored and not checked.secrets:
            document[ENCRYPTED] = kept
        created = self.store.version_of(name) is None
        entry = await self.store.put(name, document, expect)
        log.info("credential %s %s (version %d)", name, "saved" if created else "changed", entry.version)
        return CredentialWrite(entry, created)

    async def delete(self, name: str, users: list[str], expect: Expect = PRESENT) -> int:
        if name in self.file_credentials:
            raise FileDefinedCredential(f"credential {name!r} is defined in the config file: remove it there")
        if users:
            raise CredentialInUse(f"credential {name!r} is used by destination(s) {', '.join(sorted(users))}: change "
                                  "or delete them first")
        version = await self.store.delete(name, expect)
        log.info("credential %s deleted (version %d)", name, version)
        return version

    async def re_encrypt(self) -> list[str]:
        """Encrypt every stored secret again under the first key (after a new key was put first); returns the
        credentials rewritten."""
        box = STORED.box
        if box is None:
            raise NoSecretsKey(f"this worker has no key: set {KEY_SETTINGS}")
        done = []
        for name, entry in list(self.store.entries.items()):
            tokens = entry.document.get(ENCRYPTED)  # a credential's secrets, or an app's shared tokens
            if not isinstance(tokens, dict) or not tokens:
                continue
            rotated = {field: box.rotate(str(token)) for field, token in tokens.items()}
            await self.store.put(name, {**entry.document, ENCRYPTED: rotated}, Expect(version=entry.version))
            done.append(name)
        log.info("re-encrypted the secrets of %d credential(s) under the first key", len(done))
        return done

