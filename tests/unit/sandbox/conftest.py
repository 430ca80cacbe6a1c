"""Fixtures for the sandbox contract tests: a fake monotonic clock and an HTTP client against the app."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from gorgias_sandbox.server import create_app
from gorgias_sandbox.settings import SandboxSettings
from gorgias_sandbox.timestamps import WallClock
from tests.support.sandbox_api import (
    Api,
    FakeClock,
    MakeApi,
)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def make_api(clock: FakeClock) -> AsyncIterator[MakeApi]:
    clients: list[TestClient] = []

    async def make(settings: SandboxSettings | None = None, wall: WallClock | None = None, **kwargs: Any) -> Api:
        app = create_app(settings or SandboxSettings(**kwargs), clock, wall)
        client = TestClient(TestServer(app))
        await client.start_server()
        clients.append(client)
        return Api(client)

    yield make
    for client in clients:
        await client.close()


@pytest.fixture
async def api(make_api: MakeApi) -> Api:
    """A sandbox with the default account and rate limiting off."""
    return await make_api(rate_limit="off")


