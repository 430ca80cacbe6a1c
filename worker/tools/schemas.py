"""JSON Schemas generated from the models: the config file, response events and dead-letter records."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
from pydantic import BaseModel

from worker.core.config.worker_config import WorkerConfig
from worker.core.outcomes.documents import DeadLetter, ResponseEvent

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "schemas"

MODELS: dict[str, type[BaseModel]] = {
    "worker-config.schema.json": WorkerConfig,
    "response-event.schema.json": ResponseEvent,
    "dead-letter.schema.json": DeadLetter,
}


# A value that names an environment variable, ``${VAR}`` or ``${VAR:-default}``: the worker replaces it when it
# loads the file (service/config_loading.py), so in the file a number or a flag may be written this way.
ENV_REFERENCE_SCHEMA: dict[str, Any] = {"type": "string", "pattern": r"\$\{[A-Za-z_][A-Za-z0-9_]*(:-[^}]*)?\}"}
_NOT_STRINGS = frozenset({"integer", "number", "boolean"})
_ANNOTATIONS = frozenset({"title", "description", "default", "examples", "deprecated"})


def _env_references_allowed(node: Any) -> Any:
    """``node`` with every number and flag also taking an environment reference (strings take one already)."""
    if isinstance(node, list):
        return [_env_references_allowed(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = {key: (value if key in ("default", "examples", "const", "enum") else _env_references_allowed(value))
            for key, value in node.items()}
    if node.get("type") not in _NOT_STRINGS:
        return node
    notes = {key: value for key, value in node.items() if key in _ANNOTATIONS}
    rule = {key: value for key, value in node.items() if key not in _ANNOTATIONS}
    return {**notes, "anyOf": [rule, ENV_REFERENCE_SCHEMA]}


def generate() -> dict[str, dict[str, Any]]:
    """Schema documents by file name."""
    out: dict[str, dict[str, Any]] = {}
    for filename, model in MODELS.items():
        schema = model.model_json_schema(mode="validation")
        if model is WorkerConfig:  # a file the worker reads, ${VAR}s and all (events and dead letters are not)
            schema = _env_references_allowed(schema)
        schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": filename, **schema}
        out[filename] = schema
    return out


def render(schema: dict[str, Any]) -> bytes:
    return orjson.dumps(schema, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"


def write(directory: Path = SCHEMA_DIR) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for filename, schema in generate().items():
        path = directory / filename
        path.write_bytes(render(schema))
        written.append(path)
    return written


def drifted(directory: Path = SCHEMA_DIR) -> list[str]:
    """File names whose checked-in schema differs from the models (or is missing)."""
    out = []
    for filename, schema in generate().items():
        path = directory / filename
        if not path.exists() or path.read_bytes() != render(schema):
            out.append(filename)
    return out
