"""A manual destination and records to render through it."""

from __future__ import annotations

from typing import Any

from worker.core.config.worker_config import Destination
from worker.core.records.record import Record, SourceRef

CREDENTIAL: dict[str, Any] = {"domain": "acme", "username": "a@acme.com", "api_key_env": "K"}
TICKET_URL = "https://{domain}.gorgias.com/api/tickets/{ticket_id}"


def destination(
    url: str | None = TICKET_URL,
    method: str | None = "PUT",
    *,
    credential: dict[str, Any] | None = None,
    batching: dict[str, Any] | None = None,
    **endpoint: Any,
) -> Destination:
    ep: dict[str, Any] = {k: v for k, v in (("method", method), ("url", url)) if v is not None}
    ep.update(endpoint)
    doc: dict[str, Any] = {
        "name": "support",
        "source_topics": ["nexset.support"],
        "credential": credential or CREDENTIAL,
        "endpoint": ep,
    }
    if batching is not None:
        doc["batching"] = batching
    return Destination.model_validate(doc)


def record(data: dict[str, Any], offset: int = 0) -> Record:
    return Record(data=data, source=SourceRef("nexset.support", 0, offset))
