"""DeliveryService: token before every attempt, classify, retry within attempts and time budget, hook."""

from __future__ import annotations

import base64
import random
from typing import Any

import httpx
import pytest
import respx
from pydantic import SecretStr

from tests.support.gorgias_fakes import SECRET, FakeClock, ScriptedSender, credential, request, result, settings
from worker.core.config.account import Credential
from worker.core.config.delivery import DeliverySettings
from worker.core.outcomes.call_outcome import retry_causes
from worker.gorgias.calls import HookDecision, UnknownOutcomeAttempt
from worker.gorgias.client import ClientRegistry, HttpResult
from worker.gorgias.delivery import DeliveryService, parse_body
from worker.gorgias.errors import TransportError

EPOCH = 1_750_000_000.0


class Harness:
    """A DeliveryService on a fake clock whose only client is a ScriptedSender."""

    def __init__(self, *script: HttpResult | TransportError, seed: int = 1) -> None:
        self.clock = FakeClock(start=100.0)
        self.sender = ScriptedSender(list(script), clock=self.clock)
        self.service = DeliveryService(
            clients=ClientRegistry(
                factory=lambda c, s, d: self.sender, secret_resolver=lambda c: SecretStr(SECRET)
            ),
            clock=self.clock,
            wall_clock=lambda: EPOCH + self.clock.now,
            sleep=self.clock.sleep,
            rng=random.Random(seed),
        )
        self.hook_calls: list[tuple[UnknownOutcomeAttempt, float]] = []

    async def call(
        self,
        cred: Credential | None = None,
        config: DeliverySettings | None = None,
        hook_answer: HookDecision | Exception | None = None,
    ) -> Any:
        async def hook(attempt: UnknownOutcomeAttempt) -> HookDecision:
            self.hook_calls.append((attempt, self.clock.now))
            if isinstance(hook_answer, Exception):
                raise hook_answer
            assert hook_answer is not None
            return hook_answer

        return await self.service.call(
            request(), cred or credential(), config or settings(), hook if hook_answer is not None else None
        )


def timeout_error() -> TransportError:
    return TransportError("timeout", True, "ReadTimeout")


def refused() -> TransportError:
    return TransportError("connect", False, "ConnectError: refused")


class TestOutcomes:
    async def test_success_first_time(self) -> None:
        h = Harness(result(201, {"id": 1}, headers={"X-Gorgias-Account-Api-Call-Limit": "1/40"}))
        out = await h.call()
        assert out.ok is True and out.status == 201
        assert out.response_body == {"id": 1}
        assert out.response_headers["x-gorgias-account-api-call-limit"] == "1/40"
        assert out.attempts == 1 and len(out.attempt_log) == 1
        assert out.attempt_log[0].status == 201 and out.attempt_log[0].error_kind is None
        assert out.final_reason is None and out.retryable is False
        assert out.started_at == EPOCH + 100.0 and out.finished_at >= out.started_at
        assert out.rate_limit_wait_s == 0.0 and out.latency_s == 0.0
        assert h.clock.sleeps == []

    async def test_client_error_is_not_retried(self) -> None:
        body = {"error": {"msg": "Failed to create ticket"}}
        h = Harness(result(400, body), result(201))
        out = await h.call()
        assert out.ok is False and out.status == 400 and out.attempts == 1
        assert out.final_reason == "HTTP 400 from Gorgias: Failed to create ticket"
        assert out.retryable is False
        assert out.response_body == body
        assert len(h.sender.sent) == 1

    async def test_a_merged_objects_301_is_followed_once_with_the_same_method_and_body(self) -> None:
        h = Harness(result(301, headers={"Location": "/api/customers/9/"}), result(200, {"id": 9}))
        req = request("https://acme.gorgias.com/api/customers/5/data?x=1", method="PUT", body=b'{"data": {}}')
        out = await h.service.call(req, credential(), settings(max_attempts=1))
        assert (out.ok, out.status, out.response_body) == (True, 200, {"id": 9})
        assert [(r.method, r.url, r.body) for r in h.sender.sent] == [
            ("PUT", "https://acme.gorgias.com/api/customers/5/data?x=1", b'{"data": {}}'),
            ("PUT", "https://acme.gorgias.com/api/customers/9/data?x=1", b'{"data": {}}'),  # sub-path kept
        ]
        assert [a.status for a in out.attempt_log] == [301, 200]  # the follow-up is no retry
        assert retry_causes(out.attempt_log) == [] and out.attempt_log[0].followed
        assert out.merged is not None and (out.merged.original_id, out.merged.merged_into_id) == (5, 9)

    async def test_a_second_redirect_is_final_and_not_retried(self) -> None:
        h = Harness(result(301, headers={"Location": "/api/tickets/2/"}),
                    result(301, headers={"Location": "/api/tickets/3/"}))
        out = await h.call()
        assert (out.ok, out.status, out.attempts, out.retryable) == (False, 301, 2, False)
        assert "merged" in (out.final_reason or "") and len(h.sender.sent) == 2

    @pytest.mark.parametrize("location", [None, "https://evil.example/api/tickets/2", "/api/tickets"])
    async def test_a_redirect_without_a_usable_location_is_not_followed(self, location: str | None) -> None:
        h = Harness(result(301, headers={"Location": location} if location else {}), result(201))
        out = await h.call()
        assert (out.ok, out.status, len(h.sender.sent), out.merged) == (False, 301, 1, None)

    async def test_retries_until_success(self) -> None:
        h = Harness(result(503), result(502), result(201, {"id": 3}))
        out = await h.call()
        assert out.ok is True and out.attempts == 3
        assert [a.status for a in out.attempt_log] == [503, 502, 201]
        assert retry_causes(out.attempt_log) == ["503", "502"]
        assert [a.backoff_s for a in out.attempt_log][:2] == h.clock.sleeps
        assert out.attempt_log[-1].backoff_s == 0.0
        assert h.clock.sleeps[0] <= 0.5 and h.clock.sleeps[1] <= 1.0  # full jitter under the ceiling
        assert out.latency_s == pytest.approx(sum(h.clock.sleeps))

    async def test_gives_up_after_max_attempts(self) -> None:
        h = Harness(result(503, {"error": {"msg": "An external service had an issue."}}))
        out = await h.call(config=settings(max_attempts=4))
        assert out.ok is False and out.attempts == 4 and len(h.sender.sent) == 4
        assert out.final_reason == (
            "gave up after 4 attempts: HTTP 503 from Gorgias: An external service had an issue."
        )
        assert out.retryable is True and out.status == 503
        assert len(h.clock.sleeps) == 3

    async def test_time_budget(self) -> None:
        h = Harness(result(500))
        config = settings(max_attempts=100, max_retry_time_s=10.0, backoff_initial_s=2.0, backoff_max_s=4.0)
        out = await h.call(config=config)
        assert out.ok is False and out.retryable is True
        assert (out.final_reason or "").startswith("retry budget of 10 s spent after")
        assert out.latency_s <= 10.0
        assert 2 <= out.attempts < 100

    async def test_transport_failure_outcome(self) -> None:
        h = Harness(refused())
        out = await h.call(config=settings(max_attempts=2))
        assert out.ok is False and out.status is None and out.response_body is None
        assert out.response_headers == {}
        assert [a.error_kind for a in out.attempt_log] == ["connect", "connect"]
        assert (
            out.final_reason
            == "gave up after 2 attempts: connect error (request not sent): ConnectError: refused"
        )
        assert out.retryable is True and out.outcome_unknown is False

    async def test_one_attempt_wording(self) -> None:
        out = await Harness(result(500)).call(config=settings(max_attempts=1))
        assert (out.final_reason or "").startswith("gave up after 1 attempt: HTTP 500")

    async def test_missing_secret(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.delenv("GORGIAS_TEST_KEY", raising=False)
        clock = FakeClock()
        async with DeliveryService(clock=clock, sleep=clock.sleep) as service:
            out = await service.call(request(), credential(), settings())
        assert out.ok is False and out.attempts == 0 and out.retryable is False
        assert out.final_reason == (
            "credential secret unavailable: environment variable GORGIAS_TEST_KEY is not set "
            "(export it, or use a file)"
        )

    async def test_foreign_origin_is_refused(self) -> None:
        clock = FakeClock()
        registry = ClientRegistry(transport="httpx", secret_resolver=lambda c: SecretStr(SECRET))
        async with DeliveryService(clients=registry, clock=clock, sleep=clock.sleep) as service:
            out = await service.call(
                request("https://evil.example.com/api/tickets"), credential(), settings()
            )
        assert out.ok is False and out.retryable is False
        assert (out.final_reason or "").startswith("refusing to send credentials of acme/basic")
        assert out.attempt_log[0].error_kind == "refused"


class TestRateLimiting:
    async def test_a_token_is_taken_before_every_attempt(self) -> None:
        h = Harness(result(503), result(503), result(503), result(201))
        cred = credential(requests=2, per_seconds=2.0)  # one slot per second, burst 2
        config = settings(backoff_initial_s=0.001, backoff_max_s=0.001)
        out = await h.call(cred, config)
        assert out.ok is True and out.attempts == 4
        times = h.sender.sent_at
        assert times[2] - times[0] >= 1.0 - 1e-6 and times[3] - times[0] >= 2.0 - 1e-6
        assert out.rate_limit_wait_s == pytest.approx(sum(a.rate_limit_wait_s for a in out.attempt_log))
        assert out.rate_limit_wait_s > 1.5

    async def test_429_honours_retry_after_and_pauses_the_account(self) -> None:
        h = Harness(
            result(429, headers={"Retry-After": "7", "X-Gorgias-Account-Api-Call-Limit": "40/40"}),
            result(201),
        )
        out = await h.call()
        assert out.ok is True and out.attempts == 2
        assert h.sender.sent_at[1] - h.sender.sent_at[0] >= 7.0
        assert out.attempt_log[0].backoff_s >= 7.0
        limiter = h.service.limiters.get(credential())
        assert limiter.capacity == 40

    async def test_429_penalty_applies_to_other_calls_on_the_account(self) -> None:
        h = Harness(result(429, headers={"Retry-After": "30"}))
        await h.call(config=settings(max_attempts=1))
        start = h.clock.now
        limiter = h.service.limiters.get(credential(username="another@acme.com"))
        await limiter.acquire()
        assert h.clock.now - start >= 30.0

    async def test_call_limit_header_syncs_the_bucket(self) -> None:
        h = Harness(result(201, headers={"X-Gorgias-Account-Api-Call-Limit": "35/40"}))
        await h.call()
        assert h.service.limiters.get(credential()).level == pytest.approx(35)

    async def test_disabled_limit_never_waits(self) -> None:
        h = Harness(*[result(201)] * 50)
        cred = credential(requests=1, enabled=False)
        for _ in range(50):
            out = await h.call(cred)
            assert out.rate_limit_wait_s == 0.0
        assert h.clock.sleeps == []


class TestUnknownOutcomeHook:
    async def test_hook_called_only_for_unknown_outcomes(self) -> None:
        h = Harness(refused(), result(503), timeout_error(), result(201))
        out = await h.call(hook_answer=HookDecision.retry())
        assert out.ok is True and out.attempts == 4
        assert len(h.hook_calls) == 1
        attempt, _ = h.hook_calls[0]
        assert attempt.attempt == 3 and attempt.error.kind == "timeout" and attempt.error.maybe_sent
        assert attempt.credential.account_key == "acme/basic"

    async def test_hook_runs_after_the_backoff_pause(self) -> None:
        h = Harness(timeout_error(), result(201))
        await h.call(hook_answer=HookDecision.retry())
        (_, called_at), sent_at = h.hook_calls[0], h.sender.sent_at
        assert called_at == pytest.approx(sent_at[0] + h.clock.sleeps[0])
        assert sent_at[1] >= called_at

    async def test_hook_done_ends_the_call_as_success(self) -> None:
        h = Harness(timeout_error(), result(201))
        found = result(200, {"data": [{"id": 77, "external_id": "rec-1"}]})
        out = await h.call(hook_answer=HookDecision.done(found))
        assert out.ok is True and out.resolved_by_hook is True
        assert out.status == 200 and out.response_body == {"data": [{"id": 77, "external_id": "rec-1"}]}
        assert out.attempts == 1 and len(h.sender.sent) == 1
        assert out.attempt_log[0].error_kind == "timeout" and out.attempt_log[0].maybe_sent is True

    async def test_hook_consulted_on_the_last_attempt_too(self) -> None:
        h = Harness(timeout_error())
        out = await h.call(config=settings(max_attempts=2), hook_answer=HookDecision.retry())
        assert len(h.hook_calls) == 2
        assert out.ok is False and out.outcome_unknown is True and out.retryable is True
        assert (out.final_reason or "").startswith(
            "outcome unknown (the request may have taken effect; a replay looks it up first): "
            "gave up after 2 attempts: timeout error (request may have"
        )

    async def test_an_earlier_unanswered_attempt_keeps_the_outcome_unknown(self) -> None:
        out = await Harness(timeout_error(), result(503)).call(config=settings(max_attempts=3))
        assert out.ok is False and out.status == 503 and out.outcome_unknown is True
        out = await Harness(timeout_error(), result(400)).call()
        assert out.ok is False and out.status == 400 and out.outcome_unknown is True
        out = await Harness(refused(), result(503)).call(config=settings(max_attempts=3))
        assert out.outcome_unknown is False  # nothing was sent
        h = Harness(timeout_error())
        out = await h.service.call(request(method="GET", body=None), credential(), settings(max_attempts=2))
        assert out.ok is False and out.outcome_unknown is False  # a lost GET changed nothing

    async def test_a_check_that_found_nothing_settles_it_a_check_that_could_not_does_not(self) -> None:
        out = await Harness(timeout_error(), result(503)).call(hook_answer=HookDecision.absent())
        assert out.ok is False and out.outcome_unknown is False
        assert not (out.final_reason or "").startswith("outcome unknown")
        out = await Harness(timeout_error(), result(503)).call(hook_answer=HookDecision.retry())
        assert out.ok is False and out.outcome_unknown is True

    async def test_failing_hook_stops_without_retrying(self) -> None:
        h = Harness(timeout_error(), result(201))
        out = await h.call(hook_answer=RuntimeError("lookup returned 500"))
        assert out.ok is False and out.outcome_unknown is True
        assert len(h.sender.sent) == 1
        assert (out.final_reason or "").startswith("outcome unknown")
        assert "duplicate check failed, so it was not sent again: RuntimeError: lookup returned 500" in (
            out.final_reason or "")

    async def test_without_hook_unknown_outcomes_are_retried(self) -> None:
        h = Harness(timeout_error(), result(201))
        out = await h.call()
        assert out.ok is True and out.attempts == 2


class TestDeterminism:
    async def test_seeded_rng_gives_the_same_pauses(self) -> None:
        first, second = Harness(result(503), seed=9), Harness(result(503), seed=9)
        await first.call(config=settings(max_attempts=6))
        await second.call(config=settings(max_attempts=6))
        assert first.clock.sleeps == second.clock.sleeps and len(first.clock.sleeps) == 5


class TestWithRealClient:
    """DeliveryService driving a real GorgiasClient over respx: nothing secret leaks into the outcome."""

    async def test_429_then_created_and_no_secret_anywhere(self) -> None:
        clock = FakeClock()
        registry = ClientRegistry(transport="httpx", secret_resolver=lambda c: SecretStr(SECRET))
        encoded = base64.b64encode(f"agent@acme.com:{SECRET}".encode()).decode()
        with respx.mock:
            route = respx.post("https://acme.gorgias.com/api/tickets").mock(
                side_effect=[
                    httpx.ConnectError(f"cannot connect with {SECRET}"),
                    httpx.Response(
                        429, headers={"Retry-After": "2"}, json={"error": {"msg": "Too many requests."}}
                    ),
                    httpx.Response(
                        201, json={"id": 10}, headers={"X-Gorgias-Account-Api-Call-Limit": "3/40"}
                    ),
                ]
            )
            async with DeliveryService(clients=registry, clock=clock, sleep=clock.sleep) as service:
                out = await service.call(request(), credential(), settings())
        assert route.call_count == 3
        assert out.ok is True and out.status == 201 and out.response_body == {"id": 10}
        assert [a.status or a.error_kind for a in out.attempt_log] == ["connect", 429, 201]
        text = repr(out) + repr(service) + repr(registry)
        assert SECRET not in text and encoded not in text


class TestParseBody:
    @pytest.mark.parametrize(
        ("body", "content_type", "expected"),
        [
            (b"", "application/json", None),
            (b'{"a": 1}', "application/json; charset=utf-8", {"a": 1}),
            (b"[1, 2]", None, [1, 2]),
            (b"{broken", "application/json", "{broken"),
            (b"<html>nope</html>", "text/html", "<html>nope</html>"),
            (b"\xff\xfe", "text/plain", "\ufffd\ufffd"),
        ],
    )
    def test_parse(self, body: bytes, content_type: str | None, expected: Any) -> None:
        assert parse_body(body, content_type) == expected


class TestExact429:
    """A 429's wait comes from the call-limit header's level and the drain rate, Retry-After is a floor, and a
    429 is never a failed attempt: only the call's time budget bounds it."""

    async def test_a_429_storm_does_not_use_up_the_attempts(self) -> None:
        refused_ = result(429, headers={"Retry-After": "1", "X-Gorgias-Account-Api-Call-Limit": "40/40"})
        h = Harness(*[refused_] * 6, result(201))
        out = await h.call(config=settings(max_attempts=2))
        assert out.ok is True and out.attempts == 7
        assert [a.status for a in out.attempt_log] == [429] * 6 + [201]

    async def test_a_429_storm_is_bounded_by_the_time_budget(self) -> None:
        refused_ = result(429, headers={"Retry-After": "10", "X-Gorgias-Account-Api-Call-Limit": "40/40"})
        h = Harness(*[refused_] * 20)
        out = await h.call(config=settings(max_attempts=2, max_retry_time_s=35.0))
        assert out.ok is False and out.status == 429
        assert out.attempts == 4  # at 0, 10, 20, 30 s; the next pause would end past 35 s
        assert "retry budget of 35 s" in (out.final_reason or "")

    @pytest.mark.parametrize(
        ("header", "retry_after", "wait"),
        [
            ("45/40", "1", 3.0),  # 6 slots over a bucket draining 2/s: 3 s, more than Retry-After
            ("40/40", "0", 0.5),  # full: one slot drains in 0.5 s
            ("40/40", "2", 2.0),  # Retry-After is a floor
            (None, "0", 0.5),  # no header: the bucket counts as full
        ],
    )
    async def test_the_wait_comes_from_the_header_level_and_the_drain_rate(
        self, header: str | None, retry_after: str, wait: float
    ) -> None:
        headers = {"Retry-After": retry_after}
        if header is not None:
            headers["X-Gorgias-Account-Api-Call-Limit"] = header
        h = Harness(result(429, headers=headers), result(201))
        out = await h.call(credential(requests=40, per_seconds=20.0))
        assert out.ok is True
        assert h.sender.sent_at[1] - h.sender.sent_at[0] == pytest.approx(wait, abs=0.02)
        assert out.attempt_log[0].backoff_s == pytest.approx(wait, abs=0.02)
