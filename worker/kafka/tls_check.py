"""Why a TLS connection to Kafka fails, in one line that names the setting to change.

aiokafka reports a failed TLS handshake only as "Unable to bootstrap" (the cause goes to its log), so
before the worker or a command starts its clients, :func:`check_tls` opens one TLS connection to each
bootstrap server with the worker's own context and sends an ApiVersions request (the first request of
every Kafka client, allowed before SASL). That shows both the handshake (the broker's certificate: its
CA, its dates, its host names) and the broker's verdict on the client certificate, which TLS 1.3 sends
only after the handshake. A server that cannot be reached at all is not a TLS problem: the caller's
usual waiting and messages handle it.
"""

from __future__ import annotations

import asyncio
import ssl
import struct

from worker.core.config.kafka import KafkaSettings
from worker.host.environment import bootstrap_servers
from worker.host.tls import client_context

CHECK_TIMEOUT_S = 10.0
# ApiVersions v0 with correlation id 1 and client id "gorgias-worker".
API_VERSIONS_REQUEST = struct.pack(">hhih", 18, 0, 1, 14) + b"gorgias-worker"
# OpenSSL verification results: the chain does not lead to a trusted CA.
UNTRUSTED = {2, 18, 19, 20, 21, 27}
EXPIRED, NOT_YET_VALID = 10, 9
HOST_MISMATCH = {62, 64}
NO_COMMON_GROUND = ("HANDSHAKE_FAILURE", "PROTOCOL_VERSION", "INSUFFICIENT_SECURITY", "NO_SHARED_CIPHER")
NOT_TLS = ("WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE", "UNEXPECTED_EOF", "PACKET_LENGTH_TOO_LONG")


class KafkaAccessError(Exception):
    """The brokers and the worker's security settings do not agree (waiting will not help); one line."""


class KafkaTlsError(KafkaAccessError):
    """A broker's TLS listener and the worker's TLS settings do not agree; the message is one line."""


def servers(bootstrap: str) -> list[tuple[str, int]]:
    """``host:port`` pairs of a bootstrap list (an IPv6 host in brackets)."""
    pairs = []
    for item in bootstrap.split(","):
        host, _, port = item.strip().rpartition(":")
        if host and port.isdigit():
            pairs.append((host.strip("[]"), int(port)))
    return pairs


def _alert(reason: str) -> str:
    return reason.split("ALERT_", 1)[-1].replace("_", " ").lower()


def verification_problem(settings: KafkaSettings, host: str, exc: ssl.SSLCertVerificationError) -> str:
    detail = exc.verify_message or exc.reason or str(exc)
    cafile = settings.ssl_cafile
    if exc.verify_code in UNTRUSTED:
        where = (f"a CA in kafka.ssl_cafile ({cafile})" if cafile
                 else "a CA this system trusts (kafka.ssl_cafile is not set)")
        return (f"the broker's certificate is not signed by {where} ({detail}): set kafka.ssl_cafile to the CA "
                "bundle that signed the brokers' certificates")
    if exc.verify_code == EXPIRED:
        return ("the broker's certificate has expired: the brokers need a renewed certificate (the worker "
                "verifies it with kafka.ssl_cafile)")
    if exc.verify_code == NOT_YET_VALID:
        return ("the broker's certificate is not valid yet: check the clocks of this machine and of the "
                "brokers (the worker verifies it with kafka.ssl_cafile)")
    if exc.verify_code in HOST_MISMATCH:
        return (f"the broker's certificate is not valid for {host} ({detail}): kafka.bootstrap_servers must "
                "name the brokers by a host name their certificate lists (and so must their advertised listeners)")
    return f"the broker's certificate cannot be verified with kafka.ssl_cafile ({detail})"


def refusal_problem(settings: KafkaSettings, reason: str | None) -> str:
    """The broker ended the TLS session with an alert (``reason``; None: it just closed the connection
    after the handshake): in TLS 1.3 that is its verdict on our client certificate, or on its absence."""
    how = f"it answered '{_alert(reason)}'" if reason else "it closed the connection after the TLS handshake"
    certfile = settings.ssl_certfile
    if reason and any(mark in reason for mark in NO_COMMON_GROUND):
        return f"the TLS handshake failed ({how}): the broker and the worker share no TLS version or cipher suite"
    if reason and "CERTIFICATE" not in reason and "UNKNOWN_CA" not in reason:
        return f"the broker ended the TLS session ({how}): see the broker's log for why"
    if certfile is None:
        return (f"the broker requires a client certificate (mutual TLS; {how}): set kafka.ssl_certfile and "
                "kafka.ssl_keyfile")
    if reason and "CERTIFICATE_EXPIRED" in reason:
        return f"the broker refused the client certificate in kafka.ssl_certfile ({certfile}): it has expired"
    return (f"the broker refused the client certificate in kafka.ssl_certfile ({certfile}) ({how}): it must be "
            "signed by a CA the brokers trust and be valid now")


def _not_tls(settings: KafkaSettings, detail: str) -> str:
    return (f"no TLS answer ({detail}): is this the brokers' TLS listener? kafka.security_protocol is "
            f"{settings.security_protocol.value}")


async def _handshake(settings: KafkaSettings, host: str, port: int, context: ssl.SSLContext,
                     timeout_s: float) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | str | None:
    """The open TLS connection, or the problem with it (None: not reachable, not a TLS problem)."""
    try:
        return await asyncio.wait_for(
            asyncio.open_connection(host, port, ssl=context, ssl_handshake_timeout=timeout_s), timeout_s)
    except ssl.SSLCertVerificationError as exc:
        return verification_problem(settings, host, exc)
    except ssl.SSLError as exc:
        reason = exc.reason or ""
        if not reason or any(mark in reason for mark in NOT_TLS):
            return _not_tls(settings, reason.replace("_", " ").lower() or str(exc))
        return refusal_problem(settings, reason)
    except (ConnectionResetError, ConnectionAbortedError, asyncio.IncompleteReadError):
        return _not_tls(settings, "the connection was closed during the handshake")
    except (OSError, TimeoutError):
        return None


async def problem_with(settings: KafkaSettings, host: str, port: int, context: ssl.SSLContext,
                       timeout_s: float = CHECK_TIMEOUT_S) -> str | None:
    """What goes wrong with TLS at ``host:port``; None when it works, or when the server is not reachable."""
    opened = await _handshake(settings, host, port, context, timeout_s)
    if not isinstance(opened, tuple):
        return opened
    reader, writer = opened
    try:
        writer.write(struct.pack(">i", len(API_VERSIONS_REQUEST)) + API_VERSIONS_REQUEST)
        await writer.drain()
        await asyncio.wait_for(reader.readexactly(4), timeout_s)
    except ssl.SSLError as exc:  # TLS 1.3: the broker's verdict on our certificate comes after the handshake
        return refusal_problem(settings, exc.reason or None)
    except (ConnectionResetError, ConnectionAbortedError, asyncio.IncompleteReadError):
        return refusal_problem(settings, None)  # the same verdict, when the reset overtakes the alert
    except (OSError, TimeoutError):
        return None
    finally:
        writer.close()
        try:
            await writer.wait_closed()
        except (OSError, ssl.SSLError):
            pass
    return None


async def check_tls(settings: KafkaSettings, timeout_s: float = CHECK_TIMEOUT_S) -> None:
    """Raise :class:`KafkaTlsError` (one line) when a bootstrap server's TLS listener refuses the worker's
    TLS settings or they refuse it; nothing without TLS. Raises ``TlsSettingError`` for unusable files."""
    context = client_context(settings)
    if context is None:
        return
    for host, port in servers(bootstrap_servers(settings)):
        problem = await problem_with(settings, host, port, context, timeout_s)
        if problem is not None:
            raise KafkaTlsError(f"Kafka at {host}:{port}: {problem}")
