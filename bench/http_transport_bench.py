"""Which HTTP transport should GorgiasClient use? Requests/s and latency against a local aiohttp server.

Starts a minimal aiohttp server (``POST /api/tickets`` → 201 with a small JSON body and the Gorgias
call-limit header) in a separate process pinned to one core, then drives it from this process (pinned
to another core when there is one) with:

* ``httpx``      - ``httpx.AsyncClient`` on its default transport (httpcore);
* ``aiohttp``    - ``httpx.AsyncClient`` on ``httpx_aiohttp.AiohttpTransport``;
* ``client:*``   - the same two through ``worker.gorgias.client.GorgiasClient.send`` (our own overhead:
  auth, Host rewrite, header lower-casing, error translation), with ``--via-client``.

each with 1 and 32 requests in flight, for a bounded time per run. Everything listens on 127.0.0.1
only; the server process stops when the benchmark ends (and on its own after ``--server-lifetime``).

    .venv/bin/python bench/http_transport_bench.py            # ~25 s
    .venv/bin/python bench/http_transport_bench.py --seconds 2 --via-client --json
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from multiprocessing.connection import Connection

import httpx
import orjson

HOST = "127.0.0.1"
BODY = orjson.dumps(
    {
        "channel": "api",
        "via": "api",
        "from_agent": False,
        "customer": {"email": "bench@example.com"},
        "messages": [{"channel": "api", "via": "api", "from_agent": False, "body_text": "hello " * 20}],
    }
)


# --------------------------------------------------------------------------------------------------
# Server process


def _pin(cpu: int) -> None:
    if hasattr(os, "sched_setaffinity") and cpu < (os.cpu_count() or 1):
        os.sched_setaffinity(0, {cpu})


def _serve(conn: Connection, cpu: int, lifetime_s: float) -> None:
    from aiohttp import web

    _pin(cpu)
    counter = 0

    async def create_ticket(request: web.Request) -> web.Response:
        nonlocal counter
        await request.read()
        counter += 1
        return web.Response(
            status=201,
            body=orjson.dumps({"id": counter, "uri": f"/api/tickets/{counter}/", "status": "open"}),
            content_type="application/json",
            headers={"X-Gorgias-Account-Api-Call-Limit": "1/40"},
        )

    async def main() -> None:
        app = web.Application()
        app.router.add_post("/api/tickets", create_ticket)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, HOST, 0)
        await site.start()
        server = site._server
        assert server is not None and hasattr(server, "sockets")
        conn.send(server.sockets[0].getsockname()[1])
        loop = asyncio.get_running_loop()
        stop = loop.create_future()

        def on_parent_message() -> None:
            if not stop.done():
                stop.set_result(None)

        loop.add_reader(conn.fileno(), on_parent_message)
        try:
            await asyncio.wait_for(stop, lifetime_s)
        except TimeoutError:
            pass
        finally:
            await runner.cleanup()

    asyncio.run(main())


# --------------------------------------------------------------------------------------------------
# Client side


@dataclass
class RunResult:
    transport: str
    in_flight: int
    requests: int
    errors: int
    seconds: float
    req_per_s: float
    p50_ms: float
    p99_ms: float


Send = Callable[[], Awaitable[int]]


async def _drive(name: str, send: Send, in_flight: int, seconds: float, warmup_s: float) -> RunResult:
    latencies: list[float] = []
    errors = 0
    measuring = False
    deadline = 0.0

    async def worker() -> None:
        nonlocal errors
        while True:
            started = time.perf_counter()
            if measuring and started >= deadline:
                return
            try:
                status = await send()
            except Exception:
                status = 0
            if measuring:
                latencies.append(time.perf_counter() - started)
                if status != 201:
                    errors += 1

    warm_tasks = [asyncio.create_task(_bounded(send, warmup_s)) for _ in range(in_flight)]
    await asyncio.gather(*warm_tasks)
    measuring = True
    began = time.perf_counter()
    deadline = began + seconds
    await asyncio.gather(*(worker() for _ in range(in_flight)))
    elapsed = time.perf_counter() - began
    latencies.sort()
    n = len(latencies)
    return RunResult(
        transport=name,
        in_flight=in_flight,
        requests=n,
        errors=errors,
        seconds=round(elapsed, 3),
        req_per_s=round(n / elapsed, 1),
        p50_ms=round(statistics.median(latencies) * 1000, 3) if n else 0.0,
        p99_ms=round(latencies[min(n - 1, int(n * 0.99))] * 1000, 3) if n else 0.0,
    )


async def _bounded(send: Send, seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        try:
            await send()
        except Exception:
            return


def _raw_client(kind: str, in_flight: int) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=max(in_flight, 1), max_keepalive_connections=max(in_flight, 1))
    if kind == "aiohttp":
        from httpx_aiohttp import AiohttpTransport

        return httpx.AsyncClient(transport=AiohttpTransport(limits=limits), timeout=10.0)
    return httpx.AsyncClient(limits=limits, timeout=10.0)


async def _bench_raw(kind: str, port: int, in_flight: int, seconds: float, warmup_s: float) -> RunResult:
    url = f"http://{HOST}:{port}/api/tickets"
    headers = {"Content-Type": "application/json", "Authorization": "Basic YmVuY2g6YmVuY2g="}
    async with _raw_client(kind, in_flight) as client:

        async def send() -> int:
            response = await client.post(url, content=BODY, headers=headers)
            return response.status_code

        return await _drive(kind, send, in_flight, seconds, warmup_s)


async def _bench_gorgias_client(
    kind: str, port: int, in_flight: int, seconds: float, warmup_s: float
) -> RunResult:
    from pydantic import SecretStr

    from worker.core.config.account import Credential
    from worker.core.config.delivery import DeliverySettings
    from worker.core.requests.request import RenderedRequest
    from worker.gorgias.client import GorgiasClient, TransportName

    credential = Credential(
        domain="bench", username="bench@example.com", api_key_env="UNUSED", base_url=f"http://{HOST}:{port}"
    )
    settings = DeliverySettings(max_in_flight=in_flight)
    request = RenderedRequest(
        method="POST",
        url="https://bench.gorgias.com/api/tickets",
        headers={},
        body=BODY,
        content_type="application/json",
    )
    transport: TransportName = "aiohttp" if kind == "aiohttp" else "httpx"
    client = GorgiasClient(credential, SecretStr("bench-key"), settings, transport=transport)
    try:

        async def send() -> int:
            return (await client.send(request)).status

        return await _drive(f"client:{kind}", send, in_flight, seconds, warmup_s)
    finally:
        await client.aclose()


def _table(results: list[RunResult]) -> str:
    lines = [
        f"{'transport':<16} {'in flight':>9} {'requests':>9} {'req/s':>9} "
        f"{'p50 ms':>8} {'p99 ms':>8} {'errors':>6}",
    ]
    for r in results:
        lines.append(
            f"{r.transport:<16} {r.in_flight:>9} {r.requests:>9} {r.req_per_s:>9.1f} "
            f"{r.p50_ms:>8.2f} {r.p99_ms:>8.2f} {r.errors:>6}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=5.0, help="measured seconds per run (default 5)")
    parser.add_argument("--warmup", type=float, default=0.5, help="unmeasured warm-up seconds per run")
    parser.add_argument("--in-flight", type=int, nargs="+", default=[1, 32])
    parser.add_argument("--transports", nargs="+", default=["httpx", "aiohttp"], choices=["httpx", "aiohttp"])
    parser.add_argument("--via-client", action="store_true", help="also measure through GorgiasClient")
    parser.add_argument(
        "--server-lifetime", type=float, default=600.0, help="server exits by itself after this"
    )
    parser.add_argument("--json", action="store_true", help="print JSON lines instead of a table")
    args = parser.parse_args(argv)

    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    server = ctx.Process(target=_serve, args=(child, 0, args.server_lifetime), daemon=True)
    server.start()
    try:
        if not parent.poll(15):
            print("server did not start", file=sys.stderr)
            return 1
        port = int(parent.recv())
        _pin(1)
        results: list[RunResult] = []
        for kind in args.transports:
            for in_flight in args.in_flight:
                results.append(asyncio.run(_bench_raw(kind, port, in_flight, args.seconds, args.warmup)))
        if args.via_client:
            for kind in args.transports:
                for in_flight in args.in_flight:
                    results.append(
                        asyncio.run(_bench_gorgias_client(kind, port, in_flight, args.seconds, args.warmup))
                    )
    finally:
        parent.send("stop")
        server.join(10)
        if server.is_alive():
            server.terminate()
            server.join(5)

    if args.json:
        for r in results:
            print(orjson.dumps(asdict(r)).decode())
    else:
        print(f"aiohttp server on {HOST}:{port}, one core; {args.seconds:g} s per run, cpus={os.cpu_count()}")
        print(_table(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
