"""The Helm chart's ``values.schema.json`` carries the worker's config schema, so that ``helm install``,
``helm upgrade`` and ``helm lint`` refuse a ``config:`` block the worker would refuse.

Helm (v4.3) validates values offline and does follow a ``$ref`` to a local file, but a packaged chart
(``helm package``, a chart repository) holds only its own directory, so a ``$ref`` to
``schemas/worker-config.schema.json`` would break outside this checkout: the schema is embedded instead.
The chart's own values are described by hand in the file; its ``$defs`` are generated here from the config
models (the config as ``$defs.WorkerConfig``, its parts beside it), rewritten by ``gorgias-worker schemas
--write`` and checked by ``gorgias-worker schemas`` and the unit tests.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from worker.tools import schemas

CHART_SCHEMA = Path(__file__).resolve().parents[2] / "deploy" / "helm" / "gorgias-worker" / "values.schema.json"
CONFIG_DEF = "WorkerConfig"


def embedded(chart_schema: dict[str, Any]) -> dict[str, Any]:
    """``chart_schema`` with its ``$defs`` replaced by the worker config schema's (and the config itself)."""
    config = schemas.generate()["worker-config.schema.json"]
    defs = dict(config.get("$defs", {}))
    defs[CONFIG_DEF] = {k: v for k, v in config.items() if k not in ("$defs", "$schema", "$id")}
    return {**chart_schema, "$defs": defs}


def write(path: Path = CHART_SCHEMA) -> Path:
    current = orjson.loads(path.read_bytes())
    path.write_bytes(schemas.render(embedded(current)))
    return path


def drifted(path: Path = CHART_SCHEMA) -> bool:
    """Does the chart's schema embed another config schema than the models'?"""
    current = orjson.loads(path.read_bytes())
    return path.read_bytes() != schemas.render(embedded(current))
