"""The leaky bucket, unit-level and over HTTP, driven by a fake clock (no sleeping)."""

from __future__ import annotations

import pytest

from gorgias_sandbox.ratelimit import LeakyBucket, RateLimiter, RateSpec, parse_rate
from gorgias_sandbox.settings import SandboxSettings, parse_account_specs
from tests.support.sandbox_api import OAUTH, Api, FakeClock, MakeApi, basic


def test_parse_rate() -> None:
    assert parse_rate("40/20s") == RateSpec(40, 20.0)
    assert parse_rate(" 80 / 10 ") == RateSpec(80, 10.0)
    assert parse_rate("OFF") is None
    for bad in ("40", "0/20s", "40/0s", "forty/20s", "40/20m"):
        with pytest.raises(ValueError):
            parse_rate(bad)


def test_bucket_fills_refuses_and_drains() -> None:
    bucket = LeakyBucket(RateSpec(40, 20.0), now=0.0)
    for i in range(1, 41):
        admission = bucket.admit(0.0)
        assert admission.allowed and admission.call_limit == f"{i}/40"
    refused = bucket.admit(0.0)
    assert not refused.allowed and refused.call_limit == "40/40" and refused.retry_after_s == 1
    assert bucket.admit(0.49).allowed is False
    assert bucket.admit(0.5).allowed is True
    assert bucket.used(20.5) == 0


def test_retry_after_is_ceil_of_time_to_one_free_slot() -> None:
    bucket = LeakyBucket(RateSpec(2, 10.0), now=0.0)  # one unit drains every 5 s
    bucket.admit(0.0)
    bucket.admit(0.0)
    assert bucket.admit(0.0).retry_after_s == 5
    assert bucket.admit(1.2).retry_after_s == 4  # 3.8 s left → 4
    assert bucket.admit(4.99).retry_after_s == 1


def test_used_is_rounded_up_while_draining() -> None:
    bucket = LeakyBucket(RateSpec(40, 20.0), now=0.0)
    for _ in range(10):
        bucket.admit(0.0)
    assert bucket.used(0.25) == 10  # 9.5 → 10
    assert bucket.admit(0.25).call_limit == "11/40"  # 10.5 → 11


def test_limiter_keys_by_account_and_auth_type() -> None:
    now = [0.0]
    limiter = RateLimiter(RateSpec(1, 10.0), RateSpec(2, 10.0), lambda: now[0])
    assert limiter.admit("acme", "api_key").allowed  # type: ignore[union-attr]
    assert not limiter.admit("acme", "api_key").allowed  # type: ignore[union-attr]
    assert limiter.admit("globex", "api_key").allowed  # type: ignore[union-attr]
    assert limiter.admit("acme", "oauth").call_limit == "1/2"  # type: ignore[union-attr]
    limiter.configure(None, None)
    assert limiter.admit("acme", "api_key") is None and not limiter.enabled


async def test_http_41st_request_is_429_and_not_applied(make_api: MakeApi, clock: FakeClock) -> None:
    api = await make_api()
    for i in range(1, 41):
        r = await api.call("POST", "/api/tags", {"name": f"t{i}"})
        assert r.status == 201 and r.call_limit == f"{i}/40"
    r = await api.call("POST", "/api/tags", {"name": "t41"})
    assert r.status == 429
    assert r.json == {"error": {"msg": "Too many requests."}}
    assert r.headers["Retry-After"] == "1" and r.call_limit == "40/40"
    assert len((await api.state())["tags"]) == 40
    clock.advance(0.5)
    r = await api.call("POST", "/api/tags", {"name": "t41"})
    assert r.status == 201 and r.call_limit == "40/40"
    clock.advance(20)
    r = await api.call("GET", "/api/tags")
    assert r.call_limit == "1/40" and "Retry-After" not in r.headers
    _, counters = await api.admin("GET", "counters")
    assert counters["rate_limited"] == 1 and counters["requests"]["POST /api/tags"] == {"201": 41, "429": 1}


async def test_http_errors_count_and_carry_the_header(make_api: MakeApi) -> None:
    api = await make_api()
    assert (await api.call("GET", "/api/tickets/9")).call_limit == "1/40"
    assert (await api.call("POST", "/api/tags", {})).call_limit == "2/40"
    assert (await api.call("PATCH", "/api/tags")).call_limit == "3/40"
    r = await api.call("GET", "/api/tags", auth=None)  # 401: reported, not counted
    assert r.status == 401 and r.call_limit == "3/40"


async def test_oauth_has_its_own_bucket_of_80(make_api: MakeApi) -> None:
    api = await make_api()
    for _ in range(40):
        await api.call("GET", "/api/tags")
    assert (await api.call("GET", "/api/tags")).status == 429
    r = await api.call("GET", "/api/tags", auth=OAUTH)
    assert r.status == 200 and r.call_limit == "1/80"
    for _ in range(79):
        await api.call("GET", "/api/tags", auth=OAUTH)
    r = await api.call("GET", "/api/tags", auth=OAUTH)
    assert r.status == 429 and r.headers["Retry-After"] == "1"  # 4/s → 0.25 s → 1


async def test_buckets_are_per_account(make_api: MakeApi) -> None:
    accounts = parse_account_specs(["acme:a@acme.com:k1", "globex:g@globex.com:k2"])
    api = await make_api(SandboxSettings(accounts=accounts, rate_limit="2/10s"))
    for _ in range(2):
        await api.call("GET", "/api/tags", auth=basic("a@acme.com", "k1"))
    assert (await api.call("GET", "/api/tags", auth=basic("a@acme.com", "k1"))).status == 429
    r = await api.call("GET", "/api/tags", auth=basic("g@globex.com", "k2"), host="globex.gorgias.com")
    assert r.status == 200 and r.call_limit == "1/2"


async def test_off_means_no_limit_and_no_header(api: Api) -> None:
    for _ in range(100):
        r = await api.call("GET", "/api/tags")
        assert r.status == 200
    assert r.call_limit is None


async def test_rate_limit_changes_at_runtime(make_api: MakeApi, clock: FakeClock) -> None:
    api = await make_api()
    status, body = await api.admin("PUT", "rate-limit", {"rate_limit": "2/10s"})
    assert status == 200 and body["api_key"] == "2/10s" and body["oauth"] == "4/10s"
    await api.call("GET", "/api/tags")
    await api.call("GET", "/api/tags")
    r = await api.call("GET", "/api/tags")
    assert r.status == 429 and r.headers["Retry-After"] == "5"
    clock.advance(5)
    assert (await api.call("GET", "/api/tags")).status == 200
    status, body = await api.admin("PUT", "rate-limit", {"rate_limit": "off"})
    assert status == 200 and body["api_key"] is None
    assert (await api.call("GET", "/api/tags")).call_limit is None
    status, body = await api.admin("PUT", "rate-limit", {"rate_limit": "fast"})
    assert status == 400
    status, body = await api.admin("GET", "rate-limit")
    assert body["api_key"] is None


async def test_reset_empties_the_bucket(make_api: MakeApi) -> None:
    api = await make_api(rate_limit="1/20s")
    await api.call("GET", "/api/tags")
    assert (await api.call("GET", "/api/tags")).status == 429
    await api.admin("POST", "reset")
    assert (await api.call("GET", "/api/tags")).status == 200
