"""One end-to-end test's world: its unique topics and config document (:class:`Scenario`), the records it
publishes, and the waits on and reads of what came out."""

from __future__ import annotations

import signal
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import orjson
import yaml

from tests.support import http
from tests.support.kafka_io import committed, create_topics, read_to_end, read_topic, wait_for
from tests.support.ports import free_port
from tests.support.processes import SandboxProcess, WorkerProcess, gorgias
from worker.tools import schemas


class Scenario:
    """Unique topics and a config document for one test."""

    def __init__(self, bootstrap: str, sandbox: SandboxProcess) -> None:
        run = uuid.uuid4().hex[:10]
        self.bootstrap = bootstrap
        self.sandbox = sandbox
        self.source = f"src-{run}"
        self.responses = f"resp-{run}"
        self.dead_letters = f"dlq-{run}"
        self.group = f"g-{run}"
        self.web_port = free_port()

    def destination(self, name: str = "dest", **overrides: Any) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "name": name,
            "source_topics": [self.source],
            "credential": {
                "domain": "acme", "username": "agent@acme.com", "api_key_env": "GORGIAS_API_KEY",
                "base_url": self.sandbox.url,
                "rate_limit": {"enabled": False},  # the shared sandbox runs with its rate limit off
            },
            "endpoint": {"method": "POST", "url": "https://{domain}.gorgias.com/api/tickets"},
            "response_webhook": {"enabled": True, "topic": self.responses},
            "dead_letter_topic": self.dead_letters,
            "delivery": {"backoff_initial_s": 0.05, "backoff_max_s": 0.5, "max_in_flight": 8},
        }
        for key, value in overrides.items():
            if isinstance(value, dict) and isinstance(doc.get(key), dict):
                doc[key] = {**doc[key], **value}
            else:
                doc[key] = value
        return doc

    def config(self, *destinations: dict[str, Any]) -> dict[str, Any]:
        return {
            "kafka": {"bootstrap_servers": self.bootstrap, "group_id": self.group,
                      "control_topic": f"control-{self.group}"},
            "worker": {"web_port": self.web_port, "shutdown_grace_s": 10, "log_format": "text"},
            "destinations": list(destinations) or [self.destination()],
        }

    def write(self, tmp_path: Path, doc: dict[str, Any]) -> Path:
        path = tmp_path / "config.yaml"
        path.write_text(yaml.safe_dump(doc))
        return path

    def group_of(self, name: str = "dest") -> str:
        return f"{self.group}.{name}"

    async def create_topics(self, partitions: int = 1) -> None:
        await create_topics(self.bootstrap, [self.source], partitions)


RESPONSE_SCHEMA = schemas.generate()["response-event.schema.json"]


DEAD_LETTER_SCHEMA = schemas.generate()["dead-letter.schema.json"]


def ticket(i: int, **extra: Any) -> dict[str, Any]:
    email = f"customer{i % 3}@example.com"
    return {
        "subject": f"Request {i}",
        "external_id": f"req-{i}",
        "channel": "api",
        "via": "api",
        "from_agent": False,
        "customer": {"email": email},
        "messages": [{"channel": "api", "via": "api", "from_agent": False, "sender": {"email": email},
                      "body_text": f"body {i}"}],
        **extra,
    }


async def wait_committed(s: Scenario, total: int, name: str = "dest", timeout: float = 60) -> dict[int, int]:
    async def done() -> dict[int, int] | None:
        offs = await committed(s.bootstrap, s.group_of(name), s.source)
        return offs if sum(offs.values()) >= total else None

    result = await wait_for(done, timeout, interval=0.3)
    assert result, f"offsets not committed up to {total}: {await committed(s.bootstrap, s.group_of(name), s.source)}"
    return dict(result)


def setup_tickets(s: Scenario) -> tuple[list[int], list[int]]:
    tickets = [
        gorgias(s.sandbox, "POST", "/api/tickets", {
            "channel": "api", "via": "api", "from_agent": False, "customer": {"email": f"c{i}@example.com"},
            "messages": [{"channel": "api", "via": "api", "from_agent": False, "sender": {"email": f"c{i}@example.com"},
                          "body_text": "hello"}],
        })["id"]
        for i in range(3)
    ]
    fields = [
        gorgias(s.sandbox, "POST", "/api/custom-fields", {
            "object_type": "Ticket", "label": f"Field {i}", "definition": {"data_type": "text"},
        })["id"]
        for i in range(2)
    ]
    return tickets, fields


async def outcomes(s: Scenario) -> tuple[Counter[tuple[int, int]], Counter[tuple[int, int]]]:
    """(partition, offset) → number of response events, and number of dead letters, recorded so far."""
    import orjson

    events: Counter[tuple[int, int]] = Counter()
    letters: Counter[tuple[int, int]] = Counter()
    for msg in await read_to_end(s.bootstrap, s.responses):
        for r in orjson.loads(msg.value)["records"]:
            events[(r["partition"], r["offset"])] += 1
    for msg in await read_to_end(s.bootstrap, s.dead_letters):
        for item in orjson.loads(msg.value)["records"]:
            src = item["source"]
            letters[(src["partition"], src["offset"])] += 1
    return events, letters


def templated(s: Scenario, template: str, options: dict[str, Any] | None = None, name: str = "dest",
              **overrides: Any) -> dict[str, Any]:
    endpoint: dict[str, Any] = {"template": template, "method": None, "url": None}
    if options:
        endpoint["template_options"] = options
    return s.destination(name, endpoint=endpoint, **overrides)


def new_ticket(s: Scenario, email: str = "t@example.com") -> int:
    ticket: int = gorgias(s.sandbox, "POST", "/api/tickets", {
        "customer": {"email": email},
        "messages": [{"channel": "api", "via": "api", "from_agent": False, "body_text": "hello",
                      "sent_datetime": "2026-01-01T00:00:00+00:00"}],
    })["id"]
    return ticket


def json_config(s: Scenario, **worker: Any) -> dict[str, Any]:
    doc = s.config(s.destination())
    doc["worker"].update(log_format="json", **worker)
    return doc


def ready_status(worker: WorkerProcess) -> int | None:
    try:
        return http.get(f"{worker.url}/health/ready", timeout=2).status_code
    except httpx.HTTPError:
        return None


async def kill_once_its_job_is_marked(s: Scenario, config: Path) -> None:
    """Start a worker on ``config`` and SIGKILL it as soon as one of its intent marks names a Gorgias job, while
    the job still runs."""
    async def marked() -> bool:
        marks = await read_topic(s.bootstrap, f"{s.group}.intents", 10**9, timeout=1)
        return any(orjson.loads(m.value).get("job_id") for m in marks)

    worker = WorkerProcess(config, s.web_port).start()
    try:
        assert await wait_for(marked, timeout=60), "no intent mark named the job"
        assert s.sandbox.state()["jobs"][0]["status"] in ("pending", "running")
        worker.signal(signal.SIGKILL)
        worker.wait(timeout=10)
    finally:
        worker.stop()


def replicas_on_one_budget(
    s: Scenario, tmp_path: Path, n: int, capacity: int, per_seconds: float, headroom: int,
) -> list[WorkerProcess]:
    """``n`` worker processes (not started) of the scenario's destination, each with its own web port, on one
    account whose sandbox bucket is ``capacity`` calls per ``per_seconds`` and which keeps ``headroom``."""
    s.sandbox.admin("PUT", "rate-limit", {"rate_limit": f"{capacity}/{int(per_seconds)}s"})
    rate = {"requests": capacity, "per_seconds": per_seconds, "headroom": headroom}
    doc = s.config(s.destination(credential={"rate_limit": rate}))
    workers = []
    for i in range(n):
        port = free_port()
        (tmp_path / f"w{i}").mkdir()
        own = {**doc, "worker": {**doc["worker"], "web_port": port}}
        workers.append(WorkerProcess(s.write(tmp_path / f"w{i}", own), port))
    return workers
