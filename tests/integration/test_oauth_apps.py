"""OAuth apps against the sandbox's OAuth server (issue 25): three worker processes deliver a steady stream
across more than five 20 s token lifetimes with refresh-token rotation, one restarted in the middle; a
revoked refresh token holds the credential until a new one is given; no secret on any topic or in any log."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from tests.support.broker import free_port
from tests.support.kafka_io import committed, publish, read_json, read_to_end, topic_bytes, wait_for
from tests.support.processes import WorkerProcess
from tests.support.scenario import Scenario, ready_status, ticket, wait_committed
from tests.support.secret_scan import secret_hits
from worker.core.config.worker_config import parse_config
from worker.host.secret_box import new_key
from worker.service.control_api import create_control_app
from worker.service.runtime import Runtime

pytestmark = pytest.mark.integration

CLIENT_SECRET = "sandbox-client-secret"
FIRST_REFRESH = "sandbox-refresh-token"
LIFETIME_S = 20
REPLICAS = 3


def app_credential(s: Scenario, refresh: dict[str, str] | None = None) -> dict[str, Any]:
    return {"domain": "acme", "auth": "oauth_app", "client_id": "sandbox-client",
            "client_secret_env": "GORGIAS_CLIENT_SECRET", **(refresh or {"refresh_token_env": "GORGIAS_REFRESH_TOKEN"}),
            "base_url": s.sandbox.url}


def app_config(s: Scenario, web_port: int, refresh: dict[str, str] | None = None, named: str | None = None,
               ) -> dict[str, Any]:
    """The worker's config; with ``named``, the app is the top-level credential of that name."""
    credential = app_credential(s, refresh)
    doc = s.config(s.destination(credential=named or credential, delivery={"max_in_flight": 4}))
    if named:
        doc["credentials"] = {named: credential}
    doc["worker"]["web_port"] = web_port
    doc["worker"]["secrets_key_env"] = "GORGIAS_SECRETS_KEY"
    return doc


def oauth_server(s: Scenario, tokens: bool = False) -> dict[str, Any]:
    described: dict[str, Any] = s.sandbox.admin("GET", "oauth?tokens=true" if tokens else "oauth")
    return described


@pytest.fixture
def app_server(scenario: Scenario) -> Iterator[None]:
    """The sandbox with 20 s access tokens, refresh-token rotation, and the OAuth budget (80 / 20 s) on."""
    scenario.sandbox.admin("PUT", "rate-limit", {"rate_limit": "40/20s"})
    scenario.sandbox.admin("PUT", "oauth", {"access_token_lifetime_s": LIFETIME_S, "rotate_refresh_tokens": True})
    yield
    scenario.sandbox.admin("PUT", "oauth", {"access_token_lifetime_s": 86_400, "rotate_refresh_tokens": False})


async def test_three_replicas_deliver_across_five_token_lifetimes_with_one_refresh_each(
    scenario: Scenario, app_server: None, tmp_path: Path,
) -> None:
    s = scenario
    await s.create_topics(partitions=REPLICAS)
    env = {"GORGIAS_CLIENT_SECRET": CLIENT_SECRET, "GORGIAS_REFRESH_TOKEN": FIRST_REFRESH,
           "GORGIAS_SECRETS_KEY": new_key()}
    workers = []
    for i in range(REPLICAS):
        port = free_port()
        (tmp_path / f"w{i}").mkdir()
        workers.append(WorkerProcess(s.write(tmp_path / f"w{i}", app_config(s, port)), port, env))
    sent = 0
    try:
        for w in workers:
            w.start(wait_ready=False)
        for w in workers:
            assert await wait_for(lambda w=w: ready_status(w) == 200, 90), w.output()[-3000:]  # type: ignore[misc]
        started = time.monotonic()
        duration = 5.5 * LIFETIME_S
        while time.monotonic() - started < duration:  # a steady stream: 2 records a second
            await publish(s.bootstrap, s.source, [ticket(sent), ticket(sent + 1)],
                          key=lambda i, _: f"k{sent + i}".encode())
            sent += 2
            if sent == 100:  # a restart in the middle, after several rotations: it starts from the newest token
                workers[1].stop()
                workers[1].start(wait_ready=False)
            await asyncio.sleep(1.0)
        elapsed = time.monotonic() - started
        await wait_committed(s, sent, timeout=120)
    finally:
        for w in workers:
            w.stop()
    events = await read_json(s.bootstrap, s.responses, sent, timeout=60)
    assert len(events) >= sent and {e["outcome"] for e in events} == {"delivered"}
    for event in events:  # every call answered 2xx on its first attempt that was not a 401
        counted = [a for a in event["attempt_log"] if not a["held"]]
        assert len(counted) == 1 and 200 <= counted[0]["status"] < 300, event["attempt_log"]
    assert await read_to_end(s.bootstrap, s.dead_letters) == []
    tickets = Counter(t["external_id"] for t in s.sandbox.state()["tickets"])
    assert len(tickets) == sent and set(tickets.values()) == {1}  # no duplicate

    server = oauth_server(s, tokens=True)
    lifetimes = elapsed / LIFETIME_S
    print(f"\n{sent} records in {elapsed:.0f} s ({lifetimes:.1f} token lifetimes), {REPLICAS} replicas: "
          f"{server['token_requests']} token requests")
    assert server["refused"] == {}  # no replica ever used a refresh token rotated away, the restarted one neither
    assert server["token_requests"] <= lifetimes * 4 / 3 + 3  # about one per lifetime, not one per replica
    assert server["token_requests"] < lifetimes * REPLICAS

    # the scan: client secret, every token issued, on every topic and in every replica's log
    secrets = [CLIENT_SECRET, FIRST_REFRESH, *server["issued"]]
    topics = await topic_bytes(s.bootstrap)
    logs = "".join(w.output() for w in workers).encode()
    assert secret_hits(secrets, {**topics, "logs": logs}) == []


async def test_a_revoked_refresh_token_holds_the_credential_until_a_new_one_is_given(
    scenario: Scenario, app_server: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    s = scenario
    await s.create_topics()
    refresh_file = tmp_path / "refresh-token"
    refresh_file.write_text(FIRST_REFRESH)
    monkeypatch.setenv("GORGIAS_CLIENT_SECRET", CLIENT_SECRET)
    monkeypatch.setenv("GORGIAS_SECRETS_KEY", new_key())
    runtime = Runtime(parse_config(app_config(s, free_port(), {"refresh_token_file": str(refresh_file)})))
    await runtime.start()
    try:
        await publish(s.bootstrap, s.source, [ticket(0)])
        await wait_committed(s, 1)
        s.sandbox.admin("POST", "oauth/revoke", {"client_id": "sandbox-client"})  # the user uninstalled the app
        await publish(s.bootstrap, s.source, [ticket(i) for i in range(1, 4)])
        assert await wait_for(lambda: runtime.pipelines["dest"].status()["state"] == "held", 60)
        reason = runtime.pipelines["dest"].status()["reason"]
        assert "invalid_grant" in reason and "authorize the app again" in reason and str(refresh_file) in reason
        assert await read_to_end(s.bootstrap, s.dead_letters) == []
        assert sum((await committed(s.bootstrap, s.group_of(), s.source)).values()) == 1

        authorized = s.sandbox.admin("POST", "oauth/authorize", {"client_id": "sandbox-client"})
        refresh_file.write_text(authorized["refresh_token"])  # the operator gives the worker the new token
        await wait_committed(s, 4, timeout=90)
        events = await read_json(s.bootstrap, s.responses, 4, timeout=30)
        assert {e["outcome"] for e in events} == {"delivered"}
        assert runtime.pipelines["dest"].status()["state"] == "active"
    finally:
        await runtime.stop()


async def test_an_app_not_granted_a_scope_is_held_naming_it_until_authorized_again_with_it(
    scenario: Scenario, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    """Access tokens of 24 h, as Gorgias': the new grant is taken when the refused call tries again, not when
    the token expires."""
    s = scenario
    caplog.set_level(logging.WARNING)
    await s.create_topics()
    narrow = s.sandbox.admin("POST", "oauth/authorize", {"client_id": "sandbox-client",  # tickets:write forgotten
                                                         "scope": "openid offline account:read tickets:read"})
    refresh_file = tmp_path / "refresh-token"
    refresh_file.write_text(narrow["refresh_token"])
    monkeypatch.setenv("GORGIAS_CLIENT_SECRET", CLIENT_SECRET)
    monkeypatch.setenv("GORGIAS_SECRETS_KEY", new_key())
    runtime = Runtime(parse_config(app_config(s, free_port(), {"refresh_token_file": str(refresh_file)}, "app")))
    await runtime.start()
    client: TestClient[Any, Any] = TestClient(TestServer(create_control_app(runtime)))
    await client.start_server()
    try:
        await publish(s.bootstrap, s.source, [ticket(i) for i in range(3)])
        assert await wait_for(lambda: (runtime.destination_status("dest") or {}).get("state") == "held", 60)
        status = runtime.destination_status("dest") or {}
        assert status["scopes_missing"] == ["tickets:write"]
        assert status["reason"] == ("Gorgias refuses POST /api/tickets: the OAuth app was not granted scope "
                                    "tickets:write — authorize it again with that scope (README, OAuth apps, step 3)")
        warned = [r.getMessage() for r in caplog.records if r.name == "worker.kafka.held_calls"]  # the start's
        assert len(warned) == 1 and "tickets:write" in warned[0] and "sandbox-client" in warned[0]
        assert await read_to_end(s.bootstrap, s.dead_letters) == []
        assert sum((await committed(s.bootstrap, s.group_of(), s.source)).values()) == 0
        assert s.sandbox.state()["tickets"] == []
        assert await granted(client) == "openid offline account:read tickets:read"

        full = s.sandbox.admin("POST", "oauth/authorize", {"client_id": "sandbox-client"})  # the default: all
        refresh_file.write_text(full["refresh_token"])  # the operator gives the worker the new token (step 3)
        await wait_committed(s, 3, timeout=90)
        events = await read_json(s.bootstrap, s.responses, 3, timeout=30)
        assert {e["outcome"] for e in events} == {"delivered"}
        status = runtime.destination_status("dest") or {}
        assert status["state"] == "active" and status["scopes_missing"] == []
        assert "tickets:write" in (await granted(client) or "").split()
        assert await read_to_end(s.bootstrap, s.dead_letters) == []
        shown = str(await (await client.get("/credentials")).json())
        assert not [t for t in [CLIENT_SECRET, *oauth_server(s, tokens=True)["issued"]] if t in shown]
    finally:
        await client.close()
        await runtime.stop()


async def granted(client: TestClient[Any, Any]) -> str | None:
    """The ``scope`` ``GET /credentials`` shows of the credential ``app`` (it has the key, even when null)."""
    listed = {c["name"]: c for c in (await (await client.get("/credentials")).json())["credentials"]}
    scope: str | None = listed["app"]["scope"]
    return scope
