"""Kafka TLS settings without a broker: the model refuses incomplete or ignored settings, the files a
deployment mounts are checked with one line naming the setting (never the key password), and the CLI
says so in one line before it touches Kafka."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from tests.support.config_docs import CONFIG, one_error_line, problems, with_
from tests.support.tls import CertificateAuthority, write_pair
from worker.core.config.kafka import KafkaSettings
from worker.host.tls import TlsSettingError, client_context, tls_problems
from worker.kafka.tls_check import refusal_problem, servers
from worker.tools.cli import app

PASSWORD = "a-key-password-9f3e"


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A CA bundle, a client pair, the same with an encrypted key, and another client's key."""
    root = tmp_path_factory.mktemp("tls")
    ca = CertificateAuthority("unit CA")
    cert, key = write_pair(ca.issue("worker", client=True), root / "plain")
    enc_cert, enc_key = write_pair(ca.issue("worker", client=True), root / "encrypted", password=PASSWORD)
    _, other_key = write_pair(ca.issue("other", client=True), root / "other")
    (root / "password").write_text(PASSWORD + "\n")
    (root / "not-pem.crt").write_text("this is not a certificate\n")
    return {"ca": ca.write_ca(root / "ca.crt"), "cert": cert, "key": key, "enc_cert": enc_cert,
            "enc_key": enc_key, "other_key": other_key, "password": root / "password", "not_pem": root / "not-pem.crt"}


def settings(**values: Any) -> KafkaSettings:
    return KafkaSettings.model_validate({"security_protocol": "SSL", **{k: str(v) for k, v in values.items()}})


@pytest.mark.parametrize(("kafka", "needle"), [
    ({"ssl_cafile": "/ca.crt"}, "ssl_cafile is set but security_protocol is PLAINTEXT"),
    ({"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "PLAIN", "sasl_username": "u",
      "sasl_password_env": "P", "ssl_certfile": "/c"}, "ssl_certfile is set but security_protocol is SASL_PLAINTEXT"),
    ({"security_protocol": "SSL", "ssl_keyfile": "/k"}, "ssl_keyfile is set without ssl_certfile"),
    ({"security_protocol": "SSL", "ssl_certfile": "/c", "ssl_key_password_env": "A", "ssl_key_password_file": "/p"},
     "at most one of ssl_key_password_env or ssl_key_password_file"),
    ({"security_protocol": "SSL", "ssl_key_password_env": "A"}, "without ssl_certfile"),
    ({"security_protocol": "SSL", "ssl_key_password": "inline"}, "ssl_key_password_env"),
])
def test_tls_settings_that_cannot_work_are_refused(kafka: dict[str, Any], needle: str) -> None:
    (problem,) = problems(with_("kafka", {"bootstrap_servers": "b:9093", **kafka}))
    assert problem.startswith("kafka") and needle in problem


def test_a_complete_mutual_tls_context_loads(files: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    assert client_context(KafkaSettings()) is None  # PLAINTEXT: no TLS at all
    plain = client_context(settings(ssl_cafile=files["ca"], ssl_certfile=files["cert"], ssl_keyfile=files["key"]))
    assert plain is not None and plain.verify_mode is ssl.CERT_REQUIRED and plain.check_hostname
    from_file = settings(ssl_cafile=files["ca"], ssl_certfile=files["enc_cert"], ssl_keyfile=files["enc_key"],
                         ssl_key_password_file=files["password"])
    assert client_context(from_file) is not None
    monkeypatch.setenv("KEY_PASSWORD", PASSWORD)
    from_env = settings(ssl_certfile=files["enc_cert"], ssl_keyfile=files["enc_key"],
                        ssl_key_password_env="KEY_PASSWORD")
    assert tls_problems(from_env) == []


@pytest.mark.parametrize(("case", "needle"), [
    ("missing CA", "kafka.ssl_cafile: cannot read"),
    ("CA not PEM", "kafka.ssl_cafile:"),
    ("missing key", "kafka.ssl_keyfile: cannot read"),
    ("key of another certificate", "is not the key of the certificate in kafka.ssl_certfile"),
    ("encrypted key, no password", "is encrypted: set kafka.ssl_key_password_env or kafka.ssl_key_password_file"),
    ("wrong password", "cannot be opened with the password"),
    ("password variable unset", "kafka.ssl_key_password_env: environment variable UNSET_KEY_PASSWORD is not set"),
    ("certificate is not PEM", "kafka.ssl_certfile:"),
])
def test_each_file_problem_is_one_line_naming_the_setting(
    files: dict[str, Path], case: str, needle: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WRONG_KEY_PASSWORD", "not-" + PASSWORD)
    monkeypatch.delenv("UNSET_KEY_PASSWORD", raising=False)
    pair = {"ssl_certfile": files["cert"], "ssl_keyfile": files["key"]}
    encrypted = {"ssl_certfile": files["enc_cert"], "ssl_keyfile": files["enc_key"]}
    given: dict[str, Any] = {
        "missing CA": {"ssl_cafile": files["ca"].with_name("absent.crt")},
        "CA not PEM": {"ssl_cafile": files["not_pem"]},
        "missing key": {**pair, "ssl_keyfile": files["key"].with_name("absent.key")},
        "key of another certificate": {**pair, "ssl_keyfile": files["other_key"]},
        "encrypted key, no password": encrypted,
        "wrong password": {**encrypted, "ssl_key_password_env": "WRONG_KEY_PASSWORD"},
        "password variable unset": {**encrypted, "ssl_key_password_env": "UNSET_KEY_PASSWORD"},
        "certificate is not PEM": {**pair, "ssl_certfile": files["not_pem"]},
    }[case]
    problem = tls_problems(settings(**given))
    assert len(problem) == 1 and needle in problem[0], problem
    assert PASSWORD not in problem[0]
    with pytest.raises(TlsSettingError):
        client_context(settings(**given))


def test_bootstrap_lists_split_into_servers() -> None:
    assert servers("a:9093, b.example:9094,[::1]:9095,no-port") == [("a", 9093), ("b.example", 9094), ("::1", 9095)]


runner = CliRunner()


def write_config(tmp_path: Path, **kafka: str) -> str:
    doc = {**CONFIG, "kafka": {"bootstrap_servers": "127.0.0.1:1", **kafka}}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(doc))
    return str(path)


def test_validate_and_run_name_an_unreadable_ca_bundle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLI_ERR_KEY", "k-123456")
    config = write_config(tmp_path, security_protocol="SSL", ssl_cafile=str(tmp_path / "ca.crt"))
    for command in (["validate", "-c", config], ["run", "-c", config], ["status", "-c", config]):
        one_error_line(runner.invoke(app, command), "kafka.ssl_cafile: cannot read", "ca.crt")


def test_a_kafka_command_names_a_sasl_password_it_cannot_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLI_ERR_KEY", "k-123456")
    monkeypatch.delenv("UNSET_KAFKA_PASSWORD", raising=False)
    monkeypatch.delenv("KAFKA_BOOTSTRAP_SERVERS", raising=False)
    config = write_config(tmp_path, security_protocol="SASL_PLAINTEXT", sasl_mechanism="SCRAM-SHA-512",
                          sasl_username="worker", sasl_password_env="UNSET_KAFKA_PASSWORD")
    for command in (["status", "-c", config], ["pause", "support-tickets", "-c", config]):
        one_error_line(runner.invoke(app, command), "kafka.sasl_password: environment variable UNSET_KAFKA_PASSWORD")


@pytest.mark.parametrize(("client_cert", "reason", "needle"), [
    (False, "SSLV3_ALERT_BAD_CERTIFICATE", "requires a client certificate (mutual TLS; it answered 'bad certificate')"),
    (False, None, "requires a client certificate (mutual TLS; it closed the connection after the TLS handshake)"),
    (True, "SSLV3_ALERT_CERTIFICATE_UNKNOWN", "refused the client certificate in kafka.ssl_certfile (/c.crt)"),
    (True, None, "refused the client certificate in kafka.ssl_certfile (/c.crt) (it closed the connection"),
    (True, "SSLV3_ALERT_CERTIFICATE_EXPIRED", "client certificate in kafka.ssl_certfile (/c.crt): it has expired"),
    (True, "TLSV1_ALERT_UNKNOWN_CA", "refused the client certificate"),
    (False, "SSLV3_ALERT_HANDSHAKE_FAILURE", "share no TLS version or cipher suite"),
    (False, "TLSV1_ALERT_INTERNAL_ERROR", "ended the TLS session (it answered 'internal error')"),
])
def test_what_the_broker_said_at_the_end_of_a_tls_session(client_cert: bool, reason: str | None, needle: str) -> None:
    given = {"ssl_certfile": "/c.crt", "ssl_keyfile": "/c.key"} if client_cert else {}
    assert needle in refusal_problem(settings(**given), reason)
