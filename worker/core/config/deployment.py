"""A deployment's own corner of a shared Kafka cluster: the store topics it keeps and the keys it writes.

Everything the worker keeps on Kafka for itself — control commands, intent marks, and the stores of
runtime destinations, credentials and budget demand — belongs to one *deployment* (``kafka.deployment``,
by default ``kafka.group_id``). Each store topic defaults to ``<deployment>.<store>``, and every key
written to a store starts with ``<deployment>/``, so two deployments on one cluster never read each
other's entries, not even when an operator points both at the same topic: a reader takes only the keys
of its own deployment (:meth:`Deployment.entry`) and ignores the rest.

A deployment name is also the first part of topic names, so it uses the characters of a topic name and
never the key separator ``/``: ``a/b`` cannot be read as deployment ``a``'s entry ``b``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

DEPLOYMENT_PATTERN = r"^[a-zA-Z0-9._-]{1,200}$"  # room left for ".<store>" within Kafka's 249 characters
KEY_SEPARATOR = "/"


class Store(StrEnum):
    """The compacted (or, for intents, append-only) topics a deployment keeps for itself."""

    CONTROL = "control"  # activate / pause per destination
    INTENTS = "intents"  # a create call's source offsets, written before it goes on the wire
    DESTINATIONS = "destinations"  # destinations saved at runtime
    CREDENTIALS = "credentials"  # runtime credentials and OAuth tokens
    DEMAND = "demand"  # each replica's demand on an account's budget


@dataclass(frozen=True)
class Deployment:
    """One deployment's scope: ``topic()`` names its store topics, ``key()`` and ``entry()`` its keys."""

    name: str

    def topic(self, store: Store) -> str:
        """The default topic of ``store``: ``<deployment>.<store>``."""
        return f"{self.name}.{store.value}"

    @property
    def key_prefix(self) -> bytes:
        return (self.name + KEY_SEPARATOR).encode()

    def key(self, entry: str | bytes | None) -> bytes:
        """The Kafka key of ``entry`` (a destination name, a credential name, a record key...)."""
        raw = entry.encode() if isinstance(entry, str) else (entry or b"")
        return self.key_prefix + raw

    def entry(self, key: bytes | None) -> str | None:
        """The entry a key names if this deployment wrote it; None for another deployment's or an unscoped key."""
        if key is None or not key.startswith(self.key_prefix) or len(key) == len(self.key_prefix):
            return None
        return key[len(self.key_prefix):].decode("utf-8", "replace")

    def owns(self, document: dict[str, object]) -> bool:
        """Does a stored document (an intent mark, an outcome) belong to this deployment? Documents written
        before deployments existed carry no ``deployment`` field and are taken as this deployment's: they
        sit on a topic of its own (``<group_id>.intents``) or name one of its consumer groups' records."""
        written_by = document.get("deployment")
        return written_by is None or written_by == self.name


def is_unscoped(key: bytes | None) -> bool:
    """Was this key written before keys were scoped (no ``<deployment>/`` prefix at all)?"""
    return key is not None and KEY_SEPARATOR.encode() not in key
