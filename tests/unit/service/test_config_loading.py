"""Loading a config: ${VAR} only in values (with file:line), --set and GORGIAS_WORKER__ overrides, did you mean."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
import yaml
from typer.testing import CliRunner

from worker.core.config.base import ConfigError
from worker.service.config_loading import load_config, parse_text
from worker.tools.cli import app

runner = CliRunner()

TEXT = """\
# ${NOT_SET_ANYWHERE} in a comment is left alone
kafka:
  bootstrap_servers: localhost:9092   # ${ALSO_NOT_SET}
destinations:
  - name: support-tickets
    source_topics: [nexset.support-requests]
    credential:
      domain: mystore
      username: agent@mystore.com
      api_key_env: LOADING_TEST_KEY
    endpoint:
      method: POST
      url: "https://{domain}.gorgias.com/api/tickets"
      headers: {X-Team: "${TEAM:-cx}"}
    batching: {enabled: true, batch_size: 10}
"""


def test_references_in_comments_are_left_alone_and_values_are_expanded() -> None:
    cfg = parse_text(TEXT, "c.yaml", environ={})
    assert cfg.destinations[0].endpoint.headers == {"X-Team": "cx"}
    cfg = parse_text(TEXT, "c.yaml", environ={"TEAM": "billing"})
    assert cfg.destinations[0].endpoint.headers == {"X-Team": "billing"}


def test_an_unset_reference_names_file_and_line() -> None:
    text = TEXT.replace('"${TEAM:-cx}"', '"${TEAM}"')
    with pytest.raises(ConfigError) as err:
        parse_text(text, "c.yaml", environ={})
    assert err.value.problems == [
        "c.yaml:14: environment variable TEAM is referenced as ${TEAM} but not set "
        "(export it, or write ${TEAM:-default})"
    ]


def test_validation_errors_name_file_and_line() -> None:
    with pytest.raises(ConfigError) as err:
        parse_text(TEXT.replace("batch_size: 10", "batch_size: 0"), "c.yaml", environ={})
    assert err.value.problems == ["destinations[0].batching.batch_size: must be >= 1 (got 0) (c.yaml:15)"]


@pytest.mark.parametrize(("typo", "suggestion"), [
    ("batchng", "batching"), ("sourc_topics", "source_topics"), ("dead_leter_topic", "dead_letter_topic"),
])
def test_misspelt_keys_get_a_did_you_mean(typo: str, suggestion: str) -> None:
    text = TEXT.replace("    source_topics:", f"    {typo}: x\n    source_topics:")
    with pytest.raises(ConfigError) as err:
        parse_text(text, "c.yaml", environ={})
    assert any(f"did you mean `{suggestion}`?" in p and "(c.yaml:6)" in p for p in err.value.problems), err.value


def test_a_far_off_key_gets_no_guess() -> None:
    with pytest.raises(ConfigError) as err:
        parse_text(TEXT.replace("kafka:\n", "kafka:\n  zzzzzz: 1\n"), "c.yaml", environ={})
    assert "did you mean" not in err.value.problems[0] and "check the spelling" in err.value.problems[0]


def test_set_overrides_any_setting_with_the_same_validation() -> None:
    cfg = parse_text(TEXT, "c.yaml", ["worker.web_port=7000", "destinations.support-tickets.active=false",
                                      "destinations[0].batching.batch_size=5", "kafka.group_id=g2"], environ={})
    dest = cfg.destinations[0]
    assert (cfg.worker.web_port, dest.active, dest.batching.batch_size) == (7000, False, 5)
    assert cfg.kafka.group_id == "g2"
    with pytest.raises(ConfigError) as err:
        parse_text(TEXT, "c.yaml", ["destinations.support-tickets.batching.batch_size=0"], environ={})
    assert err.value.problems == ["destinations[0].batching.batch_size: must be >= 1 (got 0) "
                                  "(--set destinations.support-tickets.batching.batch_size)"]
    with pytest.raises(ConfigError, match="no list item named 'nope'"):
        parse_text(TEXT, "c.yaml", ["destinations.nope.active=false"], environ={})
    with pytest.raises(ConfigError, match=r"worker.web_prt: is not a known setting \(did you mean `web_port`\?"):
        parse_text(TEXT, "c.yaml", ["worker.web_prt=1"], environ={})


def test_a_bad_set_is_reported_against_the_set_not_a_line_of_the_file() -> None:
    for setting, origin in (("nope.x=4", "--set nope.x"), ("kafka.nope.deeper=1", "--set kafka.nope.deeper")):
        with pytest.raises(ConfigError) as err:
            parse_text(TEXT, "c.yaml", [setting], environ={})
        (line,) = err.value.problems
        assert line.endswith(f"({origin})") and "c.yaml" not in line
    # a setting the file has keeps its line when the override only reaches below it
    with pytest.raises(ConfigError) as err:
        parse_text(TEXT, "c.yaml", ["destinations.support-tickets.batching.batch_size=0"], environ={})
    assert err.value.problems[0].endswith("(--set destinations.support-tickets.batching.batch_size)")


def test_a_destinations_setting_at_the_top_says_how_to_set_it_on_a_destination() -> None:
    with pytest.raises(ConfigError) as err:
        parse_text(TEXT, "c.yaml", ["delivery.max_in_flight=4"], environ={})
    assert err.value.problems == [
        "--set delivery.max_in_flight: delivery is a setting of each destination: set it on one, e.g. "
        "destinations.support-tickets.delivery.max_in_flight (destinations: support-tickets)"
    ]
    with pytest.raises(ConfigError, match=r"^environment variable GORGIAS_WORKER__BATCHING__BATCH_SIZE: batching is"):
        parse_text(TEXT, "c.yaml", environ={"GORGIAS_WORKER__BATCHING__BATCH_SIZE": "5"})


def test_the_readmes_override_examples_work_as_written() -> None:
    readme = (Path(__file__).resolve().parents[3] / "README.md").read_text()
    section = readme[readme.index("**Overrides without editing the file**"):]
    commands = section[section.index("```bash\n") + 8:section.index("```", section.index("```bash\n") + 8)]
    example = section[section.index("```yaml\n") + 8:section.index("```", section.index("```yaml\n") + 8)]
    ran = 0
    for command in commands.splitlines():
        words = command.split("#")[0].split()
        environ = dict(w.split("=", 1) for w in words if w.startswith("GORGIAS_WORKER__"))
        sets = [words[i + 1] for i, w in enumerate(words) if w == "--set"]
        cfg = parse_text(example, "config.yaml", sets, environ={**environ, "GORGIAS_API_KEY": "k"})
        ran += 1
        if "delivery.max_in_flight=4" in command:
            assert cfg.destinations[0].delivery.max_in_flight == 4
    assert ran == 3


def test_environment_overrides() -> None:
    env = {"GORGIAS_WORKER__WORKER__WEB_PORT": "7001", "GORGIAS_WORKER__DESTINATIONS__SUPPORT_TICKETS__ACTIVE": "false"}
    cfg = parse_text(TEXT, "c.yaml", environ=env)
    assert cfg.worker.web_port == 7001 and cfg.destinations[0].active is False
    with pytest.raises(ConfigError) as err:
        parse_text(TEXT, "c.yaml", environ={"GORGIAS_WORKER__WORKER__WEB_PORT": "lots"})
    (line,) = err.value.problems
    assert line.startswith("worker.web_port:")
    assert line.endswith("(environment variable GORGIAS_WORKER__WORKER__WEB_PORT)")
    # --set wins over the environment
    both = parse_text(TEXT, "c.yaml", ["worker.web_port=7002"], environ={"GORGIAS_WORKER__WORKER__WEB_PORT": "7001"})
    assert both.worker.web_port == 7002


def test_json_files_expand_values_too(tmp_path: Path) -> None:
    doc = yaml.safe_load(TEXT)
    doc["kafka"]["group_id"] = "${GROUP:-from-default}"
    path = tmp_path / "c.json"
    path.write_bytes(orjson.dumps(doc))
    assert load_config(path, environ={}).kafka.group_id == "from-default"


def test_config_command_prints_defaults_and_masks_secrets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOADING_TEST_KEY", "sk-live-abcdef123456")
    text = TEXT.replace('{X-Team: "${TEAM:-cx}"}', '{X-Team: "cx", X-Key: "${LOADING_TEST_KEY}"}')
    path = tmp_path / "c.yaml"
    path.write_text(text)
    result = runner.invoke(app, ["config", "-c", str(path), "--set", "worker.shutdown_grace_s=9"])
    assert result.exit_code == 0, result.output
    doc = yaml.safe_load(result.stdout)
    assert doc["worker"]["shutdown_grace_s"] == 9 and doc["worker"]["web_host"] == "127.0.0.1"
    assert doc["destinations"][0]["delivery"]["max_attempts"] == 8  # a default the file does not write
    assert doc["destinations"][0]["endpoint"]["headers"]["X-Key"] == "********"
    assert doc["destinations"][0]["credential"]["api_key_env"] == "LOADING_TEST_KEY"
    assert "sk-live-abcdef123456" not in result.stdout


def test_validate_json(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOADING_TEST_KEY", "k-1234")
    path = tmp_path / "c.yaml"
    path.write_text(TEXT)
    ok = runner.invoke(app, ["validate", "-c", str(path), "--json"])
    assert ok.exit_code == 0 and orjson.loads(ok.stdout) == {"ok": True, "errors": [], "warnings": []}
    bad = runner.invoke(app, ["validate", "-c", str(path), "--json", "--set", "destinations[0].batching.batch_size=0"])
    assert bad.exit_code == 1
    assert orjson.loads(bad.stdout)["errors"] == [{
        "path": "destinations[0].batching.batch_size", "message": "must be >= 1 (got 0)", "suggestion": None,
        "line": "destinations[0].batching.batch_size: must be >= 1 (got 0) (--set destinations[0].batching.batch_size)",
    }]
    misspelt = runner.invoke(app, ["validate", "-c", str(path), "--json", "--set",
                                   "destinations[0].batching.algorithm=by_atribute"])
    (item,) = orjson.loads(misspelt.stdout)["errors"]
    assert item["path"] == "destinations[0].batching.algorithm"
    assert item["suggestion"] == "did you mean `by_attribute`?"
