"""Looking for secrets where they must not be (topics, logs): each secret in the forms it could leak in."""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping


def encodings(secret: str, user: str | None = None) -> list[bytes]:
    """``secret`` as is, in base64 (both alphabets) and hex; with ``user``, also as an HTTP Basic header
    carries it (``base64(user:secret)``)."""
    raw = secret.encode()
    found = [raw, base64.b64encode(raw), base64.urlsafe_b64encode(raw), raw.hex().encode()]
    return found + ([base64.b64encode(f"{user}:{secret}".encode())] if user is not None else [])


def secret_hits(secrets: Iterable[str], places: Mapping[str, bytes], user: str | None = None) -> list[tuple[str, str]]:
    """``(place, first characters of the secret)`` for every secret found in any form in any place."""
    return [(where, secret[:8]) for secret in secrets for form in encodings(secret, user)
            for where, data in places.items() if form in data]
