"""The effective config as a document: every setting with its default, secret values masked.

The config itself only names where secrets live (``*_env``, ``*_file``); those names are shown. A
secret *value* could still reach a plain setting through ``${VAR}`` expansion (a header, a URL), so
any value equal to a secret the caller knows is masked too, as are credential-like request headers.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from worker.core.config.base import SECRET_HEADERS
from worker.core.config.worker_config import WorkerConfig

MASK = "********"


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


def masked_document(doc: dict[str, Any], secrets: Iterable[str]) -> dict[str, Any]:
    """A config document (a saved destination, say) with credential-like headers and ``secrets`` masked."""
    masked: dict[str, Any] = _mask(doc, sorted(secrets, key=len, reverse=True))
    return masked


def effective_document(config: WorkerConfig, secrets: Iterable[str]) -> dict[str, Any]:
    """``config`` with every default filled in, as plain data, the ``secrets`` values masked.

    The caller reads the values (:func:`worker.host.environment.known_secret_values`): this module does no I/O.
    """
    return masked_document(config.model_dump(mode="json"), secrets)
