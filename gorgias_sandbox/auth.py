"""Who is calling: HTTP Basic (user email + API key) or Bearer (OAuth access token)."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from gorgias_sandbox.settings import AccountSettings


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller: the user, their role and how they authenticated (``api_key``/``oauth``)."""

    user_id: int
    email: str
    role: str
    auth_type: str

    @property
    def read_only(self) -> bool:
        """Observer agents may read but not write."""
        return self.role == "observer-agent"


class Authenticator:
    """Resolves ``Authorization`` headers for one account (exact header values are cached)."""

    def __init__(self, settings: AccountSettings, user_ids: dict[str, int]) -> None:
        self._keys: dict[tuple[str, str], Principal] = {}
        self._tokens: dict[str, Principal] = {}
        self._cache: dict[str, Principal] = {}
        for user in settings.users:
            uid = user_ids[user.email.lower()]
            if user.api_key:
                self._keys[(user.email.lower(), user.api_key)] = Principal(uid, user.email, user.role, "api_key")
            if user.oauth_token:
                self._tokens[user.oauth_token] = Principal(uid, user.email, user.role, "oauth")

    def authenticate(self, header: str | None) -> Principal | None:
        """The caller for this ``Authorization`` header, or ``None`` (→ 401)."""
        if not header:
            return None
        found = self._cache.get(header)
        if found is not None:
            return found
        scheme, _, value = header.strip().partition(" ")
        scheme = scheme.lower()
        value = value.strip()
        if scheme == "basic":
            try:
                decoded = base64.b64decode(value, validate=True).decode()
            except (binascii.Error, UnicodeDecodeError):
                return None
            email, sep, key = decoded.partition(":")
            found = self._keys.get((email.lower(), key)) if sep else None
        elif scheme == "bearer":
            found = self._tokens.get(value)
        if found is not None and len(self._cache) < 10_000:
            self._cache[header] = found
        return found

    def auth_type_of(self, header: str | None) -> str:
        """Which bucket a (possibly invalid) header would count against."""
        return "oauth" if header and header.strip().lower().startswith("bearer") else "api_key"
