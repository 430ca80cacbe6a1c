"""The sandbox as an aiohttp application: :func:`create_app`, :func:`start_sandbox`, :func:`serve`."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web

from gorgias_sandbox.admin import SANDBOX_KEY, add_admin_routes
from gorgias_sandbox.api_requests import Sandbox
from gorgias_sandbox.settings import SandboxSettings
from gorgias_sandbox.timestamps import WallClock

log = logging.getLogger(__name__)


def create_app(settings: SandboxSettings, clock: Callable[[], float] | None = None,
               wall: WallClock | None = None) -> web.Application:
    """A sandbox application. ``clock`` (monotonic seconds, default ``time.monotonic``) drives the rate-limit
    buckets and fault durations; ``wall`` (aware datetime) the timestamps. ``app[SANDBOX_KEY]`` is the
    :class:`~gorgias_sandbox.api_requests.Sandbox` behind it."""
    sandbox = Sandbox(settings, clock=clock, wall=wall)
    app = web.Application(client_max_size=settings.max_body_bytes)
    app[SANDBOX_KEY] = sandbox
    add_admin_routes(app)
    app.router.add_route("*", "/{tail:.*}", sandbox.handle)

    async def arm(_: web.Application) -> None:
        sandbox.stopping.clear()

    async def release_hung_requests(_: web.Application) -> None:
        sandbox.stopping.set()

    app.on_response_prepare.append(_stamp_request_id)
    app.on_startup.append(arm)
    app.on_shutdown.append(release_hung_requests)
    return app


async def _stamp_request_id(_: web.Request, response: web.StreamResponse) -> None:
    """Every answer carries an ``x-request-id`` (32 hex digits), as real Gorgias' do."""
    response.headers["x-request-id"] = os.urandom(16).hex()


@dataclass
class RunningSandbox:
    """A sandbox listening on ``url`` (``http://127.0.0.1:54321``)."""

    url: str
    port: int
    app: web.Application
    runner: web.AppRunner

    @property
    def sandbox(self) -> Sandbox:
        """The state, limiter, faults and counters behind the app."""
        return self.app[SANDBOX_KEY]

    async def stop(self) -> None:
        """Stop listening, release hung requests and close connections."""
        await self.runner.cleanup()


async def start_sandbox(settings: SandboxSettings, host: str = "127.0.0.1", port: int = 0,
                        clock: Callable[[], float] | None = None) -> RunningSandbox:
    """Start a sandbox in the running event loop (``port=0`` picks a free port)."""
    app = create_app(settings, clock)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=5.0)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound = runner.addresses[0][1]
    shown = f"[{host}]" if ":" in host else host
    return RunningSandbox(url=f"http://{shown}:{bound}", port=bound, app=app, runner=runner)


def tune_gc_for_serving() -> None:
    """Collect garbage less often: the sandbox's state is many small acyclic dicts, and the default
    thresholds make long runs pause for full collections (p99 latency). Only for a process that does
    nothing but serve (``serve`` and the benchmark); in-process test servers leave GC alone."""
    gc.freeze()
    gc.set_threshold(100_000, 50, 1000)


def serve(host: str, port: int, rate_limit: str, faults: str | None, seed: int | None,
          accounts: list[str] | None, job_duration_s: float = 0.0) -> None:
    """Run a sandbox until SIGINT/SIGTERM (the ``gorgias-worker sandbox`` command).

    * ``rate_limit``: API-key budget ``N/Ws`` (e.g. ``40/20s``; OAuth gets ``2N/Ws``) or ``off``;
    * ``faults``: a fault spec, e.g. ``"503=0.1@POST /api/tickets, latency=5-20ms, burst429=3"``
      (grammar in :mod:`gorgias_sandbox.faults` and docs/sandbox.md), or ``None``;
    * ``seed``: seed of the fault draws (reproducible runs), or ``None``;
    * ``accounts``: ``domain:email:apikey[:role[:oauth_token]]`` specs (several users of one account
      repeat the domain); ``None`` = account ``acme`` with ``agent@acme.com``/``sandbox-api-key``
      (token ``sandbox-oauth-token``) and ``observer@acme.com``/``observer-key``;
    * ``job_duration_s``: how long a ticket job runs before it ends.

    Raises ``ValueError`` on a malformed argument.
    """
    settings = SandboxSettings.from_cli(rate_limit=rate_limit, faults=faults, seed=seed, accounts=accounts,
                                        job_duration_s=job_duration_s)
    tune_gc_for_serving()
    asyncio.run(_serve(settings, host, port))


async def _serve(settings: SandboxSettings, host: str, port: int) -> None:
    running = await start_sandbox(settings, host, port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    domains = ", ".join(a.domain for a in settings.accounts)
    print(f"Gorgias sandbox on {running.url} (accounts: {domains}; rate limit {settings.rate_limit}; "
          f"send Host: <account>.gorgias.com)", flush=True)
    try:
        await stop.wait()
    finally:
        await running.stop()
