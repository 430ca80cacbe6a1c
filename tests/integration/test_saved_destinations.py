"""Destinations saved at runtime through the REST API, in one worker process against the real broker and
sandbox: created paused, activated, replaced, deleted; validated as the file is; file-defined ones refused."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from pydantic import SecretStr

from tests.support.kafka_io import committed, produce_raw, publish, read_json, wait_for
from tests.support.processes import API_KEY
from tests.support.scenario import Scenario
from worker.core.store.entries import encode_entry
from worker.service.control_api import create_control_app
from worker.service.runtime import Runtime

pytestmark = pytest.mark.integration


def ticket(i: int) -> dict[str, Any]:
    return {"subject": f"s{i}", "channel": "api", "via": "api", "from_agent": False,
            "customer": {"email": f"c{i}@example.com"},
            "messages": [{"channel": "api", "via": "api", "from_agent": False, "sender": {"email": f"c{i}@example.com"},
                          "body_text": "hello"}]}


def saved_body(s: Scenario, name: str = "saved", **overrides: Any) -> dict[str, Any]:
    """A destination for the API: its credential by name (the file's `credentials:`)."""
    body = s.destination(name, **overrides)
    body["credential"] = "acme"
    return body


def worker_doc(s: Scenario, *file_destinations: dict[str, Any]) -> dict[str, Any]:
    doc = s.config(*file_destinations)
    doc["destinations"] = list(file_destinations)
    doc["credentials"] = {"acme": s.destination()["credential"]}
    return doc


@pytest.fixture
async def api(scenario: Scenario, run_worker: Any) -> AsyncIterator[tuple[Runtime, TestClient[Any, Any]]]:
    await scenario.create_topics()
    runtime = await run_worker(worker_doc(scenario, scenario.destination("from-file")))
    async with TestClient(TestServer(create_control_app(runtime))) as client:
        yield runtime, client


async def test_a_created_destination_starts_paused_then_runs_changes_and_is_deleted(
    scenario: Scenario, api: tuple[Runtime, TestClient[Any, Any]],
) -> None:
    s = scenario
    runtime, client = api
    created = await client.post("/destinations", json=saved_body(s))
    assert created.status == 201, await created.text()
    assert await created.json() == {"name": "saved", "version": 1, "state": "paused"}
    assert created.headers["ETag"] == '"1"'
    status = await (await client.get("/destinations/saved")).json()
    assert (status["source"], status["state"], status["version"]) == ("store", "paused", 1)
    await publish(s.bootstrap, s.source, [ticket(i) for i in range(3)])
    # the file's destination reads the same topic and delivers; the saved one, paused, sends nothing
    events = await read_json(s.bootstrap, s.responses, 3, timeout=60)
    assert {e["destination"] for e in events} == {"from-file"}

    assert (await client.post("/destinations/saved/activate")).status == 200
    events = await read_json(s.bootstrap, s.responses, 6, timeout=60)
    assert sorted(e["destination"] for e in events) == ["from-file"] * 3 + ["saved"] * 3

    changed = await client.put("/destinations/saved", json=saved_body(s, batching={"enabled": True}),
                               headers={"If-Match": '"1"'})
    assert changed.status == 200, await changed.text()
    assert (await changed.json())["version"] == 2
    assert await wait_for(lambda: (p := runtime.pipelines.get("saved")) is not None and p.dest.batching.enabled, 30)
    assert runtime.pipelines["saved"].active  # a replace keeps the state

    config = await (await client.get("/destinations/saved/config")).json()
    assert (config["source"], config["version"], config["state"]) == ("store", 2, "active")
    assert config["config"]["credential"] == "acme" and API_KEY not in str(config)

    deleted = await client.delete("/destinations/saved", headers={"If-Match": '"2"'})
    assert deleted.status == 200, await deleted.text()
    assert (await deleted.json())["offsets"] == "kept"
    assert await wait_for(lambda: "saved" not in runtime.pipelines, 30)
    assert (await client.get("/destinations/saved")).status == 404
    recreated = await client.post("/destinations", json=saved_body(s))
    assert (await recreated.json())["state"] == "paused"  # re-created: paused again, whatever it was
    assert (await recreated.json())["version"] == 3


async def test_an_invalid_body_is_a_400_with_the_file_s_paths_and_nothing_is_written(
    scenario: Scenario, api: tuple[Runtime, TestClient[Any, Any]],
) -> None:
    s = scenario
    runtime, client = api
    bad = saved_body(s, batching={"enabled": True, "batch_size": 0}, bathcing={})
    answer = await client.post("/destinations", json=bad)
    assert answer.status == 400
    doc = await answer.json()
    paths = {e["path"]: e for e in doc["errors"]}
    assert paths["batching.batch_size"]["message"] == "must be >= 1 (got 0)"
    assert paths["bathcing"]["suggestion"] == "did you mean `batching`?"
    assert doc["error"].startswith("the destination is not valid: ")
    unknown = await client.post("/destinations", json={**saved_body(s), "credential": "acmee"})
    assert (await unknown.json())["errors"][0]["path"] == "credential"
    assert runtime.saved is not None and runtime.saved.store.entries == {}


async def test_conflicts_answer_409_and_412(scenario: Scenario, api: tuple[Runtime, TestClient[Any, Any]]) -> None:
    s = scenario
    _, client = api
    assert (await client.post("/destinations", json=saved_body(s))).status == 201
    again = await client.post("/destinations", json=saved_body(s))
    assert again.status == 409 and "exists (version 1)" in (await again.json())["error"]
    stale = await client.put("/destinations/saved", json=saved_body(s), headers={"If-Match": '"7"'})
    assert stale.status == 412 and "at version 1, not 7" in (await stale.json())["error"]
    file_one = await client.put("/destinations/from-file", json=saved_body(s, "from-file"))
    assert file_one.status == 409 and "defined in the config file" in (await file_one.json())["error"]
    assert (await client.delete("/destinations/from-file")).status == 409
    file_config = await (await client.get("/destinations/from-file/config")).json()
    assert file_config["source"] == "file"
    shared_group = await client.post("/destinations", json=saved_body(s, "other", group_id=s.group_of("saved")))
    assert shared_group.status == 400 and (await shared_group.json())["errors"][0]["path"] == "group_id"


async def test_an_inline_credential_must_be_one_the_config_defines(
    scenario: Scenario, api: tuple[Runtime, TestClient[Any, Any]], monkeypatch: pytest.MonkeyPatch,
) -> None:
    s = scenario
    _, client = api
    monkeypatch.setenv("OTHER_SECRET", "do-not-send-me")
    same = {**saved_body(s), "credential": {**s.destination()["credential"], "rate_limit": {"enabled": False}}}
    assert (await client.post("/destinations", json=same)).status == 201
    other = {**s.destination()["credential"], "api_key_env": "OTHER_SECRET"}
    refused = await client.post("/destinations", json={**saved_body(s, "exfil"), "credential": other})
    assert refused.status == 400
    assert "only use a credential the worker's config defines" in (await refused.json())["error"]


async def test_a_stored_value_that_cannot_run_marks_only_that_destination_failed(
    scenario: Scenario, api: tuple[Runtime, TestClient[Any, Any]],
) -> None:
    s = scenario
    runtime, client = api
    assert (await client.post("/destinations", json=saved_body(s, "good"))).status == 201
    store = runtime.saved.store  # type: ignore[union-attr]
    scope = runtime.config.kafka.scope
    invalid = {**saved_body(s, "invalid"), "batching": {"batch_size": 0}}
    await produce_raw(s.bootstrap, store.topic, scope.key("broken"), b"{written by hand")
    await produce_raw(s.bootstrap, store.topic, scope.key("invalid"), encode_entry(1, invalid, "now", "a person"))
    assert await wait_for(lambda: {"broken", "invalid"} <= set(runtime.failed_destinations), 30)
    items = {d["name"]: d for d in (await (await client.get("/destinations")).json())["destinations"]}
    assert (items["broken"]["state"], items["broken"]["source"]) == ("failed", "store")
    assert "not JSON" in items["broken"]["reason"]
    assert "batching.batch_size: must be >= 1 (got 0)" in items["invalid"]["reason"]
    assert items["good"]["state"] == "paused" and items["from-file"]["state"] == "active"  # the others run
    metrics_text = (await (await client.get("/metrics")).text())
    assert 'gorgias_worker_destination_state{destination="broken",state="failed"} 1.0' in metrics_text
    assert 'gorgias_worker_destination_state{destination="good",state="paused"} 1.0' in metrics_text
    fixed = await client.put("/destinations/broken", json=saved_body(s, "broken"))
    assert fixed.status == 200, await fixed.text()  # replaced: it existed, unreadable
    assert await wait_for(lambda: "broken" in runtime.pipelines and "broken" not in runtime.failed_destinations, 30)


async def test_deleting_a_destination_mid_call_finishes_its_calls_as_sigterm_does(
    scenario: Scenario, api: tuple[Runtime, TestClient[Any, Any]],
) -> None:
    s = scenario
    runtime, client = api
    assert (await client.post("/destinations/from-file/pause")).status == 200  # only the saved one sends
    s.sandbox.admin("PUT", "faults", {"spec": "latency=1500ms@POST /api/tickets"})
    created = await client.post("/destinations", json={**saved_body(s, "slow"), "active": True,
                                                        "delivery": {"max_in_flight": 2}})
    assert (await created.json())["state"] == "active"
    await publish(s.bootstrap, s.source, [ticket(i) for i in range(6)])
    assert await wait_for(lambda: (p := runtime.pipelines.get("slow")) is not None and p.status()["calls_in_flight"]
                          == 2, 60)
    deleted = await client.delete("/destinations/slow")
    assert deleted.status == 200
    assert await wait_for(lambda: "slow" not in runtime.pipelines, 30)
    done = await committed(s.bootstrap, s.group_of("slow"), s.source)
    events = await read_json(s.bootstrap, s.responses, 2, timeout=10)
    assert [e["outcome"] for e in events] == ["delivered", "delivered"]  # the two calls on the wire finished
    assert done == {0: 2}  # and exactly what is done is committed; the waiting records are not
    s.sandbox.admin("PUT", "faults", {})
    again = await client.post("/destinations", json={**saved_body(s, "slow"), "active": True})
    assert again.status == 201
    await read_json(s.bootstrap, s.responses, 6, timeout=60)  # it resumes at the committed offset
    assert sorted(t["subject"] for t in s.sandbox.state()["tickets"]) == sorted(f"s{i}" for i in range(6))


async def test_writes_need_the_control_token_and_a_change_of_topics_says_what_it_means_for_offsets(
    scenario: Scenario, run_worker: Any,
) -> None:
    s = scenario
    await s.create_topics()
    runtime = await run_worker(worker_doc(s))
    headers = {"Authorization": "Bearer sesame"}
    async with TestClient(TestServer(create_control_app(runtime, token=SecretStr("sesame")))) as client:
        assert (await client.post("/destinations", json=saved_body(s))).status == 401
        assert (await client.post("/destinations", json=saved_body(s), headers=headers)).status == 201
        assert (await client.put("/destinations/saved", json=saved_body(s))).status == 401
        assert (await client.delete("/destinations/saved")).status == 401
        assert (await client.get("/destinations/saved/config")).status == 200  # reading needs no token
        moved = await client.put("/destinations/saved", headers=headers,
                                 json=saved_body(s, source_topics=[s.source, f"{s.source}-more"]))
        offsets = (await moved.json())["offsets"]
        assert offsets["added_topics"] == [f"{s.source}-more"] and offsets["group"] == s.group_of("saved")
        assert "start at start_from (earliest)" in offsets["effect"]
        regrouped = await client.put("/destinations/saved", headers=headers,
                                     json=saved_body(s, group_id=f"{s.group}.pinned"))
        effect = (await regrouped.json())["offsets"]
        assert (effect["previous_group"], effect["group"]) == (s.group_of("saved"), f"{s.group}.pinned")
        assert runtime.saved is not None and runtime.saved.store.entries["saved"].version == 3


async def test_a_delete_can_forget_the_group_s_offsets(
    scenario: Scenario, api: tuple[Runtime, TestClient[Any, Any]],
) -> None:
    s = scenario
    runtime, client = api
    assert (await client.post("/destinations/from-file/pause")).status == 200
    assert (await client.post("/destinations", json={**saved_body(s), "active": True})).status == 201
    await publish(s.bootstrap, s.source, [ticket(i) for i in range(3)])
    assert await wait_for(lambda: committed(s.bootstrap, s.group_of("saved"), s.source), 60)
    assert await wait_for(lambda: "saved" in runtime.pipelines, 10)
    forgotten = await client.delete("/destinations/saved?forget_offsets=true")
    assert (await forgotten.json())["offsets"] == "forgotten", await forgotten.text()
    assert await committed(s.bootstrap, s.group_of("saved"), s.source) == {}
