"""Entries of a store topic: the value codec, unreadable values, and the rules of a write."""

from __future__ import annotations

import orjson
import pytest

from worker.core.store.entries import StoredEntry, UnreadableEntry, decode_entry, encode_entry
from worker.core.store.writes import (
    ABSENT,
    ANYTHING,
    PRESENT,
    EntryExists,
    Expect,
    NoSuchEntry,
    StaleVersion,
    check,
    next_version,
)


def test_a_value_reads_back_as_the_entry_written() -> None:
    value = encode_entry(3, {"source_topics": ["a"]}, "2026-12-06T10:00:00.000000Z", "host-1")
    entry = decode_entry("tickets", value, offset=17)
    assert entry == StoredEntry("tickets", 3, {"source_topics": ["a"]}, "2026-12-06T10:00:00.000000Z", "host-1", 17)
    assert entry.describe() == {"version": 3, "written_at": "2026-12-06T10:00:00.000000Z", "written_by": "host-1"}


@pytest.mark.parametrize(("value", "reason"), [
    (b"{broken", "not JSON"),
    (b"[1, 2]", "a JSON list, not an object"),
    (orjson.dumps({"format": 2, "version": 1, "document": {}}), "format 2; this worker reads format 1"),
    (orjson.dumps({"format": 1, "version": 0, "document": {}}), "version is 0, not a positive integer"),
    (orjson.dumps({"format": 1, "version": True, "document": {}}), "version is True"),
    (orjson.dumps({"format": 1, "version": 2, "document": "x"}), "no `document` object"),
])
def test_a_value_that_is_not_an_entry_says_why(value: bytes, reason: str) -> None:
    with pytest.raises(UnreadableEntry, match=reason.replace("[", r"\[").replace("(", r"\(")):
        decode_entry("tickets", value)


def test_a_create_is_refused_when_the_name_exists() -> None:
    check("t", None, ABSENT)
    with pytest.raises(EntryExists) as refused:
        check("t", 2, ABSENT)
    assert refused.value.current == 2


def test_an_if_match_of_another_version_is_stale() -> None:
    check("t", 4, Expect(version=4))
    with pytest.raises(StaleVersion, match="at version 5, not 4"):
        check("t", 5, Expect(version=4))
    with pytest.raises(NoSuchEntry):
        check("t", None, Expect(version=4))


def test_a_delete_needs_an_entry_and_a_plain_put_takes_anything() -> None:
    with pytest.raises(NoSuchEntry):
        check("t", None, PRESENT)
    check("t", None, ANYTHING)
    check("t", 9, ANYTHING)
    with pytest.raises(ValueError, match="absent and present"):
        Expect(absent=True, version=3)


def test_versions_count_up_and_a_recreated_entry_continues_past_its_deleted_version() -> None:
    assert next_version(None) == 1
    assert next_version(4) == 5
    assert next_version(None, last_deleted=7) == 8
