"""Fixtures for end-to-end tests: the sandbox process, destination configs, an in-process runtime."""

from __future__ import annotations

import asyncio
import io
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.kafka_io import create_topics
from tests.support.ports import free_port
from tests.support.processes import API_KEY, SandboxProcess
from worker.core.config.worker_config import WorkerConfig, parse_config
from worker.service.runtime import Runtime


@pytest.fixture(scope="session")
def sandbox_process() -> Iterator[SandboxProcess]:
    sandbox = SandboxProcess(rate_limit="off").start()
    try:
        yield sandbox
    finally:
        sandbox.stop()


@pytest.fixture
def sandbox(sandbox_process: SandboxProcess) -> SandboxProcess:
    """The shared sandbox, reset: empty state, no faults, rate limit off, jobs over at the next request."""
    sandbox_process.reset()
    sandbox_process.admin("PUT", "faults", {})
    sandbox_process.admin("PUT", "rate-limit", {"rate_limit": "off"})
    sandbox_process.admin("PUT", "jobs", {"duration_s": 0})
    return sandbox_process


@pytest.fixture(autouse=True)
def api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GORGIAS_API_KEY", API_KEY)


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


@pytest.fixture
def scenario(kafka_bootstrap: str, sandbox: SandboxProcess) -> Scenario:
    return Scenario(kafka_bootstrap, sandbox)


@pytest.fixture
async def run_worker() -> AsyncIterator[Callable[[dict[str, Any]], Any]]:
    """Start a worker runtime in this event loop (no subprocess); stopped at the end of the test."""
    runtimes: list[Runtime] = []

    async def start(doc: dict[str, Any]) -> Runtime:
        config: WorkerConfig = parse_config(doc)
        runtime = Runtime(config)
        runtimes.append(runtime)
        await runtime.start()
        return runtime

    yield start
    for runtime in runtimes:
        await stop_or_report(runtime)


STOP_DEADLINE_S = 120.0  # shutdown_grace_s is 10 s: a stop still running after 120 s is stuck


async def stop_or_report(runtime: Runtime) -> None:
    """Stop ``runtime``; if it does not stop in time, fail naming what every task of the loop is waiting on."""
    stopping = asyncio.ensure_future(runtime.stop())
    done, _ = await asyncio.wait([stopping], timeout=STOP_DEADLINE_S)
    if done:
        stopping.result()
        return
    stacks = []
    for task in asyncio.all_tasks():
        if task is not asyncio.current_task():
            out = io.StringIO()
            task.print_stack(file=out)
            stacks.append(out.getvalue())
    stopping.cancel()
    pytest.fail(f"Runtime.stop() did not finish within {STOP_DEADLINE_S:.0f} s; the loop's tasks:\n"
                + "\n".join(stacks), pytrace=False)
