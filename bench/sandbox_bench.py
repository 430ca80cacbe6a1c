"""How many create requests per second does the Gorgias sandbox answer on one core?

Starts the sandbox (rate limit off) in a separate process pinned to one core, then drives it from
other processes (pinned to the remaining cores when there are any) with keep-alive connections, one
scenario after the other, each for a bounded time:

* ``tags``       - ``POST /api/tags`` with a unique name per request;
* ``customers``  - ``POST /api/customers`` with a unique email per request;
* ``tickets``    - ``POST /api/tickets``, one incoming message, customer by email from a pool of 100.

The driver is ``wrk`` when it is installed (``apt-get install -y wrk``; a Lua script makes every
body unique), otherwise Python processes with aiohttp. Prints requests/s and p50/p99 latency per
scenario, the requests answered per CPU-second the server process used (the figure that holds on a
shared machine, where other processes take part of the pinned core), and how many objects the sandbox
holds afterwards (one per 2xx answer, plus those still in flight when the driver stopped). Everything listens on
127.0.0.1 only; the server stops when the benchmark ends (and on its own after ``--server-lifetime``).

    .venv/bin/python bench/sandbox_bench.py                    # 3 x 5 s
    .venv/bin/python bench/sandbox_bench.py --seconds 10 --scenarios tickets --driver python --json
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import multiprocessing as mp
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

HOST = "127.0.0.1"
ACCOUNT_HOST = "acme.gorgias.com"
AUTH = "Basic " + base64.b64encode(b"agent@acme.com:sandbox-api-key").decode()
SCENARIOS = {
    "tags": ("/api/tags", "tags"),
    "customers": ("/api/customers", "customers"),
    "tickets": ("/api/tickets", "tickets"),
}


def cores() -> tuple[set[int], set[int]]:
    """(server core, client cores): the first allowed core for the server, the rest for clients."""
    allowed = sorted(os.sched_getaffinity(0))
    server = {allowed[0]}
    clients = set(allowed[1:]) or server
    return server, clients


def body_for(scenario: str, worker: int, i: int) -> dict[str, Any]:
    """A unique, valid create body for ``scenario`` (what the Lua script builds for wrk too)."""
    if scenario == "tags":
        return {"name": f"bench-{worker}-{i}"}
    if scenario == "customers":
        email = f"c{worker}-{i}@bench.example"
        return {"email": email, "name": "Bench Customer",
                "channels": [{"type": "email", "address": email, "preferred": True}]}
    email = f"pool{i % 100}@bench.example"
    return {"channel": "api", "via": "api", "from_agent": False, "subject": f"Order {i}",
            "customer": {"email": email}, "external_id": f"bench-{worker}-{i}",
            "messages": [{"channel": "api", "via": "api", "from_agent": False, "sender": {"email": email},
                          "body_text": "Where is my order?"}]}


# --------------------------------------------------------------------------------------------------
# Server process


def server_main(conn: Connection, core: set[int], lifetime_s: float) -> None:
    """Run the sandbox pinned to ``core`` until the parent says stop (or ``lifetime_s`` passes)."""
    os.sched_setaffinity(0, core)
    from gorgias_sandbox.server import start_sandbox, tune_gc_for_serving
    from gorgias_sandbox.settings import SandboxSettings

    tune_gc_for_serving()  # as `gorgias-worker sandbox` does

    async def main() -> None:
        running = await start_sandbox(SandboxSettings(rate_limit="off"), HOST, 0)
        conn.send(running.port)
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(None, conn.poll, lifetime_s)
        finally:
            await running.stop()

    asyncio.run(main())


# --------------------------------------------------------------------------------------------------
# Python driver


@dataclass
class Run:
    """What one scenario measured."""

    scenario: str
    driver: str
    seconds: float
    requests: int
    errors: int
    rps: float
    p50_ms: float
    p99_ms: float
    stored: int = 0
    server_cpu_s: float = 0.0
    per_cpu_second: float = 0.0


def client_main(conn: Connection, port: int, scenario: str, worker: int, connections: int, seconds: float,
                core: set[int]) -> None:
    """One client process: ``connections`` keep-alive connections posting for ``seconds``."""
    os.sched_setaffinity(0, core)
    import aiohttp
    import orjson

    path = SCENARIOS[scenario][0]
    headers = {"Host": ACCOUNT_HOST, "Authorization": AUTH, "Content-Type": "application/json"}

    async def main() -> tuple[int, int, list[float]]:
        latencies: list[float] = []
        errors = 0
        counter = iter(range(10**9))
        deadline = time.perf_counter() + seconds
        connector = aiohttp.TCPConnector(limit=connections)
        async with aiohttp.ClientSession(f"http://{HOST}:{port}", connector=connector) as session:

            async def loop() -> None:
                nonlocal errors
                while time.perf_counter() < deadline:
                    data = orjson.dumps(body_for(scenario, worker, next(counter)))
                    start = time.perf_counter()
                    async with session.post(path, data=data, headers=headers) as resp:
                        await resp.read()
                        if resp.status >= 300:
                            errors += 1
                    latencies.append(time.perf_counter() - start)

            await asyncio.gather(*(loop() for _ in range(connections)))
        return len(latencies), errors, latencies

    count, errors, latencies = asyncio.run(main())
    conn.send((count, errors, latencies))


def drive_python(port: int, scenario: str, seconds: float, connections: int, client_cores: set[int]) -> Run:
    ctx = mp.get_context("spawn")
    procs, pipes = [], []
    per_proc = max(1, connections // len(client_cores))
    for worker, core in enumerate(sorted(client_cores)):
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=client_main, args=(child, port, scenario, worker, per_proc, seconds, {core}))
        proc.start()
        procs.append(proc)
        pipes.append(parent)
    total, errors, latencies = 0, 0, []
    for pipe, proc in zip(pipes, procs, strict=True):
        if not pipe.poll(seconds + 60):
            raise RuntimeError("a client process did not report")
        count, errs, lats = pipe.recv()
        total, errors = total + count, errors + errs
        latencies.extend(lats)
        proc.join(10)
    latencies.sort()
    return Run(scenario, "python-aiohttp", seconds, total, errors, total / seconds,
               percentile(latencies, 50) * 1000, percentile(latencies, 99) * 1000)


def percentile(sorted_values: list[float], p: float) -> float:
    if not sorted_values:
        return float("nan")
    if p == 50:
        return statistics.median(sorted_values)
    return sorted_values[min(len(sorted_values) - 1, int(len(sorted_values) * p / 100))]


# --------------------------------------------------------------------------------------------------
# wrk driver

LUA = r"""
local counter = 0
local thread_id = 0
local threads = {}
local scenario = "%(scenario)s"
local headers = {["Host"] = "%(host)s", ["Authorization"] = "%(auth)s", ["Content-Type"] = "application/json"}

setup = function(thread)
  thread:set("thread_id", #threads)
  table.insert(threads, thread)
end

request = function()
  counter = counter + 1
  local body
  if scenario == "tags" then
    body = '{"name":"bench-' .. thread_id .. '-' .. counter .. '"}'
  elseif scenario == "customers" then
    local email = 'c' .. thread_id .. '-' .. counter .. '@bench.example'
    body = '{"email":"' .. email .. '","name":"Bench Customer","channels":[{"type":"email","address":"' ..
      email .. '","preferred":true}]}'
  else
    local email = 'pool' .. (counter %% 100) .. '@bench.example'
    body = '{"channel":"api","via":"api","from_agent":false,"subject":"Order ' .. counter .. '",' ..
      '"customer":{"email":"' .. email .. '"},"external_id":"bench-' .. thread_id .. '-' .. counter .. '",' ..
      '"messages":[{"channel":"api","via":"api","from_agent":false,"sender":{"email":"' .. email .. '"},' ..
      '"body_text":"Where is my order?"}]}'
  end
  return wrk.format("POST", "%(path)s", headers, body)
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('RESULT {"requests":%%d,"duration_us":%%d,"status_errors":%%d,"socket_errors":%%d,' ..
    '"p50_us":%%d,"p99_us":%%d}\n', summary.requests, summary.duration, e.status,
    e.connect + e.read + e.write + e.timeout, latency:percentile(50), latency:percentile(99)))
end
"""


def drive_wrk(port: int, scenario: str, seconds: float, connections: int, client_cores: set[int]) -> Run:
    wrk = shutil.which("wrk")
    assert wrk is not None
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "bench.lua"
        script.write_text(LUA % {"scenario": scenario, "host": ACCOUNT_HOST, "auth": AUTH,
                                 "path": SCENARIOS[scenario][0]})
        threads = max(1, len(client_cores))
        cmd = [wrk, f"-t{threads}", f"-c{max(connections, threads)}", f"-d{max(1, round(seconds))}s",
               "-s", str(script), f"http://{HOST}:{port}/"]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60, check=True,
                             preexec_fn=lambda: os.sched_setaffinity(0, client_cores))
    line = next((x for x in out.stdout.splitlines() if x.startswith("RESULT ")), None)
    if line is None:
        raise RuntimeError(f"unexpected wrk output:\n{out.stdout}\n{out.stderr}")
    data = json.loads(line[len("RESULT "):])
    duration = data["duration_us"] / 1e6
    return Run(scenario, "wrk", duration, data["requests"], data["status_errors"] + data["socket_errors"],
               data["requests"] / duration, data["p50_us"] / 1000, data["p99_us"] / 1000)


# --------------------------------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """User + system CPU time used so far by process ``pid`` (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def admin(port: int, method: str, path: str) -> Any:
    import urllib.request

    req = urllib.request.Request(f"http://{HOST}:{port}/__admin/{path}", method=method)
    with urllib.request.urlopen(req, timeout=30) as resp:  # only ever 127.0.0.1
        return json.loads(resp.read())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0, help="duration of each scenario")
    parser.add_argument("--connections", type=int, default=32, help="keep-alive connections in total")
    parser.add_argument("--scenarios", default="tags,customers,tickets", help="comma-separated subset")
    parser.add_argument("--driver", choices=("auto", "wrk", "python"), default="auto")
    parser.add_argument("--server-lifetime", type=float, default=None,
                        help="the server stops by itself after this many seconds (default: enough for the runs)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args(argv)
    scenarios = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    unknown = set(scenarios) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenarios: {', '.join(sorted(unknown))}")
    driver = args.driver
    if driver == "auto":
        driver = "wrk" if shutil.which("wrk") else "python"
    elif driver == "wrk" and not shutil.which("wrk"):
        parser.error("wrk is not installed (apt-get install -y wrk), use --driver python")

    server_core, client_cores = cores()
    lifetime = args.server_lifetime or len(scenarios) * (args.seconds + 30) + 30
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    server = ctx.Process(target=server_main, args=(child, server_core, lifetime), daemon=True)
    server.start()
    runs: list[Run] = []
    try:
        if not parent.poll(30):
            raise RuntimeError("the sandbox did not start")
        port = parent.recv()
        if not args.json:
            print(f"sandbox on {HOST}:{port} pinned to core {sorted(server_core)}; clients ({driver}) on cores "
                  f"{sorted(client_cores)}; {args.connections} connections; {args.seconds:g} s per scenario",
                  flush=True)
        for scenario in scenarios:
            admin(port, "POST", "reset")
            drive = drive_wrk if driver == "wrk" else drive_python
            assert server.pid is not None
            cpu_before = cpu_seconds(server.pid)
            run = drive(port, scenario, args.seconds, args.connections, client_cores)
            run.server_cpu_s = cpu_seconds(server.pid) - cpu_before
            run.per_cpu_second = run.requests / run.server_cpu_s if run.server_cpu_s else float("nan")
            run.stored = len(admin(port, "GET", "state")[SCENARIOS[scenario][1]])
            runs.append(run)
            if not args.json:
                print(f"  {scenario:<10} {run.rps:>6.0f} req/s   p50 {run.p50_ms:6.2f} ms   p99 {run.p99_ms:6.2f} ms"
                      f"   {run.per_cpu_second:>6.0f} req per server CPU-second   {run.requests} requests,"
                      f" {run.errors} errors, {run.stored} stored", flush=True)
    finally:
        parent.send("stop")
        server.join(15)
        if server.is_alive():
            server.terminate()
    if args.json:
        print(json.dumps([asdict(r) for r in runs], indent=2))
    mismatched = [r for r in runs if r.driver == "python-aiohttp" and r.stored + r.errors < r.requests]
    return 1 if any(r.errors for r in runs) or mismatched else 0


if __name__ == "__main__":
    sys.exit(main())
