"""Tag names a worker knows to exist can stop existing (deleted, merged away): against the sandbox (in
process), which refuses ticket-tag writes naming a missing tag as Gorgias does, the write is refused once,
the names are created again (the stale knowledge dropped) and the write goes through."""

from __future__ import annotations

from typing import Any

import pytest

from gorgias_sandbox.server import RunningSandbox
from tests.support.sandbox_client import API_KEY, SandboxClient
from worker.core.config.worker_config import Destination
from worker.core.records.record import Record, SourceRef
from worker.core.templates import renderer_for
from worker.gorgias.delivery import DeliveryService


@pytest.fixture(autouse=True)
def api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GORGIAS_API_KEY", API_KEY)


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
    gorgias = SandboxClient(url)
    ticket = await gorgias.api("POST", "/api/tickets", {
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
        vip = next(t for t in (await gorgias.api("GET", "/api/tags"))["data"] if t["name"] == "vip")
        if gone == "deleted":
            await gorgias.api("DELETE", f"/api/tags/{vip['id']}")
        else:
            other = await gorgias.api("POST", "/api/tags", {"name": "v.i.p"})
            await gorgias.api("PUT", f"/api/tags/{other['id']}/merge", {"source_tags_ids": [vip["id"]]})
        second = await delivery.call(request(1), dest.credential, dest.delivery)
    assert second.ok, second.final_reason
    assert [(s.skipped, s.status) for s in second.steps] == [(True, None), (False, 400), (False, 201), (False, 200)]
    names = [t["name"] for t in await gorgias.api("GET", f"/api/tickets/{ticket['id']}/tags")]
    assert "vip" in names
