"""Runtime.stop() ends the health probe loop even when it lands just as the probe answers.

Python 3.11's ``asyncio.wait_for`` returns the inner result when the outer task is cancelled after the
inner one finished: the probe loop lived on, and ``stop()`` waited for it (forever, before stop() was
bounded; now until it overruns and abandons the rest). A test teardown hung about once per suite run.
Here the probe's answer and the stop are arranged to meet exactly that way.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from worker.core.config.worker_config import parse_config
from worker.service import runtime as runtime_module
from worker.service.runtime import Runtime

CONFIG = {
    "worker": {"shutdown_grace_s": 1},
    "destinations": [{
        "name": "support", "source_topics": ["nexset.support"],
        "credential": {"domain": "acme", "username": "agent@acme.com", "api_key_env": "GORGIAS_API_KEY"},
        "endpoint": {"method": "POST", "url": "https://{domain}.gorgias.com/api/tickets"},
    }],
}


async def test_stop_ends_the_probe_loop_when_it_lands_as_the_probe_answers(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(runtime_module, "HEALTH_INTERVAL_S", 0.0)
    runtime = Runtime(parse_config(CONFIG))
    stopping: list[asyncio.Task[None]] = []

    class Client:
        async def fetch_all_metadata(self) -> None:
            if not stopping:  # stop() starts before the probe's caller is woken with this answer
                stopping.append(asyncio.ensure_future(runtime.stop()))

    class Publisher:
        producer: Any = type("Producer", (), {"client": Client()})()
        healthy = True
        trouble = None

        async def close(self, within_s: float) -> None:
            pass

    runtime._publisher = Publisher()  # type: ignore[assignment]
    runtime.started = True
    runtime._health = health = asyncio.create_task(runtime._watch_health())
    try:
        while not stopping:
            await asyncio.sleep(0)
        done, _ = await asyncio.wait(stopping, timeout=30)
        assert done, "Runtime.stop() did not return"
        assert health.done(), "the health probe loop outlived stop()"
        assert "overran" not in caplog.text
    finally:  # should it fail: a probe loop with nothing to probe ends at its next cancellation
        runtime._publisher = None
        health.cancel()
        for task in stopping:
            task.cancel()
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


async def test_a_probe_failing_unforeseen_does_not_end_the_health_checks(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(runtime_module, "HEALTH_INTERVAL_S", 0.0)
    runtime = Runtime(parse_config(CONFIG))
    probes: list[int] = []

    class Client:
        async def fetch_all_metadata(self) -> None:
            probes.append(1)
            if len(probes) == 1:
                raise RuntimeError("a failure nobody foresaw")

    class Publisher:
        producer: Any = type("Producer", (), {"client": Client()})()
        healthy = True
        trouble = None

    runtime._publisher = Publisher()  # type: ignore[assignment]
    runtime.started = True
    health = asyncio.create_task(runtime._watch_health())
    try:
        for _ in range(1000):
            if len(probes) >= 3:
                break
            await asyncio.sleep(0)
        assert len(probes) >= 3, "the health checks stopped after the failure"
        assert not health.done()
        assert "the health check failed" in caplog.text
    finally:
        runtime.started = False
        runtime._publisher = None
        health.cancel()
        await asyncio.gather(health, return_exceptions=True)
