"""The secrets of credentials saved at runtime: encrypted under a key only the workers hold.

A credential saved through the control API keeps its secret (an API key, a client secret, OAuth tokens)
in the credentials store on Kafka, never in plain text: each one is a Fernet token (AES-128-CBC with an
HMAC-SHA256, from ``cryptography``) made with the workers' key. The key comes from
``worker.secrets_key_env`` or ``worker.secrets_key_file``: one or more Fernet keys (urlsafe base64 of 32
bytes), separated by commas or new lines. The first encrypts; every one decrypts (``MultiFernet``), which
is how the key is rotated: put a new key first, have the stored secrets encrypted again
(``POST /credentials/re-encrypt``), then drop the old key.

:data:`STORED` is the process's view of the store's encrypted secrets (``<credential>/<secret>`` →
token), kept current by the store's follower; :func:`worker.host.environment.resolve_secret` reads a
stored secret through it. A worker without the key (or with another one) can read none of them: the
error names the setting.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from pydantic import SecretStr

from worker.core.config.base import SecretRef

KEY_SETTINGS = "worker.secrets_key_env or worker.secrets_key_file"
_SEPARATORS = re.compile(r"[,\s]+")


class SecretBox:
    """Encrypts with the first key, decrypts with any of them."""

    def __init__(self, keys: list[bytes]) -> None:
        if not keys:
            raise ValueError("at least one key is needed")
        self._fernet = MultiFernet([Fernet(k) for k in keys])
        self.keys = len(keys)

    @classmethod
    def from_text(cls, text: str, where: str) -> SecretBox:
        """Keys from the text of the setting ``where`` names; LookupError saying what is wrong."""
        keys = [k for k in _SEPARATORS.split(text.strip()) if k]
        try:
            return cls([k.encode("ascii") for k in keys])
        except (ValueError, UnicodeEncodeError):
            raise LookupError(f"{where} does not hold Fernet keys (32 bytes, urlsafe base64, comma-separated; "
                              "make one with `gorgias-worker secrets-key`)") from None

    def encrypt(self, plain: str) -> str:
        return self._fernet.encrypt(plain.encode()).decode("ascii")

    def decrypt(self, token: str) -> str:
        """The plain secret; LookupError when no key of this worker made the token."""
        try:
            return self._fernet.decrypt(token.encode("ascii")).decode()
        except (InvalidToken, UnicodeEncodeError, ValueError):
            raise LookupError(f"it was encrypted under a key this worker does not hold: give {KEY_SETTINGS} the "
                              "key the other workers use (a rotation keeps the old key after the new one)") from None

    def rotate(self, token: str) -> str:
        """The token encrypted again under the first key (LookupError as :meth:`decrypt`)."""
        try:
            return self._fernet.rotate(token.encode("ascii")).decode("ascii")
        except (InvalidToken, UnicodeEncodeError, ValueError):
            raise LookupError(f"a stored secret was encrypted under a key this worker does not hold ({KEY_SETTINGS})"
                              ) from None


def new_key() -> str:
    """A fresh Fernet key, for ``worker.secrets_key_*``."""
    return Fernet.generate_key().decode("ascii")


def load_box(ref: SecretRef | None, environ: Mapping[str, str] | None = None) -> SecretBox | None:
    """The key(s) ``ref`` points at (None when no key is configured); LookupError naming the setting."""
    if ref is None:
        return None
    if ref.env is not None:
        text = (os.environ if environ is None else environ).get(ref.env, "")
        where = f"worker.secrets_key_env (${ref.env})"
    else:
        try:
            text = Path(str(ref.file)).read_text(encoding="utf-8")
        except OSError as exc:
            raise LookupError(f"worker.secrets_key_file: cannot read {ref.file}: {exc.strerror}") from None
        where = f"worker.secrets_key_file ({ref.file})"
    if not text.strip():
        raise LookupError(f"{where} is empty")
    return SecretBox.from_text(text, where)


class StoredSecrets:
    """The credentials store's encrypted secrets this process knows, and the key to read them."""

    def __init__(self) -> None:
        self.box: SecretBox | None = None
        self._tokens: dict[str, str] = {}

    def set(self, name: str, token: str | None) -> None:
        """``name`` (``<credential>/<secret>``) is now ``token`` (None: gone)."""
        if token is None:
            self._tokens.pop(name, None)
        else:
            self._tokens[name] = token

    def token(self, name: str) -> str | None:
        return self._tokens.get(name)

    def names(self) -> list[str]:
        return sorted(self._tokens)

    def reveal(self, name: str) -> SecretStr:
        """The plain secret; LookupError naming what is missing (the entry, or the key)."""
        token = self._tokens.get(name)
        if token is None:
            raise LookupError(f"the credentials store holds no secret {name} (yet)")
        if self.box is None:
            raise LookupError(f"{name} is stored encrypted and this worker has no key to read it: set {KEY_SETTINGS}")
        try:
            return SecretStr(self.box.decrypt(token))
        except LookupError as exc:
            raise LookupError(f"{name}: {exc}") from None


STORED = StoredSecrets()
