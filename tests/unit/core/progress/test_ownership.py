"""Ownership transitions, broker-free: a call claimed before its partition was revoked is no longer ours,
one claimed after a re-assignment is, and a revocation waits only for the calls of its own partitions."""

from __future__ import annotations

from worker.core.progress.offsets import TopicPartitionKey
from worker.core.progress.ownership import Ownership
from worker.core.records.record import SourceRef

P0, P1 = TopicPartitionKey("t", 0), TopicPartitionKey("t", 1)


def sources(*coordinates: tuple[int, int]) -> list[SourceRef]:
    return [SourceRef("t", partition, offset, None, None) for partition, offset in coordinates]


def test_a_call_claimed_before_its_partition_was_revoked_is_no_longer_ours() -> None:
    owner = Ownership()
    mixed = owner.claim(sources((0, 1), (1, 1)))
    only_p1 = owner.claim(sources((1, 2)))
    assert mixed() and only_p1()
    owner.revoke([P0])
    assert not mixed()  # one of its partitions moved: the new owner sends its records
    assert only_p1()
    owner.revoke([P0])  # assigned back and revoked again: still not ours
    again = owner.claim(sources((0, 3)))  # claimed under the new ownership
    assert again() and not mixed()


def test_a_revocation_waits_for_the_claimed_calls_of_its_partitions_only() -> None:
    owner = Ownership()
    call = owner.claim(sources((0, 1), (0, 2)))
    owner.claim(sources((1, 5)))
    assert owner.busy([P0]) and owner.busy([P1]) and not owner.busy([TopicPartitionKey("u", 0)])
    owner.revoke([P0])
    assert owner.busy([P0])  # revoked, but the call on the wire still finishes and records its outcome
    call.release()
    call.release()  # twice: counted once
    assert not owner.busy([P0]) and owner.busy([P0, P1])


def test_a_call_that_outlives_its_forgotten_partition_cannot_hide_the_next_owners_calls() -> None:
    owner = Ownership()
    stale = owner.claim(sources((0, 1)))
    owner.revoke([P0])
    owner.forget(P0)  # the revocation stopped waiting for it
    assert not owner.busy([P0]) and not stale()
    current = owner.claim(sources((0, 9)))  # the partition came back
    stale.release()  # the old call ends late
    assert owner.busy([P0]) and current()
    current.release()
    assert not owner.busy([P0])
