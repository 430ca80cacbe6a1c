"""Grouping records into batches: one Gorgias API call carries one batch.

Every record that reaches the worker is added to a *grouper*, which collects records into
batches and says when each batch is ready to be sent. A batch becomes the body of one request,
a JSON array of the records' serialized forms, so two limits apply to every batch:

* ``batch_size`` -- the most records in one batch;
* ``max_bytes`` -- the largest request body. A batch of *n* records whose serialized sizes add up
  to *S* bytes has a body of ``2 + S + (n - 1)`` bytes (the brackets and the commas between
  records). A record whose own body (``2 + size``) is already larger than ``max_bytes`` is never
  dropped: it is sent alone, in a batch of one.

A batch is closed as soon as it holds ``batch_size`` records (reason ``size``), or as soon as the
next record for it would not fit in ``max_bytes`` (reason ``bytes``; that record starts a new
batch) -- or right away when its body is so close to ``max_bytes`` that no record could fit any
more. Besides these, each algorithm closes batches on time (reason ``window``):

The algorithms (``arrival_order``, ``by_attribute``, ``tumbling_window``, ``session_window``) and
when each closes a batch: :mod:`worker.core.grouping.algorithms`.

A time limit is reached when the clock is *at or past* it (a batch due at 12.0 is sent at 12.0).
While back-pressure pauses consumption every open batch is closed at once, whatever its age (reason
``drain``, :meth:`Grouper.flush_all`): no record could join it before its window ends. When Kafka
partitions are taken away from the worker, the pending records of those partitions are taken out
(:meth:`Grouper.flush_where`) and left to their new owner; records of other partitions stay in their
batches. On shutdown nothing is flushed: records not on the wire yet are not committed, and come back
after the restart.

For every key, batches are sent in the order their records arrived: concatenating a key's batches
gives its records in arrival order.

This module is pure logic: no I/O, no asyncio and no clock. Every call receives the current time
``now`` in seconds from the caller, which also decides which clock that is (tumbling windows align
to multiples of ``window`` on it, so it should be wall-clock seconds there). The clock is taken as
never going backwards: a ``now`` earlier than one already seen counts as that latest one.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from heapq import heapify, heappop, heappush, heapreplace
from typing import Generic, TypeVar

__all__ = [
    "Batch",
    "BatchInProgress",
    "BatchPolicy",
    "FlushReason",
    "GroupKey",
    "Grouper",
    "GroupingAlgorithm",
    "array_body_size",
]

T = TypeVar("T")
GroupKey = tuple[Hashable, ...]

_MIN_WINDOW = 1e-6

# The one list of the grouping algorithms; each is a grouper of worker.core.grouping.algorithms.
class GroupingAlgorithm(StrEnum):
    """How records are grouped into batches (``batching.algorithm``)."""

    ARRIVAL_ORDER = "arrival_order"
    BY_ATTRIBUTE = "by_attribute"
    TUMBLING_WINDOW = "tumbling_window"
    SESSION_WINDOW = "session_window"

    @property
    def summary(self) -> str:
        """One line for a person choosing (the console's list)."""
        return _SUMMARIES[self]


_SUMMARIES = {
    GroupingAlgorithm.ARRIVAL_ORDER: "arrival order: one open batch, in the order records arrive",
    GroupingAlgorithm.BY_ATTRIBUTE: "by attribute: one batch per value of the grouping attributes",
    GroupingAlgorithm.TUMBLING_WINDOW: "tumbling window: clock-aligned windows, optionally per key",
    GroupingAlgorithm.SESSION_WINDOW: "session window: per key, closed after a gap without records",
}



class FlushReason(StrEnum):
    """Why a batch was closed."""

    SIZE = "size"  # it holds batch_size items
    BYTES = "bytes"  # the next item would not fit in max_bytes, or it is one oversize item
    WINDOW = "window"  # time is up: max_wait, window end, session gap or max_session
    DRAIN = "drain"  # flush_all (back-pressure; a preview at the end of its input) or flush_where
    CUT = "cut"  # the key's next record may not share its call (a job resumed after a restart begins or ends)


def array_body_size(sizes: Iterable[int]) -> int:
    """Size in bytes of the JSON array whose elements serialize to ``sizes`` bytes each."""
    n = 0
    total = 0
    for s in sizes:
        n += 1
        total += s
    return 2 + total + max(n - 1, 0)


@dataclass(frozen=True, slots=True)
class BatchPolicy:
    """How to group records; check it with :meth:`validate` (``make_grouper`` does)."""

    algorithm: str  # a GroupingAlgorithm (or its value)
    batch_size: int = 100  # >= 1
    max_bytes: int = 1_048_576  # >= 3 (the body of one 1-byte item)
    max_wait: float = 2.0  # seconds; arrival_order and by_attribute
    window: float = 10.0  # seconds; tumbling_window size
    gap: float = 5.0  # seconds; session_window inactivity gap
    max_session: float | None = None  # seconds; session_window, None = unlimited

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first bad field."""
        names = [a.value for a in GroupingAlgorithm]
        if not isinstance(self.algorithm, str) or self.algorithm not in names:
            raise ValueError(f"BatchPolicy.algorithm must be one of {', '.join(names)}; got {self.algorithm!r}")
        for name, low in (("batch_size", 1), ("max_bytes", 3)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"BatchPolicy.{name} must be an integer >= {low}; got {value!r}")
        for name in ("max_wait", "window", "gap", "max_session"):
            value = getattr(self, name)
            if value is None and name == "max_session":
                continue
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not math.isfinite(value)
                or value <= 0
            ):
                raise ValueError(f"BatchPolicy.{name} must be a finite number of seconds > 0; got {value!r}")
        if self.window < _MIN_WINDOW:
            raise ValueError(f"BatchPolicy.window must be at least {_MIN_WINDOW} s; got {self.window!r}")


@dataclass(slots=True)
class Batch(Generic[T]):
    """A closed batch, ready to send."""

    key: GroupKey  # the group key; () for arrival_order
    items: list[T]  # in add order
    nbytes: int  # JSON array body size: 2 + sum(item sizes) + (len(items) - 1)
    opened_at: float  # `now` of the first item
    reason: FlushReason
    window_start: float | None  # start of the tumbling window; None for other algorithms
    sizes: list[int] = field(default_factory=list)  # serialized size of each item, in add order


class BatchInProgress(Generic[T]):
    """An open (pending) batch. ``deadline`` may only grow (see ``Grouper._clean_top``)."""

    __slots__ = (
        "bid",
        "deadline",
        "items",
        "key",
        "last_at",
        "nbytes",
        "opened_at",
        "sizes",
        "times",
        "window_start",
    )

    def __init__(
        self, bid: int, key: GroupKey, now: float, deadline: float, window_start: float | None
    ) -> None:
        self.bid = bid
        self.key = key
        self.opened_at = now
        self.last_at = now  # latest item (kept up to date by session windows only)
        self.deadline = deadline
        self.window_start = window_start
        self.items: list[T] = []
        self.sizes: list[int] = []
        self.times: list[float] = []
        self.nbytes = 1  # becomes 2 + size with the first item (each item adds size + 1)


_HeapEntry = tuple[float, int, Hashable]  # (deadline, batch id, slot)


class Grouper(Generic[T]):
    """Base of the four groupers; build one with :func:`make_grouper`.

    Open batches live in a dict ``slot -> batch`` (a slot is the key, or (window, key) for
    tumbling windows) whose order is the order batches were opened, plus a heap of deadlines with
    lazy invalidation: an entry is dropped when its batch is gone, and re-pushed when its batch's
    deadline has moved later (session windows), so ``add`` costs O(1) plus O(log n) per batch opened
    or expired, however many keys are open.
    """

    algorithm: str = ""
    _slot_is_key = True  # False: _slot() computes the slot
    _extends = False  # True: _touch() runs when an item joins an open batch

    def __init__(self, policy: BatchPolicy) -> None:
        policy.validate()
        if policy.algorithm != self.algorithm:
            raise ValueError(
                f"BatchPolicy.algorithm is {policy.algorithm!r}, "
                f"not {self.algorithm!r} as {type(self).__name__} needs"
            )
        self.policy = policy
        self._batch_size = policy.batch_size
        self._max_bytes = policy.max_bytes
        self._open: dict[Hashable, BatchInProgress[T]] = {}
        self._heap: list[_HeapEntry] = []
        self._next_bid = 0
        self._now = -math.inf
        self._pending = 0
        self._pending_bytes = 0

    # -- hooks for the algorithms -----------------------------------------------------------

    def _slot(self, key: GroupKey, now: float) -> Hashable:
        """The slot the item goes to, when it is not the key itself."""
        return key

    def _new(self, slot: Hashable, key: GroupKey, now: float) -> BatchInProgress[T]:
        """A new open batch for ``slot`` whose first item arrives at ``now`` (not registered)."""
        raise NotImplementedError

    def _touch(self, batch: BatchInProgress[T], now: float) -> None:
        """Called before an item joins an existing ``batch`` at ``now``; may move its deadline later."""

    def _refreshed_deadline(self, batch: BatchInProgress[T]) -> float:
        """The deadline of ``batch`` after ``flush_where`` took items out of it and ``opened_at``
        became the time of its first remaining item (never earlier than the current one)."""
        return batch.deadline

    # -- public API -------------------------------------------------------------------------

    def add(self, item: T, key: GroupKey, size: int, now: float) -> list[Batch[T]]:
        """Add one item of ``size`` serialized bytes with group ``key`` at time ``now``.

        Returns the batches this call closes, in this order: first every batch whose time was
        already up at ``now`` (exactly what ``due(now)`` would return), then the item's group's
        batch if the item did not fit in its bytes (reason ``bytes``; the item starts a new batch),
        then the item's batch if the item made it full (``size``), left no room for even a 1-byte
        item or is a single oversize item (``bytes``), or -- only when a tiny duration vanished in
        float rounding -- if it is already due (``window``). Usually the list is empty.
        """
        if size < 0:
            raise ValueError(f"item size must be >= 0; got {size!r}")
        if now < self._now:
            now = self._now
        else:
            self._now = now
        heap = self._heap
        out: list[Batch[T]] = self._expire(now) if heap and heap[0][0] <= now else []
        slot = key if self._slot_is_key else self._slot(key, now)
        opened = self._open
        b = opened.get(slot)
        if b is not None:
            if b.nbytes + size + 1 > self._max_bytes:
                del opened[slot]
                out.append(self._emit(b, FlushReason.BYTES))
                self._maybe_compact()
                b = None
            elif self._extends:
                self._touch(b, now)
        if b is None:
            b = self._new(slot, key, now)
            opened[slot] = b
            heappush(heap, (b.deadline, b.bid, slot))
        b.items.append(item)
        b.sizes.append(size)
        b.times.append(now)
        b.nbytes += size + 1
        self._pending += 1
        self._pending_bytes += size
        if len(b.items) >= self._batch_size:
            reason = FlushReason.SIZE
        elif b.nbytes + 2 > self._max_bytes:  # not even a 1-byte item would fit any more
            reason = FlushReason.BYTES
        elif b.deadline <= now:  # only if a tiny duration vanished in float rounding
            reason = FlushReason.WINDOW
        else:
            return out
        del opened[slot]
        out.append(self._emit(b, reason))
        self._maybe_compact()
        return out

    def take_due(self, now: float) -> list[Batch[T]]:
        """Remove and return the batches whose time is up at ``now`` (deadline <= now), sorted by
        deadline (ties: the batch opened first comes first); reason ``window``."""
        if now < self._now:
            now = self._now
        else:
            self._now = now
        return self._expire(now)

    def next_deadline(self) -> float | None:
        """The earliest time at which a pending batch becomes due; None when nothing is pending."""
        return self._clean_top()

    def flush_all(self) -> list[Batch[T]]:
        """Remove and return every pending batch, in the order they were opened (reason ``drain``)."""
        out = [self._emit(b, FlushReason.DRAIN) for b in self._open.values()]
        self._open.clear()
        self._heap.clear()
        return out

    def last_joined(self, key: GroupKey, now: float) -> T | None:
        """The last item of the open batch an item of ``key`` added at ``now`` would join (None: it would
        open a batch)."""
        b = self._open.get(self._slot(key, max(now, self._now)))
        return b.items[-1] if b is not None and b.items else None

    def cut(self, key: GroupKey, now: float) -> Batch[T] | None:
        """Close, before its time (reason ``cut``), the open batch an item of ``key`` added at ``now`` would
        join: that item then opens the next batch. None when there is no such batch."""
        b = self._open.pop(self._slot(key, max(now, self._now)), None)
        if b is None:
            return None
        self._maybe_compact()
        return self._emit(b, FlushReason.CUT)

    def flush_where(self, predicate: Callable[[T], bool]) -> list[Batch[T]]:
        """Remove and return (reason ``drain``) the pending items for which ``predicate`` is true.

        Each open batch holding such items gives one batch of them, in their add order, with
        ``opened_at`` the time of the first of them; batches are returned in the order they were
        opened. Items not matching stay pending in their batch, whose ``opened_at`` becomes the time
        of its first remaining item and whose deadline is computed again from it (a session keeps
        its last activity time, a tumbling batch its window). Afterwards each key's items still come
        out in add order among the matching ones and among the others, but the matching ones now
        precede the others. Costs O(pending items).
        """
        out: list[Batch[T]] = []
        for slot, b in list(self._open.items()):
            take: list[int] = []
            keep: list[int] = []
            for i, item in enumerate(b.items):
                (take if predicate(item) else keep).append(i)
            if not take:
                continue
            if not keep:
                del self._open[slot]
                out.append(self._emit(b, FlushReason.DRAIN))
                continue
            items, sizes, times = b.items, b.sizes, b.times
            taken = [sizes[i] for i in take]
            nbytes = 1 + sum(taken) + len(taken)
            out.append(
                Batch(
                    b.key, [items[i] for i in take], nbytes, times[take[0]], FlushReason.DRAIN, b.window_start,
                    taken,
                )
            )
            self._pending -= len(take)
            self._pending_bytes -= nbytes - len(take) - 1
            b.items = [items[i] for i in keep]
            b.sizes = [sizes[i] for i in keep]
            b.times = [times[i] for i in keep]
            b.nbytes = 1 + sum(b.sizes) + len(b.sizes)
            b.opened_at = b.times[0]
            b.deadline = max(b.deadline, self._refreshed_deadline(b))  # moves later only
        self._maybe_compact()
        return out

    @property
    def pending(self) -> int:
        """Items held in open batches."""
        return self._pending

    @property
    def pending_bytes(self) -> int:
        """Sum of the serialized sizes of the items held (without array brackets and commas)."""
        return self._pending_bytes

    @property
    def open_batches(self) -> int:
        """Number of open batches."""
        return len(self._open)

    # -- internals --------------------------------------------------------------------------

    def _emit(self, b: BatchInProgress[T], reason: FlushReason) -> Batch[T]:
        n = len(b.items)
        self._pending -= n
        self._pending_bytes -= b.nbytes - n - 1
        return Batch(b.key, b.items, b.nbytes, b.opened_at, reason, b.window_start, b.sizes)

    def _clean_top(self) -> float | None:
        """Drop stale heap tops and re-push moved ones until the top is exact; return its deadline."""
        heap = self._heap
        opened = self._open
        while heap:
            deadline, bid, slot = heap[0]
            b = opened.get(slot)
            if b is None or b.bid != bid:
                heappop(heap)
            elif b.deadline != deadline:
                heapreplace(heap, (b.deadline, bid, slot))
            else:
                return deadline
        return None

    def _expire(self, now: float) -> list[Batch[T]]:
        out: list[Batch[T]] = []
        heap = self._heap
        while True:
            deadline = self._clean_top()
            if deadline is None or deadline > now:
                return out
            slot = heappop(heap)[2]
            out.append(self._emit(self._open.pop(slot), FlushReason.WINDOW))

    def _maybe_compact(self) -> None:
        """Rebuild the heap once stale entries (of batches closed early) outnumber live ones."""
        if len(self._heap) > 64 + 2 * len(self._open):
            self._heap = [(b.deadline, b.bid, slot) for slot, b in self._open.items()]
            heapify(self._heap)

    def _bid(self) -> int:
        self._next_bid += 1
        return self._next_bid
