"""Credentials saved at runtime (issue 21 item 4) against the real broker and sandbox: a key given to the API
is stored encrypted and used by a saved destination; no topic the worker writes and no log line holds
it (nor its base64 or hex); a PUT rotating it is used from the next call; a worker without the key refuses
only the destinations that need it; the key rotates with MultiFernet; a used credential cannot be deleted."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from tests.support.kafka_io import publish, read_json, read_to_end, topic_bytes, wait_for
from tests.support.processes import API_KEY
from tests.support.scenario import Scenario, ticket
from tests.support.secret_scan import secret_hits
from worker.core.config.worker_config import parse_config
from worker.host.secret_box import new_key
from worker.service.control_api import create_control_app
from worker.service.runtime import Runtime

pytestmark = pytest.mark.integration

ROTATED = "rotated-key-for-the-api-3c1d"


def credential_body(s: Scenario, name: str = "acme-saved", key: str = API_KEY) -> dict[str, Any]:
    return {"name": name, "domain": "acme", "username": "agent@acme.com", "api_key": key,
            "base_url": s.sandbox.url, "rate_limit": {"enabled": False}}


def destination_body(s: Scenario, name: str = "saved", credential: str = "acme-saved") -> dict[str, Any]:
    return {**s.destination(name), "credential": credential}


def worker_doc(s: Scenario, keys: str | None) -> dict[str, Any]:
    doc = s.config(s.destination("from-file"))
    if keys is not None:
        doc["worker"]["secrets_key_env"] = "GORGIAS_TEST_SECRETS_KEY"
    return doc


Client = TestClient[Any, Any]
Start = Callable[[str | None], Any]


@pytest.fixture
async def start_worker(scenario: Scenario, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Start]:
    """Start a worker (its control API as a test client) whose secrets key is ``keys`` (None: no key)."""
    running: list[tuple[Runtime, Client]] = []

    async def start(keys: str | None) -> tuple[Runtime, Client]:
        if keys is not None:
            monkeypatch.setenv("GORGIAS_TEST_SECRETS_KEY", keys)
        runtime = Runtime(parse_config(worker_doc(scenario, keys)))
        await runtime.start()
        client: Client = TestClient(TestServer(create_control_app(runtime)))
        await client.start_server()
        running.append((runtime, client))
        return runtime, client

    yield start
    for runtime, client in running:
        await client.close()
        await runtime.stop()


async def stop(runtime: Runtime, client: Client) -> None:
    await client.close()
    await runtime.stop()


async def test_a_saved_key_is_used_encrypted_everywhere_and_a_put_rotates_it(
    scenario: Scenario, start_worker: Start, caplog: pytest.LogCaptureFixture,
) -> None:
    s = scenario
    await s.create_topics()
    caplog.set_level(logging.DEBUG, logger="worker")
    runtime, client = await start_worker(new_key())
    created = await client.post("/credentials", json=credential_body(s))
    assert created.status == 201, await created.text()
    assert await created.json() == {"name": "acme-saved", "version": 1}
    tested = await (await client.post("/credentials/acme-saved/test")).json()
    assert tested["ok"] and tested["status"] == 200 and tested["account"]["domain"] == "acme"
    assert set(tested) == {"ok", "status", "account", "call_limit", "latency_ms", "error"}

    assert (await client.post("/destinations", json=destination_body(s))).status == 201
    assert (await client.post("/destinations/saved/activate")).status == 200
    await publish(s.bootstrap, s.source, [ticket(i) for i in range(3)])
    events = await read_json(s.bootstrap, s.responses, 6, timeout=60)
    assert sorted(e["destination"] for e in events) == ["from-file"] * 3 + ["saved"] * 3

    listed = {c["name"]: c for c in (await (await client.get("/credentials")).json())["credentials"]}
    assert listed["acme-saved"]["secret"] == {"provided": "stored"}
    assert listed["acme-saved"]["used_by"] == ["saved"] and listed["acme-saved"]["state"] == "ok"

    # rotated: Gorgias takes only the new key, and the API is told it
    s.sandbox.admin("PUT", "credentials", {"email": "agent@acme.com", "api_key": ROTATED})
    changed = await client.put("/credentials/acme-saved", json=credential_body(s, key=ROTATED),
                               headers={"If-Match": '"1"'})
    assert changed.status == 200, await changed.text()
    runtime.pipelines["from-file"].set_active(False)  # its file key is the old one: out of the way
    await publish(s.bootstrap, s.source, [ticket(i) for i in range(3, 6)])
    events = await read_json(s.bootstrap, s.responses, 9, timeout=60)
    saved = [e for e in events if e["destination"] == "saved"]
    assert len(saved) == 6 and all(e["outcome"] == "delivered" for e in saved)
    assert await read_to_end(s.bootstrap, s.dead_letters) == []

    # the secret scan: every topic on the broker, and every log line
    topics = await topic_bytes(s.bootstrap)
    assert runtime.saved_credentials is not None and runtime.saved_credentials.topic in topics
    logs = "\n".join(r.getMessage() for r in caplog.records).encode()
    assert secret_hits([API_KEY, ROTATED], {**topics, "logs": logs}, user="agent@acme.com") == []
    shown = str(await (await client.get("/credentials/acme-saved")).json())
    assert ROTATED not in shown and "gAAAA" not in shown


async def test_a_worker_without_the_key_refuses_only_the_destinations_that_need_it(
    scenario: Scenario, start_worker: Start,
) -> None:
    s = scenario
    await s.create_topics()
    runtime, client = await start_worker(new_key())
    assert (await client.post("/credentials", json=credential_body(s))).status == 201
    assert (await client.post("/destinations", json=destination_body(s))).status == 201
    await stop(runtime, client)

    keyless, client = await start_worker(None)
    status = await (await client.get("/destinations/saved")).json()
    assert status["state"] == "failed"
    assert "worker.secrets_key_env or worker.secrets_key_file" in status["reason"]
    assert keyless.pipelines["from-file"].active  # the others run
    refused = await client.post("/credentials", json=credential_body(s, "another"))
    assert refused.status == 503 and "set worker.secrets_key_env" in (await refused.json())["error"]


async def test_the_key_rotates_new_first_then_re_encrypt_then_old_dropped(
    scenario: Scenario, start_worker: Start,
) -> None:
    s = scenario
    await s.create_topics()
    old, new = new_key(), new_key()
    runtime, client = await start_worker(old)
    assert (await client.post("/credentials", json=credential_body(s))).status == 201
    await stop(runtime, client)

    runtime, client = await start_worker(f"{new},{old}")
    assert (await (await client.post("/credentials/acme-saved/test")).json())["ok"]
    answer = await (await client.post("/credentials/re-encrypt")).json()
    assert answer == {"re_encrypted": ["acme-saved"]}
    await stop(runtime, client)

    runtime, client = await start_worker(new)
    assert (await (await client.post("/credentials/acme-saved/test")).json())["ok"]


async def test_a_used_credential_is_not_deleted_and_mistakes_answer_clearly(
    scenario: Scenario, start_worker: Start,
) -> None:
    s = scenario
    await s.create_topics()
    runtime, client = await start_worker(new_key())
    assert (await client.post("/credentials", json=credential_body(s))).status == 201
    again = await client.post("/credentials", json=credential_body(s))
    assert again.status == 409 and "exists (version 1)" in (await again.json())["error"]
    assert (await client.post("/destinations", json=destination_body(s))).status == 201
    in_use = await client.delete("/credentials/acme-saved")
    assert in_use.status == 409 and "used by destination(s) saved" in (await in_use.json())["error"]
    exfiltrate = {**credential_body(s, "evil"), "api_key": None, "api_key_env": "KAFKA_PASSWORD"}
    exfiltrate.pop("api_key")
    bad = await client.post("/credentials", json=exfiltrate)
    assert bad.status == 400 and "worker.credential_env_prefix" in (await bad.json())["error"]
    unsaved = await (await client.post("/credentials/test", json=credential_body(s, key="wrong-key"))).json()
    assert (unsaved["ok"], unsaved["status"]) == (False, 401) and "wrong-key" not in str(unsaved)
    assert (await client.delete("/destinations/saved")).status == 200
    assert await wait_for(lambda: "saved" not in runtime.pipelines, 30)
    assert (await client.delete("/credentials/acme-saved")).status == 200
    assert (await client.get("/credentials/acme-saved")).status == 404
