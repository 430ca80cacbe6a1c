"""Open batches (worker.core.grouping.open_batches) and the account's call scheduler
(worker.core.grouping.call_scheduler), pure.

A small discrete simulation drives them with an injected clock and an injected token source (one token
every ``tick`` seconds), calls that stay on the wire for a while and a limited number of slots, and
checks what must hold whatever the arrivals: no record lost or sent twice, per-key order, every limit,
the aged share (while a call is past the age bound, at least one token in ``aged_call_every`` goes to
the oldest such call), and that a call waiting for a token keeps taking its key's records.

Times are multiples of 1/4 s so the float arithmetic is exact.
"""

from __future__ import annotations

import itertools
import os
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from worker.core.grouping.batching import BatchPolicy
from worker.core.grouping.call_scheduler import AccountScheduler, Candidate, Fairness, SchedulerPolicy, TokensPerCall
from worker.core.grouping.open_batches import OpenBatches, QueuedCall

EXAMPLES = int(os.environ.get("BATCHING_EXAMPLES", "50"))
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
STEP = 0.25


@dataclass(frozen=True)
class Rec:
    uid: int
    key: tuple[Any, ...]
    t: float
    size: int
    part: int = 0


@dataclass(eq=False)
class Dest:
    """A destination as the scheduler sees it: open batches plus concurrency slots and a pause switch."""

    batches: OpenBatches[Rec]
    slots: int
    on_wire: list[tuple[float, QueuedCall[Rec]]] = field(default_factory=list)
    paused: bool = False

    def candidates(self) -> Iterator[Candidate]:
        if self.paused or len(self.on_wire) >= self.slots:
            return iter(())
        return self.batches.eligible()

    def waiting_records(self) -> int:
        return self.batches.waiting_records


@dataclass
class Grant:
    t: float
    dest: int
    call: QueuedCall[Rec]
    items: list[Rec]
    overdue_front: float | None  # ready_at of the oldest overdue candidate at grant time, if any
    ready_at: float


def simulate(
    dests: list[Dest],
    arrivals: list[tuple[int, Rec]],
    *,
    tick: float,
    duration: float,
    policy: SchedulerPolicy,
    horizon: float = 10_000.0,
) -> list[Grant]:
    """Run until every record is sent; a token every ``tick`` s (contended), calls last ``duration`` s."""
    sched = AccountScheduler(policy)
    for d in dests:
        sched.add(d)
    arrivals = sorted(arrivals, key=lambda a: a[1].t)
    grants: list[Grant] = []
    next_token = 0.0
    t = 0.0
    i = 0
    while t < horizon:
        while i < len(arrivals) and arrivals[i][1].t <= t:
            di, rec = arrivals[i]
            dests[di].batches.add(rec, rec.key, rec.size, t)
            i += 1
        for d in dests:
            d.batches.tick(t)
            for end, call in [w for w in d.on_wire if w[0] <= t]:
                d.on_wire.remove((end, call))
                d.batches.done(call)
        while t >= next_token:
            limit = t - policy.age_bound_s
            overdue = [c.ready_at for d in dests for c in d.candidates() if c.ready_at <= limit]
            picked = sched.choose(t, contended=True)
            if picked is None:
                break
            src, cand = picked
            d = next(x for x in dests if x is src)
            assert isinstance(cand, QueuedCall)
            ready_at = cand.ready_at
            call = d.batches.take(cand)
            sched.charge(d, call.tokens)
            d.on_wire.append((t + duration, call))
            grants.append(Grant(t, dests.index(d), call, list(call.items), min(overdue, default=None), ready_at))
            next_token += tick
        if t >= next_token:
            next_token = t + tick  # nothing to send: the token is not banked beyond one
        if i >= len(arrivals) and all(d.batches.grouped_records == 0 and not d.on_wire for d in dests):
            break
        t += STEP
    return grants


KEYS = [("a",), ("b",), ("c",), ("d",)]


@st.composite
def scenarios(draw: st.DrawFn) -> dict[str, Any]:
    n_dest = draw(st.integers(1, 2))
    batch_size = draw(st.integers(1, 8))
    max_bytes = draw(st.integers(20, 120))
    max_wait = draw(st.sampled_from([0.25, 0.5, 1.0, 2.0]))
    algorithm = draw(st.sampled_from(["by_attribute", "session_window", "tumbling_window", "arrival_order"]))
    ordered = algorithm != "arrival_order"
    dests = []
    for _ in range(n_dest):
        policy = BatchPolicy(algorithm, batch_size=batch_size, max_bytes=max_bytes, max_wait=max_wait,
                             window=1.0, gap=max_wait)
        dests.append(Dest(OpenBatches(policy, ordered=ordered), slots=draw(st.integers(1, 3))))
    n = draw(st.integers(1, 60))
    t = 0.0
    arrivals = []
    for uid in range(n):
        t += draw(st.integers(0, 3)) * STEP
        key = KEYS[draw(st.integers(0, len(KEYS) - 1))] if ordered else ()
        size = draw(st.integers(1, 12) | st.integers(100, 130))
        arrivals.append((draw(st.integers(0, n_dest - 1)), Rec(uid, key, t, size, draw(st.integers(0, 1)))))
    return {
        "dests": dests,
        "arrivals": arrivals,
        "tick": draw(st.sampled_from([0.25, 0.5, 1.0, 2.0])),
        "duration": draw(st.sampled_from([0.0, 0.25, 1.0])),
        "policy": SchedulerPolicy(age_bound_s=draw(st.sampled_from([1.0, 3.0, 30.0])),
                                  fairness=draw(st.sampled_from(list(Fairness))),
                                  aged_call_every=draw(st.integers(1, 5))),
        "batch_size": batch_size,
        "max_bytes": max_bytes,
        "ordered": ordered,
    }


@SETTINGS
@given(scenarios())
def test_every_record_sent_once_in_key_order_within_limits(s: dict[str, Any]) -> None:
    grants = simulate(s["dests"], s["arrivals"], tick=s["tick"], duration=s["duration"], policy=s["policy"])
    sent = [r.uid for g in grants for r in g.items]
    assert sorted(sent) == sorted(r.uid for _, r in s["arrivals"])  # none lost, none twice
    per_key: dict[tuple[int, Any], list[int]] = defaultdict(list)
    for g in grants:
        assert 1 <= len(g.items) <= s["batch_size"]
        body = 2 + sum(r.size for r in g.items) + len(g.items) - 1
        assert body <= s["max_bytes"] or len(g.items) == 1
        assert g.call.nbytes == body
        for r in g.items:
            per_key[(g.dest, r.key)].append(r.uid)
    if s["ordered"]:
        for uids in per_key.values():
            assert uids == sorted(uids)  # uids grow with arrival time


@SETTINGS
@given(scenarios())
def test_while_a_call_is_overdue_one_token_in_n_goes_to_the_oldest_overdue_call(s: dict[str, Any]) -> None:
    """The age guarantee: once a call is *at the front* (due, first of its key with nothing of the key on
    the wire, a slot free, and the oldest of the calls past the age bound) it goes within
    ``aged_call_every`` tokens. So nothing starves (the calls due before it are finitely many), and at
    a saturated account at most one token in ``aged_call_every`` is given for age alone."""
    n = s["policy"].aged_call_every
    grants = simulate(s["dests"], s["arrivals"], tick=s["tick"], duration=s["duration"], policy=s["policy"])
    passed_over = 0  # grants in a row that went elsewhere while an overdue call waited
    for g in grants:
        if g.overdue_front is None or g.ready_at == g.overdue_front:
            passed_over = 0
        else:
            passed_over += 1
        assert passed_over < n


@SETTINGS
@given(scenarios())
def test_a_call_waiting_for_its_turn_never_holds_a_record_of_another_key(s: dict[str, Any]) -> None:
    grants = simulate(s["dests"], s["arrivals"], tick=s["tick"], duration=s["duration"], policy=s["policy"])
    for g in grants:
        assert len({r.key for r in g.items}) == 1
        assert len({r.t for r in g.items}) >= 1
        assert g.t >= min(r.t for r in g.items)


def by_attribute(batch_size: int = 100, max_wait: float = 1.0, max_bytes: int = 1_000_000) -> BatchPolicy:
    return BatchPolicy("by_attribute", batch_size=batch_size, max_bytes=max_bytes, max_wait=max_wait)


def test_a_due_call_keeps_taking_records_until_its_token_comes() -> None:
    """Window 1 s, one token every 10 s: the first call carries every record that arrived while it waited."""
    d = Dest(OpenBatches(by_attribute(), ordered=True), slots=4)
    arrivals = [(0, Rec(i, ("t1",), i * 0.5, 10)) for i in range(40)]  # 2 records/s for 20 s
    grants = simulate([d], arrivals, tick=10.0, duration=0.25, policy=SchedulerPolicy())
    # token at 0 (nothing due), at 10 (window closed at 1.0 and the call kept filling), at 20, ...
    assert [g.t for g in grants][:2] == [10.0, 20.0]
    assert [r.uid for r in grants[0].items] == list(range(21))  # 0 .. 10.0 s
    assert len(grants) <= 3


def test_a_full_call_is_sealed_and_the_next_records_start_a_batch_behind_it() -> None:
    d = Dest(OpenBatches(by_attribute(batch_size=5), ordered=True), slots=4)
    arrivals = [(0, Rec(i, ("t1",), i * 0.25, 10)) for i in range(12)]
    grants = simulate([d], arrivals, tick=10.0, duration=0.25, policy=SchedulerPolicy())
    assert [[r.uid for r in g.items] for g in grants] == [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9], [10, 11]]


def test_when_tokens_are_plenty_the_window_is_the_latency_floor() -> None:
    d = Dest(OpenBatches(by_attribute(max_wait=1.0), ordered=True), slots=4)
    arrivals = [(0, Rec(0, ("t1",), 0.0, 10)), (0, Rec(1, ("t1",), 0.5, 10)), (0, Rec(2, ("t1",), 1.5, 10))]
    grants = simulate([d], arrivals, tick=0.25, duration=0.0, policy=SchedulerPolicy())
    assert [(g.t, [r.uid for r in g.items]) for g in grants] == [(1.0, [0, 1]), (2.5, [2])]


def test_most_records_per_token_goes_first_and_the_age_bound_stops_starvation() -> None:
    ob: OpenBatches[Rec] = OpenBatches(by_attribute(max_wait=0.25), ordered=True)
    d = Dest(ob, slots=10)
    ob.add(Rec(0, ("sparse",), 0.0, 5), ("sparse",), 5, 0.0)
    for i in range(1, 6):
        ob.add(Rec(i, ("busy",), 0.0, 5), ("busy",), 5, 0.0)
    ob.tick(1.0)
    sched = AccountScheduler(SchedulerPolicy(age_bound_s=30.0, aged_call_every=1))
    sched.add(d)
    picked = sched.choose(1.0, contended=True)
    assert picked is not None and picked[1].records == 5
    ob.take(picked[1])  # type: ignore[arg-type]
    sched.charge(d, 1)
    ob.add(Rec(9, ("busy2",), 1.0, 5), ("busy2",), 5, 1.0)
    ob.add(Rec(10, ("busy2",), 1.0, 5), ("busy2",), 5, 1.0)
    ob.tick(2.0)
    picked = sched.choose(2.0, contended=True)
    assert picked is not None and picked[1].records == 2  # busier than the one-record call
    picked = sched.choose(31.0, contended=True)
    assert picked is not None and picked[1].records == 1  # "sparse" is past the 30 s bound: it goes first
    # without contention, calls go in the order they became ready
    picked = sched.choose(2.0, contended=False)
    assert picked is not None and picked[1].records == 1


def test_at_a_saturated_account_most_tokens_still_go_to_full_calls() -> None:
    """Every call is past the age bound (keys come round every few minutes): with ``aged_call_every`` 4
    three tokens in four go to the fullest calls and the fourth to the oldest, instead of every token
    going oldest first to one-record calls."""
    ob: OpenBatches[Rec] = OpenBatches(by_attribute(max_wait=0.25, batch_size=50), ordered=True)
    d = Dest(ob, slots=1000)
    uid = itertools.count()
    for k in range(40):  # rare keys, one record each, the oldest
        ob.add(Rec(next(uid), (f"rare{k}",), 0.0, 5), (f"rare{k}",), 5, 0.0)
    ob.tick(1.0)
    for k in range(40):  # busy keys, full calls, younger
        for _ in range(50):
            ob.add(Rec(next(uid), (f"busy{k}",), 10.0, 5), (f"busy{k}",), 5, 10.0)
    ob.tick(11.0)
    sched = AccountScheduler(SchedulerPolicy(age_bound_s=30.0, aged_call_every=4))
    sched.add(d)
    sizes = []
    for i in range(40):
        picked = sched.choose(300.0 + i, contended=True)
        assert picked is not None
        sizes.append(ob.take(picked[1]).records)  # type: ignore[arg-type]
        sched.charge(d, 1)
    assert sizes == [50, 50, 50, 1] * 10
    # with aged_call_every 1 (every token to the oldest overdue call) the same account would have sent
    # the 40 one-record calls first
def test_fairness_by_records_shares_tokens_in_proportion_to_records_waiting() -> None:
    big = Dest(OpenBatches(None, ordered=True), slots=1000)
    small = Dest(OpenBatches(None, ordered=True), slots=1000)
    for i in range(300):
        big.batches.add_single(Rec(i, (), 0.0, 1), None, 1, 0.0)
    for i in range(100):
        small.batches.add_single(Rec(1000 + i, (), 0.0, 1), None, 1, 0.0)
    sched = AccountScheduler(SchedulerPolicy(fairness=Fairness.RECORDS))
    sched.add(big)
    sched.add(small)
    served = {id(big): 0, id(small): 0}
    for _ in range(100):
        picked = sched.choose(0.0, contended=True)
        assert picked is not None
        src, call = picked
        dest = big if src is big else small
        dest.batches.take(call)  # type: ignore[arg-type]
        sched.charge(dest, 1)
        served[id(dest)] += 1
    assert 65 <= served[id(big)] <= 85  # about 3 : 1

    equal = AccountScheduler(SchedulerPolicy(fairness=Fairness.EQUAL))
    equal.add(big)
    equal.add(small)
    served = {id(big): 0, id(small): 0}
    for _ in range(40):
        picked = equal.choose(0.0, contended=True)
        assert picked is not None
        src, call = picked
        dest = big if src is big else small
        dest.batches.take(call)  # type: ignore[arg-type]
        equal.charge(dest, 1)
        served[id(dest)] += 1
    assert served[id(big)] == served[id(small)] == 20


def test_paused_destination_holds_its_calls_and_others_keep_going() -> None:
    a = Dest(OpenBatches(None, ordered=True), slots=4, paused=True)
    b = Dest(OpenBatches(None, ordered=True), slots=4)
    arrivals = [(0, Rec(0, (), 0.0, 1)), (1, Rec(1, (), 0.0, 1))]
    a.batches.add_single(arrivals[0][1], None, 1, 0.0)
    b.batches.add_single(arrivals[1][1], None, 1, 0.0)
    sched = AccountScheduler()
    sched.add(a)
    sched.add(b)
    picked = sched.choose(0.0, contended=False)
    assert picked is not None and picked[0] is b
    b.batches.take(picked[1])  # type: ignore[arg-type]
    assert sched.choose(0.0, contended=False) is None
    assert a.batches.waiting_calls == 1
    a.paused = False
    picked = sched.choose(0.0, contended=False)
    assert picked is not None and picked[0] is a


def test_unbatched_calls_of_one_kafka_key_go_one_after_another() -> None:
    ob: OpenBatches[Rec] = OpenBatches(None, ordered=True)
    first = ob.add_single(Rec(0, (), 0.0, 1), b"k", 1, 0.0)
    ob.add_single(Rec(1, (), 0.0, 1), b"k", 1, 0.0)
    ob.add_single(Rec(2, (), 0.0, 1), None, 1, 0.0)
    ob.add_single(Rec(3, (), 0.0, 1), None, 1, 0.0)
    assert [c.items[0].uid for c in ob.eligible()] == [0, 2, 3]
    ob.take(first)
    assert [c.items[0].uid for c in ob.eligible()] == [2, 3]
    ob.done(first)
    assert [c.items[0].uid for c in ob.eligible()] == [2, 3, 1]


def test_a_split_call_sends_some_records_now_and_the_lanes_next_call_waits_for_both_parts() -> None:
    ob: OpenBatches[Rec] = OpenBatches(by_attribute(max_wait=1.0), ordered=True)
    for i in range(4):
        rec = Rec(i, ("k",), 0.0, 3)
        ob.add(rec, rec.key, 3, 0.0)
    ob.tick(1.0)
    call = next(ob.eligible())
    part = ob.split(call, [0, 2])
    assert [r.uid for r in part.items] == [0, 2] and part.sealed
    assert [r.uid for r in call.items] == [1, 3] and call.sealed and call.nbytes == 1 + 6 + 2
    assert ob.grouped_records == 2 and ob.waiting_records == 2 and ob.waiting_calls == 1
    later = Rec(4, ("k",), 2.0, 3)
    ob.add(later, later.key, 3, 2.0)  # the rest takes no later record: it starts the next batch
    ob.tick(3.0)
    assert [c.items[0].uid for c in ob.eligible()] == [1]  # the rest may go while the part is on the wire
    ob.take(call)
    ob.done(part)
    assert list(ob.eligible()) == []  # the next call waits for the rest too
    ob.done(call)
    assert [[r.uid for r in c.items] for c in ob.eligible()] == [[4]]
    with pytest.raises(ValueError):
        ob.split(next(ob.eligible()), [0])  # not all of a call's records


def test_drop_where_forgets_records_of_revoked_partitions_only() -> None:
    ob: OpenBatches[Rec] = OpenBatches(by_attribute(max_wait=1.0), ordered=True)
    for i in range(6):
        rec = Rec(i, ("k",), 0.0, 3, part=i % 2)
        ob.add(rec, rec.key, 3, 0.0)
    ob.tick(1.0)
    rec = Rec(6, ("k",), 1.0, 3, part=0)
    ob.add(rec, rec.key, 3, 1.0)  # joins the due call
    assert ob.grouped_records == 7 and ob.waiting_calls == 1
    assert ob.drop_where(lambda r: r.part == 0) == 4
    call = next(ob.eligible())
    assert [r.uid for r in call.items] == [1, 3, 5]
    assert call.nbytes == 2 + 9 + 2
    assert ob.grouped_records == 3


def test_flush_grouped_makes_every_batch_being_grouped_due_and_it_keeps_filling() -> None:
    """Back-pressure paused consumption: batches still in their window become due calls at once, in the order
    they were opened, each keeping its key's lane order, and a key's later records still join its due call."""
    batches: OpenBatches[Rec] = OpenBatches(by_attribute(batch_size=3, max_wait=2.0), ordered=True)
    batches.add(Rec(0, ("a",), 0.0, 10), ("a",), 10, 0.0)
    batches.add(Rec(1, ("b",), 0.0, 10), ("b",), 10, 0.25)
    batches.add(Rec(2, ("a",), 0.0, 10), ("a",), 10, 0.5)
    assert not batches.has_eligible and batches.grouped_records == 3  # windows end at 2.0 and 2.25

    assert batches.flush_grouped(0.75) == 2
    due = list(batches.eligible())
    assert [[r.uid for r in c.items] for c in due] == [[0, 2], [1]]
    assert all(c.ready_at == 0.75 and not c.sealed for c in due)
    assert batches.grouped_records == 3 and batches.waiting_calls == 2 and batches.next_deadline() is None

    batches.add(Rec(3, ("a",), 1.0, 10), ("a",), 10, 1.0)  # joins a's due call, which is now full
    assert [r.uid for r in due[0].items] == [0, 2, 3] and due[0].sealed
    assert batches.flush_grouped(1.25) == 0  # nothing left in the grouper


def test_flush_grouped_does_nothing_unbatched() -> None:
    batches: OpenBatches[Rec] = OpenBatches(None, ordered=True)
    batches.add_single(Rec(0, ("a",), 0.0, 10), "a", 10, 0.0)
    assert batches.flush_grouped(1.0) == 0 and batches.waiting_calls == 1


def test_records_per_token_counts_every_request_a_call_is_expected_to_make() -> None:
    """A call expected to make three requests (tags created before the write) carries a third of its records per
    token: a call of one request and fewer records goes before it."""
    d = Dest(OpenBatches(None, ordered=False, tokens=TokensPerCall(weight=1.0)), slots=10)
    d.batches.call_made(3)
    costly = d.batches.add_single(Rec(0, (), 0.0, 1), None, 1, 0.0)
    d.batches.call_made(1)
    cheap = d.batches.add_single(Rec(1, (), 0.0, 1), None, 1, 0.25)
    assert (costly.tokens, cheap.tokens) == (3.0, 1.0)
    sched = AccountScheduler(SchedulerPolicy())
    sched.add(d)
    picked = sched.choose(0.5, contended=True)
    assert picked is not None and picked[1] is cheap


def test_tokens_per_call_follows_the_requests_calls_made() -> None:
    estimate = TokensPerCall(weight=0.5)
    assert estimate.value == 1.0
    assert estimate.observe(3) == 2.0
    assert estimate.observe(3) == 2.5
    assert estimate.observe(0) == 2.5  # a call that made no request says nothing
    for _ in range(20):
        estimate.observe(1)
    assert estimate.value == pytest.approx(1.0, abs=1e-3)


@dataclass(frozen=True)
class Offer:
    """A candidate as the scheduler sees it: a call (never held) or a group gathering until ``held_until``."""

    name: str
    records: int
    ready_at: float = 0.0
    held_until: float = float("-inf")
    tokens: float = 1.0


@dataclass(eq=False)
class Offers:
    offers: list[Offer]

    def candidates(self) -> Iterator[Candidate]:
        return iter(self.offers)

    def waiting_records(self) -> int:
        return sum(o.records for o in self.offers)


def chosen(scheduler: AccountScheduler, now: float, *, contended: bool = True, losing: bool = False) -> str | None:
    picked = scheduler.choose(now, contended=contended, losing=losing)
    return None if picked is None else picked[1].name  # type: ignore[attr-defined]


def test_a_held_candidate_is_not_offered_while_calls_wait_and_others_take_the_tokens() -> None:
    offers = Offers([Offer("call", 2, ready_at=50.0), Offer("group", 40, held_until=130.0), Offer("riding", 0)])
    scheduler = AccountScheduler(SchedulerPolicy(aged_call_every=1))  # the oldest overdue first, if offered
    scheduler.add(offers)
    assert chosen(scheduler, 100.0) == "call" and scheduler.next_offer == 130.0
    offers.offers.pop(0)
    assert chosen(scheduler, 100.0) is None and scheduler.next_offer == 130.0  # a riding call waits for its group
    assert chosen(scheduler, 130.0) == "group" and scheduler.next_offer is None
    assert chosen(scheduler, 100.0, losing=True) == "group"  # a token not spent now is lost: nothing is held


def test_when_the_budget_is_free_nothing_is_held_the_first_ready_call_goes() -> None:
    offers = Offers([Offer("riding", 0), Offer("group", 40, held_until=30.0)])
    scheduler = AccountScheduler()
    scheduler.add(offers)
    assert chosen(scheduler, 20.0, contended=False) == "riding" and scheduler.next_offer is None


def test_a_lanes_next_call_may_go_from_when_the_lane_is_free() -> None:
    ob: OpenBatches[str] = OpenBatches(BatchPolicy(algorithm="by_attribute", max_wait=1.0), ordered=True)
    ob.add("a1", ("a",), 1, 0.0)
    ob.tick(1.0)
    first = ob.take(next(ob.eligible()))
    ob.add("a2", ("a",), 1, 2.0)
    ob.tick(3.0)
    assert list(ob.eligible()) == []
    ob.done(first, 50.0)
    [second] = ob.eligible()
    assert (second.ready_at, second.eligible_at, second.held_until) == (3.0, 50.0, float("-inf"))
    ob.add("b1", ("b",), 1, 60.0)
    ob.tick(61.0)
    assert [c.eligible_at for c in ob.eligible()] == [50.0, 61.0]  # a free lane's call: from when it is due
