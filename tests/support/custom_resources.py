"""Schemas of the custom resources the manifests use, for the fields we use: KEDA (ScaledObject,
TriggerAuthentication), the Prometheus Operator (ServiceMonitor, PrometheusRule) and Strimzi (KafkaTopic).

``kubernetes-validate`` knows only the Kubernetes API's own kinds; these follow the CRDs of each project
closely enough that a misspelled field, a number where a string belongs or a missing required field fails
as it would when applied. Unknown fields are errors (``additionalProperties: false``), as in strict mode.
"""

from __future__ import annotations

from typing import Any

Obj = dict[str, Any]

_STR_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
_METADATA = {
    "type": "object",
    "required": ["name"],
    "properties": {
        "name": {"type": "string", "pattern": r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$", "maxLength": 253},
        "namespace": {"type": "string"},
        "labels": _STR_MAP,
        "annotations": _STR_MAP,
    },
    "additionalProperties": False,
}
_DIGITS = {"type": "string", "pattern": r"^[0-9]+$"}

# keda.sh/v1alpha1, the fields this project uses (KEDA's CRDs: ScaledObject, TriggerAuthentication).
# Trigger metadata is map[string]string in KEDA: a number where a string belongs is an error there too.
KEDA_SCHEMAS: dict[str, Obj] = {
    "ScaledObject": {
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {
            "apiVersion": {"const": "keda.sh/v1alpha1"},
            "kind": {"const": "ScaledObject"},
            "metadata": _METADATA,
            "spec": {
                "type": "object",
                "required": ["scaleTargetRef", "triggers"],
                "additionalProperties": False,
                "properties": {
                    "scaleTargetRef": {
                        "type": "object",
                        "required": ["name"],
                        "additionalProperties": False,
                        "properties": {
                            "apiVersion": {"type": "string"},
                            "kind": {"type": "string"},
                            "name": {"type": "string", "minLength": 1},
                        },
                    },
                    "minReplicaCount": {"type": "integer", "minimum": 0},
                    "maxReplicaCount": {"type": "integer", "minimum": 1},
                    "pollingInterval": {"type": "integer", "minimum": 1},
                    "cooldownPeriod": {"type": "integer", "minimum": 0},
                    "advanced": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {
                            "restoreToOriginalReplicaCount": {"type": "boolean"},
                            "horizontalPodAutoscalerConfig": {
                                "type": "object",
                                "additionalProperties": False,
                                # `behavior` is an autoscaling/v2 HPA behavior: checked with the core schema.
                                "properties": {"name": {"type": "string"}, "behavior": {"type": "object"}},
                            },
                        },
                    },
                    "triggers": {
                        "type": "array",
                        "minItems": 1,
                        "items": {
                            "type": "object",
                            "required": ["type", "metadata"],
                            "additionalProperties": False,
                            "properties": {
                                "type": {"type": "string"},
                                "name": {"type": "string"},
                                "metadata": _STR_MAP,
                                "authenticationRef": {
                                    "type": "object",
                                    "required": ["name"],
                                    "additionalProperties": False,
                                    "properties": {
                                        "name": {"type": "string"},
                                        "kind": {"enum": ["TriggerAuthentication", "ClusterTriggerAuthentication"]},
                                    },
                                },
                            },
                            "if": {"properties": {"type": {"const": "kafka"}}},
                            "then": {
                                "properties": {
                                    "metadata": {
                                        "required": ["bootstrapServers", "consumerGroup", "topic", "lagThreshold"],
                                        "properties": {
                                            "lagThreshold": _DIGITS,
                                            "activationLagThreshold": _DIGITS,
                                            "offsetResetPolicy": {"enum": ["earliest", "latest"]},
                                            "sasl": {
                                                "enum": ["none", "plaintext", "scram_sha256", "scram_sha512",
                                                         "gssapi", "oauthbearer"]
                                            },
                                            "tls": {"enum": ["enable", "disable"]},
                                        },
                                    }
                                }
                            },
                        },
                    },
                },
            },
        },
        "additionalProperties": False,
    },
    "TriggerAuthentication": {
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {
            "apiVersion": {"const": "keda.sh/v1alpha1"},
            "kind": {"const": "TriggerAuthentication"},
            "metadata": _METADATA,
            "spec": {
                "type": "object",
                "additionalProperties": False,
                "minProperties": 1,
                "properties": {
                    "secretTargetRef": {
                        "type": "array",
                        "minItems": 1,
                        "items": {
                            "type": "object",
                            "required": ["parameter", "name", "key"],
                            "additionalProperties": False,
                            "properties": {p: {"type": "string", "minLength": 1} for p in ("parameter", "name", "key")},
                        },
                    }
                },
            },
        },
        "additionalProperties": False,
    },
}


_DURATION = {"type": "string", "pattern": r"^(0|([0-9]+(y|w|d|h|m|s|ms))+)$"}  # Prometheus' durations
_LABEL_SELECTOR = {
    "type": "object",
    "additionalProperties": False,
    "properties": {"matchLabels": _STR_MAP, "matchExpressions": {"type": "array", "items": {"type": "object"}}},
}


def _resource(api_versions: list[str], kind: str, spec: Obj) -> Obj:
    return {
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "additionalProperties": False,
        "properties": {"apiVersion": {"enum": api_versions}, "kind": {"const": kind}, "metadata": _METADATA,
                       "spec": spec},
    }


# monitoring.coreos.com/v1 (Prometheus Operator): ServiceMonitor and PrometheusRule.
_ENDPOINT = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "port": {"type": "string"}, "targetPort": {"type": ["string", "integer"]}, "path": {"type": "string"},
        "scheme": {"enum": ["http", "https"]}, "interval": _DURATION, "scrapeTimeout": _DURATION,
        "honorLabels": {"type": "boolean"}, "relabelings": {"type": "array"}, "metricRelabelings": {"type": "array"},
    },
}
_RULE = {
    "type": "object",
    "additionalProperties": False,
    "required": ["expr"],
    "oneOf": [{"required": ["alert"]}, {"required": ["record"]}],
    "properties": {
        "alert": {"type": "string", "pattern": r"^[a-zA-Z_][a-zA-Z0-9_]*$"},
        "record": {"type": "string", "pattern": r"^[a-zA-Z_:][a-zA-Z0-9_:]*$"},
        "expr": {"type": ["string", "integer"], "minLength": 1},
        "for": _DURATION, "keep_firing_for": _DURATION,
        "labels": _STR_MAP, "annotations": _STR_MAP,
    },
}
PROMETHEUS_SCHEMAS: dict[str, Obj] = {
    "ServiceMonitor": _resource(["monitoring.coreos.com/v1"], "ServiceMonitor", {
        "type": "object",
        "required": ["selector", "endpoints"],
        "additionalProperties": False,
        "properties": {
            "selector": _LABEL_SELECTOR, "jobLabel": {"type": "string"},
            "namespaceSelector": {"type": "object"},
            "endpoints": {"type": "array", "minItems": 1, "items": _ENDPOINT},
        },
    }),
    "PrometheusRule": _resource(["monitoring.coreos.com/v1"], "PrometheusRule", {
        "type": "object",
        "required": ["groups"],
        "additionalProperties": False,
        "properties": {"groups": {"type": "array", "minItems": 1, "items": {
            "type": "object",
            "required": ["name", "rules"],
            "additionalProperties": False,
            "properties": {"name": {"type": "string", "minLength": 1}, "interval": _DURATION,
                           "rules": {"type": "array", "minItems": 1, "items": _RULE}},
        }}},
    }),
}

# kafka.strimzi.io (v1, and v1beta2 before Strimzi 0.49): KafkaTopic. Config values are strings, numbers
# or booleans; the topic operator needs the cluster label.
STRIMZI_SCHEMAS: dict[str, Obj] = {
    "KafkaTopic": {
        **_resource(["kafka.strimzi.io/v1", "kafka.strimzi.io/v1beta2"], "KafkaTopic", {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "topicName": {"type": "string", "pattern": r"^[a-zA-Z0-9._-]{1,249}$"},
                "partitions": {"type": "integer", "minimum": 1},
                "replicas": {"type": "integer", "minimum": 1, "maximum": 32767},
                "config": {"type": "object", "additionalProperties": {"type": ["string", "number", "boolean"]}},
            },
        }),
        "allOf": [{"properties": {"metadata": {"required": ["labels"], "properties": {
            "labels": {"required": ["strimzi.io/cluster"]}}}}}],
    },
}

CRD_SCHEMAS: dict[tuple[str, str], Obj] = {
    **{("keda.sh", kind): schema for kind, schema in KEDA_SCHEMAS.items()},
    **{("monitoring.coreos.com", kind): schema for kind, schema in PROMETHEUS_SCHEMAS.items()},
    **{("kafka.strimzi.io", kind): schema for kind, schema in STRIMZI_SCHEMAS.items()},
}
CRD_GROUPS = {group for group, _ in CRD_SCHEMAS}
