"""Example-based tests of the pure grouping core (worker.core.grouping.batching)."""

from __future__ import annotations

from enum import Enum, StrEnum
from typing import Any

import pytest

from worker.core.grouping.algorithms import (
    ArrivalOrderGrouper,
    ByAttributeGrouper,
    SessionWindowGrouper,
    TumblingWindowGrouper,
    make_grouper,
)
from worker.core.grouping.batching import Batch, BatchPolicy, FlushReason, Grouper, GroupingAlgorithm, array_body_size


def grouper(algorithm: str, **kw: Any) -> Grouper[str]:
    return make_grouper(BatchPolicy(algorithm, **kw))


def items(batches: list[Batch[str]]) -> list[list[str]]:
    return [b.items for b in batches]


def reasons(batches: list[Batch[Any]]) -> list[FlushReason]:
    return [b.reason for b in batches]


# -- construction and validation -----------------------------------------------------------


@pytest.mark.parametrize(
    ("algorithm", "cls"),
    [
        ("arrival_order", ArrivalOrderGrouper),
        ("by_attribute", ByAttributeGrouper),
        ("tumbling_window", TumblingWindowGrouper),
        ("session_window", SessionWindowGrouper),
    ],
)
def test_make_grouper_picks_the_class(algorithm: str, cls: type[Grouper[Any]]) -> None:
    g = grouper(algorithm)
    assert type(g) is cls
    assert g.pending == 0
    assert g.pending_bytes == 0
    assert g.next_deadline() is None
    assert g.take_due(1e12) == []
    assert g.flush_all() == []


def test_algorithm_names() -> None:
    # the names configs use (batching.algorithm): changing one breaks users' files
    assert [a.value for a in GroupingAlgorithm] == ["arrival_order", "by_attribute", "tumbling_window",
                                                    "session_window"]


def test_accepts_str_enum_algorithm() -> None:
    class Algo(StrEnum):
        TUMBLING = "tumbling_window"

    class OldStyle(str, Enum):  # noqa: UP042 - on purpose: str() of it is not its value
        SESSION = "session_window"

    g: Grouper[str] = make_grouper(BatchPolicy(Algo.TUMBLING, window=5.0))
    assert isinstance(g, TumblingWindowGrouper)
    assert isinstance(make_grouper(BatchPolicy(OldStyle.SESSION)), SessionWindowGrouper)


@pytest.mark.parametrize(
    ("field", "kwargs"),
    [
        ("algorithm", {"algorithm": "round_robin"}),
        ("algorithm", {"algorithm": ""}),
        ("batch_size", {"batch_size": 0}),
        ("batch_size", {"batch_size": -3}),
        ("batch_size", {"batch_size": 2.0}),
        ("batch_size", {"batch_size": True}),
        ("max_bytes", {"max_bytes": 2}),
        ("max_bytes", {"max_bytes": 100.5}),
        ("max_wait", {"max_wait": 0}),
        ("max_wait", {"max_wait": -1.0}),
        ("max_wait", {"max_wait": float("nan")}),
        ("max_wait", {"max_wait": float("inf")}),
        ("window", {"window": 0.0}),
        ("window", {"window": "10"}),
        ("window", {"window": 1e-7}),
        ("gap", {"gap": -0.5}),
        ("max_session", {"max_session": 0}),
        ("max_session", {"max_session": float("inf")}),
    ],
)
def test_invalid_policy_names_the_field(field: str, kwargs: dict[str, Any]) -> None:
    args: dict[str, Any] = {"algorithm": "by_attribute", **kwargs}
    with pytest.raises(ValueError, match=rf"\b{field}\b"):
        make_grouper(BatchPolicy(**args))


def test_valid_edge_policies() -> None:
    make_grouper(BatchPolicy("session_window", batch_size=1, max_bytes=3, max_session=0.001, gap=1))
    make_grouper(BatchPolicy("by_attribute", max_wait=1))  # int seconds are fine


def test_concrete_class_rejects_other_algorithm() -> None:
    with pytest.raises(ValueError, match="algorithm"):
        SessionWindowGrouper(BatchPolicy("by_attribute"))


def test_negative_size_rejected() -> None:
    g = grouper("arrival_order")
    with pytest.raises(ValueError, match="size"):
        g.add("a", (), -1, 0.0)
    assert g.pending == 0


def test_array_body_size() -> None:
    assert array_body_size([]) == 2
    assert array_body_size([5]) == 7
    assert array_body_size([5, 1, 3]) == 2 + 9 + 2


# -- arrival_order ---------------------------------------------------------------------------


def test_arrival_order_fills_to_batch_size_and_ignores_keys() -> None:
    g = grouper("arrival_order", batch_size=3)
    assert g.add("a", ("x",), 1, 0.0) == []
    assert g.add("b", ("y",), 1, 0.1) == []
    assert g.pending == 2
    out = g.add("c", ("z",), 1, 0.2)
    assert items(out) == [["a", "b", "c"]]
    (b,) = out
    assert b.key == ()
    assert b.reason is FlushReason.SIZE
    assert b.nbytes == 2 + 3 + 2
    assert b.opened_at == 0.0
    assert b.window_start is None
    assert g.pending == 0
    assert g.next_deadline() is None


def test_arrival_order_max_wait_counts_from_first_item_exact_boundary() -> None:
    g = grouper("arrival_order", batch_size=10, max_wait=2.0)
    g.add("a", (), 1, 10.0)
    g.add("b", (), 1, 11.5)
    assert g.next_deadline() == 12.0  # first item + max_wait, later items don't extend it
    assert g.take_due(11.999) == []
    out = g.take_due(12.0)
    assert items(out) == [["a", "b"]]
    assert reasons(out) == [FlushReason.WINDOW]
    assert g.next_deadline() is None
    assert g.take_due(13.0) == []


def test_arrival_order_add_at_deadline_returns_expired_batch_then_starts_new() -> None:
    g = grouper("arrival_order", batch_size=10, max_wait=2.0)
    g.add("a", (), 1, 0.0)
    out = g.add("b", (), 1, 2.0)  # exactly at the deadline: "a" goes alone
    assert items(out) == [["a"]]
    assert reasons(out) == [FlushReason.WINDOW]
    assert g.pending == 1
    assert g.next_deadline() == 4.0


def test_byte_cap_closes_before_the_item_that_would_not_fit() -> None:
    # bodies: [5] = 7, [5,5] = 13, [5,5,5] = 19; max 21 leaves room for one more 1-byte item
    g = grouper("arrival_order", batch_size=100, max_bytes=21)
    for i in range(3):
        assert g.add(f"i{i}", (), 5, 0.0) == []
    assert g.pending_bytes == 15
    out = g.add("big", (), 2, 0.0)  # 19 + 1 + 2 = 22 > 21
    assert items(out) == [["i0", "i1", "i2"]]
    assert out[0].reason is FlushReason.BYTES
    assert out[0].nbytes == 19
    assert g.pending == 1
    assert g.pending_bytes == 2


def test_byte_cap_exactly_full_flushes_at_once() -> None:
    g = grouper("arrival_order", batch_size=100, max_bytes=21)
    for i in range(3):
        g.add(f"i{i}", (), 5, 0.0)
    out = g.add("one", (), 1, 0.0)  # 19 + 1 + 1 = 21: fits exactly, and nothing more can
    assert items(out) == [["i0", "i1", "i2", "one"]]
    assert out[0].nbytes == 21
    assert out[0].reason is FlushReason.BYTES
    assert g.pending == 0


def test_byte_cap_room_for_one_more_byte_stays_open() -> None:
    g = grouper("arrival_order", batch_size=100, max_bytes=23)
    for i in range(3):
        g.add(f"i{i}", (), 5, 0.0)
    assert g.add("one", (), 1, 0.0) == []  # body 21: a 1-byte item still fits (21 + 2 = 23)
    assert g.pending == 4
    out = g.add("two", (), 1, 0.0)  # body 23 == max_bytes: full
    assert items(out) == [["i0", "i1", "i2", "one", "two"]]
    assert out[0].nbytes == 23
    assert out[0].reason is FlushReason.BYTES


def test_oversize_item_goes_alone_and_is_never_dropped() -> None:
    g = grouper("by_attribute", batch_size=10, max_bytes=10)
    g.add("small", ("k",), 3, 0.0)  # body 5
    out = g.add("huge", ("k",), 50, 0.5)
    assert items(out) == [["small"], ["huge"]]
    assert reasons(out) == [FlushReason.BYTES, FlushReason.BYTES]
    assert [b.nbytes for b in out] == [5, 52]
    assert g.pending == 0
    assert g.pending_bytes == 0
    out = g.add("huge2", ("k",), 9, 1.0)  # body 11 > 10, nothing open
    assert items(out) == [["huge2"]]
    assert out[0].nbytes == 11


def test_batch_size_one() -> None:
    g = grouper("session_window", batch_size=1)
    assert items(g.add("a", ("k",), 3, 0.0)) == [["a"]]
    assert items(g.add("b", ("k",), 3, 0.0)) == [["b"]]
    assert g.next_deadline() is None


# -- by_attribute ----------------------------------------------------------------------------


def test_by_attribute_one_batch_per_key() -> None:
    g = grouper("by_attribute", batch_size=2, max_wait=1.0)
    g.add("a1", ("a",), 1, 0.0)
    g.add("b1", ("b",), 1, 0.25)
    out = g.add("a2", ("a",), 1, 0.5)
    assert items(out) == [["a1", "a2"]]
    assert out[0].key == ("a",)
    assert g.pending == 1
    assert g.next_deadline() == 1.25
    g.add("a3", ("a",), 1, 0.75)
    assert g.next_deadline() == 1.25
    out = g.take_due(1.75)
    assert items(out) == [["b1"], ["a3"]]  # sorted by deadline: 1.25 then 1.75
    assert [b.key for b in out] == [("b",), ("a",)]


def test_by_attribute_add_returns_other_keys_expired_batches_first() -> None:
    g = grouper("by_attribute", batch_size=2, max_wait=1.0)
    g.add("x1", ("x",), 1, 0.0)
    g.add("y1", ("y",), 1, 0.5)
    g.add("z1", ("z",), 1, 0.9)
    out = g.add("z2", ("z",), 1, 1.6)  # x (due 1.0) and y (due 1.5) expired; z becomes full
    assert items(out) == [["x1"], ["y1"], ["z1", "z2"]]
    assert reasons(out) == [FlushReason.WINDOW, FlushReason.WINDOW, FlushReason.SIZE]
    assert g.pending == 0


def test_by_attribute_keys_may_be_any_hashable_tuple() -> None:
    g: Grouper[int] = make_grouper(BatchPolicy("by_attribute", batch_size=5))
    g.add(1, (None, 3), 1, 0.0)
    g.add(2, ("3", None), 1, 0.0)
    g.add(3, (None, 3), 1, 0.0)
    out = g.flush_all()
    assert [(b.key, b.items, b.reason) for b in out] == [
        ((None, 3), [1, 3], FlushReason.DRAIN),
        (("3", None), [2], FlushReason.DRAIN),
    ]


# -- tumbling_window -------------------------------------------------------------------------


def test_tumbling_window_boundary_item_goes_to_next_window() -> None:
    g = grouper("tumbling_window", window=10.0, batch_size=100)
    g.add("a", (), 1, 9.9)
    assert g.next_deadline() == 10.0
    out = g.add("b", (), 1, 10.0)
    assert items(out) == [["a"]]
    assert out[0].window_start == 0.0
    assert out[0].reason is FlushReason.WINDOW
    assert g.next_deadline() == 20.0
    out = g.take_due(20.0)
    assert items(out) == [["b"]]
    assert out[0].window_start == 10.0
    assert out[0].opened_at == 10.0


def test_tumbling_window_aligns_to_the_clock_not_to_first_item() -> None:
    g = grouper("tumbling_window", window=10.0)
    g.add("a", (), 1, 1_700_000_003.5)
    assert g.next_deadline() == 1_700_000_010.0
    assert g.take_due(1_700_000_009.999) == []
    (b,) = g.take_due(1_700_000_010.0)
    assert b.window_start == 1_700_000_000.0
    assert b.opened_at == 1_700_000_003.5


def test_tumbling_window_groups_per_key_and_window() -> None:
    g = grouper("tumbling_window", window=5.0, batch_size=100)
    g.add("a1", ("a",), 1, 0.0)
    g.add("b1", ("b",), 1, 1.0)
    g.add("a2", ("a",), 1, 4.5)
    out = g.add("a3", ("a",), 1, 5.0)
    assert [(b.key, b.items, b.window_start) for b in out] == [
        (("a",), ["a1", "a2"], 0.0),
        (("b",), ["b1"], 0.0),
    ]
    assert g.next_deadline() == 10.0


def test_tumbling_window_size_flush_opens_new_batch_in_same_window() -> None:
    g = grouper("tumbling_window", window=10.0, batch_size=2)
    g.add("a", ("k",), 1, 1.0)
    out = g.add("b", ("k",), 1, 2.0)
    assert items(out) == [["a", "b"]]
    assert out[0].reason is FlushReason.SIZE
    g.add("c", ("k",), 1, 3.0)
    assert g.next_deadline() == 10.0  # the window's end, not 3 + something
    (b,) = g.take_due(10.0)
    assert b.items == ["c"]
    assert b.window_start == 0.0
    assert b.opened_at == 3.0


def test_tumbling_window_decimal_window_has_decimal_boundaries() -> None:
    g = grouper("tumbling_window", window=0.1)
    got: list[Batch[str]] = []
    for now in [0.0, 0.05, 0.1, 0.29, 0.3, 0.7, 0.7999999]:
        got += g.add(str(now), (), 1, now)
    got += g.flush_all()
    # 3 * 0.1 == 0.30000000000000004 in floats, yet 0.3 starts its own window
    assert [(b.window_start, b.items) for b in got] == [
        (0.0, ["0.0", "0.05"]),
        (0.1, ["0.1"]),
        (0.2, ["0.29"]),
        (0.3, ["0.3"]),
        (0.7, ["0.7", "0.7999999"]),
    ]


def test_tumbling_window_boundaries_on_wall_clock() -> None:
    g = grouper("tumbling_window", window=1.5)
    g.add("a", (), 1, 1_700_000_000.9)
    assert g.next_deadline() == 1_700_000_001.0  # 1133333334 * 1.5
    out = g.add("b", (), 1, 1_700_000_001.0)
    assert [(b.window_start, b.items) for b in out] == [(1_699_999_999.5, ["a"])]
    assert g.next_deadline() == 1_700_000_002.5


def test_tumbling_window_exact_boundary_despite_rounding_in_nanoseconds() -> None:
    g = grouper("tumbling_window", window=0.25)
    now = 1_700_000_000.25  # now * 1e9 rounds below the boundary in floats
    assert round(now * 1e9) < 1_700_000_000_250_000_000
    g.add("a", (), 1, 1_700_000_000.0)
    out = g.add("b", (), 1, now)
    assert [(b.items, b.window_start) for b in out] == [(["a"], 1_700_000_000.0)]
    assert g.next_deadline() == 1_700_000_000.5
    (b,) = g.flush_all()
    assert b.window_start == now


def test_tumbling_window_skipped_windows() -> None:
    g = grouper("tumbling_window", window=2.0)
    g.add("a", (), 1, 1.0)
    out = g.add("b", (), 1, 9.0)
    assert [(b.items, b.window_start) for b in out] == [(["a"], 0.0)]
    assert g.next_deadline() == 10.0


# -- session_window --------------------------------------------------------------------------


def test_session_gap_resets_on_each_item() -> None:
    g = grouper("session_window", gap=5.0, batch_size=100)
    g.add("a", ("k",), 1, 0.0)
    assert g.next_deadline() == 5.0
    g.add("b", ("k",), 1, 4.0)
    assert g.next_deadline() == 9.0
    assert g.take_due(8.999) == []
    g.add("c", ("k",), 1, 8.999)
    assert g.next_deadline() == pytest.approx(13.999)
    assert g.take_due(13.9) == []
    out = g.take_due(13.999)
    assert items(out) == [["a", "b", "c"]]
    assert out[0].reason is FlushReason.WINDOW
    assert out[0].opened_at == 0.0


def test_session_gap_exact_boundary_starts_new_session() -> None:
    g = grouper("session_window", gap=5.0)
    g.add("a", ("k",), 1, 0.0)
    out = g.add("b", ("k",), 1, 5.0)
    assert items(out) == [["a"]]
    assert g.next_deadline() == 10.0


def test_session_other_keys_do_not_extend() -> None:
    g = grouper("session_window", gap=2.0)
    g.add("a1", ("a",), 1, 0.0)
    g.add("b1", ("b",), 1, 1.0)
    g.add("b2", ("b",), 1, 1.75)
    assert g.next_deadline() == 2.0
    out = g.take_due(2.0)
    assert [(b.key, b.items) for b in out] == [(("a",), ["a1"])]
    assert g.next_deadline() == 3.75


def test_session_max_session_caps_a_busy_key() -> None:
    g = grouper("session_window", gap=2.0, max_session=5.0, batch_size=100)
    out: list[Batch[str]] = []
    for i in range(12):  # an item every second, never a 2 s gap
        out += g.add(f"i{i}", ("k",), 1, float(i))
        assert g.next_deadline() == min(i + 2.0, 5.0 * (i // 5) + 5.0)
    assert items(out) == [["i0", "i1", "i2", "i3", "i4"], ["i5", "i6", "i7", "i8", "i9"]]
    assert reasons(out) == [FlushReason.WINDOW, FlushReason.WINDOW]
    assert [b.opened_at for b in out] == [0.0, 5.0]


def test_session_max_session_none_is_unlimited() -> None:
    g = grouper("session_window", gap=2.0, batch_size=1000)
    for i in range(500):
        assert g.add(str(i), ("k",), 1, i * 1.5) == []
    assert g.next_deadline() == 499 * 1.5 + 2.0
    (b,) = g.take_due(1e9)
    assert b.items == [str(i) for i in range(500)]


def test_session_due_order_after_extension() -> None:
    g = grouper("session_window", gap=3.0)
    g.add("a1", ("a",), 1, 0.0)  # a due 3
    g.add("b1", ("b",), 1, 1.0)  # b due 4
    g.add("a2", ("a",), 1, 2.0)  # a due 5 now
    assert g.next_deadline() == 4.0
    out = g.take_due(10.0)
    assert [b.key for b in out] == [("b",), ("a",)]


# -- flush_where / flush_all -----------------------------------------------------


def test_flush_where_splits_batches_and_keeps_the_rest() -> None:
    g: Grouper[tuple[int, str]] = make_grouper(BatchPolicy("by_attribute", batch_size=10, max_wait=4.0))
    g.add((0, "a1"), ("a",), 3, 0.0)
    g.add((1, "a2"), ("a",), 4, 1.0)
    g.add((0, "a3"), ("a",), 5, 2.0)
    g.add((1, "b1"), ("b",), 6, 3.0)
    g.add((0, "c1"), ("c",), 7, 3.0)
    out = g.flush_where(lambda it: it[0] == 1)  # partition 1 revoked
    assert [(b.key, b.items) for b in out] == [(("a",), [(1, "a2")]), (("b",), [(1, "b1")])]
    assert [b.reason for b in out] == [FlushReason.DRAIN, FlushReason.DRAIN]
    assert [b.nbytes for b in out] == [6, 8]
    assert [b.opened_at for b in out] == [1.0, 3.0]  # time of the split-off batch's first item
    assert g.pending == 3
    assert g.pending_bytes == 3 + 5 + 7
    assert g.next_deadline() == 4.0  # "a" keeps its deadline
    rest = g.take_due(4.0)
    assert [(b.key, b.items, b.nbytes) for b in rest] == [(("a",), [(0, "a1"), (0, "a3")], 2 + 8 + 1)]
    assert g.flush_where(lambda it: False) == []
    assert g.pending == 1
    (c,) = g.flush_where(lambda it: True)
    assert c.items == [(0, "c1")]
    assert g.pending == 0
    assert g.pending_bytes == 0
    assert g.next_deadline() is None


def test_flush_where_kept_batch_restarts_from_its_first_remaining_item() -> None:
    g: Grouper[tuple[int, str]] = make_grouper(BatchPolicy("arrival_order", max_wait=4.0))
    g.add((1, "x"), (), 1, 0.0)
    g.add((0, "y"), (), 1, 1.5)
    assert g.next_deadline() == 4.0
    g.flush_where(lambda it: it[0] == 1)
    assert g.next_deadline() == 5.5
    assert g.take_due(5.0) == []
    (b,) = g.take_due(5.5)
    assert (b.items, b.opened_at) == ([(0, "y")], 1.5)


def test_flush_where_session_keeps_last_activity_and_max_session_moves() -> None:
    g: Grouper[tuple[int, str]] = make_grouper(BatchPolicy("session_window", gap=3.0, max_session=5.0))
    g.add((0, "a"), ("k",), 1, 0.0)
    g.add((0, "b"), ("k",), 1, 2.0)
    g.add((1, "c"), ("k",), 1, 2.5)
    assert g.next_deadline() == 5.0  # max_session from 0.0
    g.flush_where(lambda it: it[0] == 1)  # the latest item goes, its activity stays
    assert g.next_deadline() == 5.0
    g.flush_where(lambda it: it[1] == "a")  # the first item goes: max_session counts from 2.0
    assert g.next_deadline() == 5.5  # min(2.5 + 3, 2.0 + 5)
    (b,) = g.take_due(5.5)
    assert (b.items, b.opened_at) == ([(0, "b")], 2.0)


def test_flush_where_kept_batch_still_respects_caps() -> None:
    g: Grouper[tuple[int, str]] = make_grouper(
        BatchPolicy("arrival_order", batch_size=3, max_bytes=30, max_wait=10.0)
    )
    g.add((0, "x"), (), 10, 0.0)
    g.add((1, "y"), (), 10, 0.0)  # body 23
    g.flush_where(lambda it: it[0] == 1)  # body back to 12
    assert g.add((0, "z"), (), 10, 0.0) == []  # 12 + 11 = 23 fits
    out = g.add((0, "w"), (), 1, 0.0)  # third item: full by count
    assert [(b.items, b.reason, b.nbytes) for b in out] == [
        ([(0, "x"), (0, "z"), (0, "w")], FlushReason.SIZE, 2 + 21 + 2)
    ]


def test_flush_where_tumbling_keeps_window() -> None:
    g = grouper("tumbling_window", window=10.0)
    g.add("keep", ("k",), 1, 11.0)
    g.add("drop", ("k",), 1, 12.0)
    (b,) = g.flush_where(lambda it: it == "drop")
    assert (b.items, b.window_start, b.key) == (["drop"], 10.0, ("k",))
    (rest,) = g.take_due(20.0)
    assert (rest.items, rest.window_start) == (["keep"], 10.0)


def test_flush_all_in_open_order_and_resets() -> None:
    g = grouper("session_window", gap=100.0)
    for k in ["c", "a", "b"]:
        g.add(k, (k,), 2, 0.0)
    out = g.flush_all()
    assert [b.items for b in out] == [["c"], ["a"], ["b"]]
    assert reasons(out) == [FlushReason.DRAIN] * 3
    assert g.pending == 0
    assert g.pending_bytes == 0
    assert g.next_deadline() is None
    assert g.flush_all() == []


# -- clock and scale -------------------------------------------------------------------------


def test_clock_going_backwards_counts_as_latest() -> None:
    g = grouper("tumbling_window", window=10.0)
    g.add("a", ("k",), 1, 15.0)
    g.add("b", ("k",), 1, 5.0)  # wall clock stepped back: still window [10, 20)
    (b,) = g.take_due(3.0) or g.flush_all()
    assert b.items == ["a", "b"]
    assert b.window_start == 10.0
    assert b.reason is FlushReason.DRAIN


def test_clock_backwards_due_does_not_rewind() -> None:
    g = grouper("by_attribute", max_wait=1.0)
    g.add("a", ("k",), 1, 10.0)
    g.take_due(10.5)
    g.add("b", ("j",), 1, 0.0)  # treated as 10.5: due at 11.5
    assert [b.items for b in g.take_due(11.0)] == [["a"]]
    assert g.next_deadline() == 11.5


def test_many_open_keys_heap_stays_bounded() -> None:
    g = grouper("by_attribute", batch_size=2, max_wait=1000.0)
    for i in range(10_000):
        g.add(f"x{i}", (i,), 1, 0.0)
    assert g.pending == 10_000
    assert g.next_deadline() == 1000.0
    # every key's batch closes by size many times: stale heap entries must not pile up
    closed = 0
    for rnd in range(20):
        for i in range(10_000):
            closed += len(g.add(f"y{rnd}.{i}", (i,), 1, float(rnd)))
    assert closed == 100_000
    assert len(g._heap) <= 64 + 2 * g.open_batches
    assert g.pending == 10_000
    assert g.next_deadline() == 1019.0  # the batches opened in the last round
    assert g.take_due(1018.999) == []
    assert len(g.take_due(1019.0)) == 10_000
    assert g.pending == 0


def test_duration_lost_in_float_rounding_flushes_at_once() -> None:
    g = grouper("arrival_order", max_wait=1e-8)
    now = 1_700_000_000.0
    assert now + 1e-8 == now  # the deadline is `now` itself: the batch is due at once
    out = g.add("a", (), 1, now)
    assert [(b.items, b.reason) for b in out] == [(["a"], FlushReason.WINDOW)]
    assert g.pending == 0
    assert g.next_deadline() is None


# -- cutting a key's batch -----------------------------------------------------------------


@pytest.mark.parametrize("algorithm", ["by_attribute", "tumbling_window", "session_window"])
def test_cut_closes_the_batch_a_keys_next_item_would_join_and_that_item_opens_the_next(algorithm: str) -> None:
    g = grouper(algorithm, batch_size=10, max_wait=5.0, window=5.0, gap=5.0)
    g.add("a1", ("a",), 1, 0.0)
    g.add("b1", ("b",), 1, 0.0)
    g.add("a2", ("a",), 1, 1.0)
    assert g.last_joined(("a",), 2.0) == "a2" and g.last_joined(("c",), 2.0) is None
    cut = g.cut(("a",), 2.0)
    assert cut is not None and cut.items == ["a1", "a2"] and cut.reason is FlushReason.CUT
    assert g.cut(("a",), 2.0) is None and g.last_joined(("a",), 2.0) is None
    assert g.pending == 1
    g.add("a3", ("a",), 1, 2.0)
    assert items(g.take_due(100.0)) == [["b1"], ["a3"]]


def test_cut_in_arrival_order_closes_the_one_open_batch() -> None:
    g = grouper("arrival_order", batch_size=10, max_wait=5.0)
    g.add("a1", ("a",), 1, 0.0)
    g.add("b1", ("b",), 1, 0.0)
    assert g.last_joined(("c",), 1.0) == "b1"
    cut = g.cut(("c",), 1.0)
    assert cut is not None and cut.items == ["a1", "b1"] and g.pending == 0
