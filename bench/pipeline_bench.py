"""How fast does the worker drain a Kafka backlog into Gorgias, end to end, and in how much memory?

Everything runs on this machine, on 127.0.0.1: a real Apache Kafka broker (``tests.support.broker.
LocalBroker``, or the one in ``KAFKA_BOOTSTRAP_SERVERS``), the Gorgias sandbox with its rate limit off
(``python -m worker sandbox --rate-limit off``, its own process) and the worker itself as a real process
(``python -m worker run --config FILE``, the faust host). For each scenario the benchmark

1. creates a source topic (4 partitions) and pre-produces the whole backlog, keyed (1,000 distinct keys),
   with aiokafka batch builders (one per partition), and says how long that took;
2. reads that topic with raw aiokafka, ``getmany()`` + ``orjson.loads`` of every value (no group, same
   fetch sizes and isolation level as the worker) - the baseline the worker is compared with;
3. starts the worker, waits until ``/health/ready`` answers, then polls the destination group's committed
   offsets every 0.5 s (admin client) and samples the worker's RSS (psutil, with its children) until every
   record is committed: consumed, delivered, its response event acknowledged by Kafka, offset committed;
4. reads the response topic to check one event per call and that the events' ``record_count`` add up to
   the backlog, and that nothing went to the dead-letter topic; then stops the worker (SIGTERM).

Scenarios:

* ``unbatched`` - one ``POST /api/tickets`` (a small ticket create) per record, ``max_in_flight`` 64;
  the figure is calls/s (target >= 1,000);
* ``batched``   - ``PUT /api/tickets/{ticket_id}/custom-fields`` grouped ``by_attribute`` on ``ticket_id``
  (1,000 tickets created through the sandbox API first, batch size 100), or with ``--batching
  arrival_order`` ``PUT /api/custom-fields`` (bulk definition update) in batches of 100; the figure is
  records/s (target >= 5,000). ``--backlog 1000000`` is the memory run (target: peak RSS < 300 MB).

The rate is records / (time from the worker being ready to all offsets committed); "steady" leaves out
the time to the first commit (group join, first fetch). CPU-seconds used by the worker, the sandbox and
the broker during the drain are printed too: on a shared 2-core machine they say where the cores went.

    .venv/bin/python bench/pipeline_bench.py                              # both scenarios, ~3 min
    .venv/bin/python bench/pipeline_bench.py --scenario batched --backlog 1000000 --json out.json
    .venv/bin/python bench/pipeline_bench.py --scenario unbatched --records 20000 --max-in-flight 128

Every step has a time limit; the broker, the sandbox and the worker are stopped when the benchmark ends,
also on Ctrl-C or SIGTERM. Exit status 1 when a scenario did not finish or missed a target.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import signal
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import psutil
import yaml
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.partitioner import DefaultPartitioner

from worker.core.config.kafka import KafkaSettings
from worker.kafka.clients import existing_partitions, read_ranges

ROOT = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"
DOMAIN = "acme"
USER = "agent@acme.com"
API_KEY = "sandbox-api-key"  # the sandbox's default account key; never a real secret
PARTITIONS = 4
FETCH = {"max_partition_fetch_bytes": 4 * 1024 * 1024, "fetch_max_bytes": 32 * 1024 * 1024}
MAX_RECORDS = 2000  # the worker's default kafka.fetch_max_records
POLL_S = 0.5
RSS_LIMIT_MB = 300.0
TARGETS = {"unbatched": 1000.0, "batched": 5000.0}
UNITS = {"unbatched": "calls/s", "batched": "records/s"}


def support() -> Any:
    """``tests.support`` (the broker and process helpers), importable when run as ``python bench/...``."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    import tests.support.broker
    import tests.support.processes

    return tests.support


# --------------------------------------------------------------------------------------------------
# Results


@dataclass
class Result:
    """What one scenario measured."""

    scenario: str
    records: int
    partitions: int
    keys: int
    endpoint: str
    batching: str
    max_in_flight: int
    value_bytes: float = 0.0  # mean record value size
    produce_s: float = 0.0
    produce_per_s: float = 0.0
    raw_s: float = 0.0
    raw_per_s: float = 0.0
    startup_s: float = 0.0  # process spawn -> /health/ready
    first_commit_s: float = 0.0  # ready -> first committed offset seen
    elapsed_s: float = 0.0  # ready -> every offset committed
    committed: int = 0
    complete: bool = False
    per_s: float = 0.0  # records / elapsed_s
    steady_per_s: float = 0.0  # records committed after the first commit / time since it
    calls: int = 0  # response events
    calls_per_s: float = 0.0
    distinct_events: int = 0
    records_in_events: int = 0
    delivered_events: int = 0
    dead_letters: int = 0
    sandbox_requests: int = 0
    peak_rss_mb: float = 0.0
    ready_rss_mb: float = 0.0
    worker_cpu_s: float = 0.0
    sandbox_cpu_s: float = 0.0
    broker_cpu_s: float = 0.0
    bench_cpu_s: float = 0.0  # this process's own CPU during the drain (polling, sampling)
    machine_busy: float = 0.0  # share of all cores busy during the drain
    cpu_steal: float = 0.0  # share of the cores' time the hypervisor gave to other guests
    load_before: float = 0.0
    ratio: float = 0.0  # per_s / raw_per_s
    target: float = 0.0
    unit: str = ""
    target_met: bool = False
    rss_ok: bool = False
    problems: list[str] = field(default_factory=list)


def fmt_int(x: float) -> str:
    return f"{x:,.0f}"


def table(results: list[Result]) -> str:
    head = (f"{'scenario':<10} {'records':>9} {'produce':>8} {'ready':>6} {'1st cmt':>7} {'drain':>7} "
            f"{'rate':>16} {'steady':>8} {'calls':>8} {'rec/call':>8} {'peak RSS':>9} {'raw aiokafka':>13} "
            f"{'ratio':>6}  target")
    lines = [head]
    for r in results:
        rate = r.calls_per_s if r.scenario == "unbatched" else r.per_s
        steady = r.steady_per_s * (r.calls / r.records if r.scenario == "unbatched" and r.records else 1)
        verdict = "ok" if r.target_met and r.rss_ok and r.complete else "MISSED"
        lines.append(
            f"{r.scenario:<10} {fmt_int(r.records):>9} {r.produce_s:>7.1f}s {r.startup_s:>5.1f}s "
            f"{r.first_commit_s:>6.1f}s {r.elapsed_s:>6.1f}s {fmt_int(rate):>6} {r.unit:<9} {fmt_int(steady):>8} "
            f"{fmt_int(r.calls):>8} {r.records_in_events / r.calls if r.calls else 0:>8.1f} "
            f"{r.peak_rss_mb:>6.0f} MB {fmt_int(r.raw_per_s):>11}/s {r.ratio:>6.1%}  "
            f">= {fmt_int(r.target)} {r.unit}, < {RSS_LIMIT_MB:.0f} MB: {verdict}"
        )
    return "\n".join(lines)


def details(r: Result) -> str:
    per_k = 1000 / r.records if r.records else 0
    return (
        f"  {r.scenario}: {r.endpoint} ({r.batching}; max_in_flight {r.max_in_flight}); "
        f"{r.partitions} partitions, {fmt_int(r.keys)} keys, values {r.value_bytes:.0f} B\n"
        f"    produced {fmt_int(r.records)} in {r.produce_s:.1f} s ({fmt_int(r.produce_per_s)}/s); raw aiokafka "
        f"read them in {r.raw_s:.2f} s\n"
        f"    committed {fmt_int(r.committed)}/{fmt_int(r.records)}; events {fmt_int(r.calls)} "
        f"({fmt_int(r.distinct_events)} distinct, {fmt_int(r.delivered_events)} delivered) carrying "
        f"{fmt_int(r.records_in_events)} records; sandbox answered {fmt_int(r.sandbox_requests)} requests; "
        f"dead letters {r.dead_letters}\n"
        f"    CPU during the drain: worker {r.worker_cpu_s:.1f} s ({r.worker_cpu_s * per_k * 1000:.0f} ms per 1k "
        f"records), sandbox {r.sandbox_cpu_s:.1f} s, broker {r.broker_cpu_s:.1f} s, this benchmark "
        f"{r.bench_cpu_s:.1f} s; machine {r.machine_busy:.0%} "
        f"busy, {r.cpu_steal:.0%} stolen; load before {r.load_before:.2f}; RSS at ready {r.ready_rss_mb:.0f} MB, "
        f"peak {r.peak_rss_mb:.0f} MB"
        + "".join(f"\n    problem: {p}" for p in r.problems)
    )


# --------------------------------------------------------------------------------------------------
# Kafka side


async def create_topic(bootstrap: str, topic: str, partitions: int) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, partitions, 1)])
    finally:
        await admin.close()


def key_partitions(keys: list[bytes], partitions: int) -> dict[int, list[int]]:
    """Key indexes per partition, as the default (murmur2) partitioner places them."""
    choose = DefaultPartitioner()
    every = list(range(partitions))
    out: dict[int, list[int]] = {p: [] for p in every}
    for k, key in enumerate(keys):
        out[choose(key, every, every)].append(k)
    return out


async def produce_backlog(
    bootstrap: str, topic: str, n: int, keys: list[bytes], value_of: Callable[[int, int], bytes]
) -> tuple[float, int]:
    """Record ``i`` has key ``keys[i % len(keys)]``; one batch builder per partition. (seconds, bytes)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", max_batch_size=1024 * 1024,
                                max_request_size=8 * 1024 * 1024, request_timeout_ms=60_000)
    await producer.start()
    placed = key_partitions(keys, PARTITIONS)
    total_bytes = 0
    rounds = math.ceil(n / len(keys))

    def indexes(p: int) -> Iterator[tuple[int, int]]:
        for c in range(rounds):
            base = c * len(keys)
            for k in placed[p]:
                if base + k >= n:
                    return
                yield base + k, k

    async def fill(p: int) -> None:
        nonlocal total_bytes
        pending = []
        batch = producer.create_batch()
        for i, k in indexes(p):
            value = value_of(i, k)
            total_bytes += len(value)
            if batch.append(key=keys[k], value=value, timestamp=None) is None:
                pending.append(await producer.send_batch(batch, topic, partition=p))
                batch = producer.create_batch()
                batch.append(key=keys[k], value=value, timestamp=None)
        if batch.record_count():
            pending.append(await producer.send_batch(batch, topic, partition=p))
        await asyncio.gather(*pending)

    started = time.perf_counter()
    try:
        await asyncio.gather(*(fill(p) for p in range(PARTITIONS)))
    finally:
        await producer.stop()
    return time.perf_counter() - started, total_bytes


def consumer(bootstrap: str) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                            auto_offset_reset="earliest", isolation_level="read_committed", **FETCH)


async def raw_consume(bootstrap: str, topic: str, n: int, timeout: float) -> float:
    """Seconds raw aiokafka takes to fetch and ``orjson.loads`` the topic's first ``n`` records."""
    c = consumer(bootstrap)
    await c.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        c.assign(tps)
        await c.seek_to_beginning(*tps)
        loads = orjson.loads
        count = 0
        started = time.perf_counter()
        deadline = started + timeout
        while count < n and time.perf_counter() < deadline:
            fetched = await c.getmany(timeout_ms=500, max_records=MAX_RECORDS)
            for messages in fetched.values():
                for message in messages:
                    loads(message.value)
                count += len(messages)
        elapsed = time.perf_counter() - started
    finally:
        await c.stop()
    if count < n:
        raise RuntimeError(f"raw aiokafka read only {count} of {n} records within {timeout:.0f} s")
    return elapsed


async def read_all(bootstrap: str, topic: str, each: Callable[[bytes], None], timeout: float = 300.0) -> int:
    """Apply ``each`` to every record value of ``topic`` (up to its end offsets now); the count."""
    parts = (await existing_partitions(KafkaSettings(bootstrap_servers=bootstrap), [topic])).get(topic, [])
    if not parts:
        return 0
    c = consumer(bootstrap)
    await c.start()
    try:
        tps = [TopicPartition(topic, p) for p in parts]
        c.assign(tps)
        starts = await c.beginning_offsets(tps)
        ends = await c.end_offsets(tps)
        count = 0
        async for message in read_ranges(c, {tp: (starts[tp], ends[tp]) for tp in tps}, time.monotonic() + timeout):
            each(message.value)
            count += 1
        return count
    finally:
        await c.stop()


async def committed(admin: AIOKafkaAdminClient, group: str, topic: str) -> int:
    offsets = await admin.list_consumer_group_offsets(group)
    return sum(max(0, om.offset) for tp, om in offsets.items() if tp.topic == topic)


# --------------------------------------------------------------------------------------------------
# Sandbox side


def sandbox_client(sandbox_url: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=sandbox_url, auth=(USER, API_KEY), headers={"Host": f"{DOMAIN}.gorgias.com"},
                             timeout=30)


async def create_tickets(sandbox_url: str, count: int) -> list[int]:
    """``count`` tickets created through the sandbox's Gorgias API, 16 requests at a time."""
    ids: list[int] = [0] * count
    next_index = iter(range(count))
    async with sandbox_client(sandbox_url) as client:

        async def loop() -> None:
            for i in next_index:
                email = f"owner{i}@bench.example"
                r = await client.post("/api/tickets", json={
                    "channel": "api", "via": "api", "from_agent": False, "subject": f"Bench ticket {i}",
                    "customer": {"email": email},
                    "messages": [{"channel": "api", "via": "api", "from_agent": False, "sender": {"email": email},
                                  "body_text": "Custom fields will be written here."}],
                })
                r.raise_for_status()
                ids[i] = r.json()["id"]

        await asyncio.gather(*(loop() for _ in range(16)))
    return ids


def admin_call(sandbox_url: str, method: str, path: str) -> Any:
    r = httpx.request(method, f"{sandbox_url}/__admin/{path}", timeout=30)
    r.raise_for_status()
    return r.json()


# --------------------------------------------------------------------------------------------------
# Scenario definitions


@dataclass
class Plan:
    """Records, keys and the destination settings of one scenario."""

    name: str
    records: int
    keys: list[bytes]
    value_of: Callable[[int, int], bytes]
    endpoint: dict[str, Any]
    batching: dict[str, Any]
    label: str


def unbatched_plan(records: int, key_count: int) -> Plan:
    keys = [f"customer-{k}".encode() for k in range(key_count)]

    def value_of(i: int, k: int) -> bytes:
        email = f"customer{k}@bench.example"
        return orjson.dumps({
            "channel": "api", "via": "api", "from_agent": False, "subject": f"Order #{100000 + i}",
            "external_id": f"bench-{i}", "customer": {"email": email},
            "messages": [{"channel": "api", "via": "api", "from_agent": False, "sender": {"email": email},
                          "body_text": f"Hello, where is my order #{100000 + i}? Thanks."}],
        })

    return Plan("unbatched", records, keys, value_of,
                {"method": "POST", "url": "https://{domain}.gorgias.com/api/tickets"},
                {"enabled": False}, "off")


def batched_plan(records: int, algorithm: str, tickets: list[int], key_count: int, batch_size: int,
                 max_wait_ms: int) -> Plan:
    if algorithm == "by_attribute":
        keys = [str(t).encode() for t in tickets]

        def by_ticket(i: int, k: int) -> bytes:
            return orjson.dumps({"ticket_id": tickets[k], "id": 1 + i % 2, "value": f"value {i}"})

        return Plan("batched", records, keys, by_ticket,
                    {"method": "PUT", "url": "https://{domain}.gorgias.com/api/tickets/{ticket_id}/custom-fields",
                     "exclude_attributes": ["ticket_id"]},
                    {"enabled": True, "algorithm": "by_attribute", "attributes": ["ticket_id"],
                     "batch_size": batch_size, "max_wait_ms": max_wait_ms},
                    f"by_attribute [ticket_id], batch_size {batch_size}, max_wait_ms {max_wait_ms}")
    keys = [f"source-{k}".encode() for k in range(key_count)]

    def definition(i: int, k: int) -> bytes:
        return orjson.dumps({"id": 1 + i % 2, "label": f"Label {i}"})

    return Plan("batched", records, keys, definition,
                {"method": "PUT", "url": "https://{domain}.gorgias.com/api/custom-fields"},
                {"enabled": True, "algorithm": "arrival_order", "batch_size": batch_size, "max_wait_ms": max_wait_ms},
                f"arrival_order, batch_size {batch_size}, max_wait_ms {max_wait_ms}")


def worker_config(plan: Plan, bootstrap: str, sandbox_url: str, run: str, web_port: int,
                  args: argparse.Namespace) -> dict[str, Any]:
    delivery: dict[str, Any] = {"max_in_flight": args.max_in_flight}
    if args.max_pending_records is not None:
        delivery["max_pending_records"] = args.max_pending_records
    return {
        "kafka": {"bootstrap_servers": bootstrap, "group_id": f"bench-{run}", "control_topic": f"bench-control-{run}"},
        "worker": {"web_host": HOST, "web_port": web_port, "shutdown_grace_s": 10, "log_level": args.log_level},
        "destinations": [{
            "name": plan.name,
            "source_topics": [f"bench-src-{run}"],
            "credential": {"domain": DOMAIN, "username": USER, "api_key_env": "GORGIAS_API_KEY",
                           "base_url": sandbox_url, "rate_limit": {"enabled": False}},
            "endpoint": plan.endpoint,
            "batching": plan.batching,
            "delivery": delivery,
            "response_webhook": {"enabled": True, "topic": f"bench-responses-{run}"},
            "dead_letter_topic": f"bench-dead-letters-{run}",
        }],
    }


# --------------------------------------------------------------------------------------------------
# Measuring a worker process


def tree_rss(proc: psutil.Process) -> int:
    total = 0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total


def tree_cpu(pid: int | None) -> float:
    if pid is None:
        return 0.0
    try:
        proc = psutil.Process(pid)
        total = 0.0
        for p in [proc, *proc.children(recursive=True)]:
            try:
                t = p.cpu_times()
                total += t.user + t.system
            except psutil.Error:
                pass
        return total
    except psutil.Error:
        return 0.0


async def wait_ready(url: str, proc: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(timeout=1) as client:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"the worker exited with status {proc.returncode} before it was ready")
            try:
                if (await client.get(url)).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.05)
    raise RuntimeError(f"the worker was not ready within {timeout:.0f} s")


async def run_scenario(plan: Plan, env: Env, args: argparse.Namespace) -> Result:
    sup = env.support
    run = uuid.uuid4().hex[:8]
    topic = f"bench-src-{run}"
    result = Result(plan.name, plan.records, PARTITIONS, len(plan.keys), f"{plan.endpoint['method']} "
                    f"{plan.endpoint['url'].split('.com', 1)[1]}", plan.label, args.max_in_flight,
                    target=TARGETS[plan.name], unit=UNITS[plan.name])
    say = env.say

    await create_topic(env.bootstrap, topic, PARTITIONS)
    say(f"[{plan.name}] producing {fmt_int(plan.records)} records to {topic} ({PARTITIONS} partitions, "
        f"{fmt_int(len(plan.keys))} keys)...")
    result.produce_s, size = await produce_backlog(env.bootstrap, topic, plan.records, plan.keys, plan.value_of)
    result.value_bytes = size / plan.records
    result.produce_per_s = plan.records / result.produce_s
    say(f"[{plan.name}] produced in {result.produce_s:.1f} s ({fmt_int(result.produce_per_s)} records/s); "
        "raw aiokafka baseline...")
    result.raw_s = await raw_consume(env.bootstrap, topic, plan.records, timeout=120 + plan.records / 20_000)
    result.raw_per_s = plan.records / result.raw_s
    say(f"[{plan.name}] raw aiokafka getmany() + orjson.loads: {fmt_int(result.raw_per_s)} records/s")

    web_port = sup.broker.free_port()
    doc = worker_config(plan, env.bootstrap, env.sandbox.url, run, web_port, args)
    config_path = Path(tempfile.mkstemp(prefix="bench-worker-", suffix=".yaml")[1])
    config_path.write_text(yaml.safe_dump(doc, sort_keys=False))
    group = f"bench-{run}.{plan.name}"
    worker = sup.processes.WorkerProcess(config_path, web_port, env={"GORGIAS_API_KEY": API_KEY})
    env.worker = worker
    result.load_before = os.getloadavg()[0]
    admin = AIOKafkaAdminClient(bootstrap_servers=env.bootstrap)
    await admin.start()
    try:
        requests0 = admin_call(env.sandbox.url, "GET", "counters")["total"]
        spawned = time.perf_counter()
        worker.start(wait_ready=False)
        proc = psutil.Process(worker.proc.pid)
        await wait_ready(f"{worker.url}/health/ready", worker.proc, timeout=90)
        ready = time.perf_counter()
        result.startup_s = ready - spawned
        result.ready_rss_mb = result.peak_rss_mb = tree_rss(proc) / 2**20
        cpu0 = (tree_cpu(proc.pid), tree_cpu(env.sandbox.proc.pid), tree_cpu(env.broker_pid), psutil.cpu_times())
        own0 = time.process_time()
        say(f"[{plan.name}] worker ready after {result.startup_s:.1f} s (RSS {result.ready_rss_mb:.0f} MB); "
            "draining...")
        limit = args.timeout or max(120.0, plan.records / (result.target * 0.25 if plan.name == "batched" else 250))
        first: tuple[float, int] | None = None
        done = 0
        last_report = ready
        while True:
            await asyncio.sleep(POLL_S)
            now = time.perf_counter()
            result.peak_rss_mb = max(result.peak_rss_mb, tree_rss(proc) / 2**20)
            done = await committed(admin, group, topic)
            now = time.perf_counter()
            if done and first is None:
                first = (now, done)
                result.first_commit_s = now - ready
            if done >= plan.records:
                break
            if worker.proc.poll() is not None:
                result.problems.append(f"the worker exited with status {worker.proc.returncode} "
                                       f"(log {worker.log})")
                break
            if now - ready > limit:
                result.problems.append(f"not finished after {limit:.0f} s")
                break
            if now - last_report >= 10:
                last_report = now
                say(f"[{plan.name}]   {now - ready:5.0f} s: {fmt_int(done)} committed "
                    f"({fmt_int(done / (now - ready))}/s), RSS {tree_rss(proc) / 2**20:.0f} MB")
        end = time.perf_counter()
        result.bench_cpu_s = time.process_time() - own0
        cpu1 = (tree_cpu(proc.pid), tree_cpu(env.sandbox.proc.pid), tree_cpu(env.broker_pid), psutil.cpu_times())
        result.worker_cpu_s, result.sandbox_cpu_s, result.broker_cpu_s = (cpu1[i] - cpu0[i] for i in range(3))
        t0, t1 = cpu0[3], cpu1[3]
        busy = sum(t1) - sum(t0)
        idle = (t1.idle - t0.idle) + (t1.iowait - t0.iowait)
        stolen = getattr(t1, "steal", 0.0) - getattr(t0, "steal", 0.0)
        result.machine_busy = 1 - (idle + stolen) / busy if busy else 0.0
        result.cpu_steal = stolen / busy if busy else 0.0
        result.sandbox_requests = admin_call(env.sandbox.url, "GET", "counters")["total"] - requests0
        result.committed = done
        result.complete = done >= plan.records
        result.elapsed_s = end - ready
        result.per_s = done / result.elapsed_s
        if first is not None and end > first[0]:
            result.steady_per_s = (done - first[1]) / (end - first[0])
    finally:
        await admin.close()
        await asyncio.to_thread(worker.stop)
        env.worker = None
        if worker.proc is not None and worker.proc.returncode not in (0, None):
            result.problems.append(f"the worker stopped with status {worker.proc.returncode} (log {worker.log})")
        elif not result.problems:
            worker.log.unlink(missing_ok=True)
        config_path.unlink(missing_ok=True)

    await check_outcomes(result, env.bootstrap, doc["destinations"][0])
    result.calls_per_s = result.calls / result.elapsed_s if result.elapsed_s else 0.0
    rate = result.calls_per_s if plan.name == "unbatched" else result.per_s
    result.ratio = result.per_s / result.raw_per_s if result.raw_per_s else 0.0
    result.target_met = result.complete and rate >= result.target
    result.rss_ok = result.peak_rss_mb < RSS_LIMIT_MB
    return result


async def check_outcomes(result: Result, bootstrap: str, dest: dict[str, Any]) -> None:
    """One response event per call, their record counts adding up, and no dead letters."""
    event_ids: set[str] = set()
    counts = {"records": 0, "delivered": 0}

    def each(value: bytes) -> None:
        event = orjson.loads(value)
        event_ids.add(event["event_id"])
        counts["records"] += event["record_count"]
        counts["delivered"] += event["outcome"] == "delivered"

    result.calls = await read_all(bootstrap, dest["response_webhook"]["topic"], each)
    result.distinct_events = len(event_ids)
    result.records_in_events = counts["records"]
    result.delivered_events = counts["delivered"]
    result.dead_letters = await read_all(bootstrap, dest["dead_letter_topic"], lambda _: None)
    if result.records_in_events != result.records:
        result.problems.append(f"the response events carry {result.records_in_events} records, not {result.records}")
    if result.distinct_events != result.calls:
        result.problems.append(f"{result.calls - result.distinct_events} duplicate response event(s)")
    if result.delivered_events != result.calls:
        result.problems.append(f"{result.calls - result.delivered_events} call(s) not delivered")
    if result.sandbox_requests != result.calls:
        result.problems.append(f"the sandbox answered {result.sandbox_requests} requests for {result.calls} events")
    if result.dead_letters:
        result.problems.append(f"{result.dead_letters} dead letter(s)")


# --------------------------------------------------------------------------------------------------
# Environment: broker, sandbox, cleanup


class Env:
    """The broker and the sandbox, started once for every scenario, and whatever worker is running."""

    def __init__(self, quiet: bool) -> None:
        self.support = support()
        self.quiet = quiet
        self.broker: Any = None
        self.bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "")
        self.broker_pid: int | None = None
        self.sandbox: Any = None
        self.worker: Any = None

    def say(self, text: str) -> None:
        if not self.quiet:
            print(text, flush=True)

    def start(self) -> None:
        if not self.bootstrap:
            started = time.perf_counter()
            self.broker = self.support.broker.LocalBroker(sasl=False)
            self.broker.start(timeout=120)
            self.bootstrap = self.broker.bootstrap
            self.broker_pid = self.broker.proc.pid  # kafka.sh execs java: the same process
            self.say(f"Kafka 4.3.1 broker on {self.bootstrap} (started in {time.perf_counter() - started:.1f} s)")
        else:
            self.say(f"using the broker at {self.bootstrap} (KAFKA_BOOTSTRAP_SERVERS)")
        self.sandbox = self.support.processes.SandboxProcess(rate_limit="off").start()
        self.say(f"sandbox on {self.sandbox.url} (rate limit off)")

    def stop(self) -> None:
        for thing in (self.worker, self.sandbox, self.broker):
            if thing is not None:
                try:
                    thing.stop()
                except Exception as exc:  # keep cleaning up the rest
                    print(f"cleanup: {type(thing).__name__}: {exc}", file=sys.stderr)
        if self.sandbox is not None:
            self.sandbox.log.unlink(missing_ok=True)
        self.worker = self.sandbox = self.broker = None


def revision() -> str:
    """The commit the worker ran from, with ``+changes`` when ``worker/`` has uncommitted edits."""
    import subprocess

    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "worker"], cwd=ROOT, capture_output=True,
                               text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return (head or "unknown") + ("+changes" if dirty else "")


def machine() -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"nproc": os.cpu_count(), "cpu_model": model, "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
            "python": sys.version.split()[0], "loadavg": os.getloadavg(), "revision": revision()}


async def run_all(env: Env, args: argparse.Namespace) -> list[Result]:
    names = ["unbatched", "batched"] if args.scenario == "all" else [args.scenario]
    results = []
    for name in names:
        env.sandbox.reset()
        if name == "unbatched":
            plan = unbatched_plan(args.records, args.keys)
        else:
            tickets: list[int] = []
            if args.batching == "by_attribute":
                started = time.perf_counter()
                tickets = await create_tickets(env.sandbox.url, args.keys)
                env.say(f"[batched] created {len(tickets)} tickets through the sandbox API in "
                        f"{time.perf_counter() - started:.1f} s")
            plan = batched_plan(args.backlog, args.batching, tickets, args.keys, args.batch_size, args.max_wait_ms)
        result = await run_scenario(plan, env, args)
        results.append(result)
        env.say(details(result))
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenario", choices=("unbatched", "batched", "all"), default="all")
    parser.add_argument("--records", type=int, default=50_000, help="backlog of the unbatched scenario")
    parser.add_argument("--backlog", type=int, default=200_000,
                        help="backlog of the batched scenario (1000000 for the memory run)")
    parser.add_argument("--batching", choices=("by_attribute", "arrival_order"), default="by_attribute")
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--keys", type=int, default=1000, help="distinct Kafka keys (tickets when by_attribute)")
    parser.add_argument("--max-in-flight", type=int, default=64, help="delivery.max_in_flight")
    parser.add_argument("--max-wait-ms", type=int, default=2000, help="batching.max_wait_ms (batched scenario)")
    parser.add_argument("--max-pending-records", type=int, default=None,
                        help="delivery.max_pending_records (default: the worker's, 20000)")
    parser.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    parser.add_argument("--timeout", type=float, default=None,
                        help="longest drain per scenario in seconds (default: from the backlog and target)")
    parser.add_argument("--json", metavar="FILE", help="also write the results (and the machine) as JSON here")
    parser.add_argument("--quiet", action="store_true", help="print only the table")
    args = parser.parse_args(argv)
    if min(args.records, args.backlog, args.keys, args.batch_size) < 1:
        parser.error("--records, --backlog, --keys and --batch-size must be >= 1")

    def on_term(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    env = Env(args.quiet)
    info = machine()
    env.say(f"{info['nproc']} cores ({info['cpu_model']}), load average {info['loadavg'][0]:.2f}; "
            f"Python {info['python']}; worker at {info['revision']}")
    results: list[Result] = []
    try:
        env.start()
        results = asyncio.run(run_all(env, args))
    except KeyboardInterrupt:
        print("interrupted; stopping the worker, the sandbox and the broker", file=sys.stderr)
        return 130
    finally:
        env.stop()
    print(table(results))
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": info, "argv": sys.argv[1:],
                                               "results": [asdict(r) for r in results]}, indent=2))
    ok = all(r.complete and r.target_met and r.rss_ok and not r.problems for r in results)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
