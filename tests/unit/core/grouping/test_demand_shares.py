"""Shares of an account's budget that follow what each replica has waiting: the arithmetic."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from worker.core.grouping.demand_shares import (
    EXPIRE_S,
    FLOOR,
    RAISE_AFTER_S,
    RECENT_S,
    DemandBoard,
    DemandMeter,
    ShareRamp,
    capped_demand,
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
        assert meter.demand(due=3, started=0, now=0.0, account_usable=38) == 3
        assert meter.demand(due=0, started=2, now=1.0, account_usable=38) == 2  # a trickle the budget keeps up with
        assert meter.demand(due=0, started=2, now=1.0 + RECENT_S, account_usable=38) == 0  # nothing lately

    def test_capped_at_one_bucket(self) -> None:
        meter = DemandMeter()
        meter.demand(due=0, started=0, now=0.0, account_usable=38)
        assert meter.demand(due=5_000, started=30, now=2.0, account_usable=38) == 38


class TestDemandBoard:
    def test_not_fresh_until_it_hears_itself_keeps_the_floor(self) -> None:
        board = DemandBoard("me")
        board.heard("acme/basic", "other", 0, now=0.0)
        assert board.share("acme/basic", 10, now=0.0) == FLOOR
        board.heard("acme/basic", "me", 10, now=0.5)
        assert board.share("acme/basic", 10, now=0.5) == pytest.approx(1 - FLOOR)

    def test_a_silent_replica_expires(self) -> None:
        board = DemandBoard("me")
        board.heard("acme/basic", "other", 38, now=0.0)
        board.heard("acme/basic", "me", 38, now=EXPIRE_S + 1)
        assert board.others("acme/basic", now=EXPIRE_S + 1) == []
        assert board.share("acme/basic", 38, now=EXPIRE_S + 1) == 1.0

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


class TestShareRamp:
    def test_falls_at_once_and_rises_once_the_others_heard(self) -> None:
        ramp = ShareRamp(start=None)
        assert ramp.step(0.5, now=0.0) == 0.5
        assert ramp.step(0.2, now=0.25) == 0.2
        t = 0.5
        while t < 0.25 + RAISE_AFTER_S:
            assert ramp.step(0.9, now=t) == 0.2
            t += 0.25
        assert ramp.step(0.9, now=t + 0.01) == 0.9

    def test_a_dip_resets_the_wait(self) -> None:
        ramp = ShareRamp(raise_after_s=1.0, start=None)
        ramp.step(0.3, now=0.0)
        ramp.step(0.6, now=0.5)
        ramp.step(0.4, now=0.9)
        assert ramp.step(0.6, now=1.2) == 0.4
        assert ramp.step(0.6, now=2.0) == 0.6

    def test_alone_rises_at_once(self) -> None:
        ramp = ShareRamp()
        ramp.step(FLOOR, now=0.0)
        assert ramp.step(1.0, now=0.1, alone=True) == 1.0

    def test_a_replica_new_to_the_account_starts_at_the_floor(self) -> None:
        ramp = ShareRamp()  # the others have not heard it yet: they still count their parts as theirs
        assert ramp.step(0.5, now=0.0) == FLOOR
        assert ramp.step(0.5, now=RAISE_AFTER_S + 0.01) == 0.5

    def test_alone_on_a_new_account_takes_it_all(self) -> None:
        assert ShareRamp().step(1.0, now=0.0, alone=True) == 1.0
