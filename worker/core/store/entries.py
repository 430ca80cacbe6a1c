"""One entry of a compacted store topic (a runtime destination, a credential, ...): how its value is
written and read.

A store topic holds, per key ``<deployment>/<name>``, the latest value of one named entry: a small JSON
document carrying the entry's ``version`` (1 when created, one more at every change), when and by whom
it was written, and the entry itself under ``document``. Deleting an entry writes a tombstone (no value),
so compaction forgets it. A value that does not parse (written by another version of the worker, or by a
person) is reported for its key alone: it never stops the others.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

ENTRY_FORMAT = 1  # the layout of a value; a reader refuses a value of a format it does not know


class UnreadableEntry(ValueError):
    """A stored value that is not an entry this worker can read; the message says why, in one line."""


@dataclass(frozen=True)
class StoredEntry:
    """The current value of one entry, and where it sits on the topic."""

    name: str
    version: int
    document: dict[str, Any]
    written_at: str  # ISO 8601, UTC
    written_by: str  # the host (or tool) that wrote it
    offset: int = -1  # its offset on the store topic; -1 before it is read back

    def describe(self) -> dict[str, Any]:
        """What status and the API show of the entry besides its document."""
        return {"version": self.version, "written_at": self.written_at, "written_by": self.written_by}


def encode_entry(version: int, document: dict[str, Any], written_at: str, written_by: str) -> bytes:
    """The value written to the topic for ``document`` at ``version``."""
    return orjson.dumps({"format": ENTRY_FORMAT, "version": version, "written_at": written_at,
                         "written_by": written_by, "document": document})


def decode_entry(name: str, value: bytes, offset: int = -1) -> StoredEntry:
    """The entry a value holds; :class:`UnreadableEntry` naming what is wrong otherwise."""
    try:
        doc = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise UnreadableEntry(f"the stored value is not JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise UnreadableEntry(f"the stored value is a JSON {type(doc).__name__}, not an object")
    fmt = doc.get("format")
    if fmt != ENTRY_FORMAT:
        raise UnreadableEntry(f"the stored value has format {fmt!r}; this worker reads format {ENTRY_FORMAT} "
                              "(written by another version of the worker?)")
    version = doc.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise UnreadableEntry(f"the stored value's version is {version!r}, not a positive integer")
    document = doc.get("document")
    if not isinstance(document, dict):
        raise UnreadableEntry("the stored value has no `document` object")
    return StoredEntry(name, version, document, str(doc.get("written_at", "")), str(doc.get("written_by", "")),
                       offset)
