"""`gorgias-worker destinations apply|list|get|export|delete` against the real broker (no worker running):
apply is idempotent, export writes a file that apply restores, mistakes are one error line each."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from typer.testing import CliRunner

from tests.support.scenario import Scenario
from worker.tools.cli import app

pytestmark = pytest.mark.integration

runner = CliRunner()


def cli(*args: str) -> Any:
    return runner.invoke(app, list(args))


def setup_files(s: Scenario, tmp_path: Path) -> tuple[Path, Path]:
    doc = s.config(s.destination("from-file"))
    doc["credentials"] = {"acme": s.destination()["credential"]}
    config = s.write(tmp_path, doc)
    tickets = {**s.destination("tickets"), "credential": "acme"}
    tags = {**s.destination("tags", batching={"enabled": True, "batch_size": 20}), "credential": "acme", "active": True}
    wanted = tmp_path / "saved.yaml"
    wanted.write_text(yaml.safe_dump({"destinations": [tickets, tags]}))
    return config, wanted


def test_apply_list_export_restore_and_delete(scenario: Scenario, tmp_path: Path) -> None:
    config, wanted = setup_files(scenario, tmp_path)
    first = cli("destinations", "apply", "-c", str(config), "-f", str(wanted))
    assert first.exit_code == 0, first.output
    assert first.stdout.splitlines() == ["tickets: created (version 1, paused)", "tags: created (version 1, active)"]
    again = cli("destinations", "apply", "-c", str(config), "-f", str(wanted))
    assert again.stdout.splitlines() == ["tickets: unchanged (version 1)", "tags: unchanged (version 1)"]

    listed = orjson.loads(cli("destinations", "list", "-c", str(config), "--json").stdout)
    assert [(r["name"], r["source"], r["state"], r.get("version")) for r in listed] == [
        ("from-file", "file", "active", None), ("tags", "store", "active", 1), ("tickets", "store", "paused", 1)]
    status = cli("status", "-c", str(config), "--worker", "http://127.0.0.1:1")
    assert "tickets: paused (from control topic), group" in status.stdout, status.output
    assert "tags: active (from control topic), group" in status.stdout
    shown = orjson.loads(cli("destinations", "get", "tags", "-c", str(config), "--json").stdout)
    assert (shown["version"], shown["config"]["batching"]["batch_size"]) == (1, 20)

    assert cli("pause", "tags", "-c", str(config)).exit_code == 0  # activate/pause know saved destinations
    backup = tmp_path / "backup.yaml"
    exported = cli("destinations", "export", "-c", str(config), "-o", str(backup))
    assert exported.exit_code == 0, exported.output
    doc = yaml.safe_load(backup.read_text())
    assert set(doc["credentials"]) == {"acme"}
    assert {d["name"]: d["active"] for d in doc["destinations"]} == {"tags": False, "tickets": False}
    assert cli("validate", "-c", str(backup), "--no-secrets").exit_code == 0  # a config the worker accepts

    deleted = cli("destinations", "delete", "tickets", "-c", str(config))
    assert deleted.exit_code == 0 and "tickets: deleted (version 1)" in deleted.stdout
    restored = cli("destinations", "apply", "-c", str(config), "-f", str(backup))
    assert restored.stdout.splitlines() == ["tags: unchanged (version 1)", "tickets: created (version 2, paused)"]


def test_mistakes_are_one_error_line_each_and_nothing_is_written(scenario: Scenario, tmp_path: Path) -> None:
    config, _ = setup_files(scenario, tmp_path)
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"destinations": [
        {**scenario.destination("one"), "credential": "acme", "batching": {"batch_size": 0}},
        {**scenario.destination("from-file"), "credential": "acme"},
    ]}))
    result = cli("destinations", "apply", "-c", str(config), "-f", str(bad))
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "error: destinations[0].batching.batch_size: must be >= 1 (got 0)",
        f"error: destinations[1]: destination 'from-file' is defined in {config}: change it there (the API "
        "changes only destinations saved at runtime)",
    ]
    listed = orjson.loads(cli("destinations", "list", "-c", str(config), "--json").stdout)
    assert [r["name"] for r in listed] == ["from-file"]
    missing = cli("destinations", "delete", "nope", "-c", str(config))
    assert (missing.exit_code, missing.stderr) == (
        1, "error: no destination named 'nope' is saved (`destinations list` shows them)\n")
    assert cli("destinations", "get", "nope", "-c", str(config)).stderr.startswith("error: no destination named 'nope'")
