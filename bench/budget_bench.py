"""How many records per second reach Gorgias when the account's budget is the bottleneck?

Gorgias gives an API key 40 calls per 20 s (2 calls/s). When records arrive faster than that, records per
call decide the delivered rate. This benchmark runs the sandbox with that limit (``--rate-limit 40/20s``),
a real Kafka broker (``tests.support.broker.LocalBroker``, or ``KAFKA_BOOTSTRAP_SERVERS``) and the worker's
runtime in this process, and produces a steady keyed stream of tag records
(``{"ticket_id": T, "tags": [...]}``, Kafka key T) to the ``add_ticket_tags`` template batched
``by_attribute`` on ``ticket_id`` (2 s window, batch size 100):

* ``uniform``: tickets uniform over 300;
* ``zipf``: tickets Zipf-skewed (s = 1) over 5,000;

at 20, 40 and 150 records/s for ``--duration`` seconds each (3 minutes in the issue's matrix). For each
run it reports delivered records/s against produced (records whose outcome was recorded by the end of the
run; and per second in its last third, once the queue of waiting calls has built up), records per call,
the lag at the end (produced - delivered), p50/p99 record latency (Kafka timestamp
to the call's end) and the 429s, for the worker as it is (due batches keep filling while they wait) and
with ``batching.fill_while_waiting: false`` (batches sealed at their window, the behaviour before), and
the ratio of the two. Target: delivered >= 95 % of produced whenever produced <= 0.9 x 2 calls/s x
batch size, lag flat, no 429.

    .venv/bin/python bench/budget_bench.py                         # the full matrix: 12 runs x 3 min
    .venv/bin/python bench/budget_bench.py --duration 60 --rates 40 --dists uniform
    .venv/bin/python bench/budget_bench.py --duration 60 --json out.json
    .venv/bin/python bench/budget_bench.py --backlog 1000000 --duration 60   # memory of a budget-bound backlog

The ticket ids are created through the sandbox API first (rate limit off), then the limit is set, which
also empties the account's bucket before each run.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import itertools
import json
import os
import random
import sys
import time
import uuid
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import psutil
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.support.broker import LocalBroker  # noqa: E402
from tests.support.processes import API_KEY, SandboxProcess  # noqa: E402
from worker.core.config import parse_config  # noqa: E402
from worker.service.runtime import Runtime  # noqa: E402

RATE_LIMIT = "40/20s"
CALLS_PER_S = 2.0
BATCH_SIZE = 100
DISTS = {"uniform": 300, "zipf": 5000}


@dataclass
class Run:
    dist: str
    rate: float
    fill: bool
    duration_s: float
    produced: int = 0
    delivered: int = 0
    calls: int = 0
    records_per_call: float = 0.0
    lag_at_end: int = 0
    p50_latency_s: float = 0.0
    p99_latency_s: float = 0.0
    status_429: int = 0
    delivered_last_third: int = 0  # delivered in the run's last third: is it keeping up by then?

    @property
    def produced_per_s(self) -> float:
        return self.produced / self.duration_s

    @property
    def delivered_per_s(self) -> float:
        return self.delivered / self.duration_s

    @property
    def last_third_per_s(self) -> float:
        return self.delivered_last_third / (self.duration_s / 3)

    @property
    def target_met(self) -> bool:
        applies = self.rate <= 0.9 * CALLS_PER_S * BATCH_SIZE
        return not applies or (self.delivered >= 0.95 * self.produced and self.status_429 == 0)


def pick_ticket(dist: str, tickets: list[int], rng: random.Random, cum: list[float]) -> int:
    if dist == "uniform":
        return rng.choice(tickets)
    return tickets[bisect.bisect_left(cum, rng.random() * cum[-1])]


def zipf_cum(n: int) -> list[float]:
    return list(itertools.accumulate(1.0 / k for k in range(1, n + 1)))


async def create_tickets(sandbox: SandboxProcess, count: int) -> list[int]:
    sandbox.admin("PUT", "rate-limit", {"rate_limit": "off"})
    auth = ("agent@acme.com", API_KEY)
    ids: list[int] = []
    async with httpx.AsyncClient(base_url=sandbox.url, auth=auth, headers={"Host": "acme.gorgias.com"},
                                 timeout=30) as client:
        sem = asyncio.Semaphore(32)

        async def one(i: int) -> None:
            email = f"bench{i}@example.com"
            body = {"channel": "api", "via": "api", "from_agent": False, "customer": {"email": email},
                    "messages": [{"channel": "api", "via": "api", "from_agent": False, "sender": {"email": email},
                                  "body_text": "hello"}]}
            async with sem:
                resp = await client.post("/api/tickets", json=body)
                resp.raise_for_status()
                ids.append(resp.json()["id"])

        await asyncio.gather(*(one(i) for i in range(count)))
    return sorted(ids)


def config(bootstrap: str, sandbox: SandboxProcess, topic: str, run_id: str, fill: bool,
           args: argparse.Namespace) -> dict[str, Any]:
    return {
        "kafka": {"bootstrap_servers": bootstrap, "group_id": f"budget-{run_id}",
                  "control_topic": f"control-budget-{run_id}"},
        "worker": {"web_port": 0, "shutdown_grace_s": 5, "log_format": "text"},
        "destinations": [{
            "name": "tags",
            "source_topics": [topic],
            "credential": {"domain": "acme", "username": "agent@acme.com", "api_key_env": "GORGIAS_API_KEY",
                           "base_url": sandbox.url,
                           "rate_limit": {"requests": 40, "per_seconds": 20, "age_bound_s": args.age_bound}},
            "endpoint": {"template": "add_ticket_tags", "method": None, "url": None},
            "batching": {"enabled": True, "algorithm": "by_attribute", "attributes": ["ticket_id"],
                         "batch_size": BATCH_SIZE, "max_wait_ms": 2000, "fill_while_waiting": fill},
            "response_webhook": {"enabled": True, "topic": f"{topic}-responses"},
            "dead_letter_topic": f"{topic}-dlq",
            "delivery": {"max_pending_records": args.max_pending_records},
        }],
    }


async def produce(bootstrap: str, topic: str, dist: str, tickets: list[int], rate: float, duration: float,
                  seed: int) -> int:
    rng = random.Random(seed)
    cum = zipf_cum(len(tickets))
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    await producer.start()
    sent = 0
    try:
        start = time.monotonic()
        while True:
            elapsed = time.monotonic() - start
            if elapsed >= duration:
                break
            due = int(elapsed * rate) + 1
            while sent < due:
                t = pick_ticket(dist, tickets, rng, cum)
                value = orjson.dumps({"ticket_id": t, "tags": [f"tag{sent % 7}"]})
                await producer.send(topic, value, key=str(t).encode())
                sent += 1
            await asyncio.sleep(max(0.0, (sent / rate) - (time.monotonic() - start)))
        await producer.flush()
    finally:
        await producer.stop()
    return sent


async def read_events(bootstrap: str, topic: str) -> list[dict[str, Any]]:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                                enable_auto_commit=False, group_id=None)
    await consumer.start()
    events: list[dict[str, Any]] = []
    try:
        idle = 0
        while idle < 3:
            batch = await consumer.getmany(timeout_ms=1000)
            if not batch:
                idle += 1
                continue
            idle = 0
            for messages in batch.values():
                events.extend(orjson.loads(m.value) for m in messages)
    finally:
        await consumer.stop()
    return events


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


async def one_run(bootstrap: str, sandbox: SandboxProcess, tickets: list[int], dist: str, rate: float,
                  fill: bool, duration: float, args: argparse.Namespace) -> Run:
    run_id = uuid.uuid4().hex[:8]
    topic = f"budget-{run_id}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, 4, 1)])
    finally:
        await admin.close()
    sandbox.admin("PUT", "rate-limit", {"rate_limit": RATE_LIMIT})  # a fresh, empty bucket
    runtime = Runtime(parse_config(config(bootstrap, sandbox, topic, run_id, fill, args)))
    await runtime.start()
    try:
        started = time.time()
        produced = await produce(bootstrap, topic, dist, tickets, rate, duration, seed=7)
        ended = time.time()
    finally:
        await runtime.stop()
    events = await read_events(bootstrap, f"{topic}-responses")
    result = Run(dist, rate, fill, ended - started, produced=produced)
    latencies: list[float] = []
    for e in events:
        finished = datetime.fromisoformat(e["finished_at"]).timestamp()
        if finished > ended:
            continue  # after the run: the shutdown's grace
        result.calls += 1
        delivered = e["record_count"] if e["outcome"] == "delivered" else 0
        result.delivered += delivered
        if finished >= ended - (ended - started) / 3:
            result.delivered_last_third += delivered
        result.status_429 += sum(1 for a in e["attempt_log"] if a["status"] == 429)
        for r in e["records"]:
            ts = r.get("timestamp_ms")
            if ts is not None:
                latencies.append(finished - ts / 1000)
    result.records_per_call = result.delivered / result.calls if result.calls else 0.0
    result.lag_at_end = produced - result.delivered
    result.p50_latency_s = percentile(latencies, 0.50)
    result.p99_latency_s = percentile(latencies, 0.99)
    return result


def table(runs: list[Run]) -> str:
    head = (f"{'stream':<8} {'rate':>5} {'mode':<7} {'produced/s':>10} {'delivered/s':>11} {'ratio':>6} "
            f"{'last 1/3':>8} {'rec/call':>8} {'lag end':>8} {'p50 s':>7} {'p99 s':>7} {'429s':>5} {'target':>6}")
    lines = [head, "-" * len(head)]
    for r in runs:
        lines.append(
            f"{r.dist:<8} {r.rate:>5g} {'fill' if r.fill else 'sealed':<7} {r.produced_per_s:>10.1f} "
            f"{r.delivered_per_s:>11.1f} {r.delivered / max(1, r.produced):>6.0%} {r.last_third_per_s:>8.1f} "
            f"{r.records_per_call:>8.1f} "
            f"{r.lag_at_end:>8} {r.p50_latency_s:>7.1f} {r.p99_latency_s:>7.1f} {r.status_429:>5} "
            f"{('met' if r.target_met else 'MISSED') if r.fill else '':>6}"
        )
    pairs = {(r.dist, r.rate): r for r in runs if not r.fill}
    lines.append("")
    lines.append("fill vs sealed (the behaviour before): delivered records/s and records per call")
    for r in runs:
        old = pairs.get((r.dist, r.rate))
        if r.fill and old is not None:
            lines.append(f"  {r.dist:<8} {r.rate:>5g}/s: delivered x{r.delivered / max(1, old.delivered):.1f}, "
                         f"records per call x{r.records_per_call / max(0.1, old.records_per_call):.1f}")
    return "\n".join(lines)


async def backlog_run(bootstrap: str, sandbox: SandboxProcess, tickets: list[int], args: argparse.Namespace) -> int:
    """``--backlog N``: N records waiting in Kafka, the worker draining them at the budget for ``--duration``
    seconds; peak RSS of this process (worker runtime + benchmark: an upper bound of the worker's)."""
    run_id = uuid.uuid4().hex[:8]
    topic = f"budget-backlog-{run_id}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, 4, 1)])
    finally:
        await admin.close()
    rng = random.Random(7)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=50, max_batch_size=1 << 20)
    await producer.start()
    try:
        batch = []
        for i in range(args.backlog):
            t = rng.choice(tickets)
            batch.append(producer.send(topic, orjson.dumps({"ticket_id": t, "tags": [f"tag{i % 7}"]}),
                                       key=str(t).encode()))
            if len(batch) >= 10_000:
                await asyncio.gather(*batch)
                batch = []
        await asyncio.gather(*batch)
        await producer.flush()
    finally:
        await producer.stop()
    sandbox.admin("PUT", "rate-limit", {"rate_limit": RATE_LIMIT})
    proc = psutil.Process()
    rss_start = proc.memory_info().rss
    peak = rss_start
    runtime = Runtime(parse_config(config(bootstrap, sandbox, topic, run_id, True, args)))
    await runtime.start()
    pipeline = next(iter(runtime.pipelines.values()))
    try:
        deadline = time.monotonic() + args.duration
        while time.monotonic() < deadline:
            await asyncio.sleep(1)
            peak = max(peak, proc.memory_info().rss)
        status = pipeline.status()
    finally:
        await runtime.stop()
    print(f"backlog {args.backlog:,} records (uniform over {len(tickets)} tickets) at {RATE_LIMIT}, "
          f"{args.duration:g} s: RSS before the worker {rss_start / 2**20:.0f} MB, peak {peak / 2**20:.0f} MB; "
          f"records held {status['pending_records']:,} (max_pending_records {args.max_pending_records:,}), "
          f"calls waiting {status['calls_waiting_for_budget']}, consumption paused: {status['throttled']}")
    return 0 if peak < 300 * 2**20 else 1


async def main_async(args: argparse.Namespace) -> int:
    os.environ.setdefault("GORGIAS_API_KEY", API_KEY)
    broker: LocalBroker | None = None
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if not bootstrap:
        broker = LocalBroker(sasl=False)
        broker.start()
        bootstrap = broker.bootstrap
    sandbox = SandboxProcess(rate_limit="off").start()
    runs: list[Run] = []
    try:
        if args.backlog:
            return await backlog_run(bootstrap, sandbox, await create_tickets(sandbox, DISTS["uniform"]), args)
        for dist in args.dists:
            tickets = await create_tickets(sandbox, DISTS[dist])
            for rate in args.rates:
                for fill in (True, False) if not args.no_compare else (True,):
                    run = await one_run(bootstrap, sandbox, tickets, dist, rate, fill, args.duration, args)
                    runs.append(run)
                    print(table([run]).splitlines()[2], flush=True)
    finally:
        sandbox.stop()
        if broker is not None:
            broker.stop()
    print()
    print(f"sandbox {RATE_LIMIT}, add_ticket_tags by ticket_id, window 2 s, batch size {BATCH_SIZE}, "
          f"{args.duration:g} s per run, age bound {args.age_bound:g} s, max_pending_records "
          f"{args.max_pending_records}")
    print(table(runs))
    if args.json:
        Path(args.json).write_text(json.dumps([asdict(r) for r in runs], indent=2))
    return 0 if all(r.target_met for r in runs) else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=180.0, help="seconds of production per run")
    parser.add_argument("--rates", type=float, nargs="+", default=[20.0, 40.0, 150.0], help="records/s")
    parser.add_argument("--dists", nargs="+", choices=sorted(DISTS), default=["uniform", "zipf"])
    parser.add_argument("--age-bound", type=float, default=30.0, help="credential.rate_limit.age_bound_s")
    parser.add_argument("--max-pending-records", type=int, default=20_000, help="delivery.max_pending_records")
    parser.add_argument("--backlog", type=int, default=0,
                        help="instead of the matrix: N records waiting in Kafka, drained at the budget (memory)")
    parser.add_argument("--no-compare", action="store_true", help="skip the sealed-at-window runs")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON here")
    args = parser.parse_args(argv)
    try:
        return asyncio.run(main_async(args))
    except KeyboardInterrupt:
        return 1


if __name__ == "__main__":
    sys.exit(main())
