"""What every config model shares: the strict base model, the error, name patterns and secret references.

A secret is never in the config: :class:`SecretRef` says where it lives, and the shell reads it
(:mod:`worker.host.environment`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

GORGIAS_HOST_SUFFIX = ".gorgias.com"
PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
DOMAIN_PLACEHOLDER = "domain"
NAME_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,62}$"
TOPIC_PATTERN = r"^[a-zA-Z0-9._-]{1,249}$"
# Request headers that carry a credential: masked in the effective config and redacted on outcome records.
SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key"})
INLINE_SECRET_KEYS = (
    "api_key", "password", "access_token", "token", "sasl_password", "ssl_key_password", "control_token",
)


class Model(BaseModel):
    """Base for every config model: unknown keys are rejected, values are validated on assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=False)


LEADING_PATH = re.compile(r"^([A-Za-z_][\w.\-\[\]{}]*): (.+)$", re.DOTALL)
GUESS = re.compile(r"did you mean `[^`]+`\?")


@dataclass(frozen=True)
class Problem:
    """One config problem, structured: the setting's path (``batching.batch_size``; empty for the whole
    document), what is wrong, what to do when we can tell (``did you mean `batching`?``), and the
    readable line the command line prints."""

    path: str
    message: str
    suggestion: str | None
    line: str

    @classmethod
    def from_line(cls, line: str) -> Problem:
        """A line ``path: message`` (the form every config error takes) taken apart."""
        match = LEADING_PATH.match(line)
        path, message = (match.group(1), match.group(2)) if match else ("", line)
        guess = GUESS.search(message)
        return cls(path, message, guess.group(0) if guess else None, line)

    def as_dict(self) -> dict[str, str | None]:
        return {"path": self.path, "message": self.message, "suggestion": self.suggestion, "line": self.line}


class ConfigError(Exception):
    """A config that cannot be used: ``problems`` holds one readable line per error, ``items`` the same
    problems structured (:class:`Problem`)."""

    def __init__(self, problems: Sequence[str | Problem]) -> None:
        self.items = [p if isinstance(p, Problem) else Problem.from_line(p) for p in problems]
        self.problems = [p.line for p in self.items]
        super().__init__("\n".join(self.problems))


# --------------------------------------------------------------------------------------------------
# Secrets


class SecretRef(Model):
    """Where a secret lives: an environment variable, a mounted file, or the credentials store (encrypted
    under the workers' key, as ``<credential>/<secret>``). Never the secret itself."""

    env: str | None = Field(default=None, description="Name of the environment variable holding it.")
    file: str | None = Field(default=None, description="Path of a file holding it (e.g. a mounted Secret).")
    stored: str | None = Field(default=None, description="`<credential>/<secret>` in the credentials store.")

    @model_validator(mode="after")
    def _one_source(self) -> SecretRef:
        if sum(v is not None for v in (self.env, self.file, self.stored)) != 1:
            raise ValueError("give exactly one of `env` (variable name) or `file` (path)")
        return self

    @property
    def kind(self) -> str:
        """How it is provided: ``env``, ``file`` or ``stored``."""
        return "env" if self.env is not None else "file" if self.file is not None else "stored"

    def describe(self) -> str:
        if self.stored is not None:
            return f"the credentials store ({self.stored}, encrypted)"
        return f"env ${self.env}" if self.env else f"file {self.file}"


def reject_inline_secrets(data: Any) -> Any:
    if isinstance(data, dict):
        for key in INLINE_SECRET_KEYS:
            if key in data:
                raise ValueError(
                    f"`{key}` must not be written inline: use `{key}_env: VARIABLE` or `{key}_file: PATH`"
                )
    return data
