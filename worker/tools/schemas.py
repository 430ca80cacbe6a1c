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


def generate() -> dict[str, dict[str, Any]]:
    """Schema documents by file name."""
    out: dict[str, dict[str, Any]] = {}
    for filename, model in MODELS.items():
        schema = model.model_json_schema(mode="validation")
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
