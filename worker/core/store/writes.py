"""The rules of a write to a store: what a writer expects to find, and the version its write gets.

Writes are optimistic: a writer says what it expects (nothing yet, a given version, or anything) and
the write is refused when the store holds something else — :class:`EntryExists` (a create of a name in
use), :class:`StaleVersion` (an ``If-Match`` of an older version), :class:`NoSuchEntry` (a change or
delete of nothing). The store serialises its writers, so each write is checked against every write
before it and two creates of one name cannot both win.
"""

from __future__ import annotations

from dataclasses import dataclass


class WriteRefused(Exception):
    """A write whose precondition does not hold; nothing was written."""

    def __init__(self, name: str, current: int | None, message: str) -> None:
        super().__init__(message)
        self.name = name
        self.current = current  # the version in the store (None: no entry)


class EntryExists(WriteRefused):
    """A create of a name the store already holds."""


class StaleVersion(WriteRefused):
    """A write that expected another version than the store holds."""


class NoSuchEntry(WriteRefused):
    """A change or delete of a name the store does not hold."""


@dataclass(frozen=True)
class Expect:
    """What a writer expects to find: ``absent`` (a create), ``version`` (an ``If-Match``), or neither
    (anything: create or replace). ``present`` refuses a write to a missing entry (a delete)."""

    absent: bool = False
    version: int | None = None
    present: bool = False

    def __post_init__(self) -> None:
        if self.absent and (self.version is not None or self.present):
            raise ValueError("a write cannot expect an entry to be absent and present")


ANYTHING = Expect()
ABSENT = Expect(absent=True)
PRESENT = Expect(present=True)


def check(name: str, current: int | None, expect: Expect) -> None:
    """Raise the refusal of a write expecting ``expect`` where the store holds ``current`` (None: nothing)."""
    if expect.absent and current is not None:
        raise EntryExists(name, current, f"{name!r} exists (version {current})")
    if (expect.present or expect.version is not None) and current is None:
        raise NoSuchEntry(name, None, f"there is no {name!r}")
    if expect.version is not None and current != expect.version:
        raise StaleVersion(name, current, f"{name!r} is at version {current}, not {expect.version}: "
                                          "read it again and apply the change to what it holds now")


def next_version(current: int | None, last_deleted: int | None = None) -> int:
    """The version a write gets: one past the current one; a re-created entry continues after the
    version it was deleted at (while the store still remembers it), so an old ``If-Match`` cannot match."""
    if current is not None:
        return current + 1
    return (last_deleted or 0) + 1
