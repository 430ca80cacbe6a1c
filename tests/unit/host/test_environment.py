"""The shell that reads secrets and the bootstrap override from the process environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from worker.core.config.base import SecretRef
from worker.core.config.kafka import KafkaSettings
from worker.core.config.worker_config import parse_config
from worker.host.environment import bootstrap_servers, check_secrets, known_secret_values, resolve_secret


def config_with(**credential: str) -> dict[str, object]:
    return {"destinations": [{
        "name": "d", "source_topics": ["t"], "endpoint": {"template": "create_ticket"},
        "credential": {"domain": "acme", "username": "a@acme.com", **credential},
    }]}


def test_a_secret_comes_from_the_environment_given() -> None:
    assert resolve_secret(SecretRef(env="KEY"), {"KEY": "s3cret"}).get_secret_value() == "s3cret"
    with pytest.raises(LookupError, match="environment variable KEY is not set"):
        resolve_secret(SecretRef(env="KEY"), {"KEY": ""})


def test_a_secret_file_is_read_and_stripped(tmp_path: Path) -> None:
    path = tmp_path / "key"
    path.write_text("s3cret\n", encoding="utf-8")
    assert resolve_secret(SecretRef(file=str(path)), {}).get_secret_value() == "s3cret"
    path.write_text("  \n", encoding="utf-8")
    with pytest.raises(LookupError, match="is empty"):
        resolve_secret(SecretRef(file=str(path)), {})
    with pytest.raises(LookupError, match="cannot read secret file"):
        resolve_secret(SecretRef(file=str(tmp_path / "absent")), {})


def test_problems_name_the_setting_and_values_skip_what_is_missing() -> None:
    config = parse_config(config_with(api_key_env="KEY"))
    assert check_secrets(config, {}) == [
        "destinations[0].credential: environment variable KEY is not set (export it, or use a file)"
    ]
    assert known_secret_values(config, {}) == []
    assert check_secrets(config, {"KEY": "k"}) == []
    assert known_secret_values(config, {"KEY": "k"}) == ["k"]


def test_the_bootstrap_variable_overrides_the_file() -> None:
    kafka = KafkaSettings(bootstrap_servers="file:9092")
    assert bootstrap_servers(kafka, {}) == "file:9092"
    assert bootstrap_servers(kafka, {"KAFKA_BOOTSTRAP_SERVERS": "env:9092"}) == "env:9092"
