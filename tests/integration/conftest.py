"""Fixtures for end-to-end tests: the sandbox process, destination configs, an in-process runtime."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from tests.support.processes import API_KEY, SandboxProcess
from tests.support.scenario import Scenario
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
