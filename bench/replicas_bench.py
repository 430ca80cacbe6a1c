"""Several replicas on one Gorgias account, and crash recovery: the budget used, 429s, lookups, restart time.

Everything runs on this machine: a real Kafka broker (``tests.support.broker.LocalBroker``, or the one in
``KAFKA_BOOTSTRAP_SERVERS``), the Gorgias sandbox (its own process) and the workers as real processes
(``python -m worker run``).

**Replicas.** For each replica count (default 1, 3, 5 and 8) on one account limited to ``--rate`` (default
40/20s, headroom 2): a fresh 8-partition topic, the replicas started and settled (every partition
assigned), then a backlog spread evenly over the partitions, delivered for ``--duration`` seconds
(``POST /api/tickets``, one record per call). Printed per count: the calls accepted in the first 20 s
(idle buckets burst: up to capacity on top of the drain rate), then, after that, accepted calls/s, and
the fewest and most calls accepted in any 20 s window (the replicas aim at 38 per 20 s: 40 minus the
headroom of 2), and the share of the replicas' calls refused with 429 over the whole run.

**SIGKILL loop.** One worker on a ``create_ticket`` destination (every create answered after 150-250 ms,
``max_in_flight`` 8, rate limit off) is killed ``--kills`` times mid-stream and restarted at once. Per
crash: duplicate-check lookups (``GET /api/tickets?external_id=``) the restarted worker made, and the time
from the SIGKILL to the first ticket created after it (delivering again). At the end: no ticket twice.

**Shares follow demand** (issue 26). ``--part skew``: 2 and 3 replicas (``--skew-replicas``), a 6-partition
topic with every record in partition 0: the budget the replica holding it gets. ``--part foreign``: 1 and 3
replicas (``--foreign-replicas``) on the uniform backlog beside another integration on the same account
calling ``GET /api/customers`` at ``--foreign-rate`` calls/s (more than the headroom): its refusals and our
429s. ``--part sigkill``: 3 replicas on the uniform backlog, one SIGKILLed ``--kill-after`` seconds in: the
accepted calls/s in 5 s steps after it, and the budget used in the first 15 s after it and after them.
These three run with the sandbox answering in ``--latency`` (Gorgias-like, 300-600 ms).

**Calls per second of one replica** (``--part capacity``, issue 26 item 5): one worker, the default
``max_in_flight`` (16), a bucket far larger than it can use (the sandbox's rate limit off), every
``POST /api/tickets`` answered in ``--latency``: accepted calls/s over ``--duration`` after 10 s. This is
the figure ``worker.gorgias.share.REPLICA_CALLS_PER_S`` (autoscaling caps) comes from.

    .venv/bin/python bench/replicas_bench.py                                   # ~12 min
    .venv/bin/python bench/replicas_bench.py --duration 60 --replicas 1,5 --kills 3    # a short run
    .venv/bin/python bench/replicas_bench.py --part kills --json out.json
    .venv/bin/python bench/replicas_bench.py --part demand --duration 90      # skew, foreign, sigkill: ~12 min
    .venv/bin/python bench/replicas_bench.py --part capacity --duration 60
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import yaml

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.support.broker import LocalBroker, free_port  # noqa: E402
from tests.support.kafka_io import create_topics, publish, read_topic  # noqa: E402
from tests.support.processes import SandboxProcess, WorkerProcess  # noqa: E402

PARTITIONS = 8
WINDOW_S = 20.0


def destination(name: str, source: str, sandbox_url: str, run: str, **overrides: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "name": name,
        "source_topics": [source],
        "credential": {"domain": "acme", "username": "agent@acme.com", "api_key_env": "GORGIAS_API_KEY",
                       "base_url": sandbox_url},
        "endpoint": {"method": "POST", "url": "https://{domain}.gorgias.com/api/tickets"},
        "response_webhook": {"enabled": True, "topic": f"resp-{run}"},
        "dead_letter_topic": f"dlq-{run}",
    }
    doc.update(overrides)
    return doc


def config(bootstrap: str, run: str, dest: dict[str, Any], port: int) -> dict[str, Any]:
    return {
        "kafka": {"bootstrap_servers": bootstrap, "group_id": f"bench-{run}", "control_topic": f"control-{run}"},
        "worker": {"web_port": port, "shutdown_grace_s": 5, "log_format": "text", "log_level": "warning"},
        "destinations": [dest],
    }


def write(doc: dict[str, Any]) -> Path:
    path = Path(tempfile.mkdtemp(prefix="replicas-bench-")) / "config.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def ticket(i: int) -> dict[str, Any]:
    return {"subject": f"Request {i}", "external_id": f"req-{i}", "channel": "api", "via": "api",
            "from_agent": False, "customer": {"email": f"c{i % 7}@example.com"},
            "messages": [{"channel": "api", "via": "api", "from_agent": False, "body_text": f"body {i}",
                          "sender": {"email": f"c{i % 7}@example.com"}}]}


def assigned(worker: WorkerProcess) -> int:
    try:
        return len(httpx.get(f"{worker.url}/destinations/bench", timeout=2).json()["assigned_partitions"])
    except (httpx.HTTPError, KeyError, ValueError):
        return -1


async def until(predicate: Any, timeout: float, interval: float = 0.3) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        await asyncio.sleep(interval)
    return False


def windows(times: list[float], start: float, end: float) -> tuple[int, int]:
    """Fewest and most events in any WINDOW_S window inside [start, end] (1 s steps)."""
    counts = []
    t = start
    while t + WINDOW_S <= end + 1e-9:
        counts.append(sum(1 for x in times if t <= x < t + WINDOW_S))
        t += 1.0
    return (min(counts), max(counts)) if counts else (0, 0)


async def foreign_client(sandbox: SandboxProcess, per_s: float, stop: asyncio.Event, statuses: list[int]) -> None:
    """Another integration on the account: ``GET /api/customers`` at ``per_s`` calls/s, irregularly."""
    gaps = [0.35, 1.55, 0.8, 1.45, 0.6, 1.25]  # 1 s on average, never in step with the replicas
    n = 0
    async with httpx.AsyncClient(base_url=sandbox.url, auth=("agent@acme.com", os.environ["GORGIAS_API_KEY"]),
                                 headers={"Host": "acme.gorgias.com"}, timeout=10) as client:
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), timeout=gaps[n % len(gaps)] / per_s)
            except TimeoutError:
                pass
            n += 1
            if not stop.is_set():
                statuses.append((await client.get("/api/customers", params={"limit": 1})).status_code)


def steps(times: list[float], start: float, end: float, step: float = 5.0) -> list[float]:
    """Events per second in consecutive ``step`` s intervals of [start, end)."""
    out = []
    t = start
    while t + step <= end + 1e-9:
        out.append(round(sum(1 for x in times if t <= x < t + step) / step, 2))
        t += step
    return out


def case_figures(foreign: list[int] | None, finished: list[float], killed: float | None, end: float,
                 budget: float) -> dict[str, Any]:
    """The foreign client's calls and refusals; after a SIGKILL, the calls/s in 5 s steps, in the first 15 s
    and after them (the survivors should have the whole budget again by then)."""
    if foreign is not None:
        return {"foreign_calls": len(foreign), "foreign_refused": sum(1 for c in foreign if c == 429)}
    if killed is None:
        return {}
    first = sum(1 for t in finished if killed <= t < killed + 15)
    later = sum(1 for t in finished if killed + 15 <= t < end)
    return {"calls_per_s_in_5s_steps_after_kill": steps(finished, killed, end),
            "first_15s_after_kill_used": round(first / 15 / budget, 3),
            "after_15s_used": round(later / max(1e-9, end - killed - 15) / budget, 3)}


async def load(bootstrap: str, source: str, partitions: list[int], calls: int) -> None:
    """A backlog of ``calls`` records spread over ``partitions``."""
    per_partition = calls // len(partitions) + 1
    for p in partitions:
        await publish(bootstrap, source, [ticket(p * per_partition + i) for i in range(per_partition)],
                      key=lambda i, _: f"k{i}".encode(), partition=p)


async def replicas_run(n: int, bootstrap: str, sandbox: SandboxProcess, args: argparse.Namespace,
                       case: str = "uniform") -> dict[str, Any]:
    """One replica count on one account: ``case`` uniform (every partition loaded), skew (every record in
    partition 0 of 6), foreign (uniform, beside a foreign client) or sigkill (uniform, one replica killed)."""
    run = uuid.uuid4().hex[:8]
    source = f"src-{run}"
    partitions = 6 if case == "skew" else PARTITIONS
    await create_topics(bootstrap, [source], partitions)
    sandbox.reset()
    sandbox.admin("PUT", "rate-limit", {"rate_limit": args.rate})
    sandbox.admin("PUT", "faults", {"spec": "" if case == "uniform" else f"latency={args.latency}@POST /api/tickets"})
    requests, per = args.rate.rstrip("s").split("/")
    rate = {"requests": int(requests), "per_seconds": float(per), "headroom": 2}
    dest = destination("bench", source, sandbox.url, run, credential={
        "domain": "acme", "username": "agent@acme.com", "api_key_env": "GORGIAS_API_KEY",
        "base_url": sandbox.url, "rate_limit": rate})
    workers = []
    for _ in range(n):
        port = free_port()
        workers.append(WorkerProcess(write(config(bootstrap, run, dest, port)), port))
    stop, foreign = asyncio.Event(), []
    side = None
    killed: float | None = None
    try:
        for w in workers:
            w.start()
        settled = await until(lambda: sum(max(0, assigned(w)) for w in workers) == partitions
                              and all(assigned(w) >= 1 for w in workers[:partitions]), timeout=120)
        if not settled:
            return {"replicas": n, "case": case, "problem": "the group never settled"}
        await asyncio.sleep(4)  # the replicas hear each other's demand (and the idle buckets drain a little)
        if case == "foreign":
            side = asyncio.create_task(foreign_client(sandbox, args.foreign_rate, stop, foreign))
        budget_calls = int(args.duration * int(requests) / float(per) * 1.3) + 40
        await load(bootstrap, source, [0] if case == "skew" else list(range(partitions)), budget_calls)
        started = time.time()
        if case == "sigkill":
            await asyncio.sleep(args.kill_after)
            workers[-1].signal(signal.SIGKILL)
            killed = time.time()
            await asyncio.sleep(args.duration - args.kill_after)
        else:
            await asyncio.sleep(args.duration)
    finally:
        stop.set()
        if side is not None:
            await side
        for w in workers:
            if w.proc is not None and w.proc.poll() is None:
                w.signal(signal.SIGTERM)  # all at once, then wait for each
        for w in workers:
            w.stop()
        sandbox.admin("PUT", "faults", {"spec": ""})
    counts = sandbox.counters()["requests"].get("POST /api/tickets", {})
    finished = sorted(
        datetime.fromisoformat(orjson.loads(m.value)["finished_at"]).timestamp()
        for m in await read_topic(bootstrap, f"resp-{run}", 10**9, timeout=3)
        if orjson.loads(m.value)["outcome"] == "delivered"
    )
    in_window = [t for t in finished if started <= t < started + args.duration]
    # The first 20 s include the burst of idle buckets (up to capacity on top of the drain rate);
    # the steady rate and the windows are measured after it.
    steady = [t for t in in_window if t >= started + WINDOW_S]
    fewest, most = windows(steady, started + WINDOW_S, started + args.duration)
    accepted, refused = counts.get("201", 0), counts.get("429", 0)
    budget = (int(requests) - 2) / float(per)
    return {
        "replicas": n,
        "case": case,
        "used_of_budget": round(len(steady) / (args.duration - WINDOW_S) / budget, 3),
        **case_figures(foreign if case == "foreign" else None, finished, killed, started + args.duration, budget),
        "first_20s_calls": len(in_window) - len(steady),
        "accepted_calls_per_s": round(len(steady) / (args.duration - WINDOW_S), 3),
        "budget_per_s": round(budget, 3),
        "share_429": round(refused / max(1, accepted + refused), 4),
        "refused_429": refused,
        "fewest_in_20s": fewest,
        "most_in_20s": most,
    }


async def kill_loop(bootstrap: str, sandbox: SandboxProcess, args: argparse.Namespace) -> dict[str, Any]:
    run = uuid.uuid4().hex[:8]
    source = f"src-{run}"
    await create_topics(bootstrap, [source], 2)
    sandbox.reset()
    sandbox.admin("PUT", "rate-limit", {"rate_limit": "off"})
    sandbox.admin("PUT", "faults", {"spec": "latency=150-250ms@POST /api/tickets"})
    total = args.kill_records
    records = [{"subject": f"Request {i}", "body_text": f"body {i}", "customer_email": f"c{i % 5}@example.com"}
               for i in range(total)]
    await publish(bootstrap, source, records, key=lambda i, _: f"k{i % 9}".encode())
    dest = destination("bench", source, sandbox.url, run, endpoint={"template": "create_ticket"},
                       delivery={"max_in_flight": 8}, credential={
                           "domain": "acme", "username": "agent@acme.com", "api_key_env": "GORGIAS_API_KEY",
                           "base_url": sandbox.url, "rate_limit": {"enabled": False}})
    port = free_port()
    path = write(config(bootstrap, run, dest, port))

    def tickets() -> int:
        return len(sandbox.state()["tickets"])

    def lookups() -> int:
        return int(sandbox.counters()["requests"].get("GET /api/tickets", {}).get("200", 0))

    crashes: list[dict[str, Any]] = []
    worker = WorkerProcess(path, port).start()
    try:
        for _ in range(args.kills):
            target = tickets() + max(10, total // (args.kills * 3))
            if not await until(lambda target=target: tickets() >= target, timeout=120):
                break
            worker.signal(signal.SIGKILL)
            killed = time.monotonic()
            worker.wait(timeout=10)
            before_lookups, before_tickets = lookups(), tickets()
            worker = WorkerProcess(path, port).start(wait_ready=False)
            back = await until(lambda seen=before_tickets: tickets() > seen, timeout=120, interval=0.1)
            delivering = time.monotonic() - killed
            await asyncio.sleep(2)  # the restarted worker's duplicate checks come first
            crashes.append({"lookups": lookups() - before_lookups,
                            "delivering_again_s": round(delivering, 2) if back else None})
        await until(lambda: tickets() >= total, timeout=300)
    finally:
        worker.stop()
        sandbox.admin("PUT", "faults", {"spec": ""})
    ids = [t["external_id"] for t in sandbox.state()["tickets"]]
    per_crash = [c["lookups"] for c in crashes]
    times = [c["delivering_again_s"] for c in crashes if c["delivering_again_s"] is not None]
    return {
        "kills": len(crashes),
        "records": total,
        "tickets": len(set(ids)),
        "created_twice": len(ids) - len(set(ids)),
        "lookups_per_crash": per_crash,
        "mean_lookups_per_crash": round(sum(per_crash) / max(1, len(per_crash)), 2),
        "max_lookups_per_crash": max(per_crash, default=0),
        "delivering_again_s": times,
        "max_delivering_again_s": max(times, default=None),
    }


async def capacity_run(bootstrap: str, sandbox: SandboxProcess, args: argparse.Namespace) -> dict[str, Any]:
    """One replica, its budget no limit: the calls/s it sustains when each call takes ``--latency``."""
    run = uuid.uuid4().hex[:8]
    source = f"src-{run}"
    await create_topics(bootstrap, [source], PARTITIONS)
    sandbox.reset()
    sandbox.admin("PUT", "rate-limit", {"rate_limit": "off"})
    sandbox.admin("PUT", "faults", {"spec": f"latency={args.latency}@POST /api/tickets"})
    big = {"requests": 100_000, "per_seconds": 1.0, "headroom": 2}  # a bucket it cannot fill
    dest = destination("bench", source, sandbox.url, run, credential={
        "domain": "acme", "username": "agent@acme.com", "api_key_env": "GORGIAS_API_KEY",
        "base_url": sandbox.url, "rate_limit": big})
    port = free_port()
    worker = WorkerProcess(write(config(bootstrap, run, dest, port)), port)
    total = int(args.duration * 60) + 500  # more than it can deliver in the run
    try:
        worker.start()
        if not await until(lambda: assigned(worker) == PARTITIONS, timeout=120):
            return {"problem": "the worker never got its partitions"}
        await publish(bootstrap, source, [ticket(i) for i in range(total)], key=lambda i, _: f"k{i}".encode())
        started = time.time()
        await asyncio.sleep(args.duration)
    finally:
        worker.stop()
        sandbox.admin("PUT", "faults", {"spec": ""})
    finished = sorted(
        datetime.fromisoformat(orjson.loads(m.value)["finished_at"]).timestamp()
        for m in await read_topic(bootstrap, f"resp-{run}", 10**9, timeout=3)
        if orjson.loads(m.value)["outcome"] == "delivered"
    )
    steady = [t for t in finished if started + 10 <= t < started + args.duration]
    return {
        "case": "capacity",
        "latency": args.latency,
        "max_in_flight": 16,
        "calls_per_s": round(len(steady) / (args.duration - 10), 2),
        "calls_per_s_in_10s_steps": steps(steady, started + 10, started + args.duration, 10.0),
        "loadavg": os.getloadavg(),
    }


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "")
    broker = None
    if not bootstrap:
        broker = LocalBroker(sasl=False)
        broker.start(timeout=120)
        bootstrap = broker.bootstrap
    sandbox = SandboxProcess(rate_limit="off").start()
    out: dict[str, Any] = {"argv": sys.argv[1:], "loadavg": os.getloadavg(), "replicas": [], "kills": None}
    try:
        if args.part in ("all", "replicas"):
            for n in [int(x) for x in args.replicas.split(",")]:
                result = await replicas_run(n, bootstrap, sandbox, args)
                out["replicas"].append(result)
                print(json.dumps(result), flush=True)
        demand = {"skew": [("skew", args.skew_replicas)], "foreign": [("foreign", args.foreign_replicas)],
                  "sigkill": [("sigkill", "3")]}
        demand["demand"] = demand["skew"] + demand["foreign"] + demand["sigkill"]
        for case, counts in demand.get(args.part, []):
            for n in [int(x) for x in counts.split(",")]:
                result = {**await replicas_run(n, bootstrap, sandbox, args, case), "loadavg": os.getloadavg()}
                out["replicas"].append(result)
                print(json.dumps(result), flush=True)
        if args.part == "capacity":
            out["capacity"] = await capacity_run(bootstrap, sandbox, args)
            print(json.dumps(out["capacity"]), flush=True)
        if args.part in ("all", "kills") and args.kills > 0:
            out["kills"] = await kill_loop(bootstrap, sandbox, args)
            print(json.dumps(out["kills"]), flush=True)
    finally:
        sandbox.stop()
        if broker is not None:
            broker.stop()
    return out


def main(argv: list[str] | None = None) -> int:
    def on_term(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt  # run the clean-up: workers, sandbox, broker

    signal.signal(signal.SIGTERM, on_term)
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--part", choices=("all", "replicas", "kills", "skew", "foreign", "sigkill", "demand",
                                           "capacity"), default="all")
    parser.add_argument("--skew-replicas", default="2,3", help="replica counts of the skewed case")
    parser.add_argument("--foreign-replicas", default="1,3", help="replica counts beside the foreign client")
    parser.add_argument("--foreign-rate", type=float, default=0.5, help="the foreign client's calls/s")
    parser.add_argument("--kill-after", type=float, default=30.0, help="seconds into the sigkill case")
    parser.add_argument("--latency", default="300-600ms", help="the sandbox's answer time (skew, foreign, sigkill, "
                        "capacity)")
    parser.add_argument("--replicas", default="1,3,5,8", help="replica counts, comma-separated")
    parser.add_argument("--rate", default="40/20s", help="the account's budget in the sandbox")
    parser.add_argument("--duration", type=float, default=120.0, help="seconds of delivery per replica count")
    parser.add_argument("--kills", type=int, default=10, help="SIGKILLs in the crash loop")
    parser.add_argument("--kill-records", type=int, default=2000, help="records of the crash loop")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON here")
    args = parser.parse_args(argv)
    if args.duration < 2 * WINDOW_S:
        parser.error(f"--duration must be at least {2 * WINDOW_S:.0f} s (the burst, then a budget window)")
    os.environ.setdefault("GORGIAS_API_KEY", "sandbox-api-key")
    out = asyncio.run(main_async(args))
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
