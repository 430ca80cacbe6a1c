"""Credentials saved at runtime: what a body may say, the document stored for one, and what is shown.

A body (``POST /credentials``, ``PUT /credentials/{name}``) is one credential in the file's schema
(domain, auth, username, base_url, rate_limit), with its secret given either as a reference
(``api_key_env`` / ``api_key_file``, as in the file) or as the secret itself (``api_key``; for
``auth: oauth`` ``access_token``). A secret given itself is never stored as given: the stored document
says ``stored: true`` and keeps the secret, encrypted by the shell (:mod:`worker.host.secret_box`), under
``encrypted``. So no plain secret is ever on a Kafka topic.

A reference is a way to reach the worker's environment, so it is held to :class:`ReferencePolicy`: a
variable must start with ``worker.credential_env_prefix`` and must not be one of the worker's own secrets
(the Kafka password, the control token, the secrets key); a file must lie in ``worker.credential_file_dirs``;
and a referenced secret goes to ``https://{domain}.gorgias.com`` or to a ``base_url`` listed in
``worker.credential_origins`` only. Otherwise a control-token holder could have the worker send, say, the
Kafka password to an origin of their choosing.
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from worker.core.config.account import SECRET_FIELDS, AuthType, Credential
from worker.core.config.base import ConfigError
from worker.core.config.worker_config import problem_of

ENCRYPTED = "encrypted"  # the stored document's encrypted secrets: {secret name: Fernet token}
SECRET_NAMES: Mapping[str, tuple[str, ...]] = {auth.value: fields for auth, fields in SECRET_FIELDS.items()}


@dataclass(frozen=True)
class ReferencePolicy:
    """Which variables, files and origins a saved credential's references may use."""

    env_prefix: str = "GORGIAS_"
    reserved_env: frozenset[str] = frozenset()
    file_dirs: tuple[str, ...] = ()
    origins: tuple[str, ...] = ()
    reserved_files: frozenset[str] = frozenset()


@dataclass(frozen=True)
class CredentialBody:
    """A checked body: the document to store (without secrets), the secrets given in plain, the credential."""

    document: dict[str, Any]
    secrets: dict[str, str]
    credential: Credential


def secret_names(auth: str) -> tuple[str, ...]:
    return SECRET_NAMES.get(auth, ())


def check_body(body: Any, name: str | None, policy: ReferencePolicy, keep_stored: bool = False) -> CredentialBody:
    """A body as a credential to store (:class:`ConfigError` with the file's messages otherwise). With
    ``keep_stored`` (a replace of a credential whose secret is stored), a body giving no secret and no
    reference keeps the stored secret: a change of the rate limit need not send the key again."""
    if not isinstance(body, dict):
        raise ConfigError([f"send one credential as a JSON object (got {type(body).__name__})"])
    given = body.get("name", name)
    if name is not None and given != name:
        raise ConfigError([f"name: is {given!r}, but the route names {name!r}"])
    document = {k: v for k, v in body.items() if k != ENCRYPTED}
    document["name"] = given
    auth = str(document.get("auth", AuthType.BASIC.value))
    secrets: dict[str, str] = {}
    for field in secret_names(auth):
        if field not in document:
            continue
        value = document.pop(field)
        if not isinstance(value, str) or not value.strip():
            raise ConfigError([f"{field}: give the secret as a non-empty string"])
        secrets[field] = value.strip()
        document["stored"] = True
    if not secrets:
        referenced = any(document.get(f"{f}_{kind}") for f in secret_names(auth) for kind in ("env", "file"))
        if keep_stored and not referenced:
            document["stored"] = True
        else:
            document.pop("stored", None)  # a reference: `stored` is for secrets given here
    credential = credential_of(document)
    check_references(credential, policy)
    return CredentialBody(document, secrets, credential)


def credential_of(document: Mapping[str, Any]) -> Credential:
    """The credential a stored document (or a checked body) describes."""
    try:
        return Credential.model_validate({k: v for k, v in document.items() if k != ENCRYPTED})
    except ValidationError as exc:
        raise ConfigError([problem_of(e, root=Credential) for e in exc.errors(include_url=False)]) from None


def check_references(credential: Credential, policy: ReferencePolicy) -> None:
    """A saved credential's references must stay within ``policy`` (see the module docstring)."""
    problems = []
    for field, ref in credential.secret_refs().items():
        problems += _reference_problems(field, ref.env, ref.file, policy)
    if not credential.stored and credential.base_url is not None and credential.base_url not in policy.origins:
        problems.append(f"base_url: a credential whose secret comes from a variable or a file may send it only to "
                        f"https://{credential.host} or an origin in worker.credential_origins, not "
                        f"{credential.base_url}")
    if problems:
        raise ConfigError(problems)


def _reference_problems(field: str, env: str | None, file: str | None, policy: ReferencePolicy) -> list[str]:
    problems = []
    if env is not None:
        if not env.startswith(policy.env_prefix):
            problems.append(f"{field}_env: a credential saved at runtime may name only variables starting with "
                            f"{policy.env_prefix!r} (worker.credential_env_prefix), not {env!r}")
        elif env in policy.reserved_env:
            problems.append(f"{field}_env: {env} holds one of the worker's own secrets, not a Gorgias key")
    if file is not None and not _inside(file, policy.file_dirs):
        allowed = ", ".join(policy.file_dirs) or "none are allowed"
        problems.append(f"{field}_file: a credential saved at runtime may name only files in "
                        f"worker.credential_file_dirs ({allowed}), not {file!r}")
    elif file is not None and posixpath.normpath(file) in policy.reserved_files:
        problems.append(f"{field}_file: {file} holds one of the worker's own secrets, not a Gorgias key")
    return problems


def _inside(path: str, dirs: tuple[str, ...]) -> bool:
    normal = posixpath.normpath(path)
    return posixpath.isabs(normal) and any(
        normal.startswith(posixpath.normpath(d).rstrip("/") + "/") for d in dirs if posixpath.isabs(d))


def public_view(document: Mapping[str, Any]) -> dict[str, Any]:
    """What the API shows of a stored credential: its settings, and how each secret is provided (``env``,
    ``file`` or ``stored``), never a secret, its encrypted form or its length."""
    shown = {k: v for k, v in document.items() if k != ENCRYPTED and k != "stored"}
    try:
        ref = credential_of(document).secret()
        shown["secret"] = {"provided": ref.kind, **({"env": ref.env} if ref.env else {}),
                           **({"file": ref.file} if ref.file else {})}
    except ConfigError:
        shown["secret"] = {"provided": "stored" if document.get("stored") else "unknown"}
    return shown
