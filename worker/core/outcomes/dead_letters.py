"""Dead letters, built as plain dicts of the :class:`~worker.core.outcomes.documents.DeadLetter` shape: the
records as consumed (or named by their hash when too large to carry), the stage and the reason."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

from worker.core.config.worker_config import Destination
from worker.core.outcomes.documents import SCHEMA_VERSION, DeadLetterStage, iso_time
from worker.core.records.record import Record, SourceRef
from worker.core.requests.call import RenderedCall


def record_item(record: Record | None, source: SourceRef, raw: bytes | None = None,
                headers: tuple[tuple[str, bytes], ...] = ()) -> dict[str, Any]:
    """A dead-letter item: the record as consumed (an envelope is rebuilt) or its raw bytes."""
    value: Any = None
    value_b64: str | None = None
    if record is not None:
        value = record.data if record.meta is None else {"rawMessage": record.data, "nexlaMetaData": record.meta}
        headers = record.headers
    elif raw is not None:
        value_b64 = base64.b64encode(raw).decode()
    return {
        "source": source.as_event(),
        "value": value,
        "value_base64": value_b64,
        "headers": {k: base64.b64encode(v or b"").decode() for k, v in headers},
    }


def reference_item(source: SourceRef, raw: bytes, headers: tuple[tuple[str, bytes], ...] = ()) -> dict[str, Any]:
    """A dead-letter item naming a record by its source coordinates, hash and size (it is too large to carry)."""
    return {
        "source": source.as_event(),
        "value": None,
        "value_base64": None,
        "value_sha256": hashlib.sha256(raw).hexdigest(),
        "value_bytes": len(raw),
        "headers": {k: base64.b64encode(v or b"").decode() for k, v in headers},
    }


def dead_letter(deployment: str, destination: Destination | str, stage: DeadLetterStage, reason: str,
                items: list[dict[str, Any]], *, failed_at: float, call: dict[str, Any] | None = None) -> dict[str, Any]:
    """A dead-letter document; ``failed_at`` (epoch seconds) comes from the caller's clock."""
    name = destination if isinstance(destination, str) else destination.name
    return {
        "schema_version": SCHEMA_VERSION,
        "deployment": deployment,
        "destination": name,
        "stage": stage.value,
        "reason": reason,
        "failed_at": iso_time(failed_at),
        "records": items,
        "call": call,
        "reduced": None,
        "part": None,
    }


def delivery_dead_letter(dest: Destination, call: RenderedCall, event: dict[str, Any],
                         failed_at: float) -> dict[str, Any]:
    """The dead letter of a call that failed for good: the call's event plus the original records."""
    items = [record_item(p.record, p.record.source) for p in call.items]
    reason = event["response"]["error"] or "call failed"
    return dead_letter(event["deployment"], dest, DeadLetterStage.DELIVER, reason, items, failed_at=failed_at,
                       call=event)
