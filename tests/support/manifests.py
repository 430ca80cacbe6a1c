"""Kubernetes manifests as the tests see them: rendered by a real kustomize or helm, validated offline.

Every rendered object is validated against the Kubernetes OpenAPI-derived JSON schemas shipped (offline) by
the ``kubernetes-validate`` package, in strict mode (unknown fields are errors); the custom resources those
schemas don't cover (KEDA, the Prometheus Operator, Strimzi) against the small schemas of
:mod:`tests.support.custom_resources`, for the fields we use. Used by the kustomize manifests' tests
(``tests/unit/project/test_kubernetes_manifests.py``) and the Helm chart's (``test_helm_chart.py``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from tests.support.custom_resources import CRD_GROUPS, CRD_SCHEMAS
from worker.core.config.worker_config import WorkerConfig
from worker.gorgias.share import useful_replicas
from worker.service.config_loading import load_config

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "kubernetes"
CHART = ROOT / "deploy" / "helm" / "gorgias-worker"
KUBERNETES_VERSION = "1.37.0"
Obj = dict[str, Any]


# --------------------------------------------------------------------------------------------------
# Rendering


def kustomize_command() -> list[str]:
    """How to run kustomize here: ``$KUSTOMIZE`` (a path), else ``.cache/bin/kustomize`` (``make setup``),
    else ``kustomize`` on the PATH, else ``kubectl kustomize`` (kubectl embeds kustomize)."""
    if os.environ.get("KUSTOMIZE"):
        return [os.environ["KUSTOMIZE"], "build"]
    cached = ROOT / ".cache" / "bin" / "kustomize"
    if cached.is_file() and os.access(cached, os.X_OK):
        return [str(cached), "build"]
    if found := shutil.which("kustomize"):
        return [found, "build"]
    if found := shutil.which("kubectl"):
        return [found, "kustomize"]
    pytest.fail(
        "no kustomize to render deploy/kubernetes: install it with "
        "`GOBIN=$PWD/.cache/bin go install sigs.k8s.io/kustomize/kustomize/v5@v5.8.0` (or install kubectl)"
    )


def kustomize_build(path: Path) -> list[Obj]:
    proc = subprocess.run([*kustomize_command(), str(path)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, f"kustomize build {path} failed:\n{proc.stderr}"
    return [obj for obj in yaml.safe_load_all(proc.stdout) if obj]


def helm_command() -> list[str]:
    """How to run helm here: ``$HELM`` (a path), else ``.cache/bin/helm`` (``make setup``), else ``helm``."""
    if os.environ.get("HELM"):
        return [os.environ["HELM"]]
    cached = ROOT / ".cache" / "bin" / "helm"
    if cached.is_file() and os.access(cached, os.X_OK):
        return [str(cached)]
    if found := shutil.which("helm"):
        return [found]
    pytest.fail("no helm to render deploy/helm/gorgias-worker: install it with `make setup` "
                "(GOBIN=$PWD/.cache/bin go install helm.sh/helm/v4/cmd/helm@v4.3.2)")


def helm(*args: str) -> subprocess.CompletedProcess[str]:
    """Run helm offline, with its caches and config in a directory of its own (never the user's)."""
    home = ROOT / ".cache" / "helm-home"
    env = {**os.environ, "HELM_CACHE_HOME": str(home / "cache"), "HELM_CONFIG_HOME": str(home / "config"),
           "HELM_DATA_HOME": str(home / "data")}
    return subprocess.run([*helm_command(), *args], capture_output=True, text=True, timeout=120, env=env)


def helm_template(*values_files: Path, release: str = "gorgias-worker", namespace: str = "gorgias-worker",
                  sets: tuple[str, ...] = ()) -> list[Obj]:
    """``helm template`` of the chart with these values files (and ``--set``s), as objects."""
    args = ["template", release, str(CHART), "--namespace", namespace]
    for path in values_files:
        args += ["--values", str(path)]
    for item in sets:
        args += ["--set", item]
    proc = helm(*args)
    assert proc.returncode == 0, f"helm template failed:\n{proc.stderr}"
    return [obj for obj in yaml.safe_load_all(proc.stdout) if obj]


def objects(objs: list[Obj], kind: str) -> list[Obj]:
    return [o for o in objs if o["kind"] == kind]


def one(objs: list[Obj], kind: str) -> Obj:
    found = objects(objs, kind)
    assert len(found) == 1, f"expected exactly one {kind}, found {len(found)}"
    return found[0]


def ident(obj: Obj) -> str:
    return f"{obj.get('kind')}/{obj.get('metadata', {}).get('name')}"


# --------------------------------------------------------------------------------------------------
# Schema validation: Kubernetes API objects and the custom resources


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0]


def schema_errors(obj: Obj) -> list[str]:
    """Why ``obj`` is not a valid object for the Kubernetes API (or a custom resource we use); empty when it is."""
    api_version = obj.get("apiVersion", "")
    if not isinstance(api_version, str) or not isinstance(obj.get("kind"), str):
        return [f"{ident(obj)}: apiVersion and kind must be strings"]
    group = api_version.split("/")[0]
    if group in CRD_GROUPS:
        schema = CRD_SCHEMAS.get((group, obj["kind"]))
        if schema is None:
            return [f"{ident(obj)}: no schema for {group} kind {obj['kind']}"]
        errors = [f"{ident(obj)}: {e.json_path}: {e.message}"
                  for e in jsonschema.Draft202012Validator(schema).iter_errors(obj)]
        behavior = obj.get("spec", {}).get("advanced", {}).get("horizontalPodAutoscalerConfig", {}).get("behavior")
        if not errors and behavior is not None:
            errors += schema_errors({
                "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "behavior"},
                "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "x"}, "maxReplicas": 1,
                         "behavior": behavior},
            })
        return errors
    try:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.SchemaNotFoundError:
        return [f"{ident(obj)}: unknown {api_version} {obj['kind']} for Kubernetes {KUBERNETES_VERSION}"]
    except kubernetes_validate.ValidationError as exc:
        return [f"{ident(obj)}: {_first_line(exc)}"]
    return []


def container(deploy: Obj) -> Obj:
    return deploy["spec"]["template"]["spec"]["containers"][0]


def destinations_config(objs: list[Obj], tmp: Path) -> WorkerConfig:
    """The destinations file the Deployment mounts, loaded as the worker would load it."""
    deploy = one(objs, "Deployment")
    volumes = {v["name"]: v for v in deploy["spec"]["template"]["spec"]["volumes"]}
    mounts = {m["mountPath"]: m for m in container(deploy)["volumeMounts"]}
    config_volume = volumes[mounts["/etc/gorgias-worker"]["name"]]
    cm_name = config_volume["configMap"]["name"]
    cms = [cm for cm in objects(objs, "ConfigMap") if cm["metadata"]["name"] == cm_name]
    assert cms, f"the Deployment mounts ConfigMap {cm_name}, which is not rendered"
    path = tmp / "config.yaml"
    path.write_text(cms[0]["data"]["config.yaml"], encoding="utf-8")
    return load_config(path)


def budget_bound(config: Any) -> int:
    """Most replicas the config's accounts can keep busy, plus one spare (docs/operations.md)."""
    return useful_replicas([d.credential for d in config.destinations]) + 1
