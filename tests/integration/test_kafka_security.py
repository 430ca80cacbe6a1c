"""SASL against the real broker: the worker's own Kafka clients authenticate with each mechanism it supports.

The session broker (tests/support/broker.py) has a SASL_PLAINTEXT listener with the user ``worker`` /
``worker-secret`` for SCRAM-SHA-256, SCRAM-SHA-512 and PLAIN. The clients are built exactly as the worker
builds them: :func:`worker.kafka.clients.client_options` from a :class:`KafkaSettings`. A refused login
is one line naming the setting in the commands that touch Kafka (TLS and SASL_SSL: test_kafka_tls.py).
"""

from __future__ import annotations

import logging
import time
import uuid
from pathlib import Path

import aiokafka
import pytest
import yaml
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaConnectionError
from typer.testing import CliRunner

from tests.support.shared_broker import SharedBroker
from worker.core.config.kafka import KafkaSettings
from worker.kafka.clients import client_options, make_consumer, make_producer
from worker.tools.cli import app

pytestmark = pytest.mark.integration

PASSWORD = "worker-secret"
WRONG_PASSWORD = "not-the-worker-secret-4f1c"


@pytest.fixture
def sasl_bootstrap(kafka_broker: SharedBroker | None, monkeypatch: pytest.MonkeyPatch) -> str:
    if kafka_broker is None:
        pytest.skip("KAFKA_BOOTSTRAP_SERVERS points at an external broker: its SASL users are unknown here")
    monkeypatch.delenv("KAFKA_BOOTSTRAP_SERVERS", raising=False)
    return kafka_broker.sasl_bootstrap


def sasl_settings(bootstrap: str, mechanism: str, **password: str) -> KafkaSettings:
    return KafkaSettings.model_validate({
        "bootstrap_servers": bootstrap,
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": mechanism,
        "sasl_username": "worker",
        **(password or {"sasl_password_env": "KAFKA_PASSWORD"}),
    })


async def round_trip(settings: KafkaSettings) -> None:
    """Create a topic, produce a record and consume it back, every client authenticated by ``settings``."""
    topic = f"sasl-{uuid.uuid4().hex[:12]}"
    admin = AIOKafkaAdminClient(**client_options(settings))
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
    finally:
        await admin.close()

    producer = make_producer(settings)
    await producer.start()
    try:
        sent = await producer.send_and_wait(topic, b'{"ticket_id": 1}', key=b"1")
    finally:
        await producer.stop()

    consumer = make_consumer(settings, f"g-{topic}")
    consumer.subscribe([topic])
    await consumer.start()
    try:
        got: list[aiokafka.ConsumerRecord[bytes, bytes]] = []
        deadline = time.monotonic() + 60  # joining the group and the first fetch: seconds on a loaded machine
        while not got and time.monotonic() < deadline:
            for records in (await consumer.getmany(timeout_ms=1000)).values():
                got.extend(records)
        await consumer.commit()
        committed = await consumer.committed(aiokafka.TopicPartition(topic, sent.partition))
    finally:
        await consumer.stop()
    assert [(r.key, r.value, r.offset) for r in got] == [(b"1", b'{"ticket_id": 1}', sent.offset)]
    assert committed == sent.offset + 1


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-256", "SCRAM-SHA-512", "PLAIN"])
async def test_produce_and_consume_with_each_mechanism(
    sasl_bootstrap: str, mechanism: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KAFKA_PASSWORD", PASSWORD)
    settings = sasl_settings(sasl_bootstrap, mechanism)
    options = client_options(settings)
    assert options["security_protocol"] == "SASL_PLAINTEXT"
    assert options["sasl_mechanism"] == mechanism
    assert options["sasl_plain_username"] == "worker"
    await round_trip(settings)


async def test_password_from_a_file(sasl_bootstrap: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KAFKA_PASSWORD", raising=False)
    secret = tmp_path / "kafka-password"
    secret.write_text(PASSWORD + "\n", encoding="utf-8")  # as mounted Secrets often are: with a newline
    await round_trip(sasl_settings(sasl_bootstrap, "SCRAM-SHA-512", sasl_password_file=str(secret)))


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-512", "PLAIN"])
async def test_a_wrong_password_is_an_authentication_failure_that_does_not_leak_it(
    sasl_bootstrap: str, mechanism: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("KAFKA_PASSWORD", WRONG_PASSWORD)
    settings = sasl_settings(sasl_bootstrap, mechanism)
    caplog.set_level(logging.INFO)
    for client in (make_producer(settings), make_consumer(settings, "g-wrong-password")):
        with pytest.raises(KafkaConnectionError) as failure:
            await client.start()
        await client.stop()
        text = "".join(str(e) + repr(e) for e in (failure.value, failure.value.__cause__, failure.value.__context__))
        assert WRONG_PASSWORD not in text
        assert PASSWORD not in text
    # aiokafka reports why it could not bootstrap in its log: an authentication failure, not a network error.
    assert "SaslAuthenticationFailed" in caplog.text
    assert "Authentication failed" in caplog.text
    assert WRONG_PASSWORD not in caplog.text


async def test_the_right_password_on_the_wrong_listener_fails(
    kafka_broker: SharedBroker | None, sasl_bootstrap: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A SASL client pointed at the PLAINTEXT listener does not silently fall back to no authentication."""
    assert kafka_broker is not None
    monkeypatch.setenv("KAFKA_PASSWORD", PASSWORD)
    producer = make_producer(sasl_settings(kafka_broker.bootstrap, "SCRAM-SHA-256"), request_timeout_ms=3000)
    with pytest.raises(KafkaConnectionError):
        await producer.start()
    await producer.stop()


def cli_config(tmp_path: Path, kafka: dict[str, str]) -> str:
    doc = {
        "kafka": {"group_id": "g-sasl-cli", **kafka},
        "destinations": [{
            "name": "tickets", "source_topics": ["sasl-cli-source"],
            "credential": {"domain": "acme", "username": "agent@acme.com", "api_key_env": "GORGIAS_API_KEY"},
            "endpoint": {"method": "POST", "url": "https://{domain}.gorgias.com/api/tickets"},
        }],
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(doc))
    return str(path)


@pytest.mark.parametrize(("mechanism", "listener", "needle"), [
    ("SCRAM-SHA-512", "sasl", "login as worker with SCRAM-SHA-512 refused"),
    ("PLAIN", "sasl", "login as worker with PLAIN refused (Authentication failed: Invalid username or password)"),
    ("SCRAM-SHA-256", "plaintext", "does not expect a SASL login here: is this its SASL listener?"),
])
def test_a_refused_login_is_one_line_naming_the_setting_in_commands(
    kafka_broker: SharedBroker | None, sasl_bootstrap: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    mechanism: str, listener: str, needle: str,
) -> None:
    assert kafka_broker is not None
    monkeypatch.setenv("KAFKA_PASSWORD", WRONG_PASSWORD if listener == "sasl" else PASSWORD)
    bootstrap = sasl_bootstrap if listener == "sasl" else kafka_broker.bootstrap
    config = cli_config(tmp_path, {"bootstrap_servers": bootstrap, "security_protocol": "SASL_PLAINTEXT",
                                   "sasl_mechanism": mechanism, "sasl_username": "worker",
                                   "sasl_password_env": "KAFKA_PASSWORD"})
    for command in (["status", "-c", config], ["pause", "tickets", "-c", config]):
        result = CliRunner().invoke(app, command)
        assert result.exit_code == 1, (result.stdout, result.stderr)
        lines = result.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"error: Kafka at {bootstrap}: "), result.stderr
        assert needle in lines[0] and "kafka.s" in lines[0]
        assert "Traceback" not in result.stdout + result.stderr
        assert WRONG_PASSWORD not in result.stdout + result.stderr and PASSWORD not in result.stdout + result.stderr


def test_the_right_login_passes_the_check(sasl_bootstrap: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_PASSWORD", PASSWORD)
    config = cli_config(tmp_path, {"bootstrap_servers": sasl_bootstrap, "security_protocol": "SASL_PLAINTEXT",
                                   "sasl_mechanism": "SCRAM-SHA-256", "sasl_username": "worker",
                                   "sasl_password_env": "KAFKA_PASSWORD"})
    result = CliRunner().invoke(app, ["status", "-c", config])
    assert result.exit_code == 0, result.stderr
    assert "sasl-cli-source" in result.stdout
