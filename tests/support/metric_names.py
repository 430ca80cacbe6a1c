"""The worker's metric names, and the names and labels a PromQL query reads: the checks of the Grafana
dashboard (tests/unit/project/test_kubernetes_manifests.py) and of the alert rules (test_helm_chart.py)
against ``worker.host.metrics.REGISTRY``.
"""

from __future__ import annotations

import re
from typing import Any

from worker.host import metrics

SCRAPE_LABELS = {"job", "instance", "namespace", "pod", "container", "service", "endpoint"}


def _labelnames(collector: Any) -> tuple[str, ...]:
    return tuple(getattr(collector, "_labelnames", ()))


def registry_series() -> dict[str, set[str]]:
    """Every series name the worker exposes, with its label names (prometheus_client's suffixes included).

    Families of labelled metrics yield no samples until a label set is used, so their series names come
    from their type; collectors without label names (process, Python, build info) from their samples.
    """
    labels = {m._name: set(_labelnames(m)) for m in vars(metrics).values()
              if hasattr(m, "_name") and hasattr(m, "_labelnames")}
    out: dict[str, set[str]] = {}
    for family in metrics.REGISTRY.collect():
        names = {
            "counter": [f"{family.name}_total"],
            "histogram": [f"{family.name}_bucket", f"{family.name}_sum", f"{family.name}_count"],
            "info": [f"{family.name}_info"],
        }.get(family.type, [family.name])
        for name in names:
            out[name] = labels.get(family.name, set()) | ({"le"} if name.endswith("_bucket") else set())
        for sample in family.samples:
            out.setdefault(sample.name, set()).update(sample.labels)
    return out


def registry_names() -> set[str]:
    return set(registry_series())


SCRAPE_LABELS = {"job", "instance", "namespace", "pod", "container", "service", "endpoint"}


METRIC = re.compile(r"\b((?:gorgias_worker|process|python)_[a-z0-9_]+)\b(?!\s*\()")
LABEL_LISTS = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)|\{[^}]*\}")


def metric_names(expr: str) -> list[str]:
    """The series names a query reads (label names in by/on clauses and matchers left out)."""
    return METRIC.findall(LABEL_LISTS.sub(" ", expr))


SELECTOR = re.compile(r"\b(gorgias_worker_[a-z0-9_]+)\s*\{([^}]*)\}")
MATCHER = re.compile(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)")
