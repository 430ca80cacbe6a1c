"""The effective config as a document: every setting with its default, secret values masked.

The config itself only names where secrets live (``*_env``, ``*_file``); those names are shown. A
secret *value* could still reach a plain setting through ``${VAR}`` expansion (a header, a URL), so
any value equal to a secret the caller knows is masked too, as are credential-like request headers.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from worker.config import WorkerConfig

MASK = "********"
SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "x-api-key", "cookie"})


def known_secret_values(config: WorkerConfig) -> list[str]:
    """The values of every secret the config refers to that can be read now (unreadable ones are skipped)."""
    refs = [d.credential.secret() for d in config.destinations]
    refs += [r for r in (config.kafka.sasl_password(), config.worker.control_token()) if r is not None]
    values = []
    for ref in refs:
        try:
            values.append(ref.resolve().get_secret_value())
        except LookupError:
            continue
    return values


def _mask(value: Any, secrets: Iterable[str], key: str = "") -> Any:
    if isinstance(value, dict):
        return {k: _mask(v, secrets, str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [_mask(v, secrets) for v in value]
    if isinstance(value, str):
        if key.lower() in SECRET_HEADERS:
            return MASK
        for secret in secrets:
            if len(secret) >= 4 and secret in value:
                value = value.replace(secret, MASK)
    return value


def effective_document(config: WorkerConfig, secrets: Iterable[str] | None = None) -> dict[str, Any]:
    """``config`` with every default filled in, as plain data, secret values masked."""
    known = list(secrets) if secrets is not None else known_secret_values(config)
    doc = config.model_dump(mode="json")
    masked: dict[str, Any] = _mask(doc, sorted(known, key=len, reverse=True))
    return masked
