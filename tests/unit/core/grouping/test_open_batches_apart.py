"""Open batches with ``apart`` (worker.core.grouping.open_batches): records for which it differs never share a
call, whether the key's batch is still in the grouper, or due and waiting in its lane; per-key order holds."""

from __future__ import annotations

from collections.abc import Hashable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from worker.core.grouping.batching import BatchPolicy, FlushReason
from worker.core.grouping.open_batches import OpenBatches

Rec = tuple[str, int | None]  # (name, the job it was in)


def job_of(rec: Rec) -> Hashable:
    return rec[1]


def drained(ob: OpenBatches[Rec]) -> list[list[str]]:
    """Every call, taken and done one at a time, oldest first."""
    out = []
    while ob.has_eligible:
        call = ob.take(min(ob.eligible(), key=lambda c: c.cid))
        out.append([name for name, _ in call.items])
        ob.done(call)
    return out


@pytest.mark.parametrize("fill", [True, False])
def test_a_keys_batch_is_cut_where_the_job_changes_in_the_grouper_and_in_the_lane(fill: bool) -> None:
    ob: OpenBatches[Rec] = OpenBatches(BatchPolicy("by_attribute", batch_size=10, max_wait=1.0), ordered=True,
                                       fill=fill, apart=job_of)
    ob.add(("a1", None), ("a",), 1, 0.0)
    ob.add(("a2", 7), ("a",), 1, 0.0)  # cut in the grouper
    ob.add(("b1", 7), ("b",), 1, 0.0)
    ob.add(("a3", 7), ("a",), 1, 0.5)
    ob.tick(2.0)
    ob.add(("a4", None), ("a",), 1, 2.0)  # a's waiting call is job 7's: a4 starts the key's next batch
    ob.add(("b2", 7), ("b",), 1, 2.0)
    ob.tick(10.0)
    assert drained(ob) == [["a1"], ["a2", "a3"], ["b1", "b2"] if fill else ["b1"], ["a4"]] + ([] if fill else [["b2"]])


def test_a_cut_call_says_why_it_was_closed() -> None:
    ob: OpenBatches[Rec] = OpenBatches(BatchPolicy("by_attribute", batch_size=10, max_wait=1.0), ordered=True,
                                       apart=job_of)
    ob.add(("a1", 7), ("a",), 1, 0.0)
    ob.add(("a2", None), ("a",), 1, 0.0)
    first = next(ob.eligible())
    assert first.sealed and first.reason is FlushReason.CUT and ob.waiting_records == 1
    assert ob.grouped_records == 2


def test_arrival_order_cuts_its_one_batch_where_the_job_changes() -> None:
    ob: OpenBatches[Rec] = OpenBatches(BatchPolicy("arrival_order", batch_size=10, max_wait=1.0), ordered=False,
                                       apart=job_of)
    for rec in [("x", 7), ("y", 7), ("z", None), ("w", 8)]:
        ob.add(rec, (), 1, 0.0)
    ob.tick(5.0)
    assert sorted(drained(ob)) == [["w"], ["x", "y"], ["z"]]


ADDS = st.lists(st.tuples(st.sampled_from("abc"), st.sampled_from([None, 7, 8]), st.integers(0, 3)),
                max_size=40)


@settings(max_examples=100, deadline=None)
@given(adds=ADDS, algorithm=st.sampled_from(["by_attribute", "tumbling_window", "session_window"]),
       fill=st.booleans(), size=st.integers(1, 5))
def test_no_call_mixes_jobs_and_each_keys_records_go_in_order(
        adds: list[tuple[str, int | None, int]], algorithm: str, fill: bool, size: int) -> None:
    ob: OpenBatches[Rec] = OpenBatches(BatchPolicy(algorithm, batch_size=size, max_wait=1.0, window=1.0, gap=1.0),
                                       ordered=True, fill=fill, apart=job_of)
    now = 0.0
    for n, (key, job, pause) in enumerate(adds):
        now += pause / 4
        ob.add((f"{key}{n}", job), (key,), 1, now)
    ob.flush_grouped(now + 10)
    sent: dict[str, list[str]] = {}
    while ob.has_eligible:
        call = ob.take(min(ob.eligible(), key=lambda c: c.cid))
        assert len({job for _, job in call.items}) == 1, call.items
        sent.setdefault(str(call.key[0]), []).extend(name for name, _ in call.items)
        ob.done(call)
    expected: dict[str, list[str]] = {}
    for n, (key, _, _) in enumerate(adds):
        expected.setdefault(key, []).append(f"{key}{n}")
    assert sent == expected
