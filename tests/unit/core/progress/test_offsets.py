"""Offset tracking: the committable position never passes an unfinished record."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from worker.core.progress.offsets import OffsetTracker, TopicPartitionKey

TP = TopicPartitionKey("t", 0)


def test_position_waits_for_the_lowest_unfinished_offset() -> None:
    t = OffsetTracker()
    for off in (5, 6, 7, 9):  # gaps are normal (compaction, transactions)
        t.consumed(TP, off)
    assert t.position(TP) == 5
    t.finished(TP, 6)
    t.finished(TP, 9)
    assert t.position(TP) == 5 and t.pending_records == 2
    t.finished(TP, 5)
    assert t.position(TP) == 7
    t.finished(TP, 7)
    assert t.position(TP) == 10 and t.pending_records == 0


def test_committable_reports_only_moved_positions() -> None:
    t = OffsetTracker()
    t.consumed(TP, 0)
    t.finished(TP, 0)
    assert t.committable() == {TP: 1}
    t.mark_committed({TP: 1})
    assert t.committable() == {}


def test_duplicate_and_unknown_finishes_are_ignored() -> None:
    t = OffsetTracker()
    t.consumed(TP, 0)
    t.consumed(TP, 1)
    t.finished(TP, 1)
    t.finished(TP, 1)
    t.finished(TP, 99)
    t.finished(TopicPartitionKey("other", 0), 0)
    assert t.pending_records == 1 and t.position(TP) == 0


def test_forget_drops_a_revoked_partition() -> None:
    t = OffsetTracker()
    t.consumed(TP, 0)
    t.consumed(TP, 1)
    t.forget(TP)
    assert t.pending_records == 0 and t.position(TP) is None and t.committable() == {}


def test_consuming_backwards_is_a_bug() -> None:
    t = OffsetTracker()
    t.consumed(TP, 3)
    try:
        t.consumed(TP, 3)
    except ValueError as exc:
        assert "consumed again" in str(exc)
    else:
        raise AssertionError("re-consuming an offset must be refused")


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_position_is_the_lowest_unfinished(data: st.DataObject) -> None:
    offsets = sorted(data.draw(st.sets(st.integers(0, 500), min_size=1, max_size=60)))
    order = data.draw(st.permutations(offsets))
    cut = data.draw(st.integers(0, len(order)))
    t = OffsetTracker()
    for off in offsets:
        t.consumed(TP, off)
    done = set(order[:cut])
    for off in order[:cut]:
        t.finished(TP, off)
    unfinished = [o for o in offsets if o not in done]
    expected = unfinished[0] if unfinished else offsets[-1] + 1
    assert t.position(TP) == expected
    assert t.pending_records == len(unfinished) == t.unfinished(TP)
    # committing the position never skips an unfinished record
    assert all(o >= expected for o in unfinished)
