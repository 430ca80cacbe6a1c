"""Fixtures shared by unit tests that talk to a sandbox running in the test's own event loop."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from gorgias_sandbox.server import RunningSandbox, start_sandbox
from gorgias_sandbox.settings import SandboxSettings


@pytest.fixture
async def sandbox() -> AsyncIterator[RunningSandbox]:
    """A sandbox in this process on a free port, rate limit off, stopped after the test."""
    running = await start_sandbox(SandboxSettings(rate_limit="off"))
    try:
        yield running
    finally:
        await running.stop()
