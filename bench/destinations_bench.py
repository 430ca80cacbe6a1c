"""Many destinations on one worker: ready time, idle cost, broker requests, a cold destination's first record.

Everything runs on this machine: a real Kafka broker (``tests.support.broker.LocalBroker``, or the one in
``KAFKA_BOOTSTRAP_SERVERS``), the Gorgias sandbox (its own process, rate limit off) and one worker as a real
process (``python -m worker run``) with N destinations in its config file, each on a source topic of its own
(one partition) and so in a consumer group of its own, all on one Gorgias account, unbatched
(``POST /api/tickets``, one record per call: a window of 0).

Per destination count (default 100, 300 and 1,000):

* **ready**: from the worker's spawn to ``/health/ready`` answering 200; **assigned**: until every destination's
  consumer logged its partition's assignment (read from the worker's log file, not its status routes).
* **idle** over ``--idle`` seconds (default 60) once assigned, nothing produced: the worker's CPU (utime + stime
  of ``/proc/<pid>/stat``, in cores), its RSS (``/proc/<pid>/status``) at the end, and the broker requests per
  second it sends: the TCP segments carrying data that its sockets to the broker sent (``data_segs_out`` of
  ``ss -tin``, summed over the worker's connections to the broker port; a request of this size is one
  segment), the broker itself untouched.
* **cold**: then one record each on ``--cold`` destinations (default 5) at once; per record the time from its
  publication to its ticket in the sandbox (polled every 20 ms), minus nothing (a window of 0): the target is
  one second.
* **add/remove**: one destination created through ``POST /destinations`` (saved, then activated) and deleted
  again while the others idle: the time until its first record's ticket exists.

    .venv/bin/python bench/destinations_bench.py                        # 100, 300, 1,000: ~12 min
    .venv/bin/python bench/destinations_bench.py --counts 100 --idle 20 # a short run
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import yaml

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.replicas_bench import destination  # noqa: E402
from tests.support.broker import LocalBroker, free_port  # noqa: E402
from tests.support.kafka_io import create_topics, publish  # noqa: E402
from tests.support.processes import SandboxProcess, WorkerProcess  # noqa: E402

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
ASSIGNED_LINE = re.compile(r"destination (d\d+): 1 of 1 partition\(s\)")


def write_config(bootstrap: str, run: str, dests: list[dict[str, Any]], port: int) -> Path:
    doc = {
        "kafka": {"bootstrap_servers": bootstrap, "group_id": f"bench-{run}", "deployment": f"bench-{run}"},
        "worker": {"web_port": port, "shutdown_grace_s": 5, "log_format": "text", "log_level": "info"},
        "destinations": dests,
    }
    path = Path(tempfile.mkdtemp(prefix="destinations-bench-")) / "config.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def ticket(subject: str) -> dict[str, Any]:
    return {"subject": subject, "channel": "api", "via": "api", "from_agent": False,
            "customer": {"email": "c@example.com"},
            "messages": [{"channel": "api", "via": "api", "from_agent": False, "body_text": subject,
                          "sender": {"email": "c@example.com"}}]}


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def segments_to_broker(pid: int, broker_port: int) -> tuple[int, int]:
    """(connections, data segments sent) of ``pid``'s TCP sockets to the broker's port."""
    out = subprocess.run(["ss", "-tinpH", "dport", "=", f":{broker_port}"], capture_output=True, text=True,
                         check=True).stdout
    connections = sent = 0
    mine = False
    for line in out.splitlines():
        if not line.startswith((" ", "\t")):  # a socket's line; its details follow on the next one
            mine = f"pid={pid}," in line
            connections += mine
            continue
        found = re.search(r"data_segs_out:(\d+)", line)
        if mine and found:
            sent += int(found.group(1))
    return connections, sent


def assigned_in_log(worker: WorkerProcess) -> int:
    """How many destinations logged an assignment of their partition (the worker's log, read from its file: its
    status routes are left alone, so that polling them does not add to what is measured)."""
    return len(set(ASSIGNED_LINE.findall(worker.output())))


async def until(predicate: Any, timeout: float, interval: float = 0.5) -> float | None:
    """Seconds until ``predicate()`` (or the coroutine it returns) held, or None."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        held = predicate()
        if asyncio.iscoroutine(held):
            held = await held
        if held:
            return time.monotonic() - start
        await asyncio.sleep(interval)
    return None


async def first_tickets(sandbox: SandboxProcess, subjects: set[str], timeout: float = 30) -> dict[str, float]:
    """When (time.time) each subject's ticket was first seen in the sandbox."""
    seen: dict[str, float] = {}
    deadline = time.monotonic() + timeout
    while len(seen) < len(subjects) and time.monotonic() < deadline:
        now = time.time()
        for t in sandbox.state()["tickets"]:
            if t.get("subject") in subjects and t["subject"] not in seen:
                seen[t["subject"]] = now
        await asyncio.sleep(0.02)
    return seen


async def idle(worker: WorkerProcess, broker_port: int, seconds: float) -> dict[str, Any]:
    assert worker.proc is not None
    pid = worker.proc.pid
    cpu0, (_, segs0), t0 = cpu_seconds(pid), segments_to_broker(pid, broker_port), time.monotonic()
    await asyncio.sleep(seconds)
    cpu1, (conns, segs1), t1 = cpu_seconds(pid), segments_to_broker(pid, broker_port), time.monotonic()
    return {"idle_cpu_cores": round((cpu1 - cpu0) / (t1 - t0), 3), "rss_mb": round(rss_mb(pid), 1),
            "broker_requests_per_s": round((segs1 - segs0) / (t1 - t0), 1), "broker_connections": conns}


async def cold(bootstrap: str, sandbox: SandboxProcess, run: str, picks: list[int]) -> dict[str, Any]:
    subjects = {i: f"cold-{run}-{i}" for i in picks}
    sent = time.time()
    await asyncio.gather(*(publish(bootstrap, f"src-{run}-{i}", [ticket(s)]) for i, s in subjects.items()))
    published = time.time()
    seen = await first_tickets(sandbox, set(subjects.values()))
    latencies = sorted(round(seen[s] - sent, 3) for s in subjects.values() if s in seen)
    return {"cold_first_record_s": latencies, "cold_publish_s": round(published - sent, 3),
            "cold_missing": len(subjects) - len(seen)}


async def add_and_remove(bootstrap: str, sandbox: SandboxProcess, worker: WorkerProcess, run: str) -> dict[str, Any]:
    """One destination saved and activated at runtime, its first record delivered, then deleted."""
    name, topic = f"added-{run}", f"src-{run}-added"
    await create_topics(bootstrap, [topic])
    started = time.monotonic()
    doc = destination(name, topic, sandbox.url, run)
    r = httpx.post(f"{worker.url}/destinations", json=doc, timeout=120)
    r.raise_for_status()
    httpx.post(f"{worker.url}/destinations/{name}/activate", timeout=60).raise_for_status()
    ready = await until(lambda: assigned_one(worker, name), timeout=60, interval=0.1)
    subject = f"added-{run}"
    sent = time.time()
    await publish(bootstrap, topic, [ticket(subject)])
    seen = await first_tickets(sandbox, {subject})
    httpx.delete(f"{worker.url}/destinations/{name}", timeout=60).raise_for_status()
    return {"added_assigned_s": None if ready is None else round(ready + 0, 2),
            "added_first_record_s": round(seen[subject] - sent, 3) if subject in seen else None,
            "added_total_s": round(time.monotonic() - started, 2)}


def assigned_one(worker: WorkerProcess, name: str) -> bool:
    try:
        return bool(httpx.get(f"{worker.url}/destinations/{name}", timeout=10).json().get("assigned_partitions"))
    except (httpx.HTTPError, ValueError):
        return False


async def run_count(n: int, broker_port: int, bootstrap: str, sandbox: SandboxProcess,
                    args: argparse.Namespace) -> dict[str, Any]:
    run = uuid.uuid4().hex[:8]
    topics = [f"src-{run}-{i}" for i in range(n)]
    await create_topics(bootstrap, topics)
    sandbox.reset()
    port = free_port()
    dests = [destination(f"d{i}", t, sandbox.url, run) for i, t in enumerate(topics)]
    worker = WorkerProcess(write_config(bootstrap, run, dests, port), port)
    result: dict[str, Any] = {"destinations": n}
    spawned = time.monotonic()
    worker.start(wait_ready=False)
    try:
        ready = await until(lambda: ready_now(worker), timeout=300, interval=0.1)
        result["ready_s"] = None if ready is None else round(time.monotonic() - spawned, 1)
        assigned = await until(lambda: assigned_in_log(worker) == n, timeout=300, interval=1.0)
        result["assigned_s"] = None if assigned is None else round(time.monotonic() - spawned, 1)
        await asyncio.sleep(5)  # the start's own work over
        result.update(await idle(worker, broker_port, args.idle))
        result.update(await cold(bootstrap, sandbox, run, [n * (k + 1) // (args.cold + 1) for k in range(args.cold)]))
        if args.add:
            try:
                result.update(await add_and_remove(bootstrap, sandbox, worker, run))
            except httpx.HTTPError as exc:  # e.g. the store's write not answered in time: a finding, not a crash
                result["added_error"] = f"{type(exc).__name__}: {exc}"[:200]
    finally:
        worker.stop()
    result["load_average"] = os.getloadavg()[0]
    return result


def ready_now(worker: WorkerProcess) -> bool:
    try:
        return httpx.get(f"{worker.url}/health/ready", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--counts", default="100,300,1000", help="destination counts, comma-separated")
    parser.add_argument("--idle", type=float, default=60.0, help="seconds of idle measurement")
    parser.add_argument("--cold", type=int, default=5, help="cold destinations given one record each at once")
    parser.add_argument("--no-add", dest="add", action="store_false", help="skip adding/removing one at runtime")
    parser.add_argument("--json", help="write the results to this file too")
    args = parser.parse_args()
    broker: LocalBroker | None = None
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if not bootstrap:
        broker = LocalBroker(sasl=False)
        broker.start()
        bootstrap = broker.bootstrap
    broker_port = int(bootstrap.rsplit(":", 1)[1])
    sandbox = SandboxProcess(rate_limit="off").start()
    results = []
    try:
        for n in (int(c) for c in args.counts.split(",")):
            result = await run_count(n, broker_port, bootstrap, sandbox, args)
            print(json.dumps(result), flush=True)
            results.append(result)
            if args.json:
                Path(args.json).write_text(json.dumps(results, indent=2))
    finally:
        sandbox.stop()
        if broker is not None:
            broker.stop()


if __name__ == "__main__":
    asyncio.run(main())
