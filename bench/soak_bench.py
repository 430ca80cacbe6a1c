"""Soak: one worker process for an hour at a steady 20 records/s against the sandbox with faults on; does
anything grow that should not?

Everything runs on this machine: a real Kafka broker (``tests.support.broker.LocalBroker``, or the one in
``KAFKA_BOOTSTRAP_SERVERS``), the Gorgias sandbox (its own process, faults on) and the worker as a real
process (``python -m worker run``). Two destinations share one account (rate limit off, so the stream is
never held back by the budget and every minute carries the same work):

- ``tickets``: one ``POST /api/tickets`` per record, half the stream;
- ``tags``: ``add_ticket_tags`` batched by ``ticket_id`` over 50 tickets, the other half.

The sandbox answers 503 to 3 % and 502 to 1 % of the requests, drops 1 % of the connections and waits
5-40 ms before each answer: retries, lookups after a lost create answer, dead letters for what runs out of
attempts. Every ``--sample-s`` (60 s) a line gives the worker's resident memory and open file descriptors
(``/proc/<pid>``), its asyncio tasks (``gorgias_worker_event_loop_tasks``), CPU seconds used, and the
records consumed, delivered and dead-lettered. At the end, over the samples after ``--warmup-s`` (600 s):
each figure's drift (the last quarter's mean against the first quarter's; the run calls it flat at 10 % or
less either way) and its spread, ``(max - min) / median`` (noise: a few descriptors come and go).

    nice -n 5 .venv/bin/python bench/soak_bench.py                      # one hour
    .venv/bin/python bench/soak_bench.py --duration-s 300 --warmup-s 60 --sample-s 20   # a short look
    .venv/bin/python bench/soak_bench.py --json soak.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import aiokafka
import httpx
import orjson
import yaml

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.support.broker import LocalBroker, free_port  # noqa: E402
from tests.support.kafka_io import create_topics  # noqa: E402
from tests.support.processes import API_KEY, SandboxProcess, WorkerProcess  # noqa: E402

FAULTS = "503=0.03, 502=0.01, drop=0.01, latency=5-40ms"
TAG_TICKETS = 50
FLAT = 0.10
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class Sample:
    minute: float
    rss_mib: float
    open_fds: int
    tasks: int
    cpu_s: float
    consumed: int
    delivered: int
    dead_lettered: int


def destination(name: str, source: str, sandbox_url: str, endpoint: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "source_topics": [source],
        "credential": {"domain": "acme", "username": "agent@acme.com", "api_key_env": "GORGIAS_API_KEY",
                       "base_url": sandbox_url, "rate_limit": {"enabled": False}},
        "endpoint": endpoint,
        "response_webhook": {"enabled": True, "topic": f"{source}.responses"},
        "dead_letter_topic": f"{source}.dead-letter",
        "delivery": {"max_attempts": 4, "backoff_initial_s": 0.1, "backoff_max_s": 2.0},
        **extra,
    }


def config(bootstrap: str, sandbox: SandboxProcess, run: str, web_port: int) -> dict[str, Any]:
    tickets = destination("tickets", f"soak-{run}-tickets", sandbox.url,
                          {"method": "POST", "url": "https://{domain}.gorgias.com/api/tickets"})
    tags = destination("tags", f"soak-{run}-tags", sandbox.url, {"template": "add_ticket_tags"},
                       batching={"enabled": True, "algorithm": "by_attribute", "attributes": ["ticket_id"],
                                 "max_wait_ms": 1000})
    return {
        "kafka": {"bootstrap_servers": bootstrap, "group_id": f"soak-{run}"},
        "worker": {"web_port": web_port, "log_format": "json", "log_level": "warning"},
        "destinations": [tickets, tags],
    }


def ticket(i: int) -> dict[str, Any]:
    email = f"soak{i % 97}@example.com"
    return {"subject": f"Soak {i}", "external_id": f"soak-{i}", "channel": "api", "via": "api", "from_agent": False,
            "customer": {"email": email},
            "messages": [{"channel": "api", "via": "api", "from_agent": False, "sender": {"email": email},
                          "body_text": f"body {i}"}]}


async def produce(bootstrap: str, run: str, rate: float, until: float, ticket_ids: list[int]) -> int:
    """``rate`` records a second, half tickets and half tags, until ``until`` (monotonic); returns how many."""
    producer = aiokafka.AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=20)
    await producer.start()
    sent = 0
    started = time.monotonic()
    try:
        while time.monotonic() < until:
            due = int((time.monotonic() - started) * rate)
            while sent < due:
                if sent % 2:
                    tid = ticket_ids[sent % len(ticket_ids)]
                    value, topic, key = {"ticket_id": tid, "tags": [f"t{sent % 7}"]}, f"soak-{run}-tags", str(tid)
                else:
                    value, topic, key = ticket(sent), f"soak-{run}-tickets", f"k{sent % 16}"
                await producer.send(topic, orjson.dumps(value), key=key.encode())
                sent += 1
            await asyncio.sleep(0.05)
        await producer.flush()
    finally:
        await producer.stop()
    return sent


def proc_figures(pid: int) -> tuple[float, int, float]:
    """(resident MiB, open file descriptors, CPU seconds) of process ``pid``."""
    rss_kib = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss_kib = int(line.split()[1])
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime + stime
    return rss_kib / 1024, fds, cpu


def metric_sums(text: str) -> dict[str, float]:
    """Sums of the few worker series the soak reports, over every label set."""
    wanted = ("gorgias_worker_event_loop_tasks", "gorgias_worker_records_consumed_total",
              "gorgias_worker_records_delivered_total", "gorgias_worker_records_dead_lettered_total")
    sums = dict.fromkeys(wanted, 0.0)
    for line in text.splitlines():
        name = line.split("{", 1)[0].split(" ", 1)[0]
        if name in sums:
            sums[name] += float(line.rsplit(" ", 1)[1])
    return sums


def take_sample(worker: WorkerProcess, started: float) -> Sample:
    assert worker.proc is not None
    rss, fds, cpu = proc_figures(worker.proc.pid)
    sums = metric_sums(httpx.get(f"{worker.url}/metrics", timeout=10).text)
    return Sample(
        minute=round((time.monotonic() - started) / 60, 2), rss_mib=round(rss, 1), open_fds=fds,
        tasks=int(sums["gorgias_worker_event_loop_tasks"]), cpu_s=round(cpu, 1),
        consumed=int(sums["gorgias_worker_records_consumed_total"]),
        delivered=int(sums["gorgias_worker_records_delivered_total"]),
        dead_lettered=int(sums["gorgias_worker_records_dead_lettered_total"]),
    )


def spread(values: list[float]) -> float:
    middle = statistics.median(values)
    return (max(values) - min(values)) / middle if middle else 0.0


def drift(values: list[float]) -> float:
    """How far the last quarter's mean lies from the first quarter's, relative to the first: growth, not noise."""
    quarter = max(1, len(values) // 4)
    first, last = statistics.mean(values[:quarter]), statistics.mean(values[-quarter:])
    return (last - first) / first if first else 0.0


def verdict(samples: list[Sample], warmup_min: float) -> dict[str, dict[str, float]]:
    """Per figure, after the warm-up: its spread ``(max - min) / median`` and its drift (last quarter's mean
    against the first's)."""
    steady = [s for s in samples if s.minute >= warmup_min]
    if len(steady) < 2:
        return {}
    out = {}
    for name in ("rss_mib", "open_fds", "tasks"):
        values = [float(getattr(s, name)) for s in steady]
        out[name] = {"spread": round(spread(values), 3), "drift": round(drift(values), 3)}
    return out


async def soak(bootstrap: str, args: argparse.Namespace) -> tuple[list[Sample], dict[str, dict[str, float]]]:
    sandbox = SandboxProcess(rate_limit="off", extra=["--faults", args.faults, "--seed", "7"]).start()
    run = uuid.uuid4().hex[:8]
    worker: WorkerProcess | None = None
    try:
        ticket_ids = [sandbox_ticket(sandbox, i) for i in range(TAG_TICKETS)]
        await create_topics(bootstrap, [f"soak-{run}-tickets", f"soak-{run}-tags"], 4)
        web_port = free_port()
        path = Path(tempfile.mkdtemp(prefix="soak-")) / "config.yaml"
        path.write_text(yaml.safe_dump(config(bootstrap, sandbox, run, web_port)))
        worker = WorkerProcess(path, web_port).start()
        started = time.monotonic()
        until = started + args.duration_s
        producing = asyncio.create_task(produce(bootstrap, run, args.rate, until, ticket_ids))
        samples: list[Sample] = []
        print(f"{'min':>6} {'RSS MiB':>8} {'fds':>5} {'tasks':>6} {'CPU s':>7} {'consumed':>9} {'delivered':>10} "
              f"{'dead':>6}", flush=True)
        while time.monotonic() < until:
            await asyncio.sleep(min(args.sample_s, max(0.0, until - time.monotonic())))
            sample = await asyncio.to_thread(take_sample, worker, started)
            samples.append(sample)
            print(f"{sample.minute:6.1f} {sample.rss_mib:8.1f} {sample.open_fds:5d} {sample.tasks:6d} "
                  f"{sample.cpu_s:7.1f} {sample.consumed:9d} {sample.delivered:10d} {sample.dead_lettered:6d}",
                  flush=True)
        sent = await producing
        print(f"published {sent} records in {args.duration_s:.0f} s", flush=True)
        return samples, verdict(samples, args.warmup_s / 60)
    finally:
        if worker is not None:
            worker.stop()
        sandbox.stop()


def sandbox_ticket(sandbox: SandboxProcess, i: int) -> int:
    """A ticket for the tag destination to tag (made while the sandbox has no faults yet matter: retried)."""
    for _ in range(20):
        try:
            r = httpx.post(f"{sandbox.url}/api/tickets", json=ticket(-1 - i), auth=("agent@acme.com", API_KEY),
                           headers={"Host": "acme.gorgias.com"}, timeout=10)
            if r.status_code == 201:
                return int(r.json()["id"])
        except httpx.HTTPError:
            pass
    raise RuntimeError("the sandbox would not create the tag destination's tickets")


async def main_async(args: argparse.Namespace) -> int:
    broker: LocalBroker | None = None
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if not bootstrap:
        broker = LocalBroker(sasl=False)
        broker.start()
        bootstrap = broker.bootstrap
    try:
        print(f"# soak: {args.rate:g} records/s for {args.duration_s:.0f} s, faults {args.faults!r}; "
              f"load average at start {os.getloadavg()[0]:.2f}", flush=True)
        samples, spreads = await soak(bootstrap, args)
    finally:
        if broker is not None:
            broker.stop()
    flat = bool(spreads) and all(abs(v["drift"]) <= FLAT for v in spreads.values())
    print(f"after {args.warmup_s:.0f} s of warm-up: "
          + ", ".join(f"{k} drift {v['drift']:+.1%} (spread {v['spread']:.1%})" for k, v in spreads.items())
          + f" -> {'flat' if flat else 'NOT flat'} (drift within {FLAT:.0%}); load average at end "
          f"{os.getloadavg()[0]:.2f}", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps({"samples": [asdict(s) for s in samples], "spreads": spreads,
                                               "flat": flat, "args": vars(args)}, indent=1))
    return 0 if flat else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration-s", type=float, default=3600.0)
    parser.add_argument("--rate", type=float, default=20.0, help="records per second (half tickets, half tags)")
    parser.add_argument("--sample-s", type=float, default=60.0)
    parser.add_argument("--warmup-s", type=float, default=600.0)
    parser.add_argument("--faults", default=FAULTS, help="the sandbox's fault spec (docs/sandbox.md)")
    parser.add_argument("--json", help="also write the samples and the verdict to this file")
    return asyncio.run(main_async(parser.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
