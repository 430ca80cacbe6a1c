"""Destination config: valid files load, each class of mistake fails naming the path and the fix."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.config_docs import BASE, problems, with_
from worker.core.config.base import ConfigError
from worker.core.config.delivery import BatchingSettings
from worker.core.config.endpoint import parse_headers
from worker.core.config.worker_config import parse_config
from worker.service.config_loading import load_config


def test_the_issue_example_loads_with_defaults(tmp_path: Path) -> None:
    text = """
kafka: {bootstrap_servers: "localhost:9092"}
destinations:
  - name: support-tickets
    source_topics: [nexset.support-requests]
    credential: {domain: mystore, username: agent@mystore.com, api_key_env: GORGIAS_API_KEY}
    endpoint:
      method: PUT
      url: "https://{domain}.gorgias.com/api/tickets/{ticket_id}"
      content_format: json
      headers: "X-Source:nexla,X-Team:cx"
      exclude_attributes: [internal_score, meta.trace_id]
    batching: {enabled: true, batch_size: 100, algorithm: by_attribute, attributes: [ticket_id], max_wait_ms: 2000}
    response_webhook: {enabled: true, topic: gorgias.responses}
    dead_letter_topic: gorgias.dead-letter
    active: true
"""
    path = tmp_path / "c.yaml"
    path.write_text(text)
    config = load_config(path)
    dest = config.destinations[0]
    assert dest.endpoint.headers == {"X-Source": "nexla", "X-Team": "cx"}
    assert dest.batching.batch_size == 100
    assert dest.credential.bucket_size() == 40
    assert dest.credential.origin == "https://mystore.gorgias.com"
    assert dest.delivery.max_attempts == 8


def test_json_files_load_too(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    path.write_text(__import__("json").dumps(BASE))
    assert load_config(path).destinations[0].name == "support-tickets"


def test_defaults_are_sensible() -> None:
    dest = parse_config(BASE).destinations[0]
    assert dest.batching.enabled is False and dest.batching.batch_size == 100
    assert dest.response_webhook.enabled and dest.response_webhook.topic == "gorgias.responses"
    assert dest.dead_letter_topic == "gorgias.dead-letter"
    assert dest.active is True


def test_oauth_budget_defaults_to_80() -> None:
    doc = with_("destinations.0.credential", {"domain": "mystore", "auth": "oauth", "access_token_env": "T"})
    assert parse_config(doc).destinations[0].credential.bucket_size() == 80


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        ("destinations.0.batching.batch_size", 0, "destinations[0].batching.batch_size: must be >= 1 (got 0)"),
        ("destinations.0.delivery.max_attempts", 0, "destinations[0].delivery.max_attempts: must be >= 1 (got 0)"),
        ("destinations.0.batching.colour", "red", "destinations[0].batching.colour: is not a known setting"),
        ("destinations.0.name", "Bad Name", "destinations[0].name: has an invalid format"),
        ("destinations.0.endpoint.method", "GET", "destinations[0].endpoint.method: must be one of"),
        ("destinations.0.source_topics", [], "destinations[0].source_topics: list should have at least 1 item"),
        ("destinations.0.credential.domain", "My Store", "destinations[0].credential.domain: has an invalid format"),
    ],
)
def test_field_errors_name_the_path(path: str, value: Any, expected: str) -> None:
    assert any(p.startswith(expected) for p in problems(with_(path, value))), problems(with_(path, value))


def test_missing_required_field() -> None:
    doc = copy.deepcopy(BASE)
    del doc["destinations"][0]["credential"]
    assert problems(doc) == ["destinations[0].credential: is required"]


def test_inline_secret_is_rejected_with_the_fix() -> None:
    doc = with_("destinations.0.credential.api_key", "sk-live-123")
    (line,) = problems(doc)
    assert "api_key_env" in line and "api_key_file" in line
    assert "sk-live-123" not in line


def test_secret_source_must_be_given() -> None:
    doc = copy.deepcopy(BASE)
    del doc["destinations"][0]["credential"]["api_key_env"]
    assert "exactly one of api_key_env or api_key_file" in problems(doc)[0]


def test_url_must_target_gorgias_or_the_explicit_base_url() -> None:
    (line,) = problems(with_("destinations.0.endpoint.url", "https://evil.example.com/api/tickets"))
    assert "https://{domain}.gorgias.com" in line
    ok = with_("destinations.0.endpoint.url", "http://127.0.0.1:8080/api/tickets")
    ok["destinations"][0]["credential"]["base_url"] = "http://127.0.0.1:8080"
    assert parse_config(ok).destinations[0].credential.origin == "http://127.0.0.1:8080"


def test_placeholder_in_host_is_rejected() -> None:
    assert "host" in problems(with_("destinations.0.endpoint.url", "https://{tenant}.gorgias.com/api/tickets"))[0]


def test_template_or_manual_is_required() -> None:
    doc = with_("destinations.0.endpoint", {"method": "POST"})
    assert "missing: url" in problems(doc)[0]


def test_batched_url_placeholder_must_be_a_grouping_attribute() -> None:
    doc = with_(
        "destinations.0.batching", {"enabled": True, "algorithm": "by_attribute", "attributes": ["customer_id"]}
    )
    (line,) = problems(doc)
    assert "{ticket_id}" in line and "batching.attributes" in line
    good = with_("destinations.0.batching", {"enabled": True, "algorithm": "by_attribute", "attributes": ["ticket_id"]})
    assert parse_config(good).destinations[0].batching.attributes == ["ticket_id"]


def test_keyed_algorithm_needs_attributes() -> None:
    doc = with_("destinations.0.batching", {"enabled": True, "algorithm": "session_window"})
    assert "needs `attributes`" in problems(doc)[0]


def test_duplicate_destination_names() -> None:
    doc = copy.deepcopy(BASE)
    doc["destinations"].append(copy.deepcopy(doc["destinations"][0]))
    assert "used twice" in problems(doc)[0]


def test_sasl_settings_must_be_complete() -> None:
    doc = with_("kafka", {"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "SCRAM-SHA-512"})
    assert "sasl_username" in problems(doc)[0]
    inline = with_("kafka", {"sasl_password": "hunter2"})
    assert "sasl_password_env" in problems(inline)[0]


def test_patch_on_gorgias_warns() -> None:
    config = parse_config(with_("destinations.0.endpoint.method", "PATCH"))
    (warning,) = config.warnings()
    assert "no PATCH" in warning


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("X-A:1,X-B: two ", {"X-A": "1", "X-B": "two"}),
        ("X-Url:https://x.io/a", {"X-Url": "https://x.io/a"}),
        ({"X-A": "1"}, {"X-A": "1"}),
        ("", {}),
    ],
)
def test_header_formats(text: Any, expected: dict[str, str]) -> None:
    assert parse_headers(text) == expected


@pytest.mark.parametrize(("text", "needle"), [
    ("no-colon", "no ':'"), ("Bad Name:1", "invalid header name"), ("Authorization:Basic x", "set by the worker"),
])
def test_bad_headers(text: str, needle: str) -> None:
    with pytest.raises(ValueError, match=needle):
        parse_headers(text)


def test_unreadable_and_invalid_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("destinations: [\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)
    listy = tmp_path / "list.yaml"
    listy.write_text(yaml.safe_dump([1, 2]))
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        load_config(listy)


def test_environment_references_are_expanded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SANDBOX_URL", "http://127.0.0.1:8080")
    monkeypatch.delenv("NOT_SET_ANYWHERE", raising=False)
    doc = copy.deepcopy(BASE)
    doc["destinations"][0]["credential"]["base_url"] = "${SANDBOX_URL}"
    doc["kafka"]["group_id"] = "${NOT_SET_ANYWHERE:-fallback}"
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(doc))
    config = load_config(path)
    assert config.destinations[0].credential.base_url == "http://127.0.0.1:8080"
    assert config.kafka.group_id == "fallback"
    doc["kafka"]["group_id"] = "${NOT_SET_ANYWHERE}"
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(ConfigError, match="NOT_SET_ANYWHERE is referenced"):
        load_config(path)


def test_form_content_cannot_be_batched() -> None:
    doc = with_("destinations.0.endpoint.content_format", "form")
    doc["destinations"][0]["batching"] = {"enabled": True, "algorithm": "by_attribute", "attributes": ["ticket_id"]}
    assert "form cannot carry a batch" in problems(doc)[0]


def test_dot_segments_in_the_url_are_refused() -> None:
    assert "`..` path segments" in problems(with_("destinations.0.endpoint.url",
                                                   "https://{domain}.gorgias.com/api/../tickets"))[0]


def test_event_loop_is_uvloop_unless_asyncio_is_chosen() -> None:
    assert parse_config(copy.deepcopy(BASE)).worker.event_loop == "uvloop"
    assert parse_config(with_("worker.event_loop", "asyncio")).worker.event_loop == "asyncio"
    (problem,) = problems(with_("worker.event_loop", "trio"))
    assert problem.startswith("worker.event_loop:") and "'uvloop' or 'asyncio'" in problem


@pytest.mark.parametrize(("batching", "keyed"), [
    ({"enabled": False, "algorithm": "by_attribute", "attributes": ["a"]}, False),
    ({"enabled": True}, False),
    ({"enabled": True, "algorithm": "by_attribute", "attributes": ["a"]}, True),
    ({"enabled": True, "algorithm": "session_window", "attributes": ["a"]}, True),
    ({"enabled": True, "algorithm": "tumbling_window"}, False),
    ({"enabled": True, "algorithm": "tumbling_window", "attributes": ["a"]}, True),
])
def test_keyed_batching_is_decided_in_one_place(batching: dict[str, Any], keyed: bool) -> None:
    assert BatchingSettings.model_validate(batching).keyed is keyed


def test_template_options_are_settings_with_a_did_you_mean_and_the_file_s_names() -> None:
    doc = copy.deepcopy(BASE)
    doc["destinations"][0]["endpoint"] = {"template": "create_customer",
                                          "template_options": {"external_id": {"form": "crm_id"}}}
    assert problems(doc) == ["destinations[0].endpoint.template_options.external_id.form: is not a known setting "
                             "(did you mean `from`?; see schemas/worker-config.schema.json)"]
    doc["destinations"][0]["endpoint"]["template_options"] = {"external_id": {"from": "crm_id"}}
    config = parse_config(doc)
    options = config.destinations[0].endpoint.template_options
    assert options.external_id is not None and options.external_id.from_ == "crm_id"
    dumped = config.model_dump(mode="json")  # what `gorgias-worker config` prints reads back the same
    assert dumped["destinations"][0]["endpoint"]["template_options"]["external_id"] == {"from": "crm_id", "stamp": True}
    assert parse_config(dumped) == config
