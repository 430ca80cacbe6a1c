"""The batching algorithms: when each closes a batch (reason ``window``), besides ``size`` and ``bytes``.

``arrival_order``
    Records are batched in the order they arrive, whatever their attributes: there is one open
    batch. It is sent when full, or ``max_wait`` seconds after its *first* record arrived.

``by_attribute``
    Records are grouped by the values of the configured attributes (the *key*); each key has its
    own open batch, sent when full or ``max_wait`` seconds after that batch's first record
    arrived. One call therefore carries the records of one key that arrived within ``max_wait``.

``tumbling_window``
    Time is cut into fixed windows ``[k * window, (k + 1) * window)`` aligned to the clock (with
    ``window: 10`` seconds: :00-:10, :10-:20, ...). Records are grouped per window and, if
    attributes are configured, per key as well. At the end of a window all its batches are sent;
    a record arriving exactly at the boundary belongs to the next window. A batch that fills up
    earlier is sent at once and the window's later records of that key start a new batch.

``session_window``
    Records are grouped per key into sessions. A session lasts while records keep coming for its
    key: it is sent once ``gap`` seconds pass without a new record for that key (each record
    restarts the countdown), or when full, or -- if ``max_session`` is set -- ``max_session``
    seconds after the batch's first record, however busy the key still is.

Pure, like :mod:`worker.core.grouping.batching`: the caller passes ``now``.
"""

from __future__ import annotations

import math
from collections.abc import Hashable
from typing import Any, TypeVar

from worker.core.grouping.batching import BatchInProgress, BatchPolicy, Grouper, GroupingAlgorithm, GroupKey

__all__ = [
    "ArrivalOrderGrouper",
    "ByAttributeGrouper",
    "SessionWindowGrouper",
    "TumblingWindowGrouper",
    "make_grouper",
]

T = TypeVar("T")
NS = 1_000_000_000  # tumbling windows are whole nanoseconds


class ArrivalOrderGrouper(Grouper[T]):
    """``arrival_order``: one open batch for all items, whatever key they are added with.

    The batch (``Batch.key == ()``) is closed when it holds ``batch_size`` items (``size``), when
    the next item would make it exceed ``max_bytes`` (``bytes``; that item opens the next batch),
    or at ``opened_at + max_wait`` (``window``), where ``opened_at`` is the time of its first item.
    """

    algorithm = GroupingAlgorithm.ARRIVAL_ORDER
    _slot_is_key = False

    def _slot(self, key: GroupKey, now: float) -> Hashable:
        return ()

    def _new(self, slot: Hashable, key: GroupKey, now: float) -> BatchInProgress[T]:
        return BatchInProgress(self._bid(), (), now, now + self.policy.max_wait, None)

    def _refreshed_deadline(self, batch: BatchInProgress[T]) -> float:
        return batch.opened_at + self.policy.max_wait


class ByAttributeGrouper(Grouper[T]):
    """``by_attribute``: one open batch per key (the caller computes it from attribute values).

    A key's batch is closed when it holds ``batch_size`` items (``size``), when the key's next
    item would make it exceed ``max_bytes`` (``bytes``; that item opens the key's next batch), or
    at ``opened_at + max_wait`` (``window``), ``opened_at`` being the time of the batch's first item.
    """

    algorithm = GroupingAlgorithm.BY_ATTRIBUTE

    def _new(self, slot: Hashable, key: GroupKey, now: float) -> BatchInProgress[T]:
        return BatchInProgress(self._bid(), key, now, now + self.policy.max_wait, None)

    def _refreshed_deadline(self, batch: BatchInProgress[T]) -> float:
        return batch.opened_at + self.policy.max_wait


class TumblingWindowGrouper(Grouper[T]):
    """``tumbling_window``: one open batch per (window, key); the key may be ``()``.

    An item added at ``now`` belongs to window ``k = floor(now / window)``, i.e.
    ``[k * window, (k + 1) * window)`` (``Batch.window_start == k * window``); ``window`` is taken
    in whole nanoseconds and boundaries are exact decimals rounded once to float, so with
    ``window=0.1`` an item at ``now=0.3`` starts window ``[0.3, 0.4)``. All batches of a
    window are closed at ``now >= (k + 1) * window`` (``window``). A batch is closed earlier when it
    holds ``batch_size`` items (``size``) or when the key's next item in that window would make it
    exceed ``max_bytes`` (``bytes``); the key's later items in the window then open a new batch,
    which also closes at the window's end.
    """

    algorithm = GroupingAlgorithm.TUMBLING_WINDOW
    _slot_is_key = False

    def __init__(self, policy: BatchPolicy) -> None:
        super().__init__(policy)
        # Windows are whole nanoseconds and boundaries are computed as exact integers, then
        # rounded once to float: with window 0.1 the boundaries are the floats 0.1, 0.2, 0.3, ...
        # (not 3 * 0.1 == 0.30000000000000004), so an item at now=0.3 opens a new window.
        self._window_ns = round(policy.window * NS)
        self._k = 0
        self._start = math.inf  # the window of the last add, cached: [_start, _end)
        self._end = -math.inf

    def _boundary(self, k: int) -> float:
        return (k * self._window_ns) / NS  # int / int: correctly rounded

    def _slot(self, key: GroupKey, now: float) -> Hashable:
        if not self._start <= now < self._end:
            k = round(now * NS) // self._window_ns
            while self._boundary(k) > now:  # make the float interval hold `now` exactly
                k -= 1
            while self._boundary(k + 1) <= now:
                k += 1
            self._k, self._start, self._end = k, self._boundary(k), self._boundary(k + 1)
        return (self._k, key)

    def _new(self, slot: Hashable, key: GroupKey, now: float) -> BatchInProgress[T]:
        return BatchInProgress(self._bid(), key, now, self._end, self._start)


class SessionWindowGrouper(Grouper[T]):
    """``session_window``: one open batch (session) per key.

    A key's batch is closed at ``min(last + gap, opened_at + max_session)`` (``window``), where
    ``last`` is the time of the key's latest item, so each item pushes the end back by ``gap``,
    and ``opened_at`` is the time of the batch's first item (no ``max_session`` limit when it is
    None). It is closed earlier when it holds ``batch_size`` items (``size``) or when the key's next
    item would make it exceed ``max_bytes`` (``bytes``); the key's next item then opens a new batch.
    """

    algorithm = GroupingAlgorithm.SESSION_WINDOW
    _extends = True

    def _new(self, slot: Hashable, key: GroupKey, now: float) -> BatchInProgress[T]:
        deadline = now + self.policy.gap
        if self.policy.max_session is not None:
            deadline = min(deadline, now + self.policy.max_session)
        return BatchInProgress(self._bid(), key, now, deadline, None)

    def _touch(self, batch: BatchInProgress[T], now: float) -> None:
        batch.last_at = now
        deadline = now + self.policy.gap
        if self.policy.max_session is not None:
            deadline = min(deadline, batch.opened_at + self.policy.max_session)
        if deadline > batch.deadline:  # the heap entry is fixed lazily (see _clean_top)
            batch.deadline = deadline

    def _refreshed_deadline(self, batch: BatchInProgress[T]) -> float:
        deadline = batch.last_at + self.policy.gap  # items taken out still count as activity
        if self.policy.max_session is not None:
            deadline = min(deadline, batch.opened_at + self.policy.max_session)
        return deadline


_GROUPERS: dict[str, type[Grouper[Any]]] = {
    cls.algorithm: cls
    for cls in (ArrivalOrderGrouper, ByAttributeGrouper, TumblingWindowGrouper, SessionWindowGrouper)
}


def make_grouper(policy: BatchPolicy) -> Grouper[T]:
    """The grouper for ``policy.algorithm``; raises ``ValueError`` naming a bad policy field."""
    policy.validate()
    # compare by value: the algorithm may be a str-valued enum member from the configuration
    cls: type[Grouper[T]] = next(c for name, c in _GROUPERS.items() if name == policy.algorithm)
    return cls(policy)
