"""Properties of the leaky bucket over arbitrary request timings."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from gorgias_sandbox.ratelimit import LeakyBucket, RateSpec

gaps = st.lists(st.floats(min_value=0.0, max_value=3.0, allow_nan=False), min_size=1, max_size=300)
specs = st.builds(RateSpec, st.integers(min_value=1, max_value=80), st.sampled_from([1.0, 10.0, 20.0]))


@settings(max_examples=200, deadline=None)
@given(specs, gaps)
def test_never_admits_more_than_capacity_plus_drain(spec: RateSpec, steps: list[float]) -> None:
    bucket = LeakyBucket(spec, now=0.0)
    now = 0.0
    admitted_at: list[float] = []
    for gap in steps:
        now += gap
        if bucket.admit(now).allowed:
            admitted_at.append(now)
    # in any window [a, b] at most capacity + drain * (b - a) requests get in
    for i, start in enumerate(admitted_at):
        for j in range(i, len(admitted_at)):
            window = admitted_at[j] - start
            assert j - i + 1 <= spec.capacity + spec.drain_per_s * window + 1e-6


@settings(max_examples=200, deadline=None)
@given(specs, gaps)
def test_waiting_retry_after_is_enough(spec: RateSpec, steps: list[float]) -> None:
    bucket = LeakyBucket(spec, now=0.0)
    now = 0.0
    for gap in steps:
        now += gap
        answer = bucket.admit(now)
        if not answer.allowed:
            assert answer.retry_after_s >= 1
            assert bucket.admit(now + answer.retry_after_s).allowed
            now += answer.retry_after_s
        used, limit = answer.call_limit.split("/")
        assert 0 <= int(used) <= int(limit) == spec.capacity
