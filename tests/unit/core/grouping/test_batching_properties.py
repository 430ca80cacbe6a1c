"""Property tests of worker.core.grouping.batching: random interleavings of add / due / flush_where / flush_all.

Times are multiples of 1/4 s and durations are dyadic, so the float arithmetic in the grouper and
in the independent model below is exact and deadlines can be compared with ==.
"""

from __future__ import annotations

import math
import os
from collections import Counter, defaultdict
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from worker.core.grouping.algorithms import make_grouper
from worker.core.grouping.batching import Batch, BatchPolicy, FlushReason, Grouper, GroupingAlgorithm, GroupKey

KEYS: list[GroupKey] = [("a",), ("b",), ("c", 1), ()]
EXAMPLES = int(os.environ.get("BATCHING_EXAMPLES", "50"))  # e.g. 3000 for a deep run
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@dataclass(frozen=True)
class Item:
    uid: int
    key: GroupKey
    t: float
    size: int
    part: int


quarters = st.integers(min_value=1, max_value=16).map(lambda q: q / 4)


@st.composite
def policies(draw: st.DrawFn, algorithm: str, roomy: bool = False) -> BatchPolicy:
    return BatchPolicy(
        algorithm,
        batch_size=draw(st.integers(3, 12) if roomy else st.integers(1, 8)),
        max_bytes=draw(st.integers(40, 200) if roomy else st.integers(3, 80)),
        max_wait=draw(quarters),
        window=draw(st.sampled_from([0.25, 1.0, 1.5, 2.5, 10.0])),
        gap=draw(quarters),
        max_session=draw(st.none() | st.integers(1, 24).map(lambda q: q / 4)),
    )


add_op = st.tuples(
    st.just("add"),
    st.integers(0, len(KEYS) - 1),
    st.integers(0, 12) | st.integers(0, 12) | st.integers(13, 90),  # some oversize for small max_bytes
    st.integers(0, 4),  # time step in quarters
    st.integers(0, 1),  # "partition"
)
due_op = st.tuples(st.just("due"), st.integers(0, 12))
where_op = st.tuples(st.just("where"), st.integers(0, 1))
starts = st.sampled_from([0.0, 1000.0, 1_700_000_000.0])


class Checker:
    """Drives a grouper and checks every result against an independent model of the spec."""

    def __init__(self, policy: BatchPolicy) -> None:
        self.p = policy
        self.g: Grouper[Item] = make_grouper(policy)
        self.added: list[Item] = []
        self.pending: dict[int, Item] = {}  # uid -> item, in add order
        self.emitted: list[tuple[Batch[Item], str]] = []
        self.where_class: dict[int, int] = {}  # uid -> index of the flush_where call that took it
        self.last_add: dict[GroupKey, float] = {}  # key -> time of its latest add (session activity)
        self.now = 0.0
        self.uid = 0

    # -- model ----------------------------------------------------------------------------

    def window_index(self, t: float) -> int:
        return math.floor(Fraction(t) / Fraction(self.p.window))

    def slot(self, it: Item) -> Any:
        alg = self.p.algorithm
        if alg == "arrival_order":
            return ()
        if alg == "tumbling_window":
            return (self.window_index(it.t), it.key)
        return it.key

    def deadline(self, items: list[Item]) -> float:
        """When a batch holding exactly `items` (the first is its first item) is due."""
        p = self.p
        if p.algorithm in ("arrival_order", "by_attribute"):
            return items[0].t + p.max_wait
        if p.algorithm == "tumbling_window":
            return (self.window_index(items[0].t) + 1) * p.window
        # the key's latest add before this op (items taken by flush_where count as activity)
        end = max(self.last_add.get(items[0].key, -math.inf), items[-1].t) + p.gap
        if p.max_session is not None:
            end = min(end, items[0].t + p.max_session)
        return end

    def open_groups(self) -> dict[Any, list[Item]]:
        groups: dict[Any, list[Item]] = defaultdict(list)
        for it in self.pending.values():
            groups[self.slot(it)].append(it)
        return groups

    # -- operations -----------------------------------------------------------------------

    def add(self, key_i: int, size: int, step: int, part: int) -> None:
        self.now += step / 4
        self.uid += 1
        it = Item(self.uid, KEYS[key_i], self.now, size, part)
        self.added.append(it)
        self.pending[it.uid] = it
        out = self.g.add(it, it.key, size, self.now)
        self.record(out, "add", current=it)
        # expired batches first, sorted by deadline; then at most two closed by size/bytes
        n_window = 0
        while n_window < len(out) and out[n_window].reason is FlushReason.WINDOW:
            n_window += 1
        self.check_sorted_due(out[:n_window])
        tail = out[n_window:]
        assert len(tail) <= 2
        assert all(b.reason in (FlushReason.SIZE, FlushReason.BYTES) for b in tail)
        if len(tail) == 2:
            assert tail[1].items == [it]
        if tail and it in tail[-1].items:
            assert tail[-1].items[-1] == it
        self.last_add[it.key] = it.t
        self.check_state()

    def due(self, step: int) -> None:
        self.now += step / 4
        out = self.g.take_due(self.now)
        self.record(out, "due")
        assert all(b.reason is FlushReason.WINDOW for b in out)
        self.check_sorted_due(out)
        self.check_state()

    def where(self, part: int) -> None:
        before = [it for it in self.pending.values() if it.part == part]
        out = self.g.flush_where(lambda it: it.part == part)
        self.record(out, "where")
        taken = [it for b in out for it in b.items]
        assert sorted(i.uid for i in taken) == [i.uid for i in before]
        assert all(it.part == part for it in taken)
        for it in taken:
            self.where_class[it.uid] = len(self.emitted)
        self.check_state()

    def flush_all(self) -> None:
        out = self.g.flush_all()
        self.record(out, "drain")
        assert self.pending == {}
        self.check_state()
        assert self.g.next_deadline() is None
        assert self.g.take_due(self.now + 1e6) == []

    # -- checks ---------------------------------------------------------------------------

    def check_sorted_due(self, out: list[Batch[Item]]) -> None:
        deadlines = [self.deadline(b.items) for b in out]
        assert deadlines == sorted(deadlines)

    def record(self, out: list[Batch[Item]], source: str, current: Item | None = None) -> None:
        p = self.p
        for b in out:
            assert b.items, "empty batch"
            sizes = [it.size for it in b.items]
            assert b.nbytes == 2 + sum(sizes) + len(sizes) - 1
            assert len(b.items) <= p.batch_size
            assert b.nbytes <= p.max_bytes or (len(b.items) == 1 and b.nbytes > p.max_bytes)
            slots = {self.slot(it) for it in b.items}
            assert len(slots) == 1, f"mixed batch {slots}"
            if p.algorithm == "arrival_order":
                assert b.key == ()
            else:
                assert b.key == b.items[0].key
            if p.algorithm == "tumbling_window":
                k = self.window_index(b.items[0].t)
                assert b.window_start == k * p.window
            else:
                assert b.window_start is None
            assert b.opened_at == b.items[0].t
            for it in b.items:
                assert self.pending.pop(it.uid, None) is it, f"item {it.uid} emitted twice or never added"
            # the reason must be justified
            if b.reason is FlushReason.SIZE:
                assert source == "add"
                assert len(b.items) == p.batch_size
            elif b.reason is FlushReason.BYTES:
                assert source == "add"
                assert current is not None
                assert b.nbytes + 2 > p.max_bytes or b.nbytes + 1 + current.size > p.max_bytes
            elif b.reason is FlushReason.WINDOW:
                assert source in ("add", "due")
                assert self.deadline(b.items) <= self.now, "flushed before its deadline"
            else:
                assert source in ("where", "drain")
            if b.reason in (FlushReason.SIZE, FlushReason.BYTES):
                assert self.deadline(b.items) > self.now, "overdue batch closed by size/bytes"
            self.emitted.append((b, source))

    def check_state(self) -> None:
        g = self.g
        assert g.pending == len(self.pending)
        assert g.pending_bytes == sum(it.size for it in self.pending.values())
        nd = g.next_deadline()
        if not self.pending:
            assert nd is None
            return
        assert nd is not None
        groups = self.open_groups()
        for items in groups.values():
            assert len(items) < self.p.batch_size
            assert 2 + sum(i.size for i in items) + len(items) - 1 + 2 <= self.p.max_bytes
        assert nd == min(self.deadline(items) for items in groups.values())
        if nd <= self.now:  # only flush_where may leave a batch overdue: it is not given `now`
            assert self.emitted and self.emitted[-1][1] == "where"

    def check_final(self) -> None:
        out_items = [it for b, _ in self.emitted for it in b.items]
        assert Counter(i.uid for i in out_items) == Counter(i.uid for i in self.added)
        assert len(out_items) == len(self.added)
        if not self.where_class:
            if self.p.algorithm == "arrival_order":
                assert out_items == self.added
            for key in KEYS:
                assert [i for i in out_items if i.key == key] == [i for i in self.added if i.key == key]
        else:
            for key in KEYS:
                for cls in {None, *self.where_class.values()}:
                    got = [i for i in out_items if i.key == key and self.where_class.get(i.uid) == cls]
                    want = [i for i in self.added if i.key == key and self.where_class.get(i.uid) == cls]
                    assert got == want


def run(checker: Checker, ops: list[tuple[Any, ...]]) -> None:
    for op in ops:
        if op[0] == "add":
            checker.add(*op[1:])
        elif op[0] == "due":
            checker.due(op[1])
        else:
            checker.where(op[1])
    checker.flush_all()
    checker.check_final()


@pytest.mark.parametrize("algorithm", [a.value for a in GroupingAlgorithm])
@SETTINGS
@given(
    data=st.data(),
    start=starts,
    ops=st.lists(st.one_of(add_op, add_op, due_op), min_size=15, max_size=60),
)
def test_interleavings_keep_every_invariant(
    algorithm: str, data: st.DataObject, start: float, ops: list[tuple[Any, ...]]
) -> None:
    checker = Checker(data.draw(policies(algorithm)))
    checker.now = start
    run(checker, ops)


@pytest.mark.parametrize("algorithm", [a.value for a in GroupingAlgorithm])
@SETTINGS
@given(
    data=st.data(),
    start=starts,
    before=st.lists(st.one_of(add_op, add_op, add_op, due_op), min_size=10, max_size=40),
    after=st.lists(st.one_of(add_op, add_op, due_op, where_op), min_size=5, max_size=40),
    part=st.integers(0, 1),
)
def test_flush_where_takes_exactly_the_matching_items(
    algorithm: str,
    data: st.DataObject,
    start: float,
    before: list[tuple[Any, ...]],
    after: list[tuple[Any, ...]],
    part: int,
) -> None:
    checker = Checker(data.draw(policies(algorithm, roomy=True)))
    checker.now = start
    run(checker, [*before, ("where", part), *after])


@pytest.mark.parametrize("algorithm", [a.value for a in GroupingAlgorithm])
@SETTINGS
@given(data=st.data(), ops=st.lists(add_op, max_size=40))
def test_flush_all_equals_everything_pending(algorithm: str, data: st.DataObject, ops: list[Any]) -> None:
    policy = data.draw(policies(algorithm))
    g: Grouper[Item] = make_grouper(policy)
    now = 0.0
    returned: list[Item] = []
    added: list[Item] = []
    for i, (_, key_i, size, step, part) in enumerate(ops):
        now += step / 4
        it = Item(i, KEYS[key_i], now, size, part)
        added.append(it)
        returned += [x for b in g.add(it, it.key, size, now) for x in b.items]
    pending_before = g.pending
    drained = g.flush_all()
    assert all(b.reason is FlushReason.DRAIN for b in drained)
    drained_items = [x for b in drained for x in b.items]
    assert len(drained_items) == pending_before
    assert sorted(x.uid for x in returned + drained_items) == [x.uid for x in added]
