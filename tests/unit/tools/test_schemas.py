"""Checked-in JSON Schemas match the models they are generated from."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema

from worker.core.config.worker_config import WorkerConfig
from worker.tools import schemas


def test_checked_in_schemas_match_the_models() -> None:
    assert schemas.drifted() == [], "run `gorgias-worker schemas --write` and commit schemas/"


def test_drift_is_detected(tmp_path: Path) -> None:
    schemas.write(tmp_path)
    assert schemas.drifted(tmp_path) == []
    path = tmp_path / "worker-config.schema.json"
    doc = json.loads(path.read_text())
    doc["properties"].pop("kafka")
    path.write_text(json.dumps(doc))
    assert schemas.drifted(tmp_path) == ["worker-config.schema.json"]


def test_config_schema_accepts_a_valid_config_and_rejects_unknown_keys() -> None:
    schema = json.loads((schemas.SCHEMA_DIR / "worker-config.schema.json").read_text())
    good = {
        "destinations": [{
            "name": "d", "source_topics": ["t"],
            "credential": {"domain": "acme", "username": "a@acme.com", "api_key_env": "K"},
            "endpoint": {"method": "POST", "url": "https://{domain}.gorgias.com/api/tickets"},
        }]
    }
    jsonschema.validate(good, schema)
    WorkerConfig.model_validate(good)
    bad = {**good, "extra": 1}
    try:
        jsonschema.validate(bad, schema)
    except jsonschema.ValidationError as exc:
        assert "extra" in exc.message
    else:
        raise AssertionError("unknown top-level key accepted by the schema")


def test_the_charts_embedded_config_schema_drift_is_detected_and_rewritten(tmp_path: Path) -> None:
    from worker.tools import chart_schema

    assert not chart_schema.drifted(), "run `gorgias-worker schemas --write`"
    path = tmp_path / "values.schema.json"
    doc = json.loads(chart_schema.CHART_SCHEMA.read_text())
    doc["$defs"]["WorkerConfig"]["properties"].pop("kafka")
    path.write_text(json.dumps(doc))
    assert chart_schema.drifted(path)
    chart_schema.write(path)
    assert not chart_schema.drifted(path)
    rewritten = json.loads(path.read_text())
    assert rewritten["properties"] == doc["properties"], "the chart's own values are left as they are"
    assert "kafka" in rewritten["$defs"]["WorkerConfig"]["properties"]


def test_a_number_or_a_flag_may_name_an_environment_variable_in_the_file() -> None:
    """The worker replaces ``${VAR}`` / ``${VAR:-default}`` when it loads the file: the published schema lets
    editors and Helm accept them where a number or a flag is expected, and still refuses other text."""
    schema = schemas.generate()["worker-config.schema.json"]
    check = jsonschema.Draft202012Validator(schema)
    doc = {"worker": {"web_port": "${WEB_PORT:-6066}"}, "kafka": {"bootstrap_servers": "localhost:9092"},
           "destinations": []}
    assert [e.message for e in check.iter_errors(doc)] == []
    assert list(check.iter_errors({**doc, "worker": {"web_port": "six thousand"}}))
    assert list(check.iter_errors({**doc, "worker": {"web_port": 70000}}))  # the number's own bounds still hold
