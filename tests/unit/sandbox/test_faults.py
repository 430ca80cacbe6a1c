"""Fault injection: spec parsing, each kind over HTTP (real clients for dropped/hung connections)."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import httpx
import orjson
import pytest

from gorgias_sandbox.faults import FaultConfig, FaultInjector, FaultRule, parse_fault_config, parse_fault_spec
from gorgias_sandbox.server import RunningSandbox, start_sandbox
from gorgias_sandbox.settings import SandboxSettings
from tests.support.sandbox_api import AGENT, HOST, Api, FakeClock, MakeApi, incoming_ticket

HEADERS = {"Host": HOST, "Authorization": AGENT, "Content-Type": "application/json"}


# -- spec parsing ------------------------------------------------------------------------------------------

def test_spec_covers_every_kind_and_scope() -> None:
    config = parse_fault_spec(
        "503=0.1@POST /api/tickets, 500=1@GET; latency=5-20ms, latency=7ms:0.5, drop=0.01@PUT:/api/tickets/{id},"
        " hang=0.2:3s, apply_then_drop=0.05@/api/customers*, burst429=3:2, maintenance=30s, maintenance=on,"
        " job_errored=0.5, job_fatal_errored=1"
    )
    dumped = [r.model_dump(exclude_defaults=True) for r in config.rules]
    assert dumped == [
        {"kind": "error", "status": 503, "probability": 0.1, "method": "POST", "route": "/api/tickets"},
        {"kind": "error", "status": 500, "method": "GET"},
        {"kind": "latency", "min_ms": 5.0, "max_ms": 20.0},
        {"kind": "latency", "min_ms": 7.0, "max_ms": 7.0, "probability": 0.5},
        {"kind": "drop", "probability": 0.01, "method": "PUT", "route": "/api/tickets/{id}"},
        {"kind": "hang", "probability": 0.2, "max_s": 3.0},
        {"kind": "apply_then_drop", "probability": 0.05, "route": "/api/customers*"},
        {"kind": "burst429", "count": 3, "retry_after_s": 2},
        {"kind": "maintenance", "duration_s": 30.0},
        {"kind": "maintenance"},
        {"kind": "job_failure", "probability": 0.5, "job_status": "errored"},
        {"kind": "job_failure", "job_status": "fatal_errored"},
    ]


@pytest.mark.parametrize("spec", ["504=0.1", "503=2", "drop", "latency=fast", "burst429=-1", "maintenance=soon",
                                  "503=0.1@FETCH", "503=0.1@POST tickets", "nonsense", "job_errored=3",
                                  "job_failed=1"])
def test_bad_specs_are_rejected(spec: str) -> None:
    with pytest.raises(ValueError):
        parse_fault_spec(spec)


def test_json_form_and_spec_form() -> None:
    config = parse_fault_config({"rules": [{"kind": "error", "status": 502, "probability": 0.5}]})
    assert config.rules[0].label() == "502"
    assert parse_fault_config({"spec": "drop=1"}).rules[0].kind == "drop"
    for bad in ({"rules": [{"kind": "error"}]}, {"rules": [{"kind": "drop", "probability": 1.5}]},
                {"rules": [{"kind": "latency", "min_ms": 50, "max_ms": 10}]}, {"bogus": 1}):
        with pytest.raises(ValueError):
            parse_fault_config(bad)


def test_seeded_draws_are_reproducible() -> None:
    config = FaultConfig(rules=[FaultRule(kind="error", status=503, probability=0.5),
                                FaultRule(kind="latency", min_ms=1, max_ms=100)])

    def run(seed: int) -> list[tuple[float, bool]]:
        injector = FaultInjector(config, seed, lambda: 0.0)
        return [(injector.latency_s("GET", "/api/tags"), injector.before_handling("GET", "/api/tags") is None)
                for _ in range(50)]

    assert run(7) == run(7)
    assert run(7) != run(8)
    delays = [d for d, _ in run(7)]
    assert all(0.001 <= d <= 0.1 for d in delays)


# -- over HTTP ---------------------------------------------------------------------------------------------

async def set_faults(api: Api, body: dict[str, Any]) -> dict[str, Any]:
    status, described = await api.admin("PUT", "faults", body)
    assert status == 200, described
    return described  # type: ignore[no-any-return]


async def test_error_scoped_to_route_and_never_applied(api: Api) -> None:
    await set_faults(api, {"spec": "503=1@POST /api/tickets"})
    r = await api.call("POST", "/api/tickets", incoming_ticket())
    assert r.status == 503 and r.json == {"error": {"msg": "An external service had an issue."}}
    assert (await api.call("POST", "/api/tags", {"name": "ok"})).status == 201
    assert (await api.call("GET", "/api/tickets")).status == 200
    assert (await api.state())["tickets"] == []
    _, counters = await api.admin("GET", "counters")
    assert counters["faults"] == {"503": 1} and counters["requests"]["POST /api/tickets"] == {"503": 1}


@pytest.mark.parametrize("status", [500, 502])
async def test_500_and_502(api: Api, status: int) -> None:
    await set_faults(api, {"rules": [{"kind": "error", "status": status, "method": "POST"}]})
    r = await api.call("POST", "/api/tags", {"name": "x"})
    assert r.status == status and set(r.json) == {"error"}
    assert (await api.state())["tags"] == []


async def test_probability_zero_never_fires(api: Api) -> None:
    await set_faults(api, {"spec": "500=0, drop=0, hang=0, apply_then_drop=0"})
    for i in range(20):
        assert (await api.call("POST", "/api/tags", {"name": f"t{i}"})).status == 201
    _, counters = await api.admin("GET", "counters")
    assert counters["faults"] == {}


async def test_seeded_sandboxes_fail_the_same_requests(make_api: MakeApi) -> None:
    async def statuses(seed: int) -> list[int]:
        api = await make_api(rate_limit="off", faults="503=0.5", seed=seed)
        return [(await api.call("GET", "/api/tags")).status for _ in range(30)]

    first = await statuses(11)
    assert first == await statuses(11)
    assert set(first) == {200, 503}


async def test_latency_is_applied_and_counted(api: Api) -> None:
    await set_faults(api, {"spec": "latency=1-2ms@GET"})
    assert (await api.call("GET", "/api/tags")).status == 200
    assert (await api.call("POST", "/api/tags", {"name": "x"})).status == 201
    _, counters = await api.admin("GET", "counters")
    assert counters["faults"] == {"latency": 1}


async def test_burst_of_429s_then_normal(api: Api) -> None:
    described = await set_faults(api, {"spec": "burst429=2:3"})
    assert described["rules"][0]["remaining"] == 2
    for _ in range(2):
        r = await api.call("POST", "/api/tags", {"name": "x"})
        assert r.status == 429 and r.headers["Retry-After"] == "3"
        assert r.json == {"error": {"msg": "Too many requests."}}
    assert (await api.state())["tags"] == []
    assert (await api.call("POST", "/api/tags", {"name": "x"})).status == 201
    _, faults = await api.admin("GET", "faults")
    assert faults["rules"][0]["remaining"] == 0 and faults["injected"] == {"burst429": 2}


async def test_burst_429_keeps_the_call_limit_header(make_api: MakeApi) -> None:
    api = await make_api(faults="burst429=1")
    r = await api.call("GET", "/api/tags")
    assert r.status == 429 and r.call_limit == "0/40"  # the injected 429 does not count
    r = await api.call("GET", "/api/tags")
    assert r.status == 200 and r.call_limit == "1/40"


async def test_maintenance_for_a_duration(api: Api, clock: FakeClock) -> None:
    await set_faults(api, {"spec": "maintenance=30s"})
    r = await api.call("GET", "/api/tags")
    assert r.status == 503 and r.json == {"error": {"msg": "An external service had an issue."}}
    clock.advance(29.9)
    assert (await api.call("POST", "/api/tags", {"name": "x"})).status == 503
    clock.advance(0.1)
    assert (await api.call("POST", "/api/tags", {"name": "x"})).status == 201
    _, faults = await api.admin("GET", "faults")
    assert faults["rules"][0]["active"] is False and faults["injected"] == {"maintenance": 2}


async def test_maintenance_until_turned_off(api: Api, clock: FakeClock) -> None:
    await set_faults(api, {"spec": "maintenance=on"})
    clock.advance(10_000)
    assert (await api.call("GET", "/api/tags")).status == 503
    await set_faults(api, {"rules": []})
    assert (await api.call("GET", "/api/tags")).status == 200


async def test_faults_need_a_valid_body(api: Api) -> None:
    bodies = ({"spec": "explode=1"}, {"rules": [{"kind": "hang", "probability": 3}]}, {"spec": "drop=1", "seed": "x"})
    for body in bodies:
        status, answer = await api.admin("PUT", "faults", body)
        assert status == 400 and "msg" in answer["error"]
    _, faults = await api.admin("GET", "faults")
    assert faults["rules"] == []


# -- real connections --------------------------------------------------------------------------------------

@pytest.fixture
async def running() -> AsyncIterator[RunningSandbox]:
    sandbox = await start_sandbox(SandboxSettings(rate_limit="off"))
    try:
        yield sandbox
    finally:
        await sandbox.stop()


async def admin_put(session: aiohttp.ClientSession, url: str, body: dict[str, Any]) -> None:
    async with session.put(f"{url}/__admin/faults", data=orjson.dumps(body)) as r:
        assert r.status == 200


async def admin_state(session: aiohttp.ClientSession, url: str) -> dict[str, Any]:
    async with session.get(f"{url}/__admin/state") as r:
        return orjson.loads(await r.read())  # type: ignore[no-any-return]


async def test_drop_is_a_connection_error_for_aiohttp_and_nothing_is_applied(running: RunningSandbox) -> None:
    async with aiohttp.ClientSession() as session:
        await admin_put(session, running.url, {"spec": "drop=1@POST /api/tickets"})
        with pytest.raises(aiohttp.ServerDisconnectedError):
            async with session.post(f"{running.url}/api/tickets", data=orjson.dumps(incoming_ticket()),
                                    headers=HEADERS) as r:
                await r.read()
        state = await admin_state(session, running.url)
        assert state["tickets"] == [] and state["customers"] == []
        async with session.get(f"{running.url}/__admin/counters") as r:
            counters = orjson.loads(await r.read())
        assert counters["faults"] == {"drop": 1}
        assert counters["requests"]["POST /api/tickets"] == {"dropped": 1}


async def test_drop_is_a_connection_error_for_httpx(running: RunningSandbox) -> None:
    async with httpx.AsyncClient(base_url=running.url) as client:
        await client.put("/__admin/faults", json={"spec": "drop=1@POST"})
        with pytest.raises(httpx.RemoteProtocolError):
            await client.post("/api/tags", json={"name": "x"}, headers=HEADERS)
        assert (await client.get("/__admin/state")).json()["tags"] == []
        assert (await client.get("/api/tags", headers=HEADERS)).status_code == 200  # new connection is fine


async def test_apply_then_drop_applies_the_write(running: RunningSandbox) -> None:
    async with httpx.AsyncClient(base_url=running.url) as client:
        await client.put("/__admin/faults", json={"spec": "apply_then_drop=1@POST /api/tickets"})
        with pytest.raises(httpx.RemoteProtocolError):
            await client.post("/api/tickets", json=incoming_ticket(external_id="dup-1"), headers=HEADERS)
        # the retry a client would make creates the duplicate that real Gorgias would create
        with pytest.raises(httpx.RemoteProtocolError):
            await client.post("/api/tickets", json=incoming_ticket(external_id="dup-1"), headers=HEADERS)
        state = (await client.get("/__admin/state")).json()
        assert [t["external_id"] for t in state["tickets"]] == ["dup-1", "dup-1"]
        counters = (await client.get("/__admin/counters")).json()
        assert counters["faults"] == {"apply_then_drop": 2}


async def test_hung_request_never_answers_and_is_released_on_stop() -> None:
    sandbox = await start_sandbox(SandboxSettings(rate_limit="off", faults="hang=1@POST"))
    counts = sandbox.sandbox.counters
    async with httpx.AsyncClient(base_url=sandbox.url) as client:
        pending = asyncio.create_task(client.post("/api/tags", json={"name": "x"}, headers=HEADERS))
        for _ in range(500):
            if counts.requests.get("POST /api/tags"):
                break
            await asyncio.sleep(0.01)
        assert counts.requests["POST /api/tags"] == {"hung": 1}
        assert not pending.done()
        await sandbox.stop()
        with pytest.raises(httpx.TransportError):
            await pending
    assert sandbox.sandbox.state.accounts["acme"].tags == {}


async def test_hang_is_bounded(make_api: MakeApi) -> None:
    api = await make_api(SandboxSettings(rate_limit="off", faults="hang=1:0.01s"))
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await api.call("POST", "/api/tags", {"name": "x"})
    assert (await api.state())["tags"] == []


def test_basic_header_is_what_the_worker_sends() -> None:
    assert base64.b64decode(AGENT.split()[1]) == b"agent@acme.com:sandbox-api-key"
