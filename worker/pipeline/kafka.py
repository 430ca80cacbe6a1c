"""aiokafka clients built from the config: security settings, producer and consumer factories."""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

import aiokafka
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from worker.config import KafkaSettings, SecurityProtocol

# Every consumer group of the worker (each destination's and faust's own) notices a dead member within
# this time, so a replacement worker takes its partitions over in seconds rather than a minute. Kafka's
# smallest allowed session timeout is 6 s by default (group.min.session.timeout.ms).
GROUP_SESSION_TIMEOUT_MS = 10_000
GROUP_HEARTBEAT_INTERVAL_MS = 1_000


def client_options(settings: KafkaSettings) -> dict[str, Any]:
    """Connection and security keyword arguments shared by producers, consumers and admin clients."""
    opts: dict[str, Any] = {
        "bootstrap_servers": settings.effective_bootstrap(),
        "client_id": settings.client_id,
        "security_protocol": settings.security_protocol.value,
    }
    if settings.security_protocol in (SecurityProtocol.SSL, SecurityProtocol.SASL_SSL):
        context = ssl.create_default_context(cafile=settings.ssl_cafile)
        if settings.ssl_certfile:
            password = None
            if settings.ssl_key_password_env:
                from worker.config import SecretRef

                password = SecretRef(env=settings.ssl_key_password_env).resolve().get_secret_value()
            context.load_cert_chain(settings.ssl_certfile, settings.ssl_keyfile, password=password)
        opts["ssl_context"] = context
    if settings.sasl_mechanism is not None:
        ref = settings.sasl_password()
        assert ref is not None  # guaranteed by the model
        opts["sasl_mechanism"] = settings.sasl_mechanism.value
        opts["sasl_plain_username"] = settings.sasl_username
        opts["sasl_plain_password"] = ref.resolve().get_secret_value()
    return opts


def make_producer(settings: KafkaSettings, **overrides: Any) -> aiokafka.AIOKafkaProducer:
    """An idempotent producer that waits for all in-sync replicas: an outcome is recorded or it fails."""
    options: dict[str, Any] = {
        "acks": "all",
        "enable_idempotence": True,
        "linger_ms": 5,
        "max_batch_size": 256 * 1024,
        "compression_type": None,
        "request_timeout_ms": 30_000,
    }
    options.update(overrides)
    return aiokafka.AIOKafkaProducer(**client_options(settings), **options)


def make_consumer(settings: KafkaSettings, group_id: str | None, **overrides: Any) -> aiokafka.AIOKafkaConsumer:
    """A consumer that never commits by itself: the pipeline commits what is finished."""
    options: dict[str, Any] = {
        "group_id": group_id,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "max_partition_fetch_bytes": 4 * 1024 * 1024,
        "fetch_max_bytes": 32 * 1024 * 1024,
        "session_timeout_ms": GROUP_SESSION_TIMEOUT_MS,
        "heartbeat_interval_ms": GROUP_HEARTBEAT_INTERVAL_MS,
        "max_poll_interval_ms": 300_000,
        "isolation_level": "read_committed",
    }
    options.update(overrides)
    return aiokafka.AIOKafkaConsumer(**client_options(settings), **options)


async def ensure_topic(settings: KafkaSettings, topic: str, compacted: bool = False, partitions: int = 1) -> list[int]:
    """Create ``topic`` unless it exists; returns its partition numbers once its leaders are known."""
    admin = AIOKafkaAdminClient(**client_options(settings))
    await admin.start()
    try:
        configs = {"cleanup.policy": "compact"} if compacted else {}
        try:
            await admin.create_topics([NewTopic(topic, partitions, 1, topic_configs=configs)])
        except TopicAlreadyExistsError:
            pass
        for _ in range(100):
            (described,) = await admin.describe_topics([topic])
            parts = [p["partition"] for p in described.get("partitions", []) if p.get("leader", -1) >= 0]
            if described.get("error_code") == 0 and parts:
                return sorted(parts)
            await asyncio.sleep(0.1)
        raise RuntimeError(f"topic {topic} has no available partitions")
    finally:
        await admin.close()
