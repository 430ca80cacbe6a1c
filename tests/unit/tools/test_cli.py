"""The command line: validate prints a summary or every error; schemas checks drift."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from worker.tools.cli import app

runner = CliRunner()

CONFIG = {
    "destinations": [{
        "name": "support-tickets",
        "source_topics": ["nexset.support-requests"],
        "credential": {"domain": "mystore", "username": "agent@mystore.com", "api_key_env": "CLI_TEST_KEY"},
        "endpoint": {"method": "PUT", "url": "https://{domain}.gorgias.com/api/tickets/{ticket_id}"},
        "batching": {"enabled": True, "algorithm": "by_attribute", "attributes": ["ticket_id"]},
    }]
}


def write(tmp_path: Path, doc: object) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def test_validate_prints_a_summary_of_each_destination(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLI_TEST_KEY", "k-123456")
    result = runner.invoke(app, ["validate", "--config", str(write(tmp_path, CONFIG))])
    assert result.exit_code == 0, result.output
    assert "support-tickets  [active]" in result.output
    assert "PUT https://{domain}.gorgias.com/api/tickets/{ticket_id}" in result.output
    assert "by_attribute: up to 100 records" in result.output
    assert "k-123456" not in result.output


def test_validate_lists_every_error_and_exits_1(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CLI_TEST_KEY", raising=False)
    doc = yaml.safe_load(yaml.safe_dump(CONFIG))
    doc["destinations"][0]["batching"]["batch_size"] = 0
    doc["destinations"][0]["delivery"] = {"max_attempts": 0}
    result = runner.invoke(app, ["validate", "--config", str(write(tmp_path, doc))])
    assert result.exit_code == 1
    assert "destinations[0].batching.batch_size: must be >= 1 (got 0)" in result.output
    assert "destinations[0].delivery.max_attempts: must be >= 1 (got 0)" in result.output


def test_validate_fails_on_an_unreadable_secret(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CLI_TEST_KEY", raising=False)
    result = runner.invoke(app, ["validate", "--config", str(write(tmp_path, CONFIG))])
    assert result.exit_code == 1
    assert "CLI_TEST_KEY is not set" in result.output
    ok = runner.invoke(app, ["validate", "--no-secrets", "--config", str(write(tmp_path, CONFIG))])
    assert ok.exit_code == 0


def test_schemas_are_reported_up_to_date() -> None:
    result = runner.invoke(app, ["schemas"])
    assert result.exit_code == 0 and "up to date" in result.output
