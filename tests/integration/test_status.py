"""Status answers "is it healthy?" from Kafka and the running worker; `responses` reads the config's topics."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer
from typer.testing import CliRunner

from tests.support.kafka_io import committed, publish, read_json, wait_for
from tests.support.scenario import Scenario
from worker.core.config.worker_config import parse_config
from worker.kafka.clients import make_consumer
from worker.service.control_api import create_control_app
from worker.tools.cli import app
from worker.tools.status_report import format_report, kafka_view, merge

pytestmark = pytest.mark.integration

runner = CliRunner()


def ticket(i: int) -> dict[str, Any]:
    return {"subject": f"s{i}", "external_id": f"req-{i}", "channel": "api", "via": "api", "from_agent": False,
            "customer": {"email": f"c{i}@example.com"},
            "messages": [{"channel": "api", "via": "api", "from_agent": False, "sender": {"email": f"c{i}@example.com"},
                          "body_text": "hello"}]}


async def test_status_shows_offsets_lag_counters_and_last_error(
    scenario: Scenario, run_worker: Any, tmp_path: Path
) -> None:
    s = scenario
    await s.create_topics(partitions=2)
    await publish(s.bootstrap, s.source, [ticket(i) for i in range(6)] + [b"{not json"],
                  key=lambda i, _: f"k{i % 2}".encode())
    doc = s.config()
    runtime = await run_worker(doc)
    await read_json(s.bootstrap, s.responses, 6, timeout=60)

    async def all_committed() -> bool:
        return sum((await committed(s.bootstrap, s.group_of(), s.source)).values()) >= 7
    assert await wait_for(all_committed, 60, interval=0.3)

    # the running worker: GET /destinations, and the CLI reading it with --worker
    path = s.write(tmp_path, doc)
    async with TestClient(TestServer(create_control_app(runtime))) as client:
        live = await (await client.get("/destinations")).json()
        one = await (await client.get("/destinations/dest")).json()
        url = str(client.make_url("/"))
        shown = await asyncio.to_thread(runner.invoke, app, ["status", "-c", str(path), "--worker", url])
    assert shown.exit_code == 0, shown.output
    assert "worker: ready" in shown.stdout and "dest: active (from config)" in shown.stdout
    counts = one["records"]  # process-wide counters: other tests in this session may add to "dest"
    assert (f"since start: {counts['delivered']} delivered, {counts['dead_lettered']} dead-lettered "
            f"({counts['unknown']} of them with outcome unknown)") in shown.stdout
    assert "last error: " in shown.stdout and "decode:" in shown.stdout
    assert "account acme" in shown.stdout and "budget " in shown.stdout
    assert one["state"] == "active"
    assert one["records"]["delivered"] >= 6 and one["records"]["dead_lettered"] >= 1
    assert one["last_error"]["message"].startswith("decode:") and one["last_error"]["at"]
    assert "acme" in "".join(live["accounts"])

    # Kafka's view: every record committed, lag 0, per partition
    config = parse_config(doc)
    view = await kafka_view(config)
    parts = view["dest"]["partitions"]
    assert [(p["topic"], p["partition"]) for p in parts] == [(s.source, 0), (s.source, 1)]
    assert sum(p["committed"] or 0 for p in parts) == 7 == sum(p["end"] for p in parts)
    assert all(p["lag"] == 0 for p in parts)

    report = merge(view, live)
    text = "\n".join(format_report(report))
    assert "dest: active (from config)" in text and "lag total 0" in text
    assert "dead-lettered" in text and "last error:" in text

    # a record more, not consumed because the destination is paused: lag 1 in the CLI's JSON
    runtime.apply_command("dest", False)
    consumer = runtime.pipelines["dest"]._consumer
    assert consumer is not None and consumer.paused() == consumer.assignment()  # nothing more is read
    await publish(s.bootstrap, s.source, [ticket(99)], key=lambda i, _: b"k0")
    result = await asyncio.to_thread(runner.invoke, app, ["status", "-c", str(path), "--json",
                                                          "--worker", "http://127.0.0.1:9"])
    assert result.exit_code == 0, result.output
    out = orjson.loads(result.stdout)
    (dest,) = out["destinations"]
    assert sum(p["lag"] for p in dest["partitions"]) == 1
    assert out["worker"] is None and "not reachable" in out["worker_note"]


async def test_responses_reads_the_config_topics_exactly_limit_and_creates_nothing(
    scenario: Scenario, tmp_path: Path
) -> None:
    s = scenario
    events = [{"destination": "dest", "request": {"method": "POST", "url": "u"}, "response": {"status": 201},
               "record_count": 1, "attempts": 1, "latency_ms": 1.0} for _ in range(9)]
    from tests.support.kafka_io import create_topics

    await create_topics(s.bootstrap, [s.responses], 3)
    await publish(s.bootstrap, s.responses, events, key=lambda i, _: f"k{i}".encode())
    path = s.write(tmp_path, s.config())
    result = await asyncio.to_thread(runner.invoke, app, ["responses", "-c", str(path), "--limit", "4"])
    assert result.exit_code == 0, result.output
    assert len(result.stdout.strip().splitlines()) == 4
    # none of another destination: said on stderr, so that a user is not left wondering
    result = await asyncio.to_thread(runner.invoke, app, ["responses", "--bootstrap", s.bootstrap,
                                                          "--topic", s.responses, "--destination", "other"])
    assert result.exit_code == 0 and result.stdout == ""
    assert result.stderr.strip() == f"no response events of other on {s.responses} yet"

    missing = s.config(s.destination(response_webhook={"topic": f"{s.responses}-missing"}))
    result = await asyncio.to_thread(runner.invoke, app, ["responses", "-c", str(s.write(tmp_path, missing))])
    assert result.exit_code == 1 and "does not exist" in result.stderr
    consumer = make_consumer(parse_config(missing).kafka, None)
    await consumer.start()
    try:
        assert f"{s.responses}-missing" not in await consumer.topics()
    finally:
        await consumer.stop()


async def test_produce_when_piped_prints_one_line_and_no_progress_bar(scenario: Scenario, tmp_path: Path) -> None:
    s = scenario
    records = tmp_path / "r.jsonl"
    records.write_text('{"a": 1}\n{"a": 2}\nnot json\n{"a": 3}\n')
    result = await asyncio.to_thread(runner.invoke, app, ["produce", "--topic", s.source, str(records)],
                                     env={"KAFKA_BOOTSTRAP_SERVERS": s.bootstrap})
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    assert result.stdout == f"published 3 record(s) to {s.source}; skipped 1 line(s) that are not JSON\n"
