"""The Kubernetes manifests and the Grafana dashboard: rendered, schema-validated, and true to the product.

Rendering uses a real kustomize and every rendered object is validated offline, strictly, against the
Kubernetes API's schemas and those of the custom resources we use (:mod:`tests.support.manifests`). Then
the properties the product promises are checked: probes, non-root and read-only root filesystem, shutdown
timing, PDB, NetworkPolicy, autoscaling that matches the destinations file, and the dashboard's metric names
against ``worker.host.metrics.REGISTRY``.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.manifests import (
    K8S,
    ROOT,
    Obj,
    budget_bound,
    destinations_config,
    ident,
    kustomize_build,
    objects,
    one,
    schema_errors,
)
from tests.support.metric_names import (
    MATCHER,
    SCRAPE_LABELS,
    SELECTOR,
    metric_names,
    registry_names,
    registry_series,
)
from worker.core.config.worker_config import WorkerConfig
from worker.gorgias.share import REPLICA_CALLS_PER_S, useful_replicas
from worker.host import metrics
from worker.host.environment import check_secrets

DASHBOARD = ROOT / "deploy" / "grafana" / "gorgias-worker.json"
KUSTOMIZATIONS = ("base", "overlays/example", "overlays/example-hpa", "overlays/example-tls")
IMAGE_UID = 10001
WEB_PORT = 6066


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[Obj]]:
    return {name: kustomize_build(K8S / name) for name in KUSTOMIZATIONS}


@pytest.mark.parametrize("name", KUSTOMIZATIONS)
def test_every_rendered_object_is_valid_for_the_kubernetes_api(rendered: dict[str, list[Obj]], name: str) -> None:
    objs = rendered[name]
    assert objs, f"{name} rendered nothing"
    problems = [p for obj in objs for p in schema_errors(obj)]
    assert problems == []


def _deployment(rendered: dict[str, list[Obj]]) -> Obj:
    return copy.deepcopy(one(rendered["overlays/example"], "Deployment"))


def _container(deploy: Obj) -> Obj:
    return deploy["spec"]["template"]["spec"]["containers"][0]


BROKEN: dict[str, tuple[str, Callable[[Obj], None]]] = {
    "replicas as a word": ("Deployment", lambda d: d["spec"].__setitem__("replicas", "two")),
    "misspelled field": ("Deployment", lambda d: _container(d).__setitem__("livenessProb", {})),
    "container without a name": ("Deployment", lambda d: _container(d).pop("name")),
    "port as a word": ("Service", lambda s: s["spec"]["ports"][0].__setitem__("port", "http")),
    "pdb budget as a list": ("PodDisruptionBudget", lambda p: p["spec"].__setitem__("maxUnavailable", [1])),
    "unknown apiVersion": ("Deployment", lambda d: d.__setitem__("apiVersion", "apps/v2")),
    "keda threshold as a number": (
        "ScaledObject", lambda s: s["spec"]["triggers"][0]["metadata"].__setitem__("lagThreshold", 500)),
    "keda trigger without consumer group": (
        "ScaledObject", lambda s: s["spec"]["triggers"][0]["metadata"].pop("consumerGroup")),
    "keda misspelled field": ("ScaledObject", lambda s: s["spec"].__setitem__("maxReplicas", 3)),
    "keda behavior not an HPA behavior": (
        "ScaledObject",
        lambda s: s["spec"]["advanced"]["horizontalPodAutoscalerConfig"]["behavior"].__setitem__("scaleUp", "fast")),
    "trigger auth without key": ("TriggerAuthentication", lambda t: t["spec"]["secretTargetRef"][0].pop("key")),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_schema_validation_rejects_broken_objects(rendered: dict[str, list[Obj]], case: str) -> None:
    kind, mutate = BROKEN[case]
    obj = copy.deepcopy(one(rendered["overlays/example"], kind))
    assert schema_errors(obj) == []
    mutate(obj)
    assert schema_errors(obj), f"{case}: the broken {kind} was accepted"


# --------------------------------------------------------------------------------------------------
# What the product promises



def _probe_port(container: Obj, probe: Obj) -> int:
    port = probe["httpGet"]["port"]
    if isinstance(port, int):
        return port
    return next(p["containerPort"] for p in container["ports"] if p.get("name") == port)


def _prestop_seconds(container: Obj) -> float:
    pre = container.get("lifecycle", {}).get("preStop", {})
    if "sleep" in pre:
        return float(pre["sleep"]["seconds"])
    command = pre.get("exec", {}).get("command", [])
    if len(command) == 2 and command[0] == "sleep":
        return float(command[1])
    return 0.0


# complexity: a checklist of the manifest's rules, one branch per rule
def deployment_problems(deploy: Obj, config: WorkerConfig) -> list[str]:  # noqa: C901
    """Broken promises of the worker's Deployment (empty when it keeps them all)."""
    problems: list[str] = []
    pod = deploy["spec"]["template"]["spec"]
    containers = pod.get("containers", [])
    if len(containers) != 1:
        return [f"expected one container, found {len(containers)}"]
    c = containers[0]
    if not c.get("image"):
        problems.append("the container has no image")
    if c.get("args", [])[:1] != ["run"] and "run" not in c.get("command", []):
        problems.append("the container does not run the worker (`run --config ...`)")
    ports = {p.get("containerPort") for p in c.get("ports", [])}
    if config.worker.web_port not in ports:
        problems.append(f"container port {config.worker.web_port} (worker.web_port) is not declared")
    for probe_name, path in (("livenessProbe", "/health/live"), ("readinessProbe", "/health/ready")):
        probe = c.get(probe_name)
        if not probe or "httpGet" not in probe:
            problems.append(f"{probe_name} is missing or not an HTTP probe")
            continue
        if probe["httpGet"].get("path") != path:
            problems.append(f"{probe_name} must GET {path}, not {probe['httpGet'].get('path')}")
        if _probe_port(c, probe) != config.worker.web_port:
            problems.append(f"{probe_name} must use port {config.worker.web_port}")
    pod_sc = pod.get("securityContext", {})
    sc = c.get("securityContext", {})

    def effective(key: str) -> Any:
        return sc.get(key, pod_sc.get(key))

    if effective("runAsNonRoot") is not True:
        problems.append("runAsNonRoot must be true")
    if effective("runAsUser") != IMAGE_UID:
        problems.append(f"runAsUser must be {IMAGE_UID} (the image's user)")
    if sc.get("readOnlyRootFilesystem") is not True:
        problems.append("readOnlyRootFilesystem must be true")
    if sc.get("allowPrivilegeEscalation") is not False:
        problems.append("allowPrivilegeEscalation must be false")
    if "ALL" not in sc.get("capabilities", {}).get("drop", []):
        problems.append("capabilities must drop ALL")
    if (effective("seccompProfile") or {}).get("type") != "RuntimeDefault":
        problems.append("seccompProfile must be RuntimeDefault")
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    mounts = {m["mountPath"]: m for m in c.get("volumeMounts", [])}
    tmp = mounts.get("/tmp")
    if tmp is None or "emptyDir" not in volumes.get(tmp["name"], {}):
        problems.append("/tmp must be a writable emptyDir (the root filesystem is read-only)")
    cfg = mounts.get("/etc/gorgias-worker")
    if cfg is None or "configMap" not in volumes.get(cfg["name"], {}) or not cfg.get("readOnly"):
        problems.append("/etc/gorgias-worker must be the config ConfigMap, mounted read-only")
    grace = pod.get("terminationGracePeriodSeconds", 30)
    prestop = _prestop_seconds(c)
    if not 3 <= prestop <= 10:
        problems.append(f"preStop must sleep a few seconds so endpoints drain (got {prestop:g} s)")
    if grace <= prestop + config.worker.shutdown_grace_s:
        problems.append(
            f"terminationGracePeriodSeconds ({grace}) must exceed the preStop sleep ({prestop:g} s) plus "
            f"worker.shutdown_grace_s ({config.worker.shutdown_grace_s:g} s)"
        )
    resources = c.get("resources", {})
    for kind in ("requests", "limits"):
        for res in ("cpu", "memory"):
            if res not in resources.get(kind, {}):
                problems.append(f"resources.{kind}.{res} is not set")
    for env in c.get("env", []):
        if env["name"] in secret_env_names(config) and "secretKeyRef" not in env.get("valueFrom", {}):
            problems.append(f"secret {env['name']} must come from a Secret (secretKeyRef), not a literal value")
    return problems


def secret_env_names(config: WorkerConfig) -> set[str]:
    names = {d.credential.secret().env for d in config.destinations}
    for ref in (config.kafka.sasl_password(), config.worker.control_token()):
        if ref is not None:
            names.add(ref.env)
    return {n for n in names if n}


@pytest.mark.parametrize("name", KUSTOMIZATIONS)
def test_the_deployment_keeps_the_products_promises(
    rendered: dict[str, list[Obj]], name: str, tmp_path: Path
) -> None:
    objs = rendered[name]
    config = destinations_config(objs, tmp_path)
    assert deployment_problems(one(objs, "Deployment"), config) == []


def _set_grace(d: Obj, value: int) -> None:
    d["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] = value


def _no_prestop(d: Obj) -> None:
    _container(d).pop("lifecycle")


def _root(d: Obj) -> None:
    _container(d)["securityContext"]["runAsUser"] = 0


def _writable_root(d: Obj) -> None:
    _container(d)["securityContext"]["readOnlyRootFilesystem"] = False


def _probe_path(d: Obj) -> None:
    _container(d)["readinessProbe"]["httpGet"]["path"] = "/health/live"


def _probe_port_number(d: Obj) -> None:
    _container(d)["livenessProbe"]["httpGet"]["port"] = 8080


def _no_tmp(d: Obj) -> None:
    _container(d)["volumeMounts"] = [m for m in _container(d)["volumeMounts"] if m["mountPath"] != "/tmp"]


def _literal_secret(d: Obj) -> None:
    env = next(e for e in _container(d)["env"] if e["name"] == "GORGIAS_API_KEY")
    env.pop("valueFrom")
    env["value"] = "hunter2"


def _no_image(d: Obj) -> None:
    _container(d).pop("image")


def _escalation(d: Obj) -> None:
    _container(d)["securityContext"]["allowPrivilegeEscalation"] = True


BROKEN_PROMISES: dict[str, Callable[[Obj], None]] = {
    "missing image": _no_image,
    "grace period not above the shutdown grace": lambda d: _set_grace(d, 30),
    "no preStop sleep": _no_prestop,
    "runs as root": _root,
    "writable root filesystem": _writable_root,
    "readiness probe on the liveness path": _probe_path,
    "probe on another port": _probe_port_number,
    "no writable /tmp": _no_tmp,
    "secret as a literal": _literal_secret,
    "privilege escalation": _escalation,
}


@pytest.mark.parametrize("case", sorted(BROKEN_PROMISES))
def test_broken_promises_are_caught(rendered: dict[str, list[Obj]], case: str, tmp_path: Path) -> None:
    config = destinations_config(rendered["overlays/example"], tmp_path)
    deploy = _deployment(rendered)
    BROKEN_PROMISES[case](deploy)
    assert deployment_problems(deploy, config), f"{case}: not detected"


def test_the_config_map_is_a_valid_destinations_file_whose_secrets_the_pod_provides(
    rendered: dict[str, list[Obj]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    objs = rendered["overlays/example"]
    config = destinations_config(objs, tmp_path)
    assert config.worker.web_port == WEB_PORT
    secrets = {s["metadata"]["name"]: s.get("stringData", {}) for s in objects(objs, "Secret")}
    env: dict[str, str] = {}
    for var in _container(one(objs, "Deployment")).get("env", []):
        ref = var.get("valueFrom", {}).get("secretKeyRef")
        if ref:
            assert ref["name"] in secrets, f"{var['name']}: Secret {ref['name']} is not rendered"
            assert ref["key"] in secrets[ref["name"]], f"{var['name']}: Secret {ref['name']} has no {ref['key']}"
            env[var["name"]] = secrets[ref["name"]][ref["key"]]
        else:
            env[var["name"]] = var.get("value", "")
    for name in ("GORGIAS_API_KEY", "KAFKA_PASSWORD", "KAFKA_USERNAME", "GORGIAS_WORKER_CONTROL_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    assert check_secrets(config) != [], "without the pod's environment the secrets must be missing"
    # the pod listens beyond loopback (probes, Prometheus), so its POST routes need the control token
    assert config.worker.web_host == "0.0.0.0"
    token = config.worker.control_token()
    assert token is not None and token.env is not None and token.env in env
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert check_secrets(config) == []
    assert secret_env_names(config) <= {k for k, v in env.items() if v}
    # ${KAFKA_USERNAME:-...} in the file takes the Secret's user once the pod's environment is there.
    assert destinations_config(objs, tmp_path).kafka.sasl_username == env["KAFKA_USERNAME"]
    template = next(iter(secrets.values()))
    assert "REPLACE_ME" in template.values(), "the example Secret must carry obvious placeholders"


def _pod_labels(objs: list[Obj]) -> dict[str, str]:
    labels: dict[str, str] = one(objs, "Deployment")["spec"]["template"]["metadata"]["labels"]
    return labels


def _selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


@pytest.mark.parametrize("name", KUSTOMIZATIONS)
def test_service_pdb_labels_and_namespace(rendered: dict[str, list[Obj]], name: str) -> None:
    objs = rendered[name]
    pod_labels = _pod_labels(objs)
    deploy = one(objs, "Deployment")
    assert _selects(deploy["spec"]["selector"]["matchLabels"], pod_labels)
    service = one(objs, "Service")
    assert _selects(service["spec"]["selector"], pod_labels)
    assert [(p["name"], p["port"]) for p in service["spec"]["ports"]] == [("http", WEB_PORT)]
    assert service["spec"]["ports"][0]["targetPort"] in ("http", WEB_PORT)
    pdb = one(objs, "PodDisruptionBudget")
    assert pdb["spec"].get("maxUnavailable") == 1 and "minAvailable" not in pdb["spec"]
    assert _selects(pdb["spec"]["selector"]["matchLabels"], pod_labels)
    for obj in objs:
        if obj["kind"] == "Namespace":
            continue
        labels = obj["metadata"].get("labels", {})
        assert labels.get("app.kubernetes.io/name") == "gorgias-worker", f"{ident(obj)} lacks the name label"
        assert labels.get("app.kubernetes.io/part-of") == "gorgias-worker", f"{ident(obj)} lacks part-of"
    if name != "base":
        namespaces = {o["metadata"].get("namespace") for o in objs if o["kind"] != "Namespace"}
        assert namespaces == {one(objs, "Namespace")["metadata"]["name"]}


# complexity: a checklist of the manifest's rules, one branch per rule
def network_policy_problems(policy: Obj, pod_labels: dict[str, str]) -> list[str]:  # noqa: C901
    problems: list[str] = []
    spec = policy["spec"]
    if not _selects(spec["podSelector"].get("matchLabels", {}), pod_labels):
        problems.append("the policy does not select the worker's pods")
    if sorted(spec.get("policyTypes", [])) != ["Egress", "Ingress"]:
        problems.append("the policy must restrict both Ingress and Egress")
    ingress_ports = [(p.get("protocol", "TCP"), p.get("port")) for rule in spec.get("ingress", [])
                     for p in rule.get("ports", [])]
    if not spec.get("ingress") or any(not rule.get("ports") for rule in spec["ingress"]):
        problems.append("every ingress rule must name its ports")
    if set(ingress_ports) != {("TCP", WEB_PORT)}:
        problems.append(f"ingress must be only TCP {WEB_PORT}, got {ingress_ports}")
    for rule in spec.get("ingress", []):
        peers = rule.get("from") or []
        if not peers:
            problems.append("an ingress rule without `from` admits every source")
        for peer in peers:
            if "ipBlock" in peer or not peer.get("podSelector", {}).get("matchLabels"):
                problems.append(f"ingress must come only from labelled pods, got {peer}")
    egress_ports: set[tuple[str, int]] = set()
    for rule in spec.get("egress", []):
        if not rule.get("ports"):
            problems.append("an egress rule without ports allows everything")
        for p in rule.get("ports", []):
            egress_ports.add((p.get("protocol", "TCP"), p.get("port")))
    allowed = {("TCP", 9092), ("TCP", 9093), ("UDP", 53), ("TCP", 53), ("TCP", 443)}
    if egress_ports - allowed:
        problems.append(f"unexpected egress ports {sorted(egress_ports - allowed)}")
    for needed in (("UDP", 53), ("TCP", 53), ("TCP", 443)):
        if needed not in egress_ports:
            problems.append(f"egress to {needed[0]} {needed[1]} is missing")
    if not {("TCP", 9092), ("TCP", 9093)} & egress_ports:
        problems.append("egress to Kafka (9092/9093) is missing")
    return problems


def test_network_policy_limits_traffic(rendered: dict[str, list[Obj]]) -> None:
    objs = rendered["overlays/example"]
    policy = one(objs, "NetworkPolicy")
    labels = _pod_labels(objs)
    assert network_policy_problems(policy, labels) == []
    open_egress = copy.deepcopy(policy)
    open_egress["spec"]["egress"].append({"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]})
    assert network_policy_problems(open_egress, labels)
    more_ingress = copy.deepcopy(policy)
    more_ingress["spec"]["ingress"][0]["ports"].append({"protocol": "TCP", "port": 8080})
    assert network_policy_problems(more_ingress, labels)
    any_source = copy.deepcopy(policy)
    del any_source["spec"]["ingress"][0]["from"]
    assert network_policy_problems(any_source, labels)
    any_pod = copy.deepcopy(policy)
    any_pod["spec"]["ingress"][0]["from"] = [{"namespaceSelector": {}, "podSelector": {}}]
    assert network_policy_problems(any_pod, labels)
    cidr = copy.deepcopy(policy)
    cidr["spec"]["ingress"][0]["from"].append({"ipBlock": {"cidr": "0.0.0.0/0"}})
    assert network_policy_problems(cidr, labels)
    no_dns = copy.deepcopy(policy)
    no_dns["spec"]["egress"] = [r for r in no_dns["spec"]["egress"] if {"port": 53, "protocol": "UDP"} not in
                                r.get("ports", [])]
    assert network_policy_problems(no_dns, labels)


def _targets_deployment(ref: Obj, deploy: Obj) -> bool:
    return ref.get("kind", "Deployment") == "Deployment" and ref["name"] == deploy["metadata"]["name"]


def test_exactly_one_autoscaler_per_overlay(rendered: dict[str, list[Obj]]) -> None:
    base = rendered["base"]
    assert not objects(base, "ScaledObject") and not objects(base, "HorizontalPodAutoscaler")
    assert one(base, "Deployment")["spec"].get("replicas", 1) >= 2
    for name, kind in (("overlays/example", "ScaledObject"), ("overlays/example-hpa", "HorizontalPodAutoscaler")):
        objs = rendered[name]
        deploy = one(objs, "Deployment")
        scalers = [o for o in objs if o["kind"] in ("ScaledObject", "HorizontalPodAutoscaler")]
        assert [o["kind"] for o in scalers] == [kind], f"{name}: two autoscalers would fight over the replicas"
        assert _targets_deployment(scalers[0]["spec"]["scaleTargetRef"], deploy)
        assert "replicas" not in deploy["spec"], f"{name}: the autoscaler owns spec.replicas"


def test_keda_triggers_match_the_destinations(rendered: dict[str, list[Obj]], tmp_path: Path) -> None:
    objs = rendered["overlays/example"]
    config = destinations_config(objs, tmp_path)
    scaled = one(objs, "ScaledObject")
    spec = scaled["spec"]
    assert 1 <= spec["minReplicaCount"] <= spec["maxReplicaCount"]
    sasl = {None: "none", "PLAIN": "plaintext", "SCRAM-SHA-256": "scram_sha256", "SCRAM-SHA-512": "scram_sha512"}
    tls = "enable" if config.kafka.security_protocol.value in ("SSL", "SASL_SSL") else "disable"
    wanted = {(f"{config.kafka.group_id}.{d.name}", t) for d in config.destinations for t in d.source_topics}
    found = set()
    auths = {a["metadata"]["name"]: a for a in objects(objs, "TriggerAuthentication")}
    secrets = {s["metadata"]["name"]: s.get("stringData", {}) for s in objects(objs, "Secret")}
    for trigger in spec["triggers"]:
        assert trigger["type"] == "kafka"
        meta = trigger["metadata"]
        found.add((meta["consumerGroup"], meta["topic"]))
        assert meta["bootstrapServers"] == config.kafka.bootstrap_servers
        mechanism = config.kafka.sasl_mechanism.value if config.kafka.sasl_mechanism else None
        assert meta.get("sasl", "none") == sasl[mechanism]
        assert meta.get("tls", "disable") == tls
        assert meta.get("offsetResetPolicy") == "earliest", "the worker starts new groups at the earliest offset"
        auth = auths[trigger["authenticationRef"]["name"]]
        params = {ref["parameter"] for ref in auth["spec"]["secretTargetRef"]}
        assert {"username", "password"} <= params
        for ref in auth["spec"]["secretTargetRef"]:
            assert ref["key"] in secrets[ref["name"]]
    assert found == wanted, "one kafka trigger per destination and source topic, on the destination's group"


def test_hpa_scales_on_the_workers_lag_metric(rendered: dict[str, list[Obj]], tmp_path: Path) -> None:
    objs = rendered["overlays/example-hpa"]
    config = destinations_config(objs, tmp_path)
    hpa = one(objs, "HorizontalPodAutoscaler")
    assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
    covered = set()
    for metric in hpa["spec"]["metrics"]:
        source = metric[metric["type"].lower()]
        assert source["metric"]["name"] == "gorgias_worker_consumer_lag" in registry_names()
        covered.add(source["metric"]["selector"]["matchLabels"]["destination"])
    assert covered == {d.name for d in config.destinations}


@pytest.mark.parametrize(("overlay", "kind", "field"), [
    ("overlays/example", "ScaledObject", "maxReplicaCount"),
    ("overlays/example-hpa", "HorizontalPodAutoscaler", "maxReplicas"),
])
def test_autoscalers_stop_where_the_accounts_budgets_do(
    rendered: dict[str, list[Obj]], tmp_path: Path, overlay: str, kind: str, field: str
) -> None:
    objs = rendered[overlay]
    config = destinations_config(objs, tmp_path)
    spec = one(objs, kind)["spec"]
    floor = spec["minReplicaCount" if kind == "ScaledObject" else "minReplicas"]
    assert spec[field] <= max(floor, budget_bound(config)), (
        f"{overlay}: {spec[field]} replicas, but the accounts' budgets keep only {budget_bound(config)} busy")


def test_the_budget_bound_grows_with_the_accounts(tmp_path: Path, rendered: dict[str, list[Obj]]) -> None:
    config = destinations_config(rendered["overlays/example"], tmp_path)
    assert budget_bound(config) == 2  # one API-key account: 1.9 calls/s, one replica + a spare
    many = [d.credential.model_copy(update={"domain": f"store{i}"}) for i in range(60) for d in config.destinations]
    assert useful_replicas(many) == 4  # 60 accounts x 1.9 calls/s = 114 calls/s at 33.7 per replica


@pytest.mark.parametrize("component", ["keda-autoscaling/scaledobject.yaml",
                                       "hpa-autoscaling/horizontalpodautoscaler.yaml"])
def test_the_caps_say_the_measured_calls_per_replica(component: str) -> None:
    """The caps' bound divides by the per-replica call rate measured in docs/benchmarks.md §5, the figure
    useful_replicas uses: a new measurement changes the code, the manifests and their comments together."""
    text = (ROOT / "deploy/kubernetes/components" / component).read_text()
    assert f"calls/s / {REPLICA_CALLS_PER_S:g}) + 1 spare" in text
    assert f"{REPLICA_CALLS_PER_S:g} calls/s" in (ROOT / "docs/operations.md").read_text()


# --------------------------------------------------------------------------------------------------
# The Grafana dashboard



def dashboard_exprs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("expr", "definition") and isinstance(value, str):
                yield value
            elif key == "query" and isinstance(value, str):
                yield value
            else:
                yield from dashboard_exprs(value)
    elif isinstance(node, list):
        for item in node:
            yield from dashboard_exprs(item)



LABEL_VALUES = re.compile(
    r"label_values\((gorgias_worker_[a-z0-9_]+)\s*(?:\{[^}]*\})?\s*,\s*([a-zA-Z_][a-zA-Z0-9_]*)\)")
# Generic names other exporters expose too: a query must keep them to the worker's own targets.
WORKER_ONLY = re.compile(r"\*\s*on\s*\(instance\)\s*group_left\s+gorgias_worker_build_info\{")


# complexity: a checklist of the dashboard's rules, one branch per rule
def dashboard_problems(dashboard: Obj) -> list[str]:  # noqa: C901
    """Metric names and labels the worker does not expose, and structural mistakes."""
    series = registry_series()
    problems: list[str] = []
    panel_exprs = list(dashboard_exprs(dashboard.get("panels", [])))
    exprs = panel_exprs + list(dashboard_exprs(dashboard.get("templating", {})))
    if not exprs:
        problems.append("the dashboard has no queries")
    for expr in exprs:
        for name in metric_names(expr):
            if name not in series:
                problems.append(f"{name} is not exposed by the worker (query: {expr})")
        for name, matchers in SELECTOR.findall(expr):
            for label in MATCHER.findall(matchers):
                if name in series and label not in series[name] | SCRAPE_LABELS:
                    problems.append(f"{name} has no label {label!r} (query: {expr})")
        for name, label in LABEL_VALUES.findall(expr):
            if name in series and label not in series[name] | SCRAPE_LABELS:
                problems.append(f"{name} has no label {label!r} (variable: {expr})")
        if any(not n.startswith("gorgias_worker_") for n in metric_names(expr)) and not WORKER_ONLY.search(expr):
            problems.append(f"process/python series not joined to gorgias_worker_build_info (query: {expr})")
    for expr in panel_exprs:
        for name, matchers in SELECTOR.findall(expr):
            scoped = {m.group(1) for m in re.finditer(r'(\w+)=~"\$(\w+)"', matchers) if m.group(1) == m.group(2)}
            if not {"namespace", "pod"} <= scoped:
                problems.append(f"{name} ignores the namespace/pod variables (query: {expr})")
    ids = [p.get("id") for p in dashboard.get("panels", [])]
    if len(ids) != len(set(ids)):
        problems.append("panel ids must be unique")
    return problems


def _dashboard() -> Obj:
    doc: Obj = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return doc


def test_dashboard_uses_only_metrics_the_worker_exposes() -> None:
    dashboard = _dashboard()
    assert dashboard_problems(dashboard) == []
    used = {name for expr in dashboard_exprs(dashboard["panels"]) for name in metric_names(expr)}
    # Every metric of the worker has a panel, except the deprecated names kept for one release.
    families = {f.name for f in metrics.REGISTRY.collect() if not f.documentation.startswith("Deprecated")}
    not_shown = {"process_virtual_memory_bytes", "process_start_time_seconds", "python_info",
                 "python_gc_objects_collected", "python_gc_objects_uncollectable"}
    shown = {re.sub(r"_(total|bucket|sum|count|info)$", "", n) for n in used}
    assert families - not_shown <= shown, f"metrics without a panel: {sorted(families - not_shown - shown)}"
    variables = [v["name"] for v in dashboard["templating"]["list"]]
    assert variables == ["datasource", "namespace", "pod", "destination", "account"]
    assert any(p.get("repeat") == "destination" for p in dashboard["panels"] if p["type"] == "row")


@pytest.mark.parametrize("broken", [
    'sum(rate(gorgias_worker_records_sent_total{namespace=~"$namespace", pod=~"$pod"}[5m]))',
    'sum(rate(gorgias_worker_calls{namespace=~"$namespace", pod=~"$pod"}[5m]))',
    'sum(rate(gorgias_worker_calls_total{namespace=~"$namespace", pod=~"$pod", cause="x"}[5m]))',
    'sum(rate(gorgias_worker_calls_total{destination=~"$destination"}[5m]))',  # no namespace/pod filter
    'sum(rate(gorgias_worker_call_latency_seconds_count{namespace=~"$namespace", pod=~"$pod"}[5m]))',  # renamed
    'sum(rate(gorgias_worker_rate_limit_wait_seconds_total{namespace=~"$namespace", pod=~"$pod"}[5m]))',
    "max(process_resident_memory_bytes)",  # every exporter's process, not only the worker's
    'max(process_resident_bytes * on (instance) group_left gorgias_worker_build_info{namespace=~"$namespace", '
    'pod=~"$pod"})',
])
def test_dashboard_check_catches_unknown_metrics_and_labels(broken: str) -> None:
    dashboard = _dashboard()
    dashboard["panels"][1]["targets"][0]["expr"] = broken
    assert dashboard_problems(dashboard)


def test_the_exposition_has_build_info_process_metrics_and_no_created_series() -> None:
    from prometheus_client.parser import text_string_to_metric_families

    child = metrics.CALLS.labels("dashboard-test", "200")
    child.inc()
    metrics.REQUEST_LATENCY.labels("dashboard-test").observe(0.2)
    try:
        text = metrics.render().decode()
        names = {s.name for f in text_string_to_metric_families(text) for s in f.samples}
    finally:
        metrics.CALLS.remove("dashboard-test", "200")
        metrics.REQUEST_LATENCY.remove("dashboard-test")
    assert "gorgias_worker_calls_total" in names and "gorgias_worker_request_seconds_bucket" in names
    assert not [n for n in names if n.endswith("_created")]
    assert {"gorgias_worker_build_info", "process_resident_memory_bytes", "process_cpu_seconds_total",
            "process_open_fds", "python_info", "python_gc_collections_total"} <= names
    # Every series the exposition carries is one the dashboard check knows.
    assert names <= set(registry_series())
    version = re.search(r'gorgias_worker_build_info\{[^}]*version="([^"]+)"', text)
    assert version is not None and version.group(1) != "unknown"


def test_dashboard_queries_are_valid_promql() -> None:
    import promql_parser as promql
    for expr in dashboard_exprs(_dashboard()["panels"]):
        promql.parse(expr.replace("$__rate_interval", "5m"))
    for variable in _dashboard()["templating"]["list"][1:]:  # label_values(selector, label) is Grafana's
        selector = re.fullmatch(r"label_values\((.*), *\w+\)", variable["definition"])
        assert selector is not None and variable["query"]["query"] == variable["definition"]
        promql.parse(selector.group(1))
    with pytest.raises(ValueError):
        promql.parse("sum by (destination (rate(gorgias_worker_calls_total[5m]))")
