"""The TLS context of the worker's Kafka clients, from the files the config names (a mounted CA bundle,
client certificate and key). Every problem with those files is one :class:`TlsSettingError` line naming
the setting and the fix; the key password never appears in one.
"""

from __future__ import annotations

import ssl
from pathlib import Path

from worker.core.config.kafka import KafkaSettings
from worker.host.environment import resolve_secret


class TlsSettingError(ValueError):
    """A TLS file of the Kafka settings that cannot be used; the message names the setting."""


def _read(setting: str, path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise TlsSettingError(f"kafka.{setting}: cannot read {path} ({exc.strerror or exc})") from None


def _key_password(settings: KafkaSettings, key_path: str, key_text: str) -> str | None:
    ref = settings.ssl_key_password()
    encrypted = "ENCRYPTED" in key_text.split("-----END", 1)[0]
    if ref is None:
        if encrypted:
            raise TlsSettingError(f"kafka.ssl_keyfile: {key_path} is encrypted: set kafka.ssl_key_password_env or "
                                  "kafka.ssl_key_password_file")
        return None
    where = "kafka.ssl_key_password_env" if settings.ssl_key_password_env else "kafka.ssl_key_password_file"
    try:
        return resolve_secret(ref).get_secret_value()
    except LookupError as exc:
        raise TlsSettingError(f"{where}: {exc}") from None


def _load_client_certificate(context: ssl.SSLContext, settings: KafkaSettings) -> None:
    cert_path = settings.ssl_certfile
    assert cert_path is not None
    key_path = settings.ssl_keyfile or cert_path
    cert_text = _read("ssl_certfile", cert_path)
    if "-----BEGIN CERTIFICATE-----" not in cert_text:
        raise TlsSettingError(f"kafka.ssl_certfile: {cert_path} holds no PEM certificate (-----BEGIN CERTIFICATE-----)")
    key_setting = "ssl_keyfile" if settings.ssl_keyfile else "ssl_certfile"
    key_text = _read(key_setting, key_path)
    if "PRIVATE KEY-----" not in key_text:
        raise TlsSettingError(
            f"kafka.{key_setting}: {key_path} holds no PEM private key (-----BEGIN ... PRIVATE KEY-----)")
    password = _key_password(settings, key_path, key_text)

    def no_prompt() -> str:  # never OpenSSL's interactive prompt: a key it cannot open is an error
        return password or ""

    try:
        context.load_cert_chain(cert_path, key_path, password=no_prompt)
    except ssl.SSLError as exc:
        reason = exc.reason or ""
        if "MISMATCH" in reason:
            raise TlsSettingError(f"kafka.ssl_keyfile: {key_path} is not the key of the certificate in "
                                  f"kafka.ssl_certfile ({cert_path})") from None
        if password is not None:
            raise TlsSettingError(f"kafka.ssl_keyfile: {key_path} cannot be opened with the password of "
                                  "kafka.ssl_key_password_env/_file (wrong password?)") from None
        raise TlsSettingError(f"kafka.{key_setting}: {key_path} cannot be loaded ({reason or 'not a key'})") from None


def client_context(settings: KafkaSettings) -> ssl.SSLContext | None:
    """The TLS context for ``settings`` (None without TLS): brokers verified against ``ssl_cafile`` (or the
    system's CAs) and their host names checked; the client certificate loaded for mutual TLS."""
    if not settings.uses_tls:
        return None
    context = ssl.create_default_context()
    if settings.ssl_cafile is not None:
        if "-----BEGIN CERTIFICATE-----" not in _read("ssl_cafile", settings.ssl_cafile):
            raise TlsSettingError(f"kafka.ssl_cafile: {settings.ssl_cafile} holds no PEM certificate "
                                  "(-----BEGIN CERTIFICATE-----)")
        try:
            context = ssl.create_default_context(cafile=settings.ssl_cafile)
        except ssl.SSLError as exc:
            raise TlsSettingError(f"kafka.ssl_cafile: {settings.ssl_cafile} cannot be loaded "
                                  f"({exc.reason or exc})") from None
    if settings.ssl_certfile is not None:
        _load_client_certificate(context, settings)
    return context


def tls_problems(settings: KafkaSettings) -> list[str]:
    """Why the TLS files of ``settings`` cannot be used now (for ``validate`` and the start of ``run``)."""
    try:
        client_context(settings)
    except (TlsSettingError, ssl.SSLError) as exc:
        return [str(exc)]
    return []
