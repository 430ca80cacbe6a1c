"""Outcome documents that fit their topic: a response event or dead letter too large for its topic's
``max.message.bytes`` is reduced (bodies and record values replaced by their sha256 and size, long
texts shortened), saying in ``reduced`` what was left out, or spread over parts. Pure.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from typing import Any

import orjson

TRUNCATED = "…[truncated]"
KEEP_CHARS = 512


def _digest(value: Any) -> tuple[str, int]:
    raw = value.encode() if isinstance(value, str) else orjson.dumps(value)
    return hashlib.sha256(raw).hexdigest(), len(raw)


def _omit_body(info: dict[str, Any] | None, path: str, omitted: list[str]) -> None:
    if not info or info.get("body") is None:
        return
    digest, size = _digest(info["body"])
    info["body"] = None
    info["body_sha256"] = digest
    info["body_bytes"] = size
    omitted.append(path)


def _omit_value(item: dict[str, Any], path: str, omitted: list[str]) -> None:
    if item.get("value_base64") is not None:
        raw = base64.b64decode(item["value_base64"])
        item["value_sha256"], item["value_bytes"] = hashlib.sha256(raw).hexdigest(), len(raw)
        item["value_base64"] = None
    elif item.get("value") is not None:
        item["value_sha256"], item["value_bytes"] = _digest(item["value"])
        item["value"] = None
    else:
        return
    omitted.append(path)


def _shorten(node: Any, path: str, omitted: list[str]) -> Any:
    if isinstance(node, str):
        if len(node) > KEEP_CHARS:
            omitted.append(path)
            return node[:KEEP_CHARS] + TRUNCATED
        return node
    if isinstance(node, dict):
        return {k: _shorten(v, f"{path}.{k}" if path else k, omitted) for k, v in node.items()}
    if isinstance(node, list):
        return [_shorten(v, f"{path}[{i}]", omitted) for i, v in enumerate(node)]
    return node


def _reduce_call(call: dict[str, Any] | None, prefix: str, omitted: list[str]) -> None:
    if call:
        _omit_body(call.get("request"), f"{prefix}request.body", omitted)
        _omit_body(call.get("response"), f"{prefix}response.body", omitted)


def _omit_bodies(doc: dict[str, Any], omitted: list[str]) -> None:
    _reduce_call(doc, "", omitted)
    _reduce_call(doc.get("call"), "call.", omitted)


def _omit_values(doc: dict[str, Any], omitted: list[str]) -> None:
    for i, item in enumerate(doc.get("records") or []):
        if isinstance(item, dict) and "source" in item:
            _omit_value(item, f"records[{i}]", omitted)


def fit(doc: dict[str, Any], limit: int) -> bytes:
    """``doc`` encoded in at most ``limit`` bytes when it can be: bodies, then record values, then long
    strings are replaced by their hash and size (or a prefix), listed in the document's ``reduced`` field.

    Only a document that does not fit is changed (and then in place). The result can still exceed
    ``limit`` only when its skeleton alone does (thousands of record references, say).
    """
    encoded = orjson.dumps(doc)
    if len(encoded) <= limit:
        return encoded
    original = len(encoded)
    omitted: list[str] = []
    steps: tuple[Callable[[dict[str, Any], list[str]], None], ...] = (_omit_bodies, _omit_values)
    for step in steps:
        step(doc, omitted)
        doc["reduced"] = {"limit_bytes": limit, "original_bytes": original, "omitted": omitted}
        encoded = orjson.dumps(doc)
        if len(encoded) <= limit:
            return encoded
    reduced = doc.pop("reduced")
    shortened = _shorten(doc, "", omitted)
    shortened["reduced"] = reduced
    doc.clear()
    doc.update(shortened)
    return orjson.dumps(doc)



def _part(doc: dict[str, Any], records: list[Any], index: int, count: int) -> dict[str, Any]:
    part = {**doc, "records": records, "part": {"index": index, "count": count}}
    call = doc.get("call")
    if isinstance(call, dict):  # a dead letter: its call lists the same records
        part["call"] = {**call, "records": [item["source"] for item in records]}
    return part


def fit_parts(doc: dict[str, Any], limit: int) -> list[bytes]:
    """:func:`fit`, and when even the reduced document is too large (a call of thousands of records),
    its records spread over as few documents as fit, each saying which part it is."""
    encoded = fit(doc, limit)
    records = doc.get("records") or []
    if len(encoded) <= limit or len(records) < 2:
        return [encoded]
    count = 2
    while True:
        size = -(-len(records) // count)
        chunks = [records[i:i + size] for i in range(0, len(records), size)]
        parts = [orjson.dumps(_part(doc, chunk, n, len(chunks))) for n, chunk in enumerate(chunks, 1)]
        if size == 1 or all(len(p) <= limit for p in parts):
            return parts
        count *= 2
