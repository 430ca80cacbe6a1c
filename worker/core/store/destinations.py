"""Destinations saved at runtime: the document stored for one, and its validation — the same as the file's.

A body (REST or ``destinations apply``) is one destination in the file's schema. It is validated by the
file's model, so its problems carry the file's messages, with paths relative to the destination
(``batching.batch_size``). Its ``credential`` may name a credential
(the file's ``credentials:``, or one saved at runtime); an inline block is accepted only when it is one
the worker's config already defines, because a destination saved through the API must not be able to send
another secret of the worker's environment (``api_key_env: SOME_OTHER_SECRET``) to an account of the
caller's choosing. ``active`` is not stored: activate and pause stay on the control topic, and a body's
``active`` only says the state to put it in (a created destination starts paused).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import ValidationError

from worker.core.config.account import Credential
from worker.core.config.base import ConfigError
from worker.core.config.worker_config import CREDENTIALS_CONTEXT, Destination, problem_of

STATE_FIELD = "active"


def requested_state(body: Mapping[str, Any]) -> bool | None:
    """The state a body asks for (``active: true/false``), None when it says nothing."""
    value = body.get(STATE_FIELD)
    return value if isinstance(value, bool) else None


def stored_document(body: Mapping[str, Any]) -> dict[str, Any]:
    """What is stored of a body: everything but ``active``."""
    return {k: v for k, v in body.items() if k != STATE_FIELD}


def validate_destination(document: Mapping[str, Any], credentials: Mapping[str, Credential]) -> Destination:
    """``document`` as a destination, credentials named from ``credentials``; :class:`ConfigError` with the
    file's messages otherwise."""
    if not isinstance(document, Mapping):
        raise ConfigError([f"a destination is a JSON object (got {type(document).__name__})"])
    try:
        return Destination.model_validate(dict(document), context={CREDENTIALS_CONTEXT: credentials})
    except ValidationError as exc:
        raise ConfigError([problem_of(e, root=Destination) for e in exc.errors(include_url=False)]) from None


def _identity(credential: Credential) -> tuple[Any, ...]:
    return (credential.domain, credential.auth, credential.username, credential.secret().describe(),
            credential.base_url)


def check_inline_credential(
    document: Mapping[str, Any], dest: Destination, known: Iterable[Credential],
) -> None:
    """An inline credential block must be one the config defines (same account, user, secret and origin;
    its rate limit may differ): a saved destination cannot reach for another secret of the environment."""
    if not isinstance(document.get("credential"), Mapping):
        return
    candidates = list(known)
    if any(_identity(c) == _identity(dest.credential) for c in candidates):
        return
    names = sorted({c.name for c in candidates if c.name})
    hint = f"refer to one by name ({', '.join(names)}), or " if names else ""
    raise ConfigError([
        "credential: a destination saved at runtime can only use a credential the worker's config defines "
        f"(the same domain, user, secret and base_url); {hint}define it under `credentials:` in the config"])


def check_group(dest: Destination, others: Iterable[Destination], prefix: str) -> None:
    """The destination's consumer group must be its own (the file's rule)."""
    group = dest.consumer_group(prefix)
    for other in others:
        if other.name != dest.name and other.consumer_group(prefix) == group:
            raise ConfigError([f"group_id: destinations {other.name!r} and {dest.name!r} would share consumer "
                               f"group {group!r}; give each its own group_id"])


def offsets_effect(old: Destination, new: Destination, prefix: str) -> dict[str, Any] | None:
    """What replacing ``old`` with ``new`` means for committed offsets (None: nothing, the group goes on)."""
    old_group, new_group = old.consumer_group(prefix), new.consumer_group(prefix)
    added = sorted(set(new.source_topics) - set(old.source_topics))
    removed = sorted(set(old.source_topics) - set(new.source_topics))
    if old_group == new_group and not added and not removed:
        return None
    notes = []
    if old_group != new_group:
        notes.append(f"it now reads as consumer group {new_group}, which starts where its own committed offsets "
                     f"are or, without any, at start_from ({new.start_from}); group {old_group}'s offsets stay "
                     "in Kafka, unused")
    if added:
        notes.append(f"added topic(s) {', '.join(added)} start at start_from ({new.start_from})")
    if removed:
        notes.append(f"removed topic(s) {', '.join(removed)} are no longer read; their committed offsets stay")
    return {"group": new_group, "previous_group": old_group, "added_topics": added, "removed_topics": removed,
            "effect": "; ".join(notes)}


def referenced_credentials(documents: Iterable[Mapping[str, Any]]) -> set[str]:
    """The credential names saved destinations refer to."""
    return {d["credential"] for d in documents if isinstance(d.get("credential"), str)}


def export_document(
    saved: Iterable[tuple[Mapping[str, Any], bool | None]], credentials: Mapping[str, Credential],
) -> dict[str, Any]:
    """A config file (``credentials:`` and ``destinations:``) holding saved destinations, each with its
    state (``active``) when known: the worker accepts it, and ``destinations apply`` restores it."""
    items = [{**doc, STATE_FIELD: active} if active is not None else dict(doc) for doc, active in saved]
    names = referenced_credentials(items)
    named = {n: c.model_dump(mode="json", exclude_none=True, exclude={"name"})
             for n, c in sorted(credentials.items()) if n in names}
    return {**({"credentials": named} if named else {}), "destinations": items}
