"""`make try` (`gorgias-worker try`): the console, ready to use, until Ctrl-C.

Starts the local Apache Kafka broker (or uses one already running), the Gorgias sandbox and a worker
with worker/tools/examples/try.yaml, publishes sample records to a few topics (support requests,
ticket tags, customers), prints the console's URL and keeps everything running until Ctrl-C (or
SIGTERM); then it stops what it started.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import httpx

from worker.core.config.kafka import KafkaSettings
from worker.core.config.topics import SOURCE_SPEC
from worker.kafka.clients import ensure_topic
from worker.tools.demo import API_KEY, EXAMPLES, free_port, local_broker, say, wait_http, write_jsonl
from worker.tools.topic_io import produce_file

WORK = Path(__file__).resolve().parents[2] / ".cache" / "try"
TOPICS = ("try.support-requests", "try.ticket-tags", "try.customers")
PEOPLE = [("Jane Doe", "jane@example.com"), ("Omar Haddad", "omar@example.com"), ("Li Wei", "li@example.com")]


def sample_records() -> dict[str, list[dict[str, object]]]:
    """A few records per topic: support requests (create_ticket), tags per ticket, customers."""
    people = PEOPLE
    requests = [{
        "conversation_id": f"conv-{i % 3}", "subject": f"Order #{2000 + i}: where is my parcel?",
        "body_text": f"Hello, order #{2000 + i} has not arrived yet.", "customer_email": people[i % 3][1],
        "customer_name": people[i % 3][0], "tags": ["order-status"], "internal_score": round(0.1 * i, 2),
    } for i in range(6)]
    tags = [{"ticket_id": 1 + i % 3, "tags": [["vip"], ["late", "vip"], ["refund"]][i % 3], "source": "crm"}
            for i in range(9)]
    customers: list[dict[str, object]] = [
        {"name": name, "email": email, "phone": f"+4420790{i:05d}", "crm_id": f"crm-{i}"}
        for i, (name, email) in enumerate(people)
    ]
    return {TOPICS[0]: requests, TOPICS[1]: tags, TOPICS[2]: customers}


def main() -> int:
    WORK.mkdir(parents=True, exist_ok=True)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    with local_broker() as (bootstrap, _fresh):
        return run_try(bootstrap, stop)


def run_try(bootstrap: str, stop: threading.Event) -> int:
    """Sandbox, worker and sample records on the broker at ``bootstrap``, until ``stop`` is set."""
    sandbox_port, web_port = free_port(8080), free_port(6066)
    sandbox_url, console = f"http://127.0.0.1:{sandbox_port}", f"http://127.0.0.1:{web_port}/"
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": bootstrap, "SANDBOX_URL": sandbox_url,
           "GORGIAS_API_KEY": API_KEY, "WEB_PORT": str(web_port)}
    started: list[subprocess.Popen[bytes]] = []
    try:
        say(f"Starting the Gorgias sandbox on {sandbox_url} (account acme)")
        started.append(_spawn(["sandbox", "--port", str(sandbox_port)], "sandbox.log", env))
        wait_http(f"{sandbox_url}/__admin/health")
        tickets = _open_tickets(sandbox_url)
        say(f"The sandbox's account acme has tickets {', '.join(map(str, tickets))} (try.ticket-tags tags them)")
        kafka = KafkaSettings(bootstrap_servers=bootstrap)
        for topic, records in sample_records().items():
            say(f"Publishing {len(records)} sample records to {topic}")
            asyncio.run(_publish(kafka, topic, write_jsonl(WORK / f"{topic}.jsonl", records)))
        say("Starting the worker (gorgias-worker run)")
        started.append(_spawn(["run", "-c", str(EXAMPLES / "try.yaml")], "worker.log", env))
        wait_http(f"{console}health/ready", timeout=90)
        say(f"The console: {console}")
        print(f"  sandbox state: {sandbox_url}/__admin/state   logs: {WORK}\n  Ctrl-C stops everything.", flush=True)
        while not stop.wait(1):
            if any(p.poll() is not None for p in started):
                say(f"A process stopped by itself; see the logs in {WORK}")
                return 1
        return 0
    finally:
        say("Stopping the worker and the sandbox")
        for proc in reversed(started):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()


def _open_tickets(sandbox_url: str) -> list[int]:
    """Three tickets on the sandbox's account, for the sample tag records to land on."""
    made = []
    for i, (name, email) in enumerate(PEOPLE):
        body = {"customer": {"email": email, "name": name}, "channel": "email", "via": "api",
                "subject": f"Order #{1000 + i}", "messages": [{
                    "channel": "email", "via": "api", "from_agent": False, "sender": {"email": email},
                    "body_text": f"Where is order #{1000 + i}?",
                    "source": {"from": {"address": email}, "to": [{"address": "support@acme.com"}]},
                    "sent_datetime": "2026-01-31T08:00:00Z"}]}
        answer = httpx.post(f"{sandbox_url}/api/tickets", json=body, auth=("agent@acme.com", API_KEY),
                            headers={"Host": "acme.gorgias.com"}, timeout=10)
        answer.raise_for_status()
        made.append(int(answer.json()["id"]))
    return made


async def _publish(kafka: KafkaSettings, topic: str, path: Path) -> None:
    await ensure_topic(kafka, topic, SOURCE_SPEC)
    await produce_file(kafka, topic, path, None)


def _spawn(args: list[str], log: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    with open(WORK / log, "wb") as out:
        return subprocess.Popen([sys.executable, "-m", "worker", *args], stdout=out, stderr=subprocess.STDOUT,
                                env=env, start_new_session=True)


if __name__ == "__main__":
    sys.exit(main())
