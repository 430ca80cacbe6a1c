"""Calls waiting to go out, one queue (lane) per key, whose batches stay open until they are sent.

A grouper (:mod:`worker.core.grouping.batching`) decides when a batch is *due*: its window is the earliest the
batch may be sent. Here a due batch becomes a :class:`QueuedCall` at the back of its key's lane,
and it keeps taking the key's next records, up to ``batch_size`` and ``max_bytes``, for as long as it
waits: for the key's earlier call to finish (per-key order), for a concurrency slot or for a token of
the account's budget. The request is rendered from what the call holds when it is taken
(:meth:`OpenBatches.take`). A call that is full is sealed; the key's next records then start a new
batch in the grouper, with its own window, behind it.

When the account is idle a due call is taken at once, so the window is the latency floor, exactly
as when batches were sealed at the window; when calls wait for the budget, the wait fills them.

Lanes are *ordered* when per-key order matters (keyed batching; unbatched records with a Kafka key):
only the first call of such a lane may be taken, and only when no earlier call of the lane is still
on the wire. In an unordered lane every waiting call may be taken at any time. A waiting call may also
be split (:meth:`OpenBatches.split`): some of its records go now, the rest stays first of its lane and may
go alongside them; the lane's next call waits for all of them.

Unbatched destinations use the same lanes with calls of one record each, sealed from the start.

Pure logic: no I/O, no clock (``now`` comes from the caller).
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Callable, Collection, Hashable, Iterator
from typing import Generic, TypeVar

from worker.core.grouping.algorithms import make_grouper
from worker.core.grouping.batching import Batch, BatchPolicy, FlushReason, Grouper
from worker.core.grouping.call_scheduler import TokensPerCall

__all__ = ["OpenBatches", "QueuedCall"]

T = TypeVar("T")


class QueuedCall(Generic[T]):
    """A call waiting to be sent: its records (in arrival order) and when it became due."""

    __slots__ = ("cid", "eligible_at", "items", "key", "lane", "memo", "nbytes", "opened_at", "ready_at", "reason",
                 "sealed", "sizes", "tokens", "window_start")

    def __init__(self, cid: int, lane: Hashable, key: tuple[Hashable, ...], items: list[T], sizes: list[int],
                 opened_at: float, ready_at: float, sealed: bool, window_start: float | None = None,
                 reason: FlushReason = FlushReason.WINDOW) -> None:
        self.cid = cid
        self.lane = lane
        self.key = key
        self.items = items
        self.sizes = sizes
        self.nbytes = 1 + sum(sizes) + len(sizes)  # the JSON array body: 2 + sum + commas
        self.opened_at = opened_at
        self.ready_at = ready_at  # when it became due (age is counted from here)
        self.eligible_at = ready_at  # since when it may be taken (an ordered lane's next call: once the lane is free)
        self.sealed = sealed
        self.tokens = 1.0  # budget tokens it is expected to take: one per request (see OpenBatches.call_made)
        self.window_start = window_start
        self.reason = reason  # why its batch was closed: window (it was due), or size/bytes (it filled up)
        # what a layer above worked out from the records, with how many records it saw (None once items are dropped)
        self.memo: tuple[int, object] | None = None

    @property
    def records(self) -> int:
        return len(self.items)

    @property
    def held_until(self) -> float:
        """A call is never held back (see :attr:`~worker.core.grouping.call_scheduler.Candidate.held_until`)."""
        return float("-inf")

    def as_batch(self) -> Batch[T]:
        """The call as a closed :class:`~worker.core.grouping.batching.Batch` (for the response event)."""
        return Batch(self.key, self.items, self.nbytes, self.opened_at, self.reason, self.window_start, self.sizes)

    def __repr__(self) -> str:
        return f"QueuedCall(cid={self.cid}, lane={self.lane!r}, records={self.records}, sealed={self.sealed})"


class OpenBatches(Generic[T]):
    """The calls of one destination that are not on the wire yet, and the grouper filling the next ones.

    ``policy`` None: unbatched (every record is a sealed call of its own, due at once). ``ordered``:
    calls of one lane go out one after another. ``fill`` False: due batches are sealed and take no more
    records (the behaviour before batches kept filling, kept for comparison). ``apart``: records for which
    it differs never share a call: a key's batch is cut where it changes (records resumed from a job).
    """

    def __init__(self, policy: BatchPolicy | None, *, ordered: bool, fill: bool = True,
                 tokens: TokensPerCall | None = None, apart: Callable[[T], Hashable] | None = None) -> None:
        self.fill = fill  # False: a batch is sealed when due, as before calls waited for the budget
        self.apart = apart
        self.grouper: Grouper[T] | None = make_grouper(policy) if policy is not None else None
        self.ordered = ordered
        self._batch_size = policy.batch_size if policy is not None else 1
        self._max_bytes = policy.max_bytes if policy is not None else 0
        self._lanes: dict[Hashable, deque[QueuedCall[T]]] = {}
        self._busy: dict[Hashable, int] = {}  # ordered lanes with calls on the wire: how many
        self._eligible: dict[int, QueuedCall[T]] = {}  # calls that may be taken now, in the order they could
        self._ids = itertools.count(1)
        self._held_records = 0
        self._held_calls = 0
        # requests a call of this destination is expected to make (a tag created before its write, the read of
        # a read-merge-write), learned from the calls that finished (call_made); new calls take it
        self._tokens = tokens if tokens is not None else TokensPerCall()

    # -- records in ----------------------------------------------------------------------------------

    def add(self, item: T, key: tuple[Hashable, ...], size: int, now: float) -> None:
        """A record for a batched destination: joins the key's waiting call if it is open, else the grouper."""
        grouper = self.grouper
        assert grouper is not None, "add() is for batched destinations; use add_single()"
        if (deadline := grouper.next_deadline()) is not None and deadline <= now:
            self.tick(now)  # batches due by now go first: the record may join one of them
        lane = self._lane_of(key)
        calls = self._lanes.get(lane)
        if self.apart is not None:
            self._cut_apart(item, key, calls, now)
        if calls and self.fill:
            tail = calls[-1]
            if not tail.sealed:
                if tail.nbytes + size + 1 <= self._max_bytes:
                    tail.items.append(item)
                    tail.sizes.append(size)
                    tail.nbytes += size + 1
                    self._held_records += 1
                    if len(tail.items) >= self._batch_size:
                        tail.sealed, tail.reason = True, FlushReason.SIZE
                    elif tail.nbytes + 2 > self._max_bytes:
                        tail.sealed, tail.reason = True, FlushReason.BYTES
                    return
                # it is full by bytes: this record starts the key's next batch
                tail.sealed, tail.reason = True, FlushReason.BYTES
        for batch in grouper.add(item, key, size, now):
            self._enqueue_batch(batch, now)

    def add_single(self, item: T, lane: Hashable | None, size: int, now: float) -> QueuedCall[T]:
        """A record for an unbatched destination: a sealed call of its own, due at once."""
        call: QueuedCall[T] = QueuedCall(next(self._ids), lane, (), [item], [size], now, now, True)
        self._enqueue(call)
        return call

    def tick(self, now: float) -> None:
        """Batches whose window is over become due calls."""
        if self.grouper is not None:
            for batch in self.grouper.take_due(now):
                self._enqueue_batch(batch, now)

    def flush_grouped(self, now: float) -> int:
        """Every batch still being grouped becomes a due call now, its window cut short; returns how many.

        For when consumption is paused by back-pressure: no record can join those batches before their
        windows end, so waiting them out only delays the outcomes that would let consumption resume. A
        call made this way still takes its key's next records while it waits (``fill``).
        """
        if self.grouper is None:
            return 0
        batches = self.grouper.flush_all()
        for batch in batches:
            self._enqueue_batch(batch, now)
        return len(batches)

    def next_deadline(self) -> float | None:
        """When the grouper's next batch becomes due (None: nothing is being grouped)."""
        return self.grouper.next_deadline() if self.grouper is not None else None

    # -- calls out -----------------------------------------------------------------------------------

    def eligible(self) -> Iterator[QueuedCall[T]]:
        """Calls that may be taken now (due, first of an ordered lane that has nothing on the wire)."""
        return iter(self._eligible.values())

    def first_eligible(self) -> QueuedCall[T] | None:
        return next(iter(self._eligible.values()), None)

    @property
    def has_eligible(self) -> bool:
        return bool(self._eligible)

    def take(self, call: QueuedCall[T]) -> QueuedCall[T]:
        """Seal ``call`` and take it out to be sent; ordered lanes stay blocked until :meth:`done`."""
        del self._eligible[call.cid]
        calls = self._lanes[call.lane]
        if calls[0] is call:
            calls.popleft()
        else:
            calls.remove(call)
        call.sealed = True
        self._held_records -= len(call.items)
        self._held_calls -= 1
        if self.ordered and call.lane is not None:
            self._busy[call.lane] = self._busy.get(call.lane, 0) + 1
        elif not calls:
            del self._lanes[call.lane]
        return call

    def split(self, call: QueuedCall[T], indices: Collection[int]) -> QueuedCall[T]:
        """Take the records of waiting ``call`` at ``indices`` out to be sent now, as a call of their own.

        The rest stays waiting where it was, sealed (it takes no later record), and may still be taken,
        also while the part is on the wire: for records whose changes commute (the status and the tags
        asked of one ticket, ``delivery.coalesce: jobs``). The lane's next call waits for both. ``done``
        releases the part like any call taken.
        """
        chosen = sorted(set(indices))
        if not chosen or len(chosen) >= len(call.items) or chosen[-1] >= len(call.items):
            raise ValueError("split takes some of a call's records, not none or all")
        picked = set(chosen)
        part: QueuedCall[T] = QueuedCall(next(self._ids), call.lane, call.key, [call.items[i] for i in chosen],
                                         [call.sizes[i] for i in chosen], call.opened_at, call.ready_at, True,
                                         call.window_start, call.reason)
        rest = [i for i in range(len(call.items)) if i not in picked]
        call.items = [call.items[i] for i in rest]
        call.sizes = [call.sizes[i] for i in rest]
        call.nbytes = 1 + sum(call.sizes) + len(call.sizes)
        call.memo = None
        call.sealed = True
        self._held_records -= len(part.items)
        if self.ordered and call.lane is not None:
            self._busy[call.lane] = self._busy.get(call.lane, 0) + 1
        return part

    def call_made(self, requests: int) -> None:
        """A finished call made ``requests`` requests (a job's shared reads are not a call's): the calls queued
        from now on expect the figure learned so far (:class:`~worker.core.grouping.call_scheduler.TokensPerCall`)."""
        self._tokens.observe(requests)

    def done(self, call: QueuedCall[T], now: float | None = None) -> None:
        """``call`` is off the wire: the next call of its lane may go, from ``now`` on (its ``eligible_at``; None:
        counted from when it was due)."""
        lane = call.lane
        if not (self.ordered and lane is not None):
            return
        busy = self._busy.get(lane, 0) - 1
        if busy > 0:
            self._busy[lane] = busy  # another part of the lane's call is still on the wire
            return
        self._busy.pop(lane, None)
        calls = self._lanes.get(lane)
        if calls:
            head = calls[0]
            if now is not None:
                head.eligible_at = max(head.ready_at, now)
            self._eligible[head.cid] = head
        elif calls is not None:
            del self._lanes[lane]

    def drop_where(self, predicate: Callable[[T], bool]) -> int:
        """Forget the records (not on the wire) for which ``predicate`` is true; returns how many."""
        dropped = 0
        if self.grouper is not None:
            dropped += sum(len(b.items) for b in self.grouper.flush_where(predicate))
        for lane, calls in list(self._lanes.items()):
            kept: deque[QueuedCall[T]] = deque()
            for call in calls:
                keep = [i for i, item in enumerate(call.items) if not predicate(item)]
                if len(keep) == len(call.items):
                    kept.append(call)
                    continue
                gone = len(call.items) - len(keep)
                dropped += gone
                self._held_records -= gone
                if not keep:
                    self._eligible.pop(call.cid, None)
                    self._held_calls -= 1
                    continue
                call.items = [call.items[i] for i in keep]
                call.sizes = [call.sizes[i] for i in keep]
                call.memo = None
                call.nbytes = 1 + sum(call.sizes) + len(call.sizes)
                kept.append(call)
            if kept:
                self._lanes[lane] = kept
                if self.ordered and lane is not None and lane not in self._busy:
                    self._eligible.setdefault(kept[0].cid, kept[0])
            elif lane in self._busy:
                self._lanes[lane] = kept
            else:
                del self._lanes[lane]
        return dropped

    # -- counts --------------------------------------------------------------------------------------

    @property
    def grouped_records(self) -> int:
        """Records held here: in the grouper and in calls not on the wire (status ``grouped_records``)."""
        grouped = self.grouper.pending if self.grouper is not None else 0
        return grouped + self._held_records

    @property
    def waiting_calls(self) -> int:
        """Due calls not on the wire yet."""
        return self._held_calls

    @property
    def waiting_records(self) -> int:
        """Records in due calls not on the wire yet."""
        return self._held_records

    # -- internals -----------------------------------------------------------------------------------

    def _cut_apart(self, item: T, key: tuple[Hashable, ...], calls: deque[QueuedCall[T]] | None, now: float) -> None:
        """Before ``item`` joins a batch of ``key``: the key's waiting call, or its batch in the grouper, whose
        last record is apart from ``item`` takes no more records (``item`` starts the next batch)."""
        assert self.apart is not None and self.grouper is not None
        mark = self.apart(item)
        if calls and not calls[-1].sealed and self.apart(calls[-1].items[-1]) != mark:
            calls[-1].sealed, calls[-1].reason = True, FlushReason.CUT
        last = self.grouper.last_joined(key, now)
        if last is not None and self.apart(last) != mark and (batch := self.grouper.cut(key, now)) is not None:
            self._enqueue_batch(batch, now)

    def _lane_of(self, key: tuple[Hashable, ...]) -> Hashable:
        return key if self.ordered else None

    def _enqueue_batch(self, batch: Batch[T], now: float) -> None:
        # The grouper closes a batch when its window is up (it stays open here) or when it is full.
        full = (not self.fill or batch.reason in (FlushReason.SIZE, FlushReason.BYTES, FlushReason.CUT)
                or len(batch.items) >= self._batch_size or batch.nbytes + 2 > self._max_bytes)
        call: QueuedCall[T] = QueuedCall(next(self._ids), self._lane_of(batch.key), batch.key, batch.items,
                                           batch.sizes, batch.opened_at, now, full, batch.window_start,
                                           batch.reason)
        self._enqueue(call)

    def _enqueue(self, call: QueuedCall[T]) -> None:
        call.tokens = self._tokens.value
        lane = call.lane
        calls = self._lanes.get(lane)
        if calls is None:
            calls = self._lanes[lane] = deque()
        calls.append(call)
        self._held_records += len(call.items)
        self._held_calls += 1
        if not (self.ordered and lane is not None) or (len(calls) == 1 and lane not in self._busy):
            self._eligible[call.cid] = call

