"""The README's settings table is generated from the config models: every setting, its default and its
description, so the table cannot drift from what the worker accepts."""

from __future__ import annotations

from pathlib import Path

from worker.core.config.delivery import DeliverySettings
from worker.core.config.worker_config import Destination, WorkerConfig
from worker.tools import settings_table
from worker.tools.settings_table import BEGIN, END, rows, settings, shown_default


def test_the_readme_table_is_the_one_the_models_give() -> None:
    assert not settings_table.SECTION.drifted(), "run `gorgias-worker schemas --write` and commit README.md"


def test_every_setting_is_described() -> None:
    undescribed = [path for path, _, meaning in rows() if not meaning.strip()]
    assert undescribed == [], "give these a Field(description=...): it is the README's meaning and the schema's"


def test_every_field_of_the_models_has_a_row() -> None:
    paths = {path for path, _, _ in rows()}
    assert {"kafka.bootstrap_servers", "worker.web_port", "credentials.<name>", "name", "credential",
            "credential.rate_limit.headroom", "endpoint.template_options", "delivery.max_in_flight",
            "response_webhook.topic", "start_from"} <= paths
    assert len(paths) == len(rows())  # one row per setting
    worker_level = {p for p, _ in settings(WorkerConfig) if not p.startswith("destinations")}
    assert worker_level | {p for p, _ in settings(Destination)} == paths


def test_defaults_are_shown_as_a_config_file_writes_them() -> None:
    fields = DeliverySettings.model_fields
    assert shown_default(fields["max_in_flight"]) == "16"
    assert shown_default(fields["backoff_initial_s"]) == "0.5"
    assert shown_default(fields["max_retry_time_s"]) == "300"
    assert shown_default(fields["dead_letter_held_calls"]) == "false"
    assert shown_default(Destination.model_fields["name"]) == "required"
    assert shown_default(Destination.model_fields["group_id"]) == "—"
    table = dict((path, (default, meaning)) for path, default, meaning in rows())
    assert table["delivery.max_in_flight"] == ("16", fields["max_in_flight"].description)
    assert table["batching.algorithm"][0] == "`arrival_order`"


def test_an_edited_setting_is_found_and_rewritten(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(f"{BEGIN}\n{END}\n")
    settings_table.SECTION.write(readme)
    edited = readme.read_text().replace("| `delivery.max_in_flight` | 16 |", "| `delivery.max_in_flight` | 4 |")
    assert edited != readme.read_text()
    readme.write_text(edited)
    assert settings_table.SECTION.drifted(readme)
