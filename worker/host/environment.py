"""What the worker reads from its process environment: secrets and the Kafka bootstrap override.

The config models (:mod:`worker.core.config.worker_config`) only say *where* a secret lives (``SecretRef``: an
environment variable or a mounted file); reading it is I/O, so it happens here, in the shell, when
a command or the worker starts. ``environ`` defaults to the process environment; tests pass their own.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from pydantic import SecretStr

from worker.core.config.base import SecretRef
from worker.core.config.kafka import KafkaSettings
from worker.core.config.worker_config import WorkerConfig
from worker.host.secret_box import STORED, load_box

BOOTSTRAP_VARIABLE = "KAFKA_BOOTSTRAP_SERVERS"


def resolve_secret(ref: SecretRef, environ: Mapping[str, str] | None = None) -> SecretStr:
    """Read the secret ``ref`` points at. Raises ``LookupError`` with a fix when it is missing or empty."""
    if ref.stored is not None:  # a credential saved at runtime: encrypted in the credentials store
        return STORED.reveal(ref.stored)
    if ref.env is not None:
        value = (os.environ if environ is None else environ).get(ref.env, "")
        if not value:
            raise LookupError(f"environment variable {ref.env} is not set (export it, or use a file)")
        return SecretStr(value)
    assert ref.file is not None  # the model holds exactly one of env and file
    try:
        value = Path(ref.file).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise LookupError(f"cannot read secret file {ref.file}: {exc.strerror}") from None
    if not value:
        raise LookupError(f"secret file {ref.file} is empty")
    return SecretStr(value)


def bootstrap_servers(kafka: KafkaSettings, environ: Mapping[str, str] | None = None) -> str:
    """The brokers to reach: ``KAFKA_BOOTSTRAP_SERVERS`` when set, else ``kafka.bootstrap_servers``."""
    return (os.environ if environ is None else environ).get(BOOTSTRAP_VARIABLE) or kafka.bootstrap_servers


def kafka_secret_refs(kafka: KafkaSettings) -> list[tuple[str, SecretRef]]:
    """The secrets of the Kafka settings (SASL password, client key password), each with its setting."""
    refs = (("kafka.sasl_password", kafka.sasl_password()), ("kafka.ssl_key_password", kafka.ssl_key_password()))
    return [(where, ref) for where, ref in refs if ref is not None]


def secret_refs(config: WorkerConfig) -> list[tuple[str, SecretRef]]:
    """Every secret the config refers to, each with the setting that names it (for error lines)."""
    refs = [(f"destinations[{i}].credential", ref) for i, d in enumerate(config.destinations)
            for ref in d.credential.secret_refs().values()]
    refs += kafka_secret_refs(config.kafka)
    token = config.worker.control_token()
    if token is not None:
        refs.append(("worker.control_token", token))
    secrets_key = config.worker.secrets_key()
    if secrets_key is not None:
        refs.append(("worker.secrets_key", secrets_key))
    return refs


def check_refs(refs: list[tuple[str, SecretRef]], environ: Mapping[str, str] | None = None) -> list[str]:
    """Problems with the secrets ``refs`` name that cannot be read now, one line each naming the setting."""
    problems = []
    for where, ref in refs:
        try:
            if where == "worker.secrets_key":
                load_box(ref, environ)  # its errors name the setting
            else:
                resolve_secret(ref, environ)
        except LookupError as exc:
            problems.append(str(exc) if where == "worker.secrets_key" else f"{where}: {exc}")
    return problems


def check_secrets(config: WorkerConfig, environ: Mapping[str, str] | None = None) -> list[str]:
    """Problems with secrets that cannot be read now (the worker refuses to start with any)."""
    return check_refs(secret_refs(config), environ)


def known_secret_values(config: WorkerConfig, environ: Mapping[str, str] | None = None) -> list[str]:
    """The values of every secret the config refers to that can be read now (unreadable ones are skipped)."""
    values = []
    for _, ref in secret_refs(config):
        try:
            values.append(resolve_secret(ref, environ).get_secret_value())
        except LookupError:
            continue
    return values
