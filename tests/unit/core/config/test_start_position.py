"""`start_from` and `group_id` per destination: accepted values, readable mistakes, what `validate` shows."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from tests.support.config_docs import BASE, problems, with_
from worker.core.config.worker_config import parse_config
from worker.tools.cli import app


def test_the_default_is_earliest_in_the_destinations_own_group() -> None:
    config = parse_config(BASE)
    dest = config.destinations[0]
    assert dest.start_position() == "earliest"
    assert dest.consumer_group(config.kafka.group_id) == "gorgias-worker.support-tickets"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("latest", "latest"),
        ("2026-01-31T08:00:00Z", datetime(2026, 1, 31, 8, tzinfo=UTC)),
        ("2026-01-31T10:00:00+02:00", datetime(2026, 1, 31, 10, tzinfo=timezone(timedelta(hours=2)))),
    ],
)
def test_start_from_takes_latest_or_a_zoned_timestamp(value: str, expected: object) -> None:
    dest = parse_config(with_("destinations.0.start_from", value)).destinations[0]
    assert dest.start_position() == expected


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("yesterday", "start_from must be earliest, latest or an ISO 8601 timestamp"),
        ("2026-01-31T08:00:00", "needs a time zone, e.g. 2026-01-31T08:00:00Z"),
    ],
)
def test_a_bad_start_from_names_the_setting_and_the_fix(value: str, says: str) -> None:
    (line,) = problems(with_("destinations.0.start_from", value))
    assert line.startswith("destinations[0].start_from: ") and says in line


def test_a_pinned_group_id_replaces_the_derived_one() -> None:
    config = parse_config(with_("destinations.0.group_id", "cx.tickets"))
    assert config.destinations[0].consumer_group(config.kafka.group_id) == "cx.tickets"


def test_two_destinations_cannot_share_a_group() -> None:
    doc = copy.deepcopy(BASE)
    second = copy.deepcopy(doc["destinations"][0])
    second["name"] = "other"
    second["group_id"] = "gorgias-worker.support-tickets"
    doc["destinations"].append(second)
    (line,) = problems(doc)
    assert "would share consumer group 'gorgias-worker.support-tickets'" in line and "own group_id" in line


def test_validate_shows_the_group_and_the_start_position(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GORGIAS_API_KEY", "k-123456")
    doc = with_("destinations.0.start_from", "latest")
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(doc))
    result = CliRunner().invoke(app, ["validate", "--config", str(path)])
    assert result.exit_code == 0, result.output
    assert "group gorgias-worker.support-tickets; without committed offsets starts from latest" in result.output
    pinned = with_("destinations.0.group_id", "cx.tickets")
    path.write_text(yaml.safe_dump(pinned))
    result = CliRunner().invoke(app, ["validate", "--config", str(path)])
    assert "group cx.tickets; without committed offsets starts from earliest" in result.output
