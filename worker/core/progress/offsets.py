"""Which source offsets may be committed: only those whose outcome Kafka has acknowledged.

Records of a partition finish out of order (calls run concurrently across keys). The tracker keeps,
per partition, the offsets consumed and not yet finished; the committable position is the lowest
unfinished offset, or one past the last consumed offset when all are finished. Committing that
position never skips an unfinished record, so a restart re-delivers exactly the unfinished ones.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import NamedTuple


class TopicPartitionKey(NamedTuple):
    topic: str
    partition: int


@dataclass(slots=True)
class _PartitionState:
    pending: deque[int] = field(default_factory=deque)  # consumed offsets, in consumption order
    finished: set[int] = field(default_factory=set)  # finished, but behind an unfinished one
    next_offset: int | None = None  # one past the highest offset consumed
    committed: int | None = None  # last position handed out by committable()


class OffsetTracker:
    """Per-partition bookkeeping of consumed and finished offsets (pure, no I/O)."""

    def __init__(self) -> None:
        self._parts: dict[TopicPartitionKey, _PartitionState] = {}
        self._pending = 0

    @property
    def pending_records(self) -> int:
        """Records consumed and not finished yet, across partitions."""
        return self._pending

    def consumed(self, tp: TopicPartitionKey, offset: int) -> None:
        state = self._parts.get(tp)
        if state is None:
            state = self._parts[tp] = _PartitionState()
        elif state.next_offset is not None and offset < state.next_offset:
            raise ValueError(f"{tp}: offset {offset} consumed again (next expected {state.next_offset})")
        state.pending.append(offset)
        state.next_offset = offset + 1
        self._pending += 1

    def finished(self, tp: TopicPartitionKey, offset: int) -> None:
        state = self._parts.get(tp)
        if state is None or state.next_offset is None or offset >= state.next_offset:
            return  # partition revoked and forgotten meanwhile, or never consumed
        if state.pending and state.pending[0] == offset:
            state.pending.popleft()
            while state.pending and state.pending[0] in state.finished:
                state.finished.discard(state.pending.popleft())
        elif offset in state.finished or not state.pending or offset < state.pending[0]:
            return  # duplicate or stale notification
        else:
            state.finished.add(offset)
        self._pending -= 1

    def unfinished(self, tp: TopicPartitionKey) -> int:
        state = self._parts.get(tp)
        return 0 if state is None else len(state.pending) - len(state.finished)

    def position(self, tp: TopicPartitionKey) -> int | None:
        """The offset to commit for ``tp`` now (next record to read after a restart)."""
        state = self._parts.get(tp)
        if state is None:
            return None
        if state.pending:
            return state.pending[0]
        return state.next_offset

    def consumed_upto(self, tp: TopicPartitionKey) -> int | None:
        """One past the highest offset consumed on ``tp``."""
        state = self._parts.get(tp)
        return None if state is None else state.next_offset

    def committable(self) -> dict[TopicPartitionKey, int]:
        """Positions that moved since the last call (to pass to the consumer's commit)."""
        out: dict[TopicPartitionKey, int] = {}
        for tp, state in self._parts.items():
            pos = state.pending[0] if state.pending else state.next_offset
            if pos is not None and pos != state.committed:
                out[tp] = pos
        return out

    def committed(self, tp: TopicPartitionKey) -> int | None:
        """The last offset this tracker saw committed for ``tp`` (None before the first commit)."""
        state = self._parts.get(tp)
        return None if state is None else state.committed

    def mark_committed(self, positions: dict[TopicPartitionKey, int]) -> None:
        for tp, pos in positions.items():
            state = self._parts.get(tp)
            if state is not None:
                state.committed = pos

    def forget(self, tp: TopicPartitionKey) -> None:
        """Drop a revoked partition (its unfinished records will be re-delivered to the new owner)."""
        state = self._parts.pop(tp, None)
        if state is not None:
            self._pending -= len(state.pending) - len(state.finished)

    def partitions(self) -> list[TopicPartitionKey]:
        return list(self._parts)
