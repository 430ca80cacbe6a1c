"""Shares of an account's budget that follow what each replica has waiting: the arithmetic."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from worker.core.grouping.demand_shares import (
    EXPIRE_S,
    FLOOR,
    GONE_AFTER_S,
    RAISE_AFTER_S,
    RECENT_S,
    DemandBoard,
    DemandMeter,
    DemandRamp,
    capped_demand,
    demand_level,
    demand_share,
)


class TestDemandShare:
    def test_alone_takes_the_whole_budget(self) -> None:
        assert demand_share(0, []) == 1.0
        assert demand_share(50, []) == 1.0

    def test_the_busy_replica_takes_all_but_the_idle_ones_floor(self) -> None:
        assert demand_share(38, [0, 0]) == pytest.approx(1 - 2 * FLOOR)
        assert demand_share(0, [38, 0]) == pytest.approx(FLOOR)

    def test_nobody_waiting_splits_evenly(self) -> None:
        assert demand_share(0, [0, 0]) == pytest.approx(1 / 3)

    def test_in_proportion_to_demand(self) -> None:
        assert demand_share(30, [10]) == pytest.approx(FLOOR + (1 - 2 * FLOOR) * 0.75)

    def test_many_replicas_keep_a_floor_they_can_all_have(self) -> None:
        assert demand_share(0, [5] * 99) == pytest.approx(min(FLOOR, 1 / 100))

    @given(st.lists(st.integers(0, 10_000), min_size=1, max_size=40))
    def test_the_shares_of_one_view_add_up_to_one(self, demands: list[int]) -> None:
        shares = [demand_share(d, demands[:i] + demands[i + 1:]) for i, d in enumerate(demands)]
        assert sum(shares) == pytest.approx(1.0)
        assert all(0 < s <= 1 for s in shares)


def test_demand_is_capped_at_one_bucket() -> None:
    assert capped_demand(10_000, 38) == 38
    assert capped_demand(7, 38) == 7
    assert capped_demand(-1, 38) == 0


class TestDemandMeter:
    def test_calls_due_and_calls_started_lately(self) -> None:
        meter = DemandMeter()
        assert meter.demand(due=4, started=0, now=0.0, account_usable=38) == 4
        assert meter.demand(due=0, started=2, now=1.0, account_usable=38) == 2  # a trickle the budget keeps up with
        assert meter.demand(due=0, started=2, now=1.0 + RECENT_S, account_usable=38) == 0  # nothing lately

    def test_capped_at_one_bucket(self) -> None:
        meter = DemandMeter()
        meter.demand(due=0, started=0, now=0.0, account_usable=38)
        assert meter.demand(due=5_000, started=30, now=2.0, account_usable=38) == 32  # 38, as a power of two

    def test_about_equally_busy_replicas_ask_the_same(self) -> None:
        assert {DemandMeter().demand(due=d, started=0, now=0.0, account_usable=38) for d in (17, 19, 23, 31)} == {16}
        assert [demand_level(d) for d in (0, 1, 2, 3, 4, 7, 8)] == [0, 1, 2, 2, 4, 4, 8]


class TestDemandBoard:
    def test_not_fresh_until_it_hears_itself_keeps_the_floor(self) -> None:
        board = DemandBoard("me")
        board.heard("acme/basic", "other", 0, now=0.0)
        assert board.share("acme/basic", 10, now=0.0) == FLOOR
        board.heard("acme/basic", "me", 10, now=0.5)
        assert board.share("acme/basic", 10, now=0.5) == pytest.approx(1 - FLOOR)

    def test_a_silent_replica_is_gone_after_it_fell_to_the_floor_itself(self) -> None:
        board = DemandBoard("me")
        board.heard("acme/basic", "other", 38, now=0.0)
        board.heard("acme/basic", "me", 38, now=EXPIRE_S + 1)
        assert board.others("acme/basic", now=EXPIRE_S + 1) == [38]  # alive but cut off: on its floor by now
        board.heard("acme/basic", "me", 38, now=GONE_AFTER_S + 0.1)
        assert board.others("acme/basic", now=GONE_AFTER_S + 0.1) == []
        assert board.share("acme/basic", 38, now=GONE_AFTER_S + 0.1) == 1.0

    def test_going_stale_itself_falls_to_the_floor(self) -> None:
        board = DemandBoard("me")
        board.heard("acme/basic", "me", 38, now=0.0)
        assert board.share("acme/basic", 38, now=1.0) == 1.0
        assert board.share("acme/basic", 38, now=EXPIRE_S + 0.1) == FLOOR

    def test_withdrawn_entries_count_no_more(self) -> None:
        board = DemandBoard("me")
        board.heard("acme/basic", "me", 0, now=0.0)
        board.heard("acme/basic", "other", 38, now=0.0)
        assert board.share("acme/basic", 0, now=0.1) == pytest.approx(FLOOR)
        board.withdrawn("acme/basic", "other")
        assert board.share("acme/basic", 0, now=0.1) == 1.0

    def test_accounts_are_apart(self) -> None:
        board = DemandBoard("me")
        board.heard("acme/basic", "me", 5, now=0.0)
        board.heard("other/basic", "other", 38, now=0.0)
        assert board.share("acme/basic", 5, now=0.1) == 1.0

    def test_entries_silent_for_long_are_listed_to_forget(self) -> None:
        board = DemandBoard("me")
        board.heard("acme/basic", "me", 5, now=0.0)
        board.heard("acme/basic", "dead", 5, now=0.0)
        assert board.silent(now=100.0, after_s=60.0) == [("acme/basic", "dead")]


class TestDemandRamp:
    def test_a_lower_demand_counts_at_once_a_higher_one_once_the_others_heard_it(self) -> None:
        ramp = DemandRamp(start=None)
        assert ramp.step(16, now=0.0) == 16
        assert ramp.step(4, now=0.25) == 4
        t = 0.5
        while t < 0.25 + RAISE_AFTER_S:
            assert ramp.step(32, now=t) == 4
            t += 0.25
        assert ramp.step(32, now=t + 0.01) == 32

    def test_a_dip_resets_the_wait(self) -> None:
        ramp = DemandRamp(raise_after_s=1.0, start=None)
        ramp.step(2, now=0.0)
        ramp.step(8, now=0.5)
        ramp.step(4, now=0.9)
        assert ramp.step(8, now=1.2) == 4
        assert ramp.step(8, now=2.0) == 8

    def test_alone_counts_at_once(self) -> None:
        ramp = DemandRamp()
        ramp.step(0, now=0.0)
        assert ramp.step(32, now=0.1, alone=True) == 32

    def test_a_replica_new_to_the_account_counts_nothing_until_the_others_heard_it(self) -> None:
        ramp = DemandRamp()  # the others still count their parts as theirs
        assert ramp.step(16, now=0.0) == 0
        assert ramp.step(16, now=RAISE_AFTER_S + 0.01) == 16

    def test_the_others_giving_up_their_demand_raises_this_share_at_once(self) -> None:
        board = DemandBoard("me")
        ramp = DemandRamp(start=None)
        board.heard("acme/basic", "me", 16, now=0.0)
        board.heard("acme/basic", "other", 16, now=0.0)
        assert board.share("acme/basic", ramp.step(16, now=0.0), now=0.0) == pytest.approx(0.5)
        board.heard("acme/basic", "other", 0, now=0.3)  # it lowered its share before it published
        assert board.share("acme/basic", ramp.step(16, now=0.3), now=0.3) == pytest.approx(1 - FLOOR)
