"""Runtime.stop() ends even when it lands just as the broker health probe answers.

Python 3.11's ``asyncio.wait_for`` returns the inner result when the outer task is cancelled after the
inner one finished: the probe loop lived on, and ``stop()`` waited for it forever (a test teardown hung
until pytest's timeout about once per suite run). Here the probe's answer and the stop are arranged to
meet exactly that way.
"""

from __future__ import annotations

import asyncio

import pytest

from worker.core.config.worker_config import parse_config
from worker.service import runtime as runtime_module
from worker.service.runtime import Runtime

CONFIG = {"destinations": [{
    "name": "support", "source_topics": ["nexset.support"],
    "credential": {"domain": "acme", "username": "agent@acme.com", "api_key_env": "GORGIAS_API_KEY"},
    "endpoint": {"method": "POST", "url": "https://{domain}.gorgias.com/api/tickets"},
}]}


async def test_stop_ends_when_it_lands_as_the_health_probe_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runtime_module, "HEALTH_INTERVAL_S", 0.0)
    runtime = Runtime(parse_config(CONFIG))
    stopping: list[asyncio.Task[None]] = []

    class Client:
        async def fetch_all_metadata(self) -> None:
            if not stopping:  # stop() starts before the probe's caller is woken with this answer
                stopping.append(asyncio.ensure_future(runtime.stop()))

    class Producer:
        client = Client()

        async def stop(self) -> None:
            pass

    runtime._producer = Producer()
    runtime.started = True
    runtime._health = asyncio.create_task(runtime._watch_health())
    try:
        while not stopping:
            await asyncio.sleep(0)
        done, _ = await asyncio.wait(stopping, timeout=10)
        assert done, "Runtime.stop() is still waiting for the health probe loop"
        assert runtime._health.done()
    finally:  # should it fail: a probe loop with nothing to probe ends at its next cancellation
        runtime._producer = None
        runtime._health.cancel()
        for task in stopping:
            task.cancel()
