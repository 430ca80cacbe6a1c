"""Every CLI mistake is one clear line on stderr and exit status 1, never a traceback; help fits 80 columns."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from tests.support.config_docs import CONFIG, one_error_line
from worker.core.config.kafka import KafkaSettings
from worker.tools.cli import app
from worker.tools.cli_app import kafka_call

runner = CliRunner()


@pytest.fixture
def config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("KAFKA_BOOTSTRAP_SERVERS", raising=False)
    monkeypatch.setenv("CLI_ERR_KEY", "k-123456")
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(CONFIG))
    return path


@pytest.fixture
def dead_broker(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """An address where nothing listens."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", f"127.0.0.1:{port}")
    yield f"127.0.0.1:{port}"


def test_responses_with_an_unknown_destination(config_file: Path) -> None:
    result = runner.invoke(app, ["responses", "-c", str(config_file), "--destination", "nope"])
    one_error_line(result, "no destination named 'nope'", "support-tickets")


def test_a_misspelt_destination_gets_a_did_you_mean(config_file: Path) -> None:
    result = runner.invoke(app, ["pause", "support-ticket", "-c", str(config_file)])
    one_error_line(result, "no destination named 'support-ticket'", "did you mean 'support-tickets'?")


def test_produce_a_missing_file(tmp_path: Path) -> None:
    result = runner.invoke(app, ["produce", "--topic", "t", str(tmp_path / "missing.jsonl")])
    one_error_line(result, "missing.jsonl: no such file")


@pytest.mark.parametrize("command", [
    ["produce", "--topic", "t", "RECORDS"],
    ["responses"],
    ["responses", "-c", "CONFIG"],
    ["pause", "support-tickets", "-c", "CONFIG"],
    ["activate", "support-tickets", "-c", "CONFIG"],
    ["status", "-c", "CONFIG"],
    ["replay", "-c", "CONFIG", "-d", "support-tickets", "--dry-run"],
    ["preview", "-c", "CONFIG", "-d", "support-tickets", "--from-topic"],
])
def test_kafka_commands_with_the_broker_down(
    command: list[str], config_file: Path, dead_broker: str, tmp_path: Path
) -> None:
    records = tmp_path / "records.jsonl"
    records.write_text('{"a": 1}\n')
    args = [{"CONFIG": str(config_file), "RECORDS": str(records)}.get(a, a) for a in command]
    one_error_line(runner.invoke(app, args), f"Kafka at {dead_broker}", "is the broker running")


def test_a_closed_stdout_is_not_blamed_on_kafka() -> None:
    """`gorgias-worker responses | head -1`: the reader leaving must not read as a broker problem."""

    async def print_into_a_closed_pipe() -> None:
        raise BrokenPipeError(32, "Broken pipe")

    settings = KafkaSettings(bootstrap_servers="127.0.0.1:9092")
    with pytest.raises(BrokenPipeError):  # click then ends quietly with exit 1
        kafka_call(settings, print_into_a_closed_pipe())


def test_sandbox_on_a_busy_port() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = runner.invoke(app, ["sandbox", "--port", str(port)])
    one_error_line(result, f"cannot listen on 127.0.0.1:{port}", "--port")


@pytest.mark.parametrize(("option", "needle"), [
    (["--faults", "nonsense"], "--faults: fault 'nonsense'"),
    (["--rate-limit", "lots"], "--rate-limit: rate limit 'lots'"),
    (["--account", "no-colons"], "account spec"),
])
def test_sandbox_with_bad_arguments(option: list[str], needle: str) -> None:
    one_error_line(runner.invoke(app, ["sandbox", "--port", "0", *option]), needle)


def test_run_with_a_bad_log_level(config_file: Path) -> None:
    result = runner.invoke(app, ["run", "-c", str(config_file), "--log-level", "loud"])
    one_error_line(result, "--log-level loud", "debug, info, warning, error")


def test_status_with_a_worker_address_that_is_not_a_url(config_file: Path) -> None:
    result = runner.invoke(app, ["status", "-c", str(config_file), "--worker", "127.0.0.1:6066"])
    one_error_line(result, "--worker 127.0.0.1:6066", "http://")


@pytest.mark.parametrize(("args", "needle"), [
    (["nope"], "No such command 'nope' (see "),
    (["validate"], "Missing option '--config' / '-c' (see "),
    (["validate", "-c", "x.yaml", "--bogus"], "No such option: --bogus"),
    (["preview", "-c", "x.yaml", "-d", "d", "--limit", "many"], "Invalid value for '--limit'"),
    (["templates", "a", "b"], "unexpected extra argument"),
])
def test_usage_mistakes_are_one_line_too(args: list[str], needle: str) -> None:
    one_error_line(runner.invoke(app, args), needle)


def test_no_command_still_shows_the_help() -> None:
    result = runner.invoke(app, [])
    assert "Usage: " in result.output and "Commands:" in result.output and "error:" not in result.output


def test_replay_with_a_limit_below_one(config_file: Path) -> None:
    result = runner.invoke(app, ["replay", "-c", str(config_file), "-d", "support-tickets", "--limit", "0"])
    one_error_line(result, "--limit must be at least 1")


def test_a_missing_config_file(tmp_path: Path) -> None:
    one_error_line(runner.invoke(app, ["status", "-c", str(tmp_path / "nope.yaml")]), "cannot read the config file")


def test_a_malformed_set(config_file: Path) -> None:
    one_error_line(runner.invoke(app, ["config", "-c", str(config_file), "--set", "worker.web_port"]),
                   "--set worker.web_port: write it as path=value")


def test_version_prints_one_line() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout.strip().startswith("gorgias-worker 0.")


def test_completion_can_be_installed() -> None:
    assert "--install-completion" in runner.invoke(app, ["--help"], terminal_width=80).stdout


def test_the_command_list_is_not_cut_at_80_columns() -> None:
    text = runner.invoke(app, ["--help"], terminal_width=80, env={"COLUMNS": "80"}).stdout
    commands = text.split("Commands:")[1]
    assert "..." not in commands and "status" in commands
    assert all(len(line) <= 80 for line in text.splitlines())


@pytest.mark.parametrize("command", [
    "validate", "config", "run", "sandbox", "produce", "responses", "activate", "pause", "status", "replay",
    "schemas", "templates", "preview", "test",
])
def test_help_renders_at_80_columns(command: str) -> None:
    result = runner.invoke(app, [command, "--help"], terminal_width=80, env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    text = result.stdout
    assert all(len(line) <= 80 for line in text.splitlines()), max(text.splitlines(), key=len)
    assert "<bool>" not in text and "…" not in text
    assert "\x1b[" not in text  # no colour when not on a terminal
    if command == "sandbox":
        assert "domain:email:apikey" in text  # not an emoji
    if command == "replay":
        for flag in ("--include-undecodable", "--from-beginning", "--dry-run", "--to-topic", "--limit"):
            assert flag in text


def test_run_checks_its_web_port_before_anything_else() -> None:
    from worker.service.app import web_port_taken

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert web_port_taken("127.0.0.1", port) == "Address already in use"
    assert web_port_taken("127.0.0.1", port) is None  # free again: the check itself holds nothing

