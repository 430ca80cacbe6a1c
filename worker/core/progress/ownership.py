"""Which calls still belong to this worker while partitions move between workers. Pure.

Each source partition has an *epoch*, raised when the partition is revoked. A call claims the
current epochs of its records' partitions; it may still be sent (or its dead letter written) only while
they are unchanged, since a revoked partition's records are delivered by their new owner. Claimed calls
are also counted per partition, so that a revocation can wait for the calls already on the wire.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from worker.core.progress.offsets import TopicPartitionKey
from worker.core.records.record import SourceRef


def partitions_of(sources: Iterable[SourceRef]) -> set[TopicPartitionKey]:
    return {TopicPartitionKey(s.topic, s.partition) for s in sources}


class Claim:
    """A call's hold on its partitions: true while they are still ours; :meth:`release` when it is over."""

    __slots__ = ("_counted", "_held", "_owner")

    def __init__(self, owner: Ownership, held: list[tuple[TopicPartitionKey, int]]) -> None:
        self._owner = owner
        self._held = held
        self._counted = True

    def __call__(self) -> bool:
        return all(self._owner.epoch(tp) == e for tp, e in self._held)

    def owns(self, source: SourceRef) -> bool:
        """Whether ``source``'s partition is still ours (a call spanning partitions may lose some of them)."""
        tp = TopicPartitionKey(source.topic, source.partition)
        return any(held == tp and self._owner.epoch(tp) == e for held, e in self._held)

    def stop_counting(self) -> None:
        """The call no longer holds a revocation up (a Gorgias job being followed: its new owner follows it);
        it still tells whether its partitions are ours."""
        if self._counted:
            self._counted = False
            self._owner.unclaim(self._held)

    def release(self) -> None:
        """The call is over (sent and recorded, dropped or failed); a second release does nothing."""
        self.stop_counting()
        self._held = []


class Ownership:
    """Epochs and claimed calls per source partition.

    Calls are counted per partition *and epoch*: a call of an earlier ownership that ends after its
    partition was forgotten cannot lower the count of the partition's next ownership.
    """

    def __init__(self) -> None:
        self._epoch: dict[TopicPartitionKey, int] = {}
        self._active: Counter[tuple[TopicPartitionKey, int]] = Counter()

    def epoch(self, tp: TopicPartitionKey) -> int:
        return self._epoch.get(tp, 0)

    def claim(self, sources: Iterable[SourceRef]) -> Claim:
        """Count a call against its partitions' current ownership."""
        held = [(tp, self.epoch(tp)) for tp in partitions_of(sources)]
        self._active.update(held)
        return Claim(self, held)

    def revoke(self, tps: Iterable[TopicPartitionKey]) -> None:
        """The partitions move away: every call claimed before no longer belongs to this owner."""
        for tp in tps:
            self._epoch[tp] = self.epoch(tp) + 1

    def busy(self, tps: Iterable[TopicPartitionKey]) -> bool:
        """Whether a claimed call of any of ``tps`` (of any ownership) is not over yet."""
        wanted = set(tps)
        return any(count > 0 and tp in wanted for (tp, _), count in self._active.items())

    def forget(self, tp: TopicPartitionKey) -> None:
        """Stop counting the calls of ``tp`` claimed so far (the partition is gone); its epoch stays, so a
        late call of it still sees the change."""
        for key in [k for k in self._active if k[0] == tp]:
            del self._active[key]

    def unclaim(self, held: list[tuple[TopicPartitionKey, int]]) -> None:
        """The counterpart of :meth:`claim`: a call of ``held`` no longer holds their revocation up."""
        for key in held:
            if self._active.get(key, 0) > 0:
                self._active[key] -= 1
