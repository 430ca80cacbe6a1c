"""The destinations saved at runtime: this deployment's destinations store, read as destinations, and the
writes of the REST API and of ``gorgias-worker destinations``.

The store (:mod:`worker.kafka.store`) holds one document per destination on ``kafka.destinations_topic``
(default ``<deployment>.destinations``). Each replica turns the current document of a name into the
destination to run (:meth:`SavedDestinations.wanted`) or into the reason it cannot: a value that does not
parse, a config that is no longer valid, a name the config file defines. A write is validated exactly as
the file is (:mod:`worker.core.store.destinations`) before anything is written; the state a body asks for
(a created destination starts paused) goes to the control topic after the store took the destination.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from worker.core.config.account import Credential
from worker.core.config.base import ConfigError
from worker.core.config.deployment import Store
from worker.core.config.worker_config import Destination, WorkerConfig
from worker.core.store.destinations import (
    check_group,
    check_inline_credential,
    offsets_effect,
    requested_state,
    stored_document,
    validate_destination,
)
from worker.core.store.entries import StoredEntry
from worker.core.store.writes import ABSENT, ANYTHING, PRESENT, Expect
from worker.core.templates import renderer_for
from worker.host.environment import resolve_secret
from worker.kafka.control import send_command
from worker.kafka.store import CompactedStore, prepare_store_topic
from worker.service.saved_credentials import SavedCredentials

log = logging.getLogger(__name__)

TOPIC_SETTING = "kafka.destinations_topic"


class FileDefined(Exception):
    """A write to a destination the config file defines (409: change it in the file)."""


@dataclass(frozen=True)
class Saved:
    """A write's answer: the entry as stored, its state, and what a replace means for offsets."""

    entry: StoredEntry
    active: bool | None  # the state the write put it in (None: unchanged)
    offsets: dict[str, Any] | None = None


class SavedDestinations:
    """This deployment's destinations store, as destinations."""

    def __init__(self, config: WorkerConfig, on_change: Callable[[str], None] | None = None,
                 config_file: str | None = None, secrets_here: bool = True) -> None:
        kafka = config.kafka
        self.config = config
        self.config_file = config_file or "the config file"
        self.topic = kafka.store_topic(Store.DESTINATIONS)
        self.store = CompactedStore(kafka, self.topic, kafka.scope, TOPIC_SETTING, on_change)
        self.file_destinations = {d.name: d for d in config.destinations}
        self.secrets_here = secrets_here  # a write checks that the credential's secret can be read here
        # Named credentials a saved destination may use: the file's today; the credentials store plugs in here.
        self.credentials: Callable[[], Mapping[str, Credential]] = lambda: config.credentials
        self._cache: dict[str, tuple[int, Destination | ConfigError]] = {}

    async def start(self) -> None:
        await self.store.start()

    async def stop(self) -> None:
        await self.store.stop()

    def names(self) -> list[str]:
        """Every name in the store, readable or not."""
        return sorted({*self.store.entries, *self.store.unreadable})

    # ---------------------------------------------------------------------------------------------
    # reading

    def wanted(self, name: str) -> Destination | str | None:
        """What the store says should run as ``name``: a destination, the reason none can (the destination is
        failed), or None when the store has no such name."""
        if name in self.store.unreadable:
            return self.store.unreadable[name]
        entry = self.store.entries.get(name)
        if entry is None:
            return None
        if name in self.file_destinations:
            return f"{self.config_file} defines a destination of this name, which runs instead"
        parsed = self._parsed(entry)
        if isinstance(parsed, ConfigError):
            return f"its saved config (version {entry.version}) is not valid: {'; '.join(parsed.problems)}"
        earlier = [d for e in self.store.entries.values()
                   if e.offset < entry.offset and isinstance(d := self._parsed(e), Destination)]
        try:
            check_group(parsed, [*self.file_destinations.values(), *earlier], self.config.kafka.group_id)
        except ConfigError as exc:
            return f"its saved config (version {entry.version}) is not valid: {'; '.join(exc.problems)}"
        return parsed

    def _parsed(self, entry: StoredEntry) -> Destination | ConfigError:
        """An entry as a destination (or why not), parsed once per stored value."""
        cached = self._cache.get(entry.name)
        if cached is not None and cached[0] == entry.offset:
            return cached[1]
        try:
            result: Destination | ConfigError = self._parse(entry.document, entry.name)
        except ConfigError as exc:
            result = exc
        self._cache[entry.name] = (entry.offset, result)
        return result

    def refresh(self) -> None:
        """Parse every entry again (e.g. when the named credentials changed)."""
        self._cache.clear()

    def _parse(self, document: Mapping[str, Any], name: str) -> Destination:
        if document.get("name", name) != name:
            raise ConfigError([f"name: is {document.get('name')!r}, but the destination is saved as {name!r}"])
        dest = validate_destination({**document, "name": name}, self.credentials())
        if dest.endpoint.template is not None:
            try:
                renderer_for(dest)
            except ValueError as exc:
                raise ConfigError([str(exc)]) from None
        return dest

    def users_of(self, credential: str) -> list[str]:
        """The saved destinations that name ``credential``."""
        entries = self.store.entries.items()
        return sorted(name for name, entry in entries if entry.document.get("credential") == credential)

    def stored(self, name: str) -> StoredEntry | None:
        return self.store.entries.get(name)

    # ---------------------------------------------------------------------------------------------
    # writing

    def check_body(self, body: Any, name: str | None = None) -> Destination:
        """A body validated as the file's destinations are (ConfigError: nothing is written)."""
        if not isinstance(body, dict):
            raise ConfigError([f"send one destination as a JSON object (got {type(body).__name__})"])
        if name is not None:
            if body.get("name", name) != name:
                raise ConfigError([f"name: is {body.get('name')!r}, but the route names {name!r}"])
            body = {**body, "name": name}
        dest = self._parse(stored_document(body), str(body.get("name", "")))
        check_inline_credential(body, dest, self._known_credentials())
        others = [*self.file_destinations.values(),
                  *(d for e in self.store.entries.values() if isinstance(d := self._parsed(e), Destination))]
        check_group(dest, others, self.config.kafka.group_id)
        if self.secrets_here:
            try:
                resolve_secret(dest.credential.secret())
            except LookupError as exc:
                raise ConfigError([f"credential: {exc} on this worker"]) from None
        return dest

    def _known_credentials(self) -> list[Credential]:
        return [*self.credentials().values(), *(d.credential for d in self.file_destinations.values())]

    def _refuse_file_defined(self, name: str) -> None:
        if name in self.file_destinations:
            raise FileDefined(f"destination {name!r} is defined in {self.config_file}: change it there (the API "
                              "changes only destinations saved at runtime)")

    async def create(self, body: Any) -> Saved:
        """Save a new destination (paused unless the body says ``active: true``)."""
        dest = self.check_body(body)
        self._refuse_file_defined(dest.name)
        return await self._put(dest, body, ABSENT)

    async def replace(self, name: str, body: Any, expect: Expect = ANYTHING) -> Saved:
        """Replace (or create) ``name``; its state changes only when the body says ``active``."""
        self._refuse_file_defined(name)
        dest = self.check_body(body, name)
        before = self.wanted(name)
        saved = await self._put(dest, {**body, "name": name}, expect)
        effect = offsets_effect(before, dest, self.config.kafka.group_id) if isinstance(before, Destination) else None
        return Saved(saved.entry, saved.active, effect)

    async def _put(self, dest: Destination, body: Mapping[str, Any], expect: Expect) -> Saved:
        """Store ``body`` as ``dest.name`` and set the state it asks for. A destination created paused gets its
        pause on the control topic first: no replica can start it with an older word of the name (active)."""
        name = dest.name
        created = self.store.version_of(name) is None
        requested = requested_state(body)
        if created and not requested:
            await send_command(self.config.kafka, name, False)
        entry = await self.store.put(name, stored_document(body), expect)
        if requested is not None and not (created and requested is False):
            await send_command(self.config.kafka, name, requested)
        active = False if created and requested is None else requested
        return Saved(entry, active)

    async def delete(self, name: str, expect: Expect = PRESENT) -> int:
        """Delete ``name`` from the store (every replica stops it as on SIGTERM); returns the version deleted.
        Its control record is set to paused, so that a destination created again under the name starts paused."""
        self._refuse_file_defined(name)
        version = await self.store.delete(name, expect)
        await send_command(self.config.kafka, name, False)
        return version

    async def apply(self, items: list[Any], states: Mapping[str, bool]) -> list[str]:
        """Create or replace each item (``destinations apply``): every item is checked before anything is
        written; an item equal to what is stored is left alone (applying a file twice changes nothing).
        ``states`` is the control topic's word per name. Returns one line per destination."""
        problems: list[str] = []
        for i, item in enumerate(items):
            try:
                dest = self.check_body(item)
                self._refuse_file_defined(dest.name)
            except ConfigError as exc:
                problems += [f"destinations[{i}]{'' if p.path == '' else '.' + p.path}: {p.message}"
                             for p in exc.items]
            except FileDefined as exc:
                problems.append(f"destinations[{i}]: {exc}")
        if problems:
            raise ConfigError(problems)
        lines = []
        for item in items:
            name = item["name"]
            current = self.stored(name)
            wanted_state = requested_state(item)
            if current is not None and current.document == stored_document(item):
                if wanted_state is not None and states.get(name) != wanted_state:
                    await send_command(self.config.kafka, name, wanted_state)
                    lines.append(f"{name}: unchanged (version {current.version}), now "
                                 f"{'active' if wanted_state else 'paused'}")
                else:
                    lines.append(f"{name}: unchanged (version {current.version})")
                continue
            saved = await self.replace(name, item)
            done = "created" if current is None else "replaced"
            state = "" if saved.active is None else f", {'active' if saved.active else 'paused'}"
            lines.append(f"{name}: {done} (version {saved.entry.version}{state})")
        return lines


async def prepare_store_topics(config: WorkerConfig) -> None:
    """Create the destinations store's topic, or refuse one that cannot hold it (:class:`StoreUnavailable`)."""
    await prepare_store_topic(config.kafka, config.kafka.store_topic(Store.DESTINATIONS), TOPIC_SETTING)


@asynccontextmanager
async def opened(config: WorkerConfig, config_file: str | None = None) -> AsyncIterator[SavedDestinations]:
    """The destinations store read to its end, for one command (the CLI), naming the credentials of the file
    and of the credentials store; secrets are not read."""
    credentials = SavedCredentials(config)
    saved = SavedDestinations(config, config_file=config_file, secrets_here=False)
    saved.credentials = lambda: {**credentials.credentials(), **config.credentials}
    await credentials.start()
    try:
        await saved.start()
        try:
            yield saved
        finally:
            await saved.stop()
    finally:
        await credentials.stop()
