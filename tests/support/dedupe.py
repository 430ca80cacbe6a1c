"""Templated destinations against a sandbox in this process, and records prepared for the duplicate checks."""

from __future__ import annotations

from typing import Any

from worker.core.config.worker_config import Destination
from worker.core.records.record import Record, SourceRef
from worker.core.requests.rendering import Prepared
from worker.core.requests.request import RenderedRequest
from worker.core.templates import renderer_for


def destination(url: str, template: str, **extra: Any) -> Destination:
    doc: dict[str, Any] = {
        "name": "support",
        "source_topics": ["nexset.support"],
        "credential": {"domain": "acme", "username": "agent@acme.com", "api_key_env": "GORGIAS_API_KEY",
                       "base_url": url, "rate_limit": {"enabled": False}},
        "endpoint": {"template": template, **extra.pop("endpoint", {})},
        "delivery": {"max_attempts": 3, "backoff_initial_s": 0.01, "backoff_max_s": 0.02, "timeout_s": 5},
        **extra,
    }
    return Destination.model_validate(doc)


def prepared(
    dest: Destination, data: dict[str, Any], offset: int = 0, headers: tuple[tuple[str, bytes], ...] = (),
    **extra: Any,
) -> tuple[Prepared, RenderedRequest]:
    renderer = renderer_for(dest)
    record = Record(data=data, source=SourceRef("nexset.support", 0, offset), headers=headers, extra=dict(extra))
    item = renderer.prepare(record)
    return item, renderer.render_one(item)


TICKET = {"subject": "Where is my order?", "body_text": "Hi", "customer_email": "jane@example.com"}
