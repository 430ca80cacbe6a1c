"""Building templated destinations and rendering records through them."""

from __future__ import annotations

from typing import Any

import orjson

from worker.core.config.worker_config import Destination
from worker.core.records.record import Record, SourceRef
from worker.core.requests.request import RenderedRequest
from worker.core.templates import default_external_id, renderer_for

TOPIC = "nexset.support"
NAME = "support"
TIMESTAMP_MS = 1_780_000_000_000  # the Kafka timestamp of test records
SENT = "2026-05-28T20:26:40+00:00"  # ... as the sent_datetime an imported message gets


def destination(template: str, options: dict[str, Any] | None = None, batching: dict[str, Any] | None = None,
                **endpoint: Any) -> Destination:
    doc: dict[str, Any] = {
        "name": NAME,
        "source_topics": [TOPIC],
        "credential": {"domain": "acme", "username": "agent@acme.com", "api_key_env": "GORGIAS_API_KEY"},
        "endpoint": {"template": template, **({"template_options": options} if options else {}), **endpoint},
    }
    if batching is not None:
        doc["batching"] = {"enabled": True, **batching}
    return Destination.model_validate(doc)


def record(data: dict[str, Any], offset: int = 0, partition: int = 0) -> Record:
    return Record(data=data, source=SourceRef(TOPIC, partition, offset, timestamp_ms=TIMESTAMP_MS))


def stamp(offset: int = 0, partition: int = 0) -> str:
    return default_external_id(NAME, SourceRef(TOPIC, partition, offset))


def one(template: str, data: dict[str, Any], options: dict[str, Any] | None = None, offset: int = 0) -> RenderedRequest:
    renderer = renderer_for(destination(template, options))
    return renderer.render_one(renderer.prepare(record(data, offset)))


def group(template: str, rows: list[dict[str, Any]], batching: dict[str, Any],
          options: dict[str, Any] | None = None) -> RenderedRequest:
    renderer = renderer_for(destination(template, options, batching))
    prepared = [renderer.prepare(record(row, i)) for i, row in enumerate(rows)]
    return renderer.render_batch(prepared[0].key, prepared)


def body(request: RenderedRequest) -> Any:
    assert request.body is not None
    return orjson.loads(request.body)
