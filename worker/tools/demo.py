"""`make demo`: the whole product on one machine, end to end.

Starts the local Apache Kafka broker and the Gorgias sandbox, runs the worker with the example
config (worker/tools/examples/demo.yaml), publishes sample Nexset records, prints the response events
as they arrive and the tickets the sandbox now holds, then stops everything it started.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import orjson
from aiokafka import TopicPartition

from worker.core.config.kafka import KafkaSettings
from worker.kafka.clients import existing_partitions, make_consumer, make_producer, read_ranges
from worker.tools.topic_io import print_responses, produce_file

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = Path(__file__).resolve().parent / "examples"
WORK = ROOT / ".cache" / "demo"
KAFKA_SCRIPT = ROOT / "deploy" / "local" / "kafka.sh"
API_KEY = "sandbox-api-key"


def use_colour(stream: object = sys.stdout) -> bool:
    """Bold only on a terminal, and never with NO_COLOR set (https://no-color.org)."""
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty()) and not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb"


def say(text: str) -> None:
    print(f"\n\033[1m==> {text}\033[0m" if use_colour() else f"\n==> {text}", flush=True)


def running_broker(script: Path = KAFKA_SCRIPT) -> str | None:
    """The bootstrap address of a local broker already started with deploy/local/kafka.sh, if any."""
    result = subprocess.run([str(script), "status"], check=False, capture_output=True, text=True)
    line = result.stdout.strip()
    if result.returncode == 0 and line.startswith("running: "):
        return line.removeprefix("running: ").strip()
    return None


@contextmanager
def local_broker(script: Path = KAFKA_SCRIPT) -> Iterator[tuple[str, bool]]:
    """(bootstrap, started here): a broker already running is used and left alone; else one is started, then stopped."""
    existing = running_broker(script)
    if existing:
        say(f"Using the local Kafka broker already running on {existing} (left running afterwards)")
        yield existing, False
        return
    bootstrap = f"127.0.0.1:{free_port(9092)}"
    say(f"Starting Apache Kafka 4.3.1 (KRaft, one node) on {bootstrap}")
    subprocess.run([str(script), "start", "--port", bootstrap.rsplit(":", 1)[1]], check=True)
    try:
        yield bootstrap, True
    finally:
        say("Stopping the broker this demo started")
        subprocess.run([str(script), "stop"], check=False, capture_output=True)


def free_port(preferred: int) -> int:
    for port in (preferred, 0):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return int(s.getsockname()[1])
    raise RuntimeError("no free port")


def sample_records() -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    customers = ["jane@example.com", "omar@example.com", "li@example.com", "ana@example.com"]
    tickets = []
    for i in range(12):
        email = customers[i % len(customers)]
        record: dict[str, object] = {
            "subject": f"Order #{1000 + i}: where is my parcel?",
            "channel": "api",
            "via": "api",
            "from_agent": False,
            "external_id": f"demo-request-{i}",
            "customer": {"email": email},
            "tags": [{"name": "order-status"}],
            "messages": [{
                "channel": "api", "via": "api", "from_agent": False,
                "sender": {"email": email},
                "body_text": f"Hi, order #{1000 + i} has not arrived yet.",
            }],
            "internal_score": 0.42,
            "meta": {"trace_id": f"trace-{i}", "source": "nexset-demo"},
        }
        tickets.append(record)
    tickets.insert(5, {"rawMessage": {"subject": "missing messages"}, "nexlaMetaData": {"resourceId": 7}})
    fields = [{"ticket_id": 1 + (i % 3), "field_id": 1 + (i % 2), "value": f"value-{i}"} for i in range(9)]
    return tickets, fields


def write_jsonl(path: Path, records: list[dict[str, object]]) -> Path:
    path.write_bytes(b"\n".join(orjson.dumps(r) for r in records) + b"\n")
    return path


def wait_http(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f}s")


def main() -> int:
    WORK.mkdir(parents=True, exist_ok=True)
    with local_broker() as (bootstrap, fresh):
        # on a broker that was already running, this run's own topics and group: earlier runs' records stay apart
        return run_demo(bootstrap, "demo" if fresh else f"demo-{time.strftime('%Y%m%d-%H%M%S')}")


def run_demo(bootstrap: str, prefix: str = "demo") -> int:
    """Sandbox, worker, records and what comes out, against the broker at ``bootstrap`` (topics ``<prefix>.*``)."""
    sandbox_port = free_port(8080)
    web_port = free_port(6066)
    sandbox_url = f"http://127.0.0.1:{sandbox_port}"
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": bootstrap, "SANDBOX_URL": sandbox_url, "GORGIAS_API_KEY": API_KEY}
    started: list[subprocess.Popen[bytes]] = []
    try:
        _start_sandbox_and_worker(started, env, prefix, sandbox_port, web_port)
        tickets, fields = sample_records()
        kafka = KafkaSettings(bootstrap_servers=bootstrap)
        say(f"Publishing {len(tickets) + 1} support requests (one of them not JSON, one missing its messages)")
        path = write_jsonl(WORK / "support-requests.jsonl", tickets)
        asyncio.run(produce_file(kafka, f"{prefix}.support-requests", path, "external_id"))
        asyncio.run(_publish_raw(kafka, f"{prefix}.support-requests", b"{not json"))
        say(f"Publishing {len(fields)} ticket field values (batched by ticket_id)")
        path = write_jsonl(WORK / "ticket-fields.jsonl", fields)
        asyncio.run(produce_file(kafka, f"{prefix}.ticket-fields", path, "ticket_id"))
        expected_calls = len(tickets) + 3  # 13 ticket calls (one rejected by Gorgias) + 3 batched field calls
        _show_results(kafka, prefix, expected_calls, sandbox_url, web_port)
        say("Done. Stopping the worker (SIGTERM: finishes the calls on the wire, commits) and the sandbox")
        return 0
    finally:
        for proc in reversed(started):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
        print(f"(logs in {WORK})")


def _start_sandbox_and_worker(started: list[subprocess.Popen[bytes]], env: dict[str, str], prefix: str,
                              sandbox_port: int, web_port: int) -> None:
    """Start the sandbox, write and validate the demo config, start the worker; each process goes into ``started``."""
    sandbox_url = env["SANDBOX_URL"]
    say(f"Starting the Gorgias sandbox on {sandbox_url} (account acme, rate limit 40/20s)")
    sandbox_log = open(WORK / "sandbox.log", "wb")
    started.append(subprocess.Popen(
        [sys.executable, "-m", "worker", "sandbox", "--port", str(sandbox_port)],
        stdout=sandbox_log, stderr=subprocess.STDOUT, env=env,
    ))
    wait_http(f"{sandbox_url}/__admin/health")

    config = (EXAMPLES / "demo.yaml").read_text().replace("web_port: 6066", f"web_port: {web_port}")
    config = re.sub(r"\bdemo\.(?=support-requests|ticket-fields|gorgias\.)", f"{prefix}.", config)
    config = config.replace("group_id: gorgias-demo", f"group_id: gorgias-{prefix}")
    config_path = WORK / "demo.yaml"
    config_path.write_text(config)
    say(f"Validating {config_path}")
    subprocess.run([sys.executable, "-m", "worker", "validate", "-c", str(config_path)], check=True, env=env)

    say("Starting the worker (gorgias-worker run)")
    worker_log = open(WORK / "worker.log", "wb")
    started.append(subprocess.Popen(
        [sys.executable, "-m", "worker", "run", "-c", str(config_path)],
        stdout=worker_log, stderr=subprocess.STDOUT, env=env,
    ))
    wait_http(f"http://127.0.0.1:{web_port}/health/ready", timeout=90)


def _show_results(kafka: KafkaSettings, prefix: str, expected_calls: int, sandbox_url: str, web_port: int) -> None:
    """The response events, the dead letters, what the sandbox holds and a few worker metrics."""
    say(f"Response events arriving on {prefix}.gorgias.responses (gorgias-worker responses)")
    asyncio.run(print_responses(kafka, [f"{prefix}.gorgias.responses"], None, True, expected_calls, False))

    say(f"Dead-letter topic {prefix}.gorgias.dead-letter")
    asyncio.run(_print_dead_letters(kafka, f"{prefix}.gorgias.dead-letter"))

    say("What the sandbox now holds (GET /__admin/state)")
    state = httpx.get(f"{sandbox_url}/__admin/state", timeout=5).json()
    for t in state.get("tickets", []):
        fields_text = t.get("custom_fields") or {}
        print(f"  ticket {t['id']}: {t.get('subject')!r} customer={t.get('customer', {}).get('email')} "
              f"external_id={t.get('external_id')} messages={len(t.get('messages', []))} fields={fields_text}")
    print(f"  customers: {len(state.get('customers', []))}, tags: {[x['name'] for x in state.get('tags', [])]}")
    emailed = state.get("emailed", [])
    print(f"  messages Gorgias would have emailed: {len(emailed)}"
          + ("" if emailed else " (the demo's records are customers' messages: nothing is sent to anyone)"))
    metrics = httpx.get(f"http://127.0.0.1:{web_port}/metrics", timeout=5).text
    say("A few worker metrics (GET /metrics)")
    for line in metrics.splitlines():
        if line.startswith(("gorgias_worker_records_", "gorgias_worker_calls_total")) and "_created" not in line:
            print("  " + line)


async def _publish_raw(kafka: KafkaSettings, topic: str, value: bytes) -> None:
    producer = make_producer(kafka)
    await producer.start()
    try:
        await producer.send_and_wait(topic, value)
    finally:
        await producer.stop()


async def _print_dead_letters(kafka: KafkaSettings, topic: str) -> None:
    """Every dead letter on ``topic`` now (reading creates no topic)."""
    tps = [TopicPartition(topic, p) for p in (await existing_partitions(kafka, [topic])).get(topic, [])]
    shown = 0
    if tps:
        consumer = make_consumer(kafka, None, isolation_level="read_uncommitted")
        await consumer.start()
        try:
            consumer.assign(tps)
            starts, ends = await consumer.beginning_offsets(tps), await consumer.end_offsets(tps)
            async for msg in read_ranges(consumer, {tp: (starts[tp], ends[tp]) for tp in tps}):
                doc = orjson.loads(msg.value)
                src = doc["records"][0]["source"]
                print(f"  {doc['destination']} [{doc['stage']}] {src['topic']}:{src['partition']}@{src['offset']}: "
                      f"{doc['reason']}")
                shown += 1
        finally:
            await consumer.stop()
    if not shown:
        print("  (none)")


if __name__ == "__main__":
    sys.exit(main())
