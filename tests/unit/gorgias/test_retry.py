"""The classifier (whether to retry) and the backoff policy (when)."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from email.utils import format_datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.support.gorgias_fakes import result
from worker.gorgias.errors import TransportError
from worker.gorgias.retry import BackoffPolicy, classify, describe_status, parse_retry_after

NOW = 1_750_000_000.0


def at_now() -> float:
    return NOW


class TestClassify:
    @pytest.mark.parametrize("status", [200, 201, 202, 204])
    def test_2xx_is_success(self, status: int) -> None:
        verdict = classify(result(status), now=at_now)
        assert verdict.action == "success"
        assert verdict.outcome_unknown is False

    def test_429_retries_with_retry_after(self) -> None:
        verdict = classify(result(429, headers={"Retry-After": "7"}), now=at_now)
        assert verdict.action == "retry"
        assert verdict.retry_after_s == 7.0
        assert verdict.outcome_unknown is False
        assert "429" in verdict.reason and "Retry-After 7" in verdict.reason

    def test_429_with_http_date(self) -> None:
        when = format_datetime(datetime.fromtimestamp(NOW + 12, tz=UTC), usegmt=True)
        verdict = classify(result(429, headers={"Retry-After": when}), now=at_now)
        assert verdict.retry_after_s == pytest.approx(12.0)

    def test_429_without_retry_after(self) -> None:
        verdict = classify(result(429), now=at_now)
        assert verdict.action == "retry"
        assert verdict.retry_after_s is None

    @pytest.mark.parametrize("status", [408, 500, 502, 503, 504])
    def test_transient_statuses_retry(self, status: int) -> None:
        verdict = classify(
            result(status, {"error": {"msg": "An external service had an issue."}}), now=at_now
        )
        assert verdict.action == "retry"
        assert verdict.reason.startswith(f"HTTP {status} from Gorgias")

    @pytest.mark.parametrize("status", [400, 401, 403, 404, 405, 409, 413, 422, 501, 505])
    def test_other_errors_fail(self, status: int) -> None:
        assert classify(result(status), now=at_now).action == "fail"

    def test_400_reason_carries_the_gorgias_message_and_fields(self) -> None:
        body = {
            "error": {
                "msg": "Failed to create ticket",
                "data": {
                    "sender": ["Missing data for required field."],
                    "messages": {"0": {"channel": ["Bad."]}},
                },
            }
        }
        verdict = classify(result(400, body), now=at_now)
        assert verdict.action == "fail"
        assert verdict.reason == (
            "HTTP 400 from Gorgias: Failed to create ticket "
            "(sender: Missing data for required field.; messages.0.channel: Bad.)"
        )

    def test_html_404_reason_uses_the_title(self) -> None:
        page = b"<!doctype html><html><head><title>404 Not Found</title></head><body>...</body></html>"
        verdict = classify(result(404, raw=page, headers={"Content-Type": "text/html"}), now=at_now)
        assert verdict.reason == "HTTP 404 from Gorgias: 404 Not Found"

    def test_empty_error_body(self) -> None:
        assert classify(result(403), now=at_now).reason == "HTTP 403 from Gorgias"

    @pytest.mark.parametrize("status", [301, 302, 308])
    def test_3xx_fails_as_merged_resource(self, status: int) -> None:
        verdict = classify(result(status, headers={"Location": "/api/tickets/99/"}), now=at_now)
        assert verdict.action == "fail"
        assert "merged" in verdict.reason and "/api/tickets/99/" in verdict.reason

    @pytest.mark.parametrize("maybe_sent", [True, False])
    def test_transport_errors_retry_and_carry_unknown_outcome(self, maybe_sent: bool) -> None:
        verdict = classify(TransportError("read", maybe_sent, "ReadError: reset"), now=at_now)
        assert verdict.action == "retry"
        assert verdict.outcome_unknown is maybe_sent
        assert "ReadError: reset" in verdict.reason


class TestRetryAfter:
    @pytest.mark.parametrize(
        ("value", "expected"),
        [("5", 5.0), (" 0 ", 0.0), ("2.5", 2.5), ("-3", 0.0), (None, None), ("", None), ("soon", None)],
    )
    def test_values(self, value: str | None, expected: float | None) -> None:
        assert parse_retry_after(value, NOW) == expected

    def test_date_in_the_past_is_zero(self) -> None:
        past = format_datetime(datetime.fromtimestamp(NOW - 100, tz=UTC), usegmt=True)
        assert parse_retry_after(past, NOW) == 0.0

    @pytest.mark.parametrize("value", ["nan", "inf", "Mon, 99 Foo 2020 00:00:00 GMT"])
    def test_unusable(self, value: str) -> None:
        assert parse_retry_after(value, NOW) is None


class TestBackoff:
    def test_ceiling_is_exponential_and_capped(self) -> None:
        policy = BackoffPolicy(initial_s=0.5, max_s=30.0, rng=random.Random(1))
        assert [policy.ceiling(n) for n in range(1, 9)] == [0.5, 1, 2, 4, 8, 16, 30, 30]
        assert policy.ceiling(10_000) == 30.0

    @given(
        attempt=st.integers(min_value=1, max_value=200),
        initial=st.floats(min_value=0.001, max_value=10),
        cap=st.floats(min_value=0.001, max_value=120),
        seed=st.integers(),
    )
    def test_full_jitter_within_bounds(self, attempt: int, initial: float, cap: float, seed: int) -> None:
        policy = BackoffPolicy(initial_s=initial, max_s=cap, rng=random.Random(seed))
        delay = policy.delay(attempt)
        assert 0.0 <= delay <= min(cap, initial * 2 ** min(attempt - 1, 64))

    def test_jitter_spreads_over_the_whole_range(self) -> None:
        policy = BackoffPolicy(initial_s=1.0, max_s=30.0, rng=random.Random(7))
        delays = [policy.delay(4) for _ in range(2000)]
        assert min(delays) < 0.5 and max(delays) > 7.5  # full jitter in [0, 8]

    def test_seeded_rng_is_reproducible(self) -> None:
        first = BackoffPolicy(0.5, 30.0, random.Random(42))
        second = BackoffPolicy(0.5, 30.0, random.Random(42))
        assert [first.delay(n) for n in range(1, 6)] == [second.delay(n) for n in range(1, 6)]

    @given(attempt=st.integers(1, 20), retry_after=st.floats(0, 600), seed=st.integers())
    def test_never_below_retry_after(self, attempt: int, retry_after: float, seed: int) -> None:
        policy = BackoffPolicy(initial_s=0.5, max_s=30.0, rng=random.Random(seed))
        assert policy.delay(attempt, retry_after) >= retry_after


def test_describe_status_429() -> None:
    assert describe_status(result(429)) == "HTTP 429 from Gorgias: rate limited"
