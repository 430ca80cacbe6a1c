"""Whether the brokers accept the worker's SASL login, in one line that names the setting to change.

aiokafka's clients report a refused login only as "Unable to bootstrap" (the broker's answer goes to its
log), which reads as a broker that is down, and the worker would wait ``worker.broker_wait_s`` for it.
:func:`check_sasl` logs in once on one connection (aiokafka's own ``create_conn``, which authenticates
and raises the broker's answer) before the clients start. The broker's answer never holds the password,
and neither does the line.
"""

from __future__ import annotations

from aiokafka.conn import create_conn
from aiokafka.errors import IllegalSaslStateError, KafkaError, SaslAuthenticationFailed, UnsupportedSaslMechanismError

from worker.core.config.kafka import KafkaSettings
from worker.host.environment import bootstrap_servers, resolve_secret
from worker.host.tls import client_context
from worker.kafka.tls_check import CHECK_TIMEOUT_S, KafkaAccessError, servers


class KafkaAuthError(KafkaAccessError):
    """The brokers refuse the worker's SASL settings; the message is one line."""


def refusal(settings: KafkaSettings, exc: KafkaError) -> str | None:
    """The line for a failed login (None: not a login problem)."""
    mechanism = settings.sasl_mechanism.value if settings.sasl_mechanism else "?"
    password = "kafka.sasl_password_env" if settings.sasl_password_env else "kafka.sasl_password_file"
    if isinstance(exc, SaslAuthenticationFailed):
        answer = str(exc.args[0]) if exc.args else "authentication failed"
        return (f"login as {settings.sasl_username} with {mechanism} refused ({answer}): check kafka.sasl_username "
                f"and the password {password} names")
    if isinstance(exc, UnsupportedSaslMechanismError):
        return (f"the broker does not accept {mechanism} (kafka.sasl_mechanism): use one that its SASL listener "
                "enables (sasl.enabled.mechanisms)")
    if isinstance(exc, IllegalSaslStateError):
        return (f"the broker does not expect a SASL login here: is this its SASL listener? kafka.security_protocol "
                f"is {settings.security_protocol.value}")
    return None


async def check_sasl(settings: KafkaSettings, timeout_s: float = CHECK_TIMEOUT_S) -> None:
    """Raise :class:`KafkaAuthError` (one line) when the first bootstrap server that answers refuses the
    worker's SASL login; nothing without SASL, or when no server can be reached (not a login problem)."""
    ref = settings.sasl_password()
    if settings.sasl_mechanism is None or ref is None:
        return
    password = resolve_secret(ref).get_secret_value()
    for host, port in servers(bootstrap_servers(settings)):
        try:
            conn = await create_conn(
                host, port, client_id=settings.client_id, request_timeout_ms=int(timeout_s * 1000),
                ssl_context=client_context(settings), security_protocol=settings.security_protocol.value,
                sasl_mechanism=settings.sasl_mechanism.value, sasl_plain_username=settings.sasl_username,
                sasl_plain_password=password,
            )
        except KafkaError as exc:
            problem = refusal(settings, exc)
            if problem is not None:
                raise KafkaAuthError(f"Kafka at {host}:{port}: {problem}") from None
            continue
        except (OSError, TimeoutError):
            continue
        conn.close()
        return
