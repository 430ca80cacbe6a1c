"""The Helm chart (deploy/helm/gorgias-worker): linted, rendered, strictly valid, and the same deployment as kustomize.

``helm lint`` and ``helm template`` run the chart with its default values and with
``examples/production.yaml`` (TLS, topics, KEDA, alerts); every rendered object is validated offline as the
kustomize manifests are (:mod:`tests.support.manifests`). The chart and the kustomize overlays render the same
Deployment spec for the same settings. The alert rules (chart and kustomize component, equal) read only
metrics the worker exposes, have a runbook section each in docs/operations.md, and pass their unit tests
(``promtool test rules``, skipped when promtool is missing). The Strimzi topics follow the worker's own
table of topic kinds (``TOPIC_SPECS``).
"""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import promql_parser as promql
import pytest
import yaml

from tests.support.manifests import (
    CHART,
    K8S,
    ROOT,
    Obj,
    budget_bound,
    container,
    destinations_config,
    helm,
    helm_template,
    kustomize_build,
    objects,
    one,
    schema_errors,
)
from tests.support.metric_names import MATCHER, SCRAPE_LABELS, SELECTOR, metric_names, registry_series
from worker.core.config.deployment import Store
from worker.core.config.topics import TOPIC_SPECS, TopicKind
from worker.core.config.worker_config import WorkerConfig
from worker.service.config_loading import load_config
from worker.tools import chart_schema

EXAMPLE = CHART / "examples" / "production.yaml"
RULE_TESTS = K8S / "components" / "monitoring" / "tests" / "alerts.test.yaml"
OPERATIONS = ROOT / "docs" / "operations.md"

# Each chart rendering beside the kustomize overlay with the same settings.
SAME_SETTINGS = {
    "default": ((), (), "overlays/example"),
    "example": ((EXAMPLE,), (), "overlays/example-tls"),
    "hpa": ((), ("autoscaling.mode=hpa",), "overlays/example-hpa"),
}


@pytest.fixture(scope="module")
def charts() -> dict[str, list[Obj]]:
    return {name: helm_template(*files, sets=sets) for name, (files, sets, _) in SAME_SETTINGS.items()}


@pytest.fixture(scope="module")
def overlays() -> dict[str, list[Obj]]:
    names = {overlay for _, _, overlay in SAME_SETTINGS.values()} | {"topics"}
    return {name: kustomize_build(K8S / name) for name in names}


# --------------------------------------------------------------------------------------------------
# Lint, render, validate


@pytest.mark.parametrize("values", [None, EXAMPLE], ids=["default", "example"])
def test_helm_lint_passes_strict(values: Path | None) -> None:
    proc = helm("lint", "--strict", str(CHART), *(["--values", str(values)] if values else []))
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("name", sorted(SAME_SETTINGS))
def test_every_rendered_object_is_valid(charts: dict[str, list[Obj]], name: str) -> None:
    objs = charts[name]
    assert objs
    assert [p for obj in objs for p in schema_errors(obj)] == []


@pytest.mark.parametrize("name", ["topics"])
def test_the_kustomize_topics_are_valid(overlays: dict[str, list[Obj]], name: str) -> None:
    assert [p for obj in overlays[name] for p in schema_errors(obj)] == []


BROKEN_CUSTOM_RESOURCES: dict[str, tuple[str, Any]] = {
    "monitor endpoint misspelled": ("ServiceMonitor", lambda o: o["spec"]["endpoints"][0].update(intervall="1m")),
    "monitor interval not a duration": ("ServiceMonitor", lambda o: o["spec"]["endpoints"][0].update(interval=30)),
    "rule without expr": ("PrometheusRule", lambda o: o["spec"]["groups"][0]["rules"][0].pop("expr")),
    "rule for as a word": ("PrometheusRule", lambda o: o["spec"]["groups"][0]["rules"][0].__setitem__("for", "long")),
    "topic config as a list": ("KafkaTopic", lambda o: o["spec"].__setitem__("config", ["cleanup.policy=delete"])),
    "topic without its cluster": ("KafkaTopic", lambda o: o["metadata"]["labels"].pop("strimzi.io/cluster")),
    "topic replicas as text": ("KafkaTopic", lambda o: o["spec"].__setitem__("replicas", "3")),
}


@pytest.mark.parametrize("case", sorted(BROKEN_CUSTOM_RESOURCES))
def test_the_custom_resource_schemas_reject_broken_objects(charts: dict[str, list[Obj]], case: str) -> None:
    kind, mutate = BROKEN_CUSTOM_RESOURCES[case]
    obj = copy.deepcopy(objects(charts["example"], kind)[0])
    assert schema_errors(obj) == []
    mutate(obj)
    assert schema_errors(obj), f"{case}: the broken {kind} was accepted"


def _normalised(deploy: Obj) -> Obj:
    """The Deployment's spec without what differs by tool alone: who manages it, how the config rolls it."""
    spec: Obj = copy.deepcopy(deploy["spec"])
    template = spec["template"]
    for label in ("app.kubernetes.io/managed-by", "helm.sh/chart"):
        template["metadata"]["labels"].pop(label, None)
    template["metadata"].get("annotations", {}).pop("checksum/config", None)  # kustomize: a hashed name
    for volume in template["spec"]["volumes"]:
        if "configMap" in volume:
            volume["configMap"]["name"] = "<the config ConfigMap>"
    return spec


@pytest.mark.parametrize("name", sorted(SAME_SETTINGS))
def test_the_chart_and_the_overlay_render_the_same_deployment(
    charts: dict[str, list[Obj]], overlays: dict[str, list[Obj]], name: str
) -> None:
    chart = _normalised(one(charts[name], "Deployment"))
    kustomized = _normalised(one(overlays[SAME_SETTINGS[name][2]], "Deployment"))
    assert chart == kustomized


# The overlays' own: the example namespace and placeholder Secret (the chart reads a Secret it never makes).
NOT_FROM_THE_CHART = {"Namespace", "Secret"}


@pytest.mark.parametrize("name", sorted(SAME_SETTINGS))
def test_the_chart_renders_the_overlays_objects_with_the_same_specs(
    charts: dict[str, list[Obj]], overlays: dict[str, list[Obj]], name: str, tmp_path: Path
) -> None:
    chart = {o["kind"]: o for o in charts[name]}
    kustomized = {o["kind"]: o for o in overlays[SAME_SETTINGS[name][2]] if o["kind"] not in NOT_FROM_THE_CHART}
    assert set(kustomized) <= set(chart)
    for kind in sorted(set(kustomized) - {"Deployment", "ConfigMap"}):  # those two: above, and by content
        field = "spec" if "spec" in kustomized[kind] else "automountServiceAccountToken"
        assert chart[kind].get(field) == kustomized[kind].get(field), kind
    if name != "example":  # the example names its own deployment (kafka.deployment): its topics differ
        assert destinations_config(charts[name], tmp_path) == destinations_config(overlays[SAME_SETTINGS[name][2]],
                                                                                  tmp_path)


def test_the_comparison_sees_a_difference(charts: dict[str, list[Obj]], overlays: dict[str, list[Obj]]) -> None:
    chart = _normalised(one(charts["default"], "Deployment"))
    container({"spec": chart})["env"].append({"name": "EXTRA", "value": "1"})
    assert chart != _normalised(one(overlays["overlays/example"], "Deployment"))


def test_the_default_config_is_the_base_config_file() -> None:
    base = yaml.safe_load((K8S / "base" / "config" / "config.yaml").read_text(encoding="utf-8"))
    values = yaml.safe_load((CHART / "values.yaml").read_text(encoding="utf-8"))
    assert values["config"] == base


@pytest.mark.parametrize("name", sorted(SAME_SETTINGS))
def test_the_config_map_is_a_config_the_worker_loads(
    charts: dict[str, list[Obj]], name: str, tmp_path: Path
) -> None:
    config = destinations_config(charts[name], tmp_path)
    assert [d.name for d in config.destinations] == ["support-tickets", "ticket-fields"]


# --------------------------------------------------------------------------------------------------
# values.schema.json


def test_the_values_schema_embeds_the_workers_config_schema() -> None:
    assert not chart_schema.drifted(), "run `gorgias-worker schemas --write`"
    schema = json.loads(chart_schema.CHART_SCHEMA.read_text(encoding="utf-8"))
    worker = json.loads((ROOT / "schemas" / "worker-config.schema.json").read_text(encoding="utf-8"))
    assert schema["properties"]["config"] == {"$ref": "#/$defs/WorkerConfig"}
    assert schema["$defs"]["WorkerConfig"]["properties"] == worker["properties"]
    for name, definition in worker["$defs"].items():
        assert schema["$defs"][name] == definition
    values = yaml.safe_load((CHART / "values.yaml").read_text(encoding="utf-8"))
    example = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator(schema).validate(values)
    jsonschema.Draft202012Validator(schema).validate(_merged(values, example))


def _merged(base: Any, over: Any) -> Any:
    """Helm's merge of a values file over the defaults: maps merge, everything else is replaced."""
    if isinstance(base, dict) and isinstance(over, dict):
        return {**base, **{k: _merged(base.get(k), v) for k, v in over.items()}}
    return over


@pytest.mark.parametrize(("setting", "said"), [
    ("config.kafka.security_protocol=TLS", "security_protocol"),
    ("config.destinations[0].batching.algorithm=by_atribute", "algorithm"),
    ("config.worker.web_port=http", "web_port"),
    ("autoscaling.mode=both", "mode"),
    ("replicaCont=3", "replicaCont"),
    ("terminationGracePeriodSeconds=20", "terminationGracePeriodSeconds"),
    ("kafkaTls.enabled=true,config.kafka.security_protocol=PLAINTEXT", "security_protocol"),
    ("config.destinations=null", "config.destinations"),  # KEDA scales on the destinations' lag
])
def test_helm_refuses_values_the_worker_or_the_chart_would_refuse(setting: str, said: str) -> None:
    proc = helm("template", "gorgias-worker", str(CHART), "--set", setting)
    assert proc.returncode != 0, f"--set {setting} was accepted"
    assert said in proc.stderr


# --------------------------------------------------------------------------------------------------
# Autoscaling: the triggers follow the config, the cap the accounts' budgets


@pytest.mark.parametrize("name", sorted(SAME_SETTINGS))
def test_the_autoscaler_follows_the_destinations_and_stops_at_the_budget(
    charts: dict[str, list[Obj]], name: str, tmp_path: Path
) -> None:
    objs = charts[name]
    config = destinations_config(objs, tmp_path)
    deploy = one(objs, "Deployment")
    assert "replicas" not in deploy["spec"], "the autoscaler owns spec.replicas"
    scalers = [o for o in objs if o["kind"] in ("ScaledObject", "HorizontalPodAutoscaler")]
    assert len(scalers) == 1, "exactly one autoscaler"
    spec = scalers[0]["spec"]
    assert spec["scaleTargetRef"]["name"] == deploy["metadata"]["name"]
    floor, cap = (spec["minReplicaCount"], spec["maxReplicaCount"]) if "triggers" in spec else (
        spec["minReplicas"], spec["maxReplicas"])
    assert 1 <= floor <= cap <= max(floor, budget_bound(config))
    if "triggers" in spec:
        found = {(t["metadata"]["consumerGroup"], t["metadata"]["topic"]) for t in spec["triggers"]}
        wanted = {(d.group_id or f"{config.kafka.group_id}.{d.name}", t)
                  for d in config.destinations for t in d.source_topics}
        assert found == wanted
    else:
        covered = {m["external"]["metric"]["selector"]["matchLabels"]["destination"] for m in spec["metrics"]}
        assert covered == {d.name for d in config.destinations}


def _destination(i: int, credential: Any) -> Obj:
    return {"name": f"d{i}", "source_topics": [f"t{i}"], "credential": credential,
            "endpoint": {"template": "create_ticket"}}


def _basic(domain: str, **rate_limit: Any) -> Obj:
    return {"domain": domain, "username": "agent@example.com", "api_key_env": "GORGIAS_API_KEY",
            **({"rate_limit": rate_limit} if rate_limit else {})}


BUDGETS: dict[str, Obj] = {
    # 60 API-key accounts, two destinations each: 60 x 1.9 calls/s = 114 calls/s (useful_replicas) + 1
    "sixty accounts": {"destinations": [_destination(i, _basic(f"s{i // 2}")) for i in range(120)]},
    # OAuth (80 per 20 s), a larger bucket, a named credential, an unpaced account (counts nothing)
    "mixed": {
        "credentials": {"shared": _basic("named", requests=400, headroom=0, per_seconds=2)},
        "destinations": [
            _destination(0, {"domain": "o", "auth": "oauth", "access_token_env": "TOKEN"}),
            _destination(1, "shared"),
            _destination(2, _basic("free", enabled=False)),
            _destination(3, _basic("big", requests=1000, per_seconds=10)),
        ],
    },
}


@pytest.mark.parametrize("case", sorted(BUDGETS))
def test_the_cap_is_computed_from_the_accounts_budgets_as_the_worker_computes_it(
    case: str, tmp_path: Path
) -> None:
    values = tmp_path / "values.yaml"
    config = {**BUDGETS[case], "worker": {"web_host": "0.0.0.0", "control_token_env": "TOKEN"}}
    values.write_text(yaml.safe_dump({"config": config}), encoding="utf-8")
    objs = helm_template(values)
    loaded = destinations_config(objs, tmp_path)
    assert one(objs, "ScaledObject")["spec"]["maxReplicaCount"] == max(2, budget_bound(loaded))
    assert budget_bound(loaded) > 2, "a case whose cap is above the floor"
    hpa = helm_template(values, sets=("autoscaling.mode=hpa", "autoscaling.maxReplicas=3"))
    assert one(hpa, "HorizontalPodAutoscaler")["spec"]["maxReplicas"] == 3, "a cap given is used as it is"


def test_without_an_autoscaler_the_deployment_has_replicas() -> None:
    objs = helm_template(sets=("autoscaling.mode=none", "replicaCount=3"))
    assert one(objs, "Deployment")["spec"]["replicas"] == 3
    assert not [o for o in objs if o["kind"] in ("ScaledObject", "HorizontalPodAutoscaler")]


# --------------------------------------------------------------------------------------------------
# Kafka TLS


def test_tls_values_mount_the_secret_and_set_the_workers_tls_settings(
    charts: dict[str, list[Obj]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    objs = charts["example"]
    deploy = one(objs, "Deployment")
    c = container(deploy)
    mount = next(m for m in c["volumeMounts"] if m["name"] == "kafka-tls")
    volume = next(v for v in deploy["spec"]["template"]["spec"]["volumes"] if v["name"] == "kafka-tls")
    assert mount["readOnly"] and volume["secret"]["secretName"] == "gorgias-worker-kafka-tls"
    overrides = {e["name"]: e["value"] for e in c["env"] if e["name"].startswith("GORGIAS_WORKER__")}
    for name, value in overrides.items():
        monkeypatch.setenv(name, value)
    config = destinations_config(objs, tmp_path)
    mounted = mount["mountPath"]
    assert (config.kafka.ssl_cafile, config.kafka.ssl_certfile, config.kafka.ssl_keyfile) == (
        f"{mounted}/ca.crt", f"{mounted}/tls.crt", f"{mounted}/tls.key")
    assert config.kafka.security_protocol.value == "SASL_SSL"
    auth = one(objs, "TriggerAuthentication")
    params = {r["parameter"]: (r["name"], r["key"]) for r in auth["spec"]["secretTargetRef"]}
    assert params["ca"] == ("gorgias-worker-kafka-tls", "ca.crt") and {"cert", "key", "username", "password"} <= set(
        params)
    assert all(t["metadata"]["tls"] == "enable" for t in one(objs, "ScaledObject")["spec"]["triggers"])


def test_an_encrypted_client_key_gets_its_password_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    objs = helm_template(EXAMPLE, sets=("kafkaTls.keyPasswordKey=key-password",))
    env = {e["name"]: e.get("value") for e in container(one(objs, "Deployment"))["env"]}
    assert env["GORGIAS_WORKER__KAFKA__SSL_KEY_PASSWORD_FILE"] == "/etc/gorgias-worker-kafka-tls/key-password"


# --------------------------------------------------------------------------------------------------
# Topics as Strimzi KafkaTopic objects


def _expected_topics(config: WorkerConfig) -> dict[str, TopicKind]:
    """The worker's topics by name, derived as the worker names them."""
    topics: dict[str, TopicKind] = {}
    for dest in config.destinations:
        topics[dest.dead_letter_topic] = TopicKind.DEAD_LETTERS
        if dest.response_webhook.enabled:
            topics[dest.response_webhook.topic] = TopicKind.RESPONSES
    for store, kind in ((Store.INTENTS, TopicKind.INTENTS), (Store.CONTROL, TopicKind.CONTROL),
                        (Store.DESTINATIONS, TopicKind.DESTINATIONS), (Store.CREDENTIALS, TopicKind.CREDENTIALS),
                        (Store.DEMAND, TopicKind.DEMAND)):
        topics[config.kafka.store_topic(store)] = kind
    return topics


def topic_problems(topics: list[Obj], config: WorkerConfig, replicas: int, min_insync: int) -> list[str]:
    problems = []
    expected = _expected_topics(config)
    declared = {t["spec"]["topicName"]: t for t in topics}
    if set(declared) != set(expected):
        problems.append(f"topics {sorted(declared)}, expected {sorted(expected)}")
    for name, topic in declared.items():
        kind = expected.get(name)
        if kind is None:
            continue
        spec = TOPIC_SPECS[kind]
        wanted = {"cleanup.policy": spec.cleanup_policy, "min.insync.replicas": str(min_insync)}
        if spec.retention_ms is not None:
            wanted["retention.ms"] = str(spec.retention_ms)
        got = {k: str(v) for k, v in topic["spec"].get("config", {}).items()}
        if got != wanted or topic["spec"]["partitions"] != spec.partitions or topic["spec"]["replicas"] != replicas:
            problems.append(f"{name} ({kind}): {topic['spec']}, expected {wanted}, {spec.partitions} partitions")
    return problems


def test_the_charts_topics_follow_the_workers_topic_kinds(charts: dict[str, list[Obj]], tmp_path: Path) -> None:
    objs = charts["example"]
    config = destinations_config(objs, tmp_path)
    assert config.kafka.deployment == "support-prod"
    topics = objects(objs, "KafkaTopic")
    assert {t["metadata"]["namespace"] for t in topics} == {"kafka"}
    assert {t["metadata"]["labels"]["strimzi.io/cluster"] for t in topics} == {"my-cluster"}
    assert topic_problems(topics, config, replicas=3, min_insync=2) == []
    assert {t["metadata"]["labels"]["gorgias-worker/topic-kind"] for t in topics} == {k.value for k in TopicKind}
    assert not objects(charts["default"], "KafkaTopic"), "topics are optional (off by default)"


def test_the_topic_check_catches_a_wrong_topic(charts: dict[str, list[Obj]], tmp_path: Path) -> None:
    objs = charts["example"]
    config = destinations_config(objs, tmp_path)
    topics = copy.deepcopy(objects(objs, "KafkaTopic"))
    topics[0]["spec"]["config"]["cleanup.policy"] = "compact,delete"
    assert topic_problems(topics, config, replicas=3, min_insync=2)
    assert topic_problems(topics[1:], config, replicas=3, min_insync=2)


def test_the_kustomize_topics_are_the_base_configs(overlays: dict[str, list[Obj]], tmp_path: Path) -> None:
    config = load_config(K8S / "base" / "config" / "config.yaml")
    topics = overlays["topics"]
    assert {t["kind"] for t in topics} == {"KafkaTopic"}
    assert topic_problems(topics, config, replicas=3, min_insync=2) == []
    chart = helm_template(sets=("topics.enabled=true", "topics.namespace=kafka"))
    assert sorted((t["metadata"]["name"], t["spec"]) for t in objects(chart, "KafkaTopic")) == sorted(
        (t["metadata"]["name"], t["spec"]) for t in topics)


def test_excluded_topics_are_left_out() -> None:
    objs = helm_template(sets=("topics.enabled=true", "topics.exclude={gorgias.responses}"))
    names = {t["spec"]["topicName"] for t in objects(objs, "KafkaTopic")}
    assert "gorgias.responses" not in names and "gorgias.dead-letter" in names


# --------------------------------------------------------------------------------------------------
# Alerts as code


def _rules(objs: list[Obj]) -> list[Obj]:
    rule = one(objs, "PrometheusRule")
    return [r for group in rule["spec"]["groups"] for r in group["rules"]]


def test_the_chart_and_the_component_carry_the_same_monitoring(
    charts: dict[str, list[Obj]], overlays: dict[str, list[Obj]]
) -> None:
    kustomized = overlays["overlays/example-tls"]
    for kind in ("PrometheusRule", "ServiceMonitor"):
        assert one(charts["example"], kind)["spec"] == one(kustomized, kind)["spec"]
    assert not objects(charts["default"], "PrometheusRule") and not objects(charts["default"], "ServiceMonitor")
    monitor = one(kustomized, "ServiceMonitor")
    service = one(kustomized, "Service")
    assert all(service["metadata"]["labels"].get(k) == v for k, v in monitor["spec"]["selector"]["matchLabels"].items())
    assert monitor["spec"]["endpoints"][0]["port"] in {p["name"] for p in service["spec"]["ports"]}


ALERTS = {"GorgiasWorkerLagGrowing", "GorgiasWorkerRecordsDeadLettered", "GorgiasWorkerOutcomeUnknown",
          "GorgiasWorkerRateLimited", "GorgiasWorkerCredentialHeld", "GorgiasWorkerBudgetSaturated",
          "GorgiasWorkerNotReady", "GorgiasWorkerDestinationFailed"}
BY_LABELS = re.compile(r"\bby\s*\(([^)]*)\)")


def rule_problems(rules: list[Obj]) -> list[str]:
    """Metrics and labels the worker does not expose, or PromQL that does not parse."""
    series = registry_series()
    problems = []
    for rule in rules:
        expr = rule["expr"]
        try:
            promql.parse(expr)
        except ValueError as exc:
            problems.append(f"{rule.get('alert')}: not PromQL ({exc})")
        names = metric_names(expr)
        problems += [f"{rule.get('alert')}: {n} is not exposed by the worker" for n in names if n not in series]
        known = set().union(*(series.get(n, set()) for n in names)) | SCRAPE_LABELS
        for name, matchers in SELECTOR.findall(expr):
            problems += [f"{rule.get('alert')}: {name} has no label {label!r}"
                         for label in MATCHER.findall(matchers) if label not in series.get(name, set())]
        for labels in BY_LABELS.findall(expr):
            problems += [f"{rule.get('alert')}: no series has a label {label!r}"
                         for label in (x.strip() for x in labels.split(",")) if label not in known]
    return problems


def test_the_alerts_read_only_what_the_worker_exposes(charts: dict[str, list[Obj]]) -> None:
    rules = _rules(charts["example"])
    assert {r["alert"] for r in rules} == ALERTS
    assert rule_problems(rules) == []
    assert "gorgias_worker_credential_held" in " ".join(r["expr"] for r in rules)


@pytest.mark.parametrize("expr", [
    "sum by (namespace, destination) (rate(gorgias_worker_records_dead_letters_total[5m])) > 0",  # misspelled
    'max by (namespace, account) (gorgias_worker_credential_held{destination="x"}) == 1',  # no such label
    "max by (namespace, stage) (gorgias_worker_credential_held) == 1",  # nor in by ()
    "sum by (namespace (gorgias_worker_ready)",  # not PromQL
])
def test_the_rule_check_catches_unknown_metrics_and_labels(expr: str) -> None:
    assert rule_problems([{"alert": "Broken", "expr": expr}])


def _runbook_sections() -> set[str]:
    text = OPERATIONS.read_text(encoding="utf-8")
    alerts = text.split("\n## Alerts\n", 1)
    assert len(alerts) == 2, "docs/operations.md has no '## Alerts' section"
    body = alerts[1].split("\n## ", 1)[0]
    return set(re.findall(r"^### (GorgiasWorker\w+)$", body, flags=re.M))


def test_every_alert_has_a_runbook_section_its_link_names(charts: dict[str, list[Obj]]) -> None:
    sections = _runbook_sections()
    for rule in _rules(charts["example"]):
        assert rule["alert"] in sections, f"docs/operations.md has no '### {rule['alert']}' under '## Alerts'"
        assert rule["annotations"]["runbook_url"].endswith(f"operations.md#{rule['alert'].lower()}")
        assert rule["labels"]["severity"] in ("warning", "critical")
        assert rule["annotations"]["summary"]
    text = OPERATIONS.read_text(encoding="utf-8")
    for alert in ALERTS:  # the table of alerts links each section
        assert f"[`{alert}`](#{alert.lower()})" in text


def promtool() -> str | None:
    cached = ROOT / ".cache" / "bin" / "promtool"
    return str(cached) if cached.is_file() else shutil.which("promtool")


def test_promtool_checks_and_unit_tests_the_rules(overlays: dict[str, list[Obj]], tmp_path: Path) -> None:
    tool = promtool()
    if tool is None:
        pytest.skip("promtool is missing (make setup installs it into .cache/bin with go): rule unit tests not run")
    rule = one(overlays["overlays/example-tls"], "PrometheusRule")
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}), encoding="utf-8")
    shutil.copy(RULE_TESTS, tmp_path / RULE_TESTS.name)
    check = subprocess.run([tool, "check", "rules", "rules.yaml"], cwd=tmp_path, capture_output=True, text=True,
                           timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr
    run = subprocess.run([tool, "test", "rules", RULE_TESTS.name], cwd=tmp_path, capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    tested = set(re.findall(r"alertname: (\w+)", RULE_TESTS.read_text(encoding="utf-8")))
    assert tested == ALERTS, f"alerts without a unit test: {sorted(ALERTS - tested)}"


# --------------------------------------------------------------------------------------------------
# The chart's README


def _value_paths(values: Obj, prefix: str = "") -> list[str]:
    """Documented value paths: every key, down to the leaves, except inside ``config`` and free-form maps."""
    out = []
    for key, value in values.items():
        path = f"{prefix}{key}"
        out.append(path)
        if isinstance(value, dict) and value and key not in ("config", "lagThresholds", "clientLabel", "resources"):
            out += _value_paths(value, f"{path}.")
    return out


def test_the_readme_documents_every_value() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text(encoding="utf-8"))
    readme = (CHART / "README.md").read_text(encoding="utf-8")
    missing = [p for p in _value_paths(values) if f"`{p}`" not in readme]
    assert missing == []


@pytest.mark.parametrize("path", ["deploy/kubernetes/base/config/config.yaml", "deploy/compose/config.yaml",
                                  "worker/tools/examples/demo.yaml"])
def test_the_shipped_config_files_pass_the_published_schema(path: str) -> None:
    """What Helm checks `config` with is what editors check a file with: the worker's own forms pass."""
    schema = json.loads((ROOT / "schemas" / "worker-config.schema.json").read_text(encoding="utf-8"))
    document = yaml.safe_load((ROOT / path).read_text(encoding="utf-8"))
    assert [e.message for e in jsonschema.Draft202012Validator(schema).iter_errors(document)] == []
