"""Who is calling: HTTP Basic (user email + API key) or Bearer (OAuth access token)."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from gorgias_sandbox.settings import AccountSettings


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller: the user, their role and how they authenticated (``api_key``/``oauth``);
    ``scope``: what an issued OAuth access token was granted (``None``: not scope-checked)."""

    user_id: int
    email: str
    role: str
    auth_type: str
    scope: str | None = None

    @property
    def read_only(self) -> bool:
        """Observer agents may read but not write."""
        return self.role == "observer-agent"


class Authenticator:
    """Resolves ``Authorization`` headers for one account (exact header values are cached).

    A user's API key or OAuth token can be changed while the sandbox runs (:meth:`set_api_key`,
    :meth:`set_oauth_token`: a key reset in Gorgias' settings, a revoked token); :meth:`reset` brings back
    the configured ones.
    """

    def __init__(self, settings: AccountSettings, user_ids: dict[str, int]) -> None:
        self._settings = settings
        self._user_ids = user_ids
        self._keys: dict[tuple[str, str], Principal] = {}
        self._tokens: dict[str, Principal] = {}
        self._cache: dict[str, Principal] = {}
        self.reset()

    def reset(self) -> None:
        """The users' configured keys and tokens, and nothing else."""
        self._keys.clear()
        self._tokens.clear()
        self._cache.clear()
        for user in self._settings.users:
            self.set_api_key(user.email, user.api_key)
            self.set_oauth_token(user.email, user.oauth_token)

    def principal(self, email: str, auth_type: str) -> Principal:
        """The account's user ``email`` as a caller authenticated with ``auth_type`` (KeyError: no such user)."""
        return self._principal(email, auth_type)

    def _principal(self, email: str, auth_type: str) -> Principal:
        for user in self._settings.users:
            if user.email.lower() == email.lower():
                return Principal(self._user_ids[user.email.lower()], user.email, user.role, auth_type)
        raise KeyError(email)

    def set_api_key(self, email: str, api_key: str | None) -> None:
        """``email``'s only valid API key from now on (None: none). KeyError for an unknown user."""
        principal = self._principal(email, "api_key")
        for key in [k for k in self._keys if k[0] == email.lower()]:
            del self._keys[key]
        if api_key:
            self._keys[(email.lower(), api_key)] = principal
        self._cache.clear()

    def set_oauth_token(self, email: str, token: str | None) -> None:
        """``email``'s only valid fixed OAuth token from now on (None: none). KeyError for an unknown user."""
        principal = self._principal(email, "oauth")
        for token_value in [t for t, p in self._tokens.items() if p.email.lower() == email.lower()]:
            del self._tokens[token_value]
        if token:
            self._tokens[token] = principal
        self._cache.clear()

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
