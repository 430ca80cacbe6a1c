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

``--stream updates`` (issue 26, item 3): ticket updates instead of tags, each record one of 10 distinct
changes (a tag added, or the status set), to ``update_ticket`` batched ``by_attribute`` on ``ticket_id``,
ticket by ticket (``tickets``: ``delivery.coalesce: none``) and with ``delivery.coalesce: jobs`` (``jobs``:
waiting calls of several tickets asking the same change go as one Gorgias job). The sandbox runs each
job in the background for ``--job-duration`` seconds (120: Gorgias says "a few minutes"). Extra columns:
requests per delivered record (every request the sandbox answered in the window: tag creates, writes,
job creates and job reads), the job reads (polls) and the 429s the sandbox counted.

``--auth oauth_app``: the credential is the sandbox's OAuth app (refresh token exchanged for access
tokens), whose budget is 80 calls per 20 s (4 calls/s).

    .venv/bin/python bench/budget_bench.py                         # the full matrix: 12 runs x 3 min
    .venv/bin/python bench/budget_bench.py --duration 60 --rates 40 --dists uniform
    .venv/bin/python bench/budget_bench.py --duration 60 --json out.json
    .venv/bin/python bench/budget_bench.py --backlog 1000000 --duration 60   # memory of a budget-bound backlog
    .venv/bin/python bench/budget_bench.py --stream updates --dists zipf --rates 20 40   # per ticket vs jobs
    .venv/bin/python bench/budget_bench.py --auth oauth_app --dists uniform --rates 40 --modes fill

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
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import psutil
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.support.broker import LocalBroker  # noqa: E402
from tests.support.kafka_io import create_topics  # noqa: E402
from tests.support.processes import API_KEY, SandboxProcess  # noqa: E402
from worker.core.config.worker_config import parse_config  # noqa: E402
from worker.host.secret_box import new_key  # noqa: E402
from worker.service.runtime import Runtime  # noqa: E402

RATE_LIMIT = "40/20s"
OAUTH_RATE_LIMIT = "80/20s"
BUDGET = {"basic": (40, 20), "oauth_app": (80, 20)}  # calls per seconds, as Gorgias gives them
BATCH_SIZE = 100
DISTS = {"uniform": 300, "zipf": 5000}
STREAMS = {"tags": ("fill", "sealed"), "updates": ("tickets", "jobs")}
"""Each stream's modes: tags are add_ticket_tags (fill: batches keep filling while they wait; sealed: not);
updates are update_ticket (tickets: one call per ticket; jobs: delivery.coalesce: jobs)."""
UPDATES = [{"status": "closed"}, {"status": "open"}] + [{"tags": [name]} for name in (
    "vip", "refund", "late-delivery", "churn-risk", "b2b", "damaged", "nps-detractor", "nps-promoter")]
"""The 10 distinct changes of the updates stream: the status set, or one tag added."""
APP = {"client_id": "sandbox-client", "client_secret": "sandbox-client-secret",
       "refresh_token": "sandbox-refresh-token"}  # the sandbox's OAuth app (docs/sandbox.md)


@dataclass
class Window:
    """Figures over one stretch of a run: the whole run, or its steady window after the warm-up."""

    seconds: float = 0.0
    produced: int = 0
    delivered: int = 0
    calls: int = 0
    lag_at_start: int = 0  # produced - delivered at the window's start
    lag_at_end: int = 0
    p50_latency_s: float = 0.0
    p99_latency_s: float = 0.0
    status_429: int = 0
    requests: int = 0  # what the sandbox answered on /api in the window (tag creates, writes, job creates and reads)
    polls: int = 0  # job reads: GET /api/jobs and GET /api/jobs/{id}
    job_creates: int = 0
    sandbox_429: int = 0

    @property
    def produced_per_s(self) -> float:
        return self.produced / self.seconds if self.seconds else 0.0

    @property
    def delivered_per_s(self) -> float:
        return self.delivered / self.seconds if self.seconds else 0.0

    @property
    def share(self) -> float:
        return self.delivered / max(1, self.produced)

    @property
    def records_per_call(self) -> float:
        return self.delivered / self.calls if self.calls else 0.0

    @property
    def requests_per_record(self) -> float:
        return self.requests / self.delivered if self.delivered else 0.0

    def count(self, before: dict[str, Any], after: dict[str, Any]) -> None:
        """The sandbox's requests between two ``/__admin/counters`` snapshots."""
        def n(snapshot: dict[str, Any], route: str) -> int:
            return sum(snapshot["requests"].get(route, {}).values())

        routes = [r for r in after["requests"] if " /api/" in r]
        self.requests = sum(n(after, r) - n(before, r) for r in routes)
        self.polls = sum(n(after, r) - n(before, r) for r in ("GET /api/jobs", "GET /api/jobs/{id}"))
        self.job_creates = n(after, "POST /api/jobs") - n(before, "POST /api/jobs")
        self.sandbox_429 = after["rate_limited"] - before["rate_limited"]


@dataclass
class Run:
    dist: str
    rate: float
    mode: str  # one of STREAMS[stream]
    warmup_s: float
    steady: Window
    whole: Window
    stream: str = "tags"
    auth: str = "basic"
    job_duration_s: float = 0.0
    lag_by_minute: list[int] = field(default_factory=list)  # produced - delivered at each minute from the start

    @property
    def judged(self) -> bool:
        """Whether the target applies to this mode: the worker as it is (fill), jobs mode."""
        return self.mode in ("fill", "jobs")

    @property
    def target_met(self) -> bool:
        """Over the steady window: delivered >= 95 % of produced, lag flat (grew by < 5 % of produced), no 429."""
        s = self.steady
        calls, seconds = BUDGET[self.auth]
        applies = self.judged and (self.stream != "tags" or self.rate <= 0.9 * calls / seconds * BATCH_SIZE)
        flat = s.lag_at_end - s.lag_at_start <= 0.05 * s.produced
        return not applies or (s.delivered >= 0.95 * s.produced and flat and s.status_429 == 0
                               and s.sandbox_429 == 0)


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


def credential(sandbox: SandboxProcess, args: argparse.Namespace) -> dict[str, Any]:
    calls, seconds = BUDGET[args.auth]
    limit = {"requests": calls, "per_seconds": seconds, "age_bound_s": args.age_bound,
             "aged_call_every": args.aged_call_every}
    if args.auth == "oauth_app":
        return {"domain": "acme", "auth": "oauth_app", "client_id": APP["client_id"],
                "client_secret_env": "GORGIAS_CLIENT_SECRET", "refresh_token_env": "GORGIAS_REFRESH_TOKEN",
                "base_url": sandbox.url, "rate_limit": limit}
    return {"domain": "acme", "username": "agent@acme.com", "api_key_env": "GORGIAS_API_KEY",
            "base_url": sandbox.url, "rate_limit": limit}


def config(bootstrap: str, sandbox: SandboxProcess, topic: str, run_id: str, mode: str,
           args: argparse.Namespace) -> dict[str, Any]:
    updates = mode in STREAMS["updates"]
    worker: dict[str, Any] = {"web_port": 0, "shutdown_grace_s": 5, "log_format": "text"}
    if args.auth == "oauth_app":
        worker["secrets_key_env"] = "GORGIAS_SECRETS_KEY"  # the replicas share the app's tokens encrypted
    return {
        "kafka": {"bootstrap_servers": bootstrap, "group_id": f"budget-{run_id}",
                  "control_topic": f"control-budget-{run_id}"},
        "worker": worker,
        "destinations": [{
            "name": "updates" if updates else "tags",
            "source_topics": [topic],
            "credential": credential(sandbox, args),
            "endpoint": {"template": "update_ticket" if updates else "add_ticket_tags", "method": None, "url": None},
            "batching": {"enabled": True, "algorithm": "by_attribute", "attributes": ["ticket_id"],
                         "batch_size": BATCH_SIZE, "max_wait_ms": 2000, "fill_while_waiting": mode != "sealed"},
            "response_webhook": {"enabled": True, "topic": f"{topic}-responses"},
            "dead_letter_topic": f"{topic}-dlq",
            "delivery": {"max_pending_records": args.max_pending_records,
                         "coalesce": "jobs" if mode == "jobs" else "none"},
        }],
    }


def record_value(stream: str, ticket: int, n: int, rng: random.Random) -> bytes:
    """The n-th record of ``stream`` for ``ticket``: a tag (tags), or one of the 10 distinct changes (updates)."""
    if stream == "updates":
        return orjson.dumps({"ticket_id": ticket, **rng.choice(UPDATES)})
    return orjson.dumps({"ticket_id": ticket, "tags": [f"tag{n % 7}"]})


async def produce(bootstrap: str, topic: str, stream: str, dist: str, tickets: list[int], rate: float,
                  duration: float, seed: int, times: list[float]) -> int:
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
                value = record_value(stream, t, sent, rng)
                await producer.send(topic, value, key=str(t).encode())
                times.append(time.time())
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


def measure(events: list[tuple[float, dict[str, Any]]], produced_at: list[float], start: float, end: float) -> Window:
    """The figures of the calls that finished in [start, end) and of the records produced in it."""
    win = Window(seconds=end - start)
    win.produced = bisect.bisect_left(produced_at, end) - bisect.bisect_left(produced_at, start)
    latencies: list[float] = []
    delivered_before = 0
    for finished, e in events:
        delivered = e["record_count"] if e["outcome"] == "delivered" else 0
        if finished < start:
            delivered_before += delivered
            continue
        if finished >= end:
            continue
        win.calls += 1
        win.delivered += delivered
        win.status_429 += sum(1 for a in e["attempt_log"] if a["status"] == 429)
        for r in e["records"]:
            ts = r.get("timestamp_ms")
            if ts is not None:
                latencies.append(finished - ts / 1000)
    win.lag_at_start = bisect.bisect_left(produced_at, start) - delivered_before
    win.lag_at_end = bisect.bisect_left(produced_at, end) - delivered_before - win.delivered
    win.p50_latency_s = percentile(latencies, 0.50)
    win.p99_latency_s = percentile(latencies, 0.99)
    return win


async def steady_counters(sandbox: SandboxProcess, at: float, into: list[tuple[float, dict[str, Any]]]) -> None:
    """The sandbox's counters once the warm-up is over (wall time ``at``), with the time they were read."""
    await asyncio.sleep(max(0.0, at - time.time()))
    into.append((time.time(), await asyncio.to_thread(sandbox.counters)))


def reset_budget(sandbox: SandboxProcess, args: argparse.Namespace) -> None:
    """A fresh, empty bucket (API keys 40/20 s, OAuth 80/20 s), and the run's job duration."""
    sandbox.admin("PUT", "rate-limit", {"rate_limit": RATE_LIMIT, "oauth_rate_limit": OAUTH_RATE_LIMIT})
    sandbox.admin("PUT", "jobs", {"duration_s": args.job_duration})


async def one_run(bootstrap: str, sandbox: SandboxProcess, tickets: list[int], dist: str, rate: float,
                  mode: str, args: argparse.Namespace) -> Run:
    """Produce for ``--warmup`` + ``--duration`` seconds; the steady window is the last ``--duration``."""
    run_id = uuid.uuid4().hex[:8]
    topic = f"budget-{run_id}"
    await create_topics(bootstrap, [topic], 4)
    reset_budget(sandbox, args)
    runtime = Runtime(parse_config(config(bootstrap, sandbox, topic, run_id, mode, args)))
    await runtime.start()
    produced_at: list[float] = []
    at_steady: list[tuple[float, dict[str, Any]]] = []
    try:
        at_start = await asyncio.to_thread(sandbox.counters)
        started = time.time()
        snap = asyncio.create_task(steady_counters(sandbox, started + args.warmup, at_steady))
        await produce(bootstrap, topic, args.stream, dist, tickets, rate, args.warmup + args.duration, 7,
                      produced_at)
        ended = time.time()
        at_end = await asyncio.to_thread(sandbox.counters)
        await snap
    finally:
        await runtime.stop()
    events = sorted(((datetime.fromisoformat(e["finished_at"]).timestamp(), e)
                     for e in await read_events(bootstrap, f"{topic}-responses")), key=lambda fe: fe[0])
    steady_from, at_steady_counters = at_steady[0]
    steady = measure(events, produced_at, steady_from, ended)
    steady.count(at_steady_counters, at_end)
    whole = measure(events, produced_at, started, ended)
    whole.count(at_start, at_end)
    return Run(dist, rate, mode, steady_from - started, steady=steady, whole=whole, stream=args.stream,
               auth=args.auth, job_duration_s=args.job_duration if args.stream == "updates" else 0.0,
               lag_by_minute=lag_by_minute(events, produced_at, started, ended))


def lag_by_minute(events: list[tuple[float, dict[str, Any]]], produced_at: list[float], start: float,
                  end: float) -> list[int]:
    """Produced - delivered at each whole minute of the run: whether the lag is flat, or swings (jobs mode:
    a cycle of the jobs' duration plus the reads that find them done)."""
    finished = [f for f, _ in events]
    delivered = list(itertools.accumulate(e["record_count"] if e["outcome"] == "delivered" else 0 for _, e in events))
    lags = []
    for minute in range(1, int((end - start) // 60) + 1):
        at = start + 60 * minute
        n = bisect.bisect_left(finished, at)
        lags.append(bisect.bisect_left(produced_at, at) - (delivered[n - 1] if n else 0))
    return lags


HEAD = (f"{'stream':<8} {'rate':>5} {'mode':<7} {'window':<7} {'produced/s':>10} {'delivered/s':>11} {'share':>6} "
        f"{'rec/call':>8} {'req/rec':>7} {'polls':>5} {'lag start':>9} {'lag end':>8} {'p50 s':>7} {'p99 s':>7} "
        f"{'429s':>5} {'target':>6}")


def lag_line(r: Run) -> str:
    return f"  {r.stream} {r.dist} {r.rate:g}/s {r.mode}: " + " ".join(f"{x:,}" for x in r.lag_by_minute)


def rows(r: Run) -> list[str]:
    out = []
    name_of = f"{r.dist}{'+upd' if r.stream == 'updates' else ''}{'+app' if r.auth == 'oauth_app' else ''}"
    for name, w in (("steady", r.steady), ("whole", r.whole)):
        target = ("met" if r.target_met else "MISSED") if r.judged and name == "steady" else ""
        out.append(
            f"{name_of:<8} {r.rate:>5g} {r.mode:<7} {name:<7} {w.produced_per_s:>10.1f} "
            f"{w.delivered_per_s:>11.1f} {w.share:>6.0%} {w.records_per_call:>8.1f} {w.requests_per_record:>7.3f} "
            f"{w.polls:>5} {w.lag_at_start:>9} {w.lag_at_end:>8} {w.p50_latency_s:>7.1f} {w.p99_latency_s:>7.1f} "
            f"{max(w.status_429, w.sandbox_429):>5} {target:>6}")
    return out


COMPARED = {"fill": "sealed", "jobs": "tickets"}  # a mode and the one it is compared with


def table(runs: list[Run]) -> str:
    lines = [HEAD, "-" * len(HEAD)]
    order = {m: n for n, m in enumerate(("fill", "sealed", "jobs", "tickets"))}
    for r in sorted(runs, key=lambda r: (r.stream, r.auth, r.dist, r.rate, order[r.mode])):
        lines.extend(rows(r))
    by_mode = {(r.stream, r.auth, r.dist, r.rate, r.mode): r for r in runs}
    lines.append("")
    lines.append("fill vs sealed, jobs vs tickets, steady window: delivered records/s and requests per record")
    for r in sorted(runs, key=lambda r: (r.stream, r.auth, r.dist, r.rate)):
        old = by_mode.get((r.stream, r.auth, r.dist, r.rate, COMPARED.get(r.mode, "")))
        if old is not None:
            more = r.steady.delivered / max(1, old.steady.delivered)
            fewer = old.steady.requests_per_record / max(0.001, r.steady.requests_per_record)
            lines.append(f"  {r.stream} {r.dist:<8} {r.rate:>5g}/s {r.mode} vs {old.mode}: delivered x{more:.1f}, "
                         f"requests per record /{fewer:.1f}")
    timed = [r for r in runs if r.lag_by_minute]
    if timed:
        lines.append("")
        lines.append("lag (produced - delivered) at each minute of the run")
        timed.sort(key=lambda r: (r.stream, r.auth, r.dist, r.rate, order[r.mode]))
        lines.extend(lag_line(r) for r in timed)
    return "\n".join(lines)


def load(path: str) -> list[Run]:
    """Runs written by ``--json`` (also those of before the updates stream, which had ``fill``)."""
    runs = []
    for d in json.loads(Path(path).read_text()):
        mode = d.pop("mode", None) or ("fill" if d.pop("fill", True) else "sealed")
        runs.append(Run(d["dist"], d["rate"], mode, d["warmup_s"], Window(**d["steady"]), Window(**d["whole"]),
                        d.get("stream", "tags"), d.get("auth", "basic"), d.get("job_duration_s", 0.0),
                        d.get("lag_by_minute", [])))
    return runs


async def backlog_run(bootstrap: str, sandbox: SandboxProcess, tickets: list[int], args: argparse.Namespace) -> int:
    """``--backlog N``: N records waiting in Kafka, the worker draining them at the budget for ``--duration``
    seconds; peak RSS of this process (worker runtime + benchmark: an upper bound of the worker's)."""
    run_id = uuid.uuid4().hex[:8]
    topic = f"budget-backlog-{run_id}"
    await create_topics(bootstrap, [topic], 4)
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
    reset_budget(sandbox, args)
    proc = psutil.Process()
    rss_start = proc.memory_info().rss
    peak = rss_start
    runtime = Runtime(parse_config(config(bootstrap, sandbox, topic, run_id, "fill", args)))
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
    os.environ.setdefault("GORGIAS_CLIENT_SECRET", APP["client_secret"])
    os.environ.setdefault("GORGIAS_REFRESH_TOKEN", APP["refresh_token"])
    os.environ.setdefault("GORGIAS_SECRETS_KEY", new_key())
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
                for mode in args.modes:
                    run = await one_run(bootstrap, sandbox, tickets, dist, rate, mode, args)
                    runs.append(run)
                    print("\n".join([*rows(run), lag_line(run)]), flush=True)
    finally:
        sandbox.stop()
        if broker is not None:
            broker.stop()
    print()
    print(header(args))
    print(table(runs))
    if args.json:
        Path(args.json).write_text(json.dumps([asdict(r) for r in runs], indent=2))
    return 0 if all(r.target_met for r in runs) else 1


def header(args: argparse.Namespace) -> str:
    template = "update_ticket (10 distinct changes)" if args.stream == "updates" else "add_ticket_tags"
    jobs = f", jobs run {args.job_duration:g} s in the sandbox" if args.stream == "updates" else ""
    return (f"sandbox {RATE_LIMIT} (API key) / {OAUTH_RATE_LIMIT} (OAuth), auth {args.auth}, {template} by "
            f"ticket_id, window 2 s, batch size {BATCH_SIZE}{jobs}, warm-up {args.warmup:g} s + steady window "
            f"{args.duration:g} s per run, age bound {args.age_bound:g} s, aged_call_every {args.aged_call_every}, "
            f"max_pending_records {args.max_pending_records}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=180.0, help="seconds of the steady window of each run")
    parser.add_argument("--warmup", type=float, default=180.0,
                        help="seconds of production before the steady window (a key needs ~150 s to fill a call)")
    parser.add_argument("--rates", type=float, nargs="+", default=[20.0, 40.0, 150.0], help="records/s")
    parser.add_argument("--dists", nargs="+", choices=sorted(DISTS), default=["uniform", "zipf"])
    parser.add_argument("--age-bound", type=float, default=30.0, help="credential.rate_limit.age_bound_s")
    parser.add_argument("--aged-call-every", type=int, default=4, help="credential.rate_limit.aged_call_every")
    parser.add_argument("--max-pending-records", type=int, default=50_000, help="delivery.max_pending_records")
    parser.add_argument("--backlog", type=int, default=0,
                        help="instead of the matrix: N records waiting in Kafka, drained at the budget (memory)")
    parser.add_argument("--stream", choices=sorted(STREAMS), default="tags",
                        help="tags: add_ticket_tags; updates: update_ticket, 10 distinct changes (tags and status)")
    parser.add_argument("--modes", nargs="+", choices=[m for ms in STREAMS.values() for m in ms],
                        help="tags: fill (batches keep filling while they wait), sealed (fill_while_waiting false); "
                             "updates: tickets (one call per ticket), jobs (delivery.coalesce: jobs). "
                             "Default: both of the stream's")
    parser.add_argument("--job-duration", type=float, default=120.0,
                        help="seconds a ticket job runs in the sandbox (Gorgias: 'a few minutes or several hours')")
    parser.add_argument("--auth", choices=sorted(BUDGET), default="basic",
                        help="basic: an API key (40 calls / 20 s); oauth_app: the sandbox's OAuth app (80 / 20 s)")
    parser.add_argument("--merge", nargs="+", metavar="JSON", help="only print the table of these --json files")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON here")
    args = parser.parse_args(argv)
    args.modes = args.modes or list(STREAMS[args.stream])
    wrong = [m for m in args.modes if m not in STREAMS[args.stream]]
    if wrong:
        parser.error(f"--modes {' '.join(wrong)}: not a mode of --stream {args.stream} "
                     f"(its modes: {', '.join(STREAMS[args.stream])})")
    if args.merge:
        print(header(args))
        print(table([r for path in args.merge for r in load(path)]))
        return 0
    try:
        return asyncio.run(main_async(args))
    except KeyboardInterrupt:
        return 1


if __name__ == "__main__":
    sys.exit(main())
