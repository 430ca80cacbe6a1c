"""Tag names a worker knows to exist can stop existing (deleted, merged away): against the sandbox (in
process), which refuses ticket-tag writes naming a missing tag as Gorgias does, the write is refused once,
the names are created again (the stale knowledge dropped) and the write goes through."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from gorgias_sandbox.server import RunningSandbox, start_sandbox
from gorgias_sandbox.settings import SandboxSettings
from worker.core.config.worker_config import Destination
from worker.core.records.record import Record, SourceRef
from worker.core.templates import renderer_for
from worker.gorgias.delivery import DeliveryService

API_KEY = "sandbox-api-key"


@pytest.fixture(autouse=True)
def api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GORGIAS_API_KEY", API_KEY)


@pytest.fixture
async def sandbox() -> AsyncIterator[RunningSandbox]:
    running = await start_sandbox(SandboxSettings(rate_limit="off"))
    try:
        yield running
    finally:
        await running.stop()


async def api(url: str, method: str, path: str, body: Any = None) -> Any:
    async with httpx.AsyncClient() as client:
        r = await client.request(method, f"{url}{path}", json=body, auth=("agent@acme.com", API_KEY),
                                 headers={"Host": "acme.gorgias.com"})
        r.raise_for_status()
        return r.json() if r.content else None


def destination(url: str, template: str) -> Destination:
    return Destination.model_validate({
        "name": "tags", "source_topics": ["nexset.tags"],
        "credential": {"domain": "acme", "username": "agent@acme.com", "api_key_env": "GORGIAS_API_KEY",
                       "base_url": url, "rate_limit": {"enabled": False}},
        "endpoint": {"template": template},
        "delivery": {"max_attempts": 2, "backoff_initial_s": 0.01, "backoff_max_s": 0.02},
    })


@pytest.mark.parametrize("gone", ["deleted", "merged away"])
async def test_a_known_tag_that_no_longer_exists_is_created_again_and_the_write_retried(
        sandbox: RunningSandbox, gone: str) -> None:
    url = sandbox.url
    ticket = await api(url, "POST", "/api/tickets", {
        "customer": {"email": "jane@example.com"},
        "messages": [{"channel": "api", "via": "api", "from_agent": False, "body_text": "hi"}]})
    dest = destination(url, "add_ticket_tags")
    renderer = renderer_for(dest)

    def request(offset: int) -> Any:
        record = Record({"ticket_id": ticket["id"], "tags": ["vip"]}, SourceRef("nexset.tags", 0, offset))
        return renderer.render_one(renderer.prepare(record))

    async with DeliveryService() as delivery:
        first = await delivery.call(request(0), dest.credential, dest.delivery)
        assert first.ok and [s.status for s in first.steps] == [201, 200]
        vip = next(t for t in (await api(url, "GET", "/api/tags"))["data"] if t["name"] == "vip")
        if gone == "deleted":
            await api(url, "DELETE", f"/api/tags/{vip['id']}")
        else:
            other = await api(url, "POST", "/api/tags", {"name": "v.i.p"})
            await api(url, "PUT", f"/api/tags/{other['id']}/merge", {"source_tags_ids": [vip["id"]]})
        second = await delivery.call(request(1), dest.credential, dest.delivery)
    assert second.ok, second.final_reason
    assert [(s.skipped, s.status) for s in second.steps] == [(True, None), (False, 400), (False, 201), (False, 200)]
    names = [t["name"] for t in await api(url, "GET", f"/api/tickets/{ticket['id']}/tags")]
    assert "vip" in names
