"""Ours beside the peer: the worker and Kafka Connect's HTTP sink on the same records, broker and sandbox.

The peer is Apache Kafka Connect 4.3.1 in standalone mode with the clescot HTTP sink connector
(``io.github.clescot:kafka-connect-http-connectors`` 0.8.84), its jars resolved from Maven Central through
``bench/peer/pom.xml`` (see that file and docs/benchmarks.md for the missing parent pom and the small
``bench/peer/shim`` that stands in for two Confluent classes). Both sides run as real processes against one
broker (``tests.support.broker.LocalBroker`` or ``KAFKA_BOOTSTRAP_SERVERS``) and one Gorgias sandbox with
its rate limit off, one run at a time, alternating, on the same records (each run gets a fresh 4-partition
topic with the same content, and a freshly reset sandbox):

* ``unbatched`` - 50,000 ``POST /api/tickets``, one record per call (pipeline_bench's ticket creates);
* ``batched``   - 200,000 ``PUT /api/custom-fields`` definitions, 100 records per call (pipeline_bench's
  ``arrival_order`` plan: ours ``batch_size`` 100; the peer's request grouper, ``message.limit`` 100, body
  ``[`` + records joined by ``,`` + ``]``);
* ``latency``   - ticket creates produced at 50 records/s for ``--latency-seconds``; latency is the
  sandbox's ``created_datetime`` of each ticket minus the wall time the benchmark produced its record.

Sides: ``ours`` (``gorgias-worker run``, a response event per call on the response topic), ``ours-noresp``
(the response topic off), ``peer`` (``publish.mode`` NONE: nothing written per call) and ``peer-publish``
(``publish.mode`` IN_MEMORY_QUEUE with the connector's ``HttpInMemoryQueueSourceConnector`` writing every
HTTP exchange to a topic - the connector's ``PRODUCER`` mode fails in 0.8.84 with a NullPointerException).

Per run: records/s and calls/s between the first and the last call the sandbox answered; the CPU-seconds of
the process (``/proc/<pid>/stat`` utime + stime, children included: the worker, or the Connect JVM) from
ready (``/health/ready``; every connector task RUNNING) until every offset is committed and, with a response
topic, every response is in it; CPU per 1,000 calls; peak RSS (the larger of ``VmHWM`` and the sampled RSS);
and every call's status (all must be 2xx; unbatched, one call per record; batched, at least records /
batch size calls; ours, no dead letters; the peer, no ERROR in its log, which is then kept). The summary
gives the median of the rounds with their range, and ours ÷ the peer.

    .venv/bin/python bench/peer_bench.py                        # 3 rounds x 3 scenarios x 4 sides
    .venv/bin/python bench/peer_bench.py --rounds 1 --records 2000 --backlog 10000 --latency-seconds 5
    .venv/bin/python bench/peer_bench.py --scenario unbatched --sides ours,peer --json out.json

Every step has a time limit; the broker, the sandbox, the worker and Connect are stopped when the benchmark
ends, also on Ctrl-C or SIGTERM. Exit status 1 when a run did not finish or a call failed.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
import zipfile
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import psutil
import yaml
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

BENCH = Path(__file__).resolve().parent
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))
import pipeline_bench as pipeline  # noqa: E402  (the shared pieces: records, topics, sandbox, measuring)

ROOT = BENCH.parent
PEER = BENCH / "peer"
CACHE = ROOT / ".cache" / "peer"
CLESCOT = ("io.github.clescot", ("kafka-connect-http-connectors", "kafka-connect-http-core"), "0.8.84")
# The JVM options Kafka's own scripts give Connect (connect-standalone.sh, kafka-run-class.sh).
JVM_OPTS = ["-Xms256M", "-Xmx2G", "-server", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20",
            "-XX:InitiatingHeapOccupancyPercent=35", "-XX:+ExplicitGCInvokesConcurrent", "-Djava.awt.headless=true",
            "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn"]
SIDES = ("ours", "ours-noresp", "peer", "peer-publish")
SCENARIOS = ("unbatched", "batched", "latency")
WHAT = {
    "ours": "gorgias-worker run; per call: a response event produced (acks=all) before the offset commit",
    "ours-noresp": "gorgias-worker run, response_webhook.enabled false; per call: nothing written",
    "peer": "Connect + clescot sink, publish.mode NONE; per call: nothing written",
    "peer-publish": "Connect + clescot sink, publish.mode IN_MEMORY_QUEUE + HttpInMemoryQueueSourceConnector; "
                    "per call: the HTTP exchange (request with its headers, response) as JSON to a topic, "
                    "after the offset commit",
}
POLL_S = 0.25
MAX_IN_FLIGHT = 64


# --------------------------------------------------------------------------------------------------
# The peer's jars and processes


def mvn(*args: str) -> None:
    done = subprocess.run(["mvn", "-q", "-B", *args], capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        tail = (done.stdout + done.stderr).strip().splitlines()[-5:]
        raise RuntimeError("mvn " + " ".join(args[:3]) + " failed: " + " / ".join(tail))


def connect_classpath(say: Any) -> str:
    """Kafka Connect 4.3.1 and the clescot sink's dependencies (Maven, cached), its own jars and the shim."""
    CACHE.mkdir(parents=True, exist_ok=True)
    cp_file = CACHE / "classpath.txt"
    pom = PEER / "pom.xml"
    stale = (not cp_file.exists() or cp_file.stat().st_mtime < pom.stat().st_mtime
             or not all(Path(p).is_file() for p in cp_file.read_text().strip().split(":")))
    if stale:
        say("resolving Kafka Connect 4.3.1 and the HTTP sink's dependencies with Maven (first run only)...")
        tmp = cp_file.with_suffix(".tmp")
        mvn("-f", str(pom), "dependency:build-classpath", f"-Dmdep.outputFile={tmp}")
        tmp.replace(cp_file)
    classpath = cp_file.read_text().strip()
    jars = CACHE / "jars"
    group, artifacts, version = CLESCOT
    for artifact in artifacts:
        if not (jars / f"{artifact}-{version}.jar").is_file():
            say(f"copying {group}:{artifact}:{version} from Maven Central (the jar alone: its parent pom is not there)")
            mvn("dependency:copy", f"-Dartifact={group}:{artifact}:{version}:jar", f"-DoutputDirectory={jars}")
    return ":".join([classpath, *(str(jars / f"{a}-{version}.jar") for a in artifacts), str(shim_jar(classpath))])


def shim_jar(classpath: str) -> Path:
    """bench/peer/shim compiled (javac) into a jar, rebuilt when a source is newer."""
    sources = sorted((PEER / "shim").rglob("*.java"))
    jar = CACHE / "confluent-shim.jar"
    if jar.exists() and all(s.stat().st_mtime <= jar.stat().st_mtime for s in sources):
        return jar
    classes = Path(tempfile.mkdtemp(prefix="peer-shim-"))
    try:
        done = subprocess.run(["javac", "-nowarn", "-d", str(classes), "-cp", classpath, *map(str, sources)],
                              capture_output=True, text=True, timeout=300)
        if done.returncode != 0:
            raise RuntimeError(f"javac of bench/peer/shim failed: {done.stderr.strip()[-500:]}")
        with zipfile.ZipFile(jar, "w") as out:
            for path in sorted(classes.rglob("*.class")):
                out.write(path, path.relative_to(classes).as_posix())
    finally:
        shutil.rmtree(classes, ignore_errors=True)
    return jar


def properties(values: dict[str, str]) -> str:
    return "".join(f"{k}={v}\n" for k, v in values.items())


def sink_settings(kind: str, sandbox_url: str, topic: str, name: str, publish: bool,
                  batch_size: int) -> dict[str, str]:
    """The clescot sink configured to make the same calls as our destination (JEXL request mapper)."""
    auth = base64.b64encode(f"{pipeline.USER}:{pipeline.API_KEY}".encode()).decode()
    headers = (f"{{'Host':['{pipeline.DOMAIN}.gorgias.com',...],'Authorization':['Basic {auth}',...],"
               "'Content-Type':['application/json',...]}")  # [..., ...] is a JEXL list literal
    path, method = ("/api/custom-fields", "PUT") if kind == "batched" else ("/api/tickets", "POST")
    settings = {
        "name": name,
        "connector.class": "io.github.clescot.kafka.connect.http.sink.HttpSinkConnector",
        "tasks.max": "1",
        "topics": topic,
        "http.request.mapper.default.mode": "JEXL",
        "http.request.mapper.default.url": f"'{sandbox_url}{path}'",
        "http.request.mapper.default.method": f"'{method}'",
        "http.request.mapper.default.body": "sinkRecord.value()",
        "http.request.mapper.default.headers": headers,
        # keep-alive connections and up to MAX_IN_FLIGHT calls at once, like ours (the defaults: no pool, 5)
        "config.default.okhttp.connection.pool.max.idle.connections": str(MAX_IN_FLIGHT),
        "config.default.okhttp.connection.pool.keep.alive.duration": "60000",
        "config.default.okhttp.dispatcher.max.requests": str(MAX_IN_FLIGHT),
        "config.default.okhttp.dispatcher.max.requests.per.host": str(MAX_IN_FLIGHT),
        "config.default.okhttp.interceptor.logging.activate": "false",
        "publish.mode": "IN_MEMORY_QUEUE" if publish else "NONE",
    }
    if kind == "batched":
        settings.update({"request.grouper.ids": "batch", "request.grouper.batch.message.limit": str(batch_size),
                         "request.grouper.batch.start": "[", "request.grouper.batch.separator": ",",
                         "request.grouper.batch.end": "]"})
    return settings


class ConnectProcess:
    """Kafka Connect standalone (one JVM) running the sink, and with ``publish`` the queue's source connector."""

    def __init__(self, classpath: str, bootstrap: str, sandbox_url: str, kind: str, run: str, publish: bool,
                 batch_size: int) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="bench-connect-"))
        self.rest = f"http://127.0.0.1:{pipeline.support().broker.free_port()}"
        self.classpath = classpath
        self.topic = f"bench-src-{run}"
        self.sink = f"peer-{run}"
        self.group = f"connect-{self.sink}"
        self.response_topic = f"bench-peer-exchanges-{run}" if publish else None
        self.names = [self.sink]
        self.files = [self.dir / "worker.properties"]
        self.files[0].write_text(properties({
            "bootstrap.servers": bootstrap,
            "key.converter": "org.apache.kafka.connect.storage.StringConverter",
            "value.converter": "org.apache.kafka.connect.storage.StringConverter",
            "offset.storage.file.filename": str(self.dir / "offsets"),
            "offset.flush.interval.ms": "1000",  # default 60000; end-of-run detection reads the commits
            "listeners": self.rest,
            "plugin.discovery": "service_load",  # the jars carry their manifests: no 25 s class scan
        }))
        if self.response_topic is not None:
            source = self.dir / "source.properties"
            source.write_text(properties({
                "name": f"peer-exchanges-{run}",
                "connector.class": "io.github.clescot.kafka.connect.http.source.queue.HttpInMemoryQueueSourceConnector",
                "tasks.max": "1", "success.topic": self.response_topic, "error.topic": f"{self.response_topic}-errors",
                "value.converter": "org.apache.kafka.connect.json.JsonConverter",
                "value.converter.schemas.enable": "false",
            }))
            self.files.append(source)
            self.names.append(f"peer-exchanges-{run}")
        sink = self.dir / "sink.properties"
        sink.write_text(properties(sink_settings(kind, sandbox_url, self.topic, self.sink, publish, batch_size)))
        self.files.append(sink)
        self.log = self.dir / "connect.log"
        self.errors = 0
        self.kept_log: Path | None = None
        self.proc: subprocess.Popen[bytes] | None = None

    def spawn(self) -> None:
        java = str(Path(os.environ["JAVA_HOME"]) / "bin" / "java") if os.environ.get("JAVA_HOME") else "java"
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                [java, *JVM_OPTS, "-cp", self.classpath, "org.apache.kafka.connect.cli.ConnectStandalone",
                 *map(str, self.files)], stdout=out, stderr=subprocess.STDOUT, start_new_session=True)

    async def start(self, timeout: float) -> None:
        await asyncio.to_thread(self.spawn)
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(timeout=2) as client:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"Kafka Connect exited with {self.proc.returncode}: {self.tail()}")
                states = []
                for name in self.names:
                    try:
                        status = (await client.get(f"{self.rest}/connectors/{name}/status")).json()
                    except (httpx.HTTPError, ValueError):
                        break
                    for task in status.get("tasks", []):
                        if task.get("state") == "FAILED":
                            raise RuntimeError(f"connector {name} failed: {task.get('trace', '')[:400]}")
                        states.append(task.get("state"))
                if len(states) == len(self.names) and all(s == "RUNNING" for s in states):
                    return
                await asyncio.sleep(0.25)
        raise RuntimeError(f"Kafka Connect's tasks were not RUNNING within {timeout:.0f} s: {self.tail()}")

    def tail(self) -> str:
        lines = self.log.read_text(errors="replace").splitlines() if self.log.exists() else []
        return " / ".join(line for line in lines if "ERROR" in line or "Exception" in line)[-600:] or "(log empty)"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
            except ProcessLookupError:
                pass
        lines = self.log.read_text(errors="replace").splitlines() if self.log.exists() else []
        self.errors = sum(" ERROR " in line for line in lines)
        if self.errors:  # keep the log of a run where the sink reported failures
            self.kept_log = Path(tempfile.gettempdir()) / f"bench-{self.sink}-connect.log"
            shutil.copyfile(self.log, self.kept_log)
        shutil.rmtree(self.dir, ignore_errors=True)


class WorkerProcess:
    """``gorgias-worker run`` on pipeline_bench's destination for the plan, the response topic on or off."""

    def __init__(self, env: pipeline.Env, plan: pipeline.Plan, run: str, respond: bool) -> None:
        port = env.support.broker.free_port()
        options = argparse.Namespace(max_in_flight=MAX_IN_FLIGHT, max_pending_records=None, log_level="warning")
        doc = pipeline.worker_config(plan, env.bootstrap, env.sandbox.url, run, port, options)
        dest = doc["destinations"][0]
        dest["response_webhook"]["enabled"] = respond
        self.topic = dest["source_topics"][0]
        self.group = f"bench-{run}.{plan.name}"
        self.response_topic = dest["response_webhook"]["topic"] if respond else None
        self.dead_letter_topic = dest["dead_letter_topic"]
        self.config = Path(tempfile.mkstemp(prefix="bench-worker-", suffix=".yaml")[1])
        self.config.write_text(yaml.safe_dump(doc, sort_keys=False))
        self.worker = env.support.processes.WorkerProcess(self.config, port, env={"GORGIAS_API_KEY": pipeline.API_KEY})

    async def start(self, timeout: float) -> None:
        await asyncio.to_thread(self.worker.start, False)
        await pipeline.wait_ready(f"{self.worker.url}/health/ready", self.worker.proc, timeout)

    @property
    def pid(self) -> int:
        return int(self.worker.proc.pid)

    @property
    def proc(self) -> subprocess.Popen[bytes]:
        return self.worker.proc  # type: ignore[no-any-return]

    def tail(self) -> str:
        return str(self.worker.output())[-600:]

    def stop(self) -> None:
        self.worker.stop()
        self.config.unlink(missing_ok=True)
        if self.worker.proc is not None and self.worker.proc.returncode in (0, -signal.SIGTERM):
            self.worker.log.unlink(missing_ok=True)


# --------------------------------------------------------------------------------------------------
# Measuring


@dataclass
class Run:
    """What one run of one side measured."""

    scenario: str
    side: str
    round: int
    records: int
    calls: int = 0
    records_per_s: float = 0.0  # between the first and the last call the sandbox answered
    calls_per_s: float = 0.0
    cpu_s: float = 0.0  # the process, ready -> all committed (and every response written)
    cpu_ms_per_1k_calls: float = 0.0
    peak_rss_mb: float = 0.0
    ready_rss_mb: float = 0.0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    max_ms: float = 0.0
    responses: int = 0  # records on the side's response topic (0 without one)
    dead_letters: int = 0  # ours only: records on the dead-letter topic
    statuses: dict[str, int] = field(default_factory=dict)
    sandbox_cpu_s: float = 0.0
    broker_cpu_s: float = 0.0
    startup_s: float = 0.0
    elapsed_s: float = 0.0  # ready -> done
    load_before: float = 0.0
    machine_busy: float = 0.0
    problems: list[str] = field(default_factory=list)


def peak_rss(pid: int) -> float:
    """VmHWM of the process (its own peak resident set), MB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


async def topic_size(consumer: AIOKafkaConsumer, topic: str) -> int:
    """Records written to ``topic`` so far (the sum of its end offsets; 0 before it exists)."""
    parts = consumer.partitions_for_topic(topic)
    if not parts:
        await consumer._client.force_metadata_update()
        parts = consumer.partitions_for_topic(topic)
    if not parts:
        return 0
    ends = await consumer.end_offsets([TopicPartition(topic, p) for p in parts])
    return sum(ends.values())


async def dead_letters(bootstrap: str, topic: str) -> int:
    reader = pipeline.consumer(bootstrap)
    await reader.start()
    try:
        return await topic_size(reader, topic)
    finally:
        await reader.stop()


def sandbox_counters(env: pipeline.Env) -> dict[str, Any]:
    result: dict[str, Any] = pipeline.admin_call(env.sandbox.url, "GET", "counters")
    return result


def statuses(counters: dict[str, Any]) -> dict[str, int]:
    out: dict[str, int] = {}
    for route, by_status in counters.get("requests", {}).items():
        for status, n in by_status.items():
            out[f"{route} {status}"] = out.get(f"{route} {status}", 0) + int(n)
    return out


class Meter:
    """CPU of the side's process, the sandbox and the broker, and how busy the machine was, over a window."""

    def __init__(self, env: pipeline.Env, pid: int) -> None:
        self.env, self.pid = env, pid
        self.start = self.read()

    def read(self) -> tuple[float, float, float, Any]:
        return (pipeline.tree_cpu(self.pid), pipeline.tree_cpu(self.env.sandbox.proc.pid),
                pipeline.tree_cpu(self.env.broker_pid), psutil.cpu_times())

    def finish(self, run: Run) -> None:
        end = self.read()
        run.cpu_s, run.sandbox_cpu_s, run.broker_cpu_s = (end[i] - self.start[i] for i in range(3))
        t0, t1 = self.start[3], end[3]
        busy = sum(t1) - sum(t0)
        idle = (t1.idle - t0.idle) + (t1.iowait - t0.iowait) + (getattr(t1, "steal", 0) - getattr(t0, "steal", 0))
        run.machine_busy = 1 - idle / busy if busy else 0.0


async def drain(env: pipeline.Env, side: Any, run: Run, records: int, timeout: float) -> None:
    """Wait until the side has committed every offset (and written every response), measuring on the way."""
    proc = psutil.Process(side.pid)
    meter = Meter(env, side.pid)
    ready = time.perf_counter()
    admin = AIOKafkaAdminClient(bootstrap_servers=env.bootstrap)
    reader = pipeline.consumer(env.bootstrap)
    await admin.start()
    await reader.start()
    first: tuple[float, int] | None = None
    last: tuple[float, int] = (ready, 0)
    try:
        while True:
            await asyncio.sleep(POLL_S)
            now = time.perf_counter()
            total = int(sandbox_counters(env)["total"])
            if total > last[1]:
                last = (now, total)
                if first is None:
                    first = (now, total)
            run.peak_rss_mb = max(run.peak_rss_mb, pipeline.tree_rss(proc) / 2**20)
            done = await pipeline.committed(admin, side.group, side.topic)
            responses = await topic_size(reader, side.response_topic) if side.response_topic else 0
            if done >= records and total and (side.response_topic is None or responses >= total):
                run.responses = responses
                break
            if side.proc.poll() is not None:
                run.problems.append(f"the process exited with {side.proc.returncode}: {side.tail()}")
                break
            if now - ready > timeout:
                run.problems.append(f"not finished after {timeout:.0f} s ({done} of {records} committed, "
                                    f"{total} calls, {responses} responses)")
                break
    finally:
        await reader.stop()
        await admin.close()
    run.elapsed_s = time.perf_counter() - ready
    meter.finish(run)
    run.peak_rss_mb = max(run.peak_rss_mb, peak_rss(side.pid))
    run.calls = last[1]
    if first is not None and last[0] > first[0] and run.calls:
        run.calls_per_s = (last[1] - first[1]) / (last[0] - first[0])
        run.records_per_s = run.calls_per_s * records / run.calls
    elif run.calls:  # every call within one poll (a tiny run): ready -> done instead
        run.calls_per_s = run.calls / run.elapsed_s
        run.records_per_s = records / run.elapsed_s


async def paced(env: pipeline.Env, side: Any, run: Run, plan: pipeline.Plan, rate: float, seconds: float) -> None:
    """Ticket creates at ``rate`` records/s once the side answers; latency = stored in the sandbox - produced."""
    producer = AIOKafkaProducer(bootstrap_servers=env.bootstrap, acks="all", linger_ms=0)
    await producer.start()
    try:
        # warm-up: one record every 0.5 s until the side has joined its group and made a call
        deadline = time.monotonic() + 180
        warm = 0
        while int(sandbox_counters(env)["total"]) == 0:
            if time.monotonic() > deadline or side.proc.poll() is not None:
                run.problems.append(f"no call within 180 s of ready: {side.tail()}")
                return
            await producer.send(side.topic, plan.value_of(10_000_000 + warm, 0), key=plan.keys[0])
            warm += 1
            await asyncio.sleep(0.5)
        await asyncio.sleep(2)
        base = int(sandbox_counters(env)["total"])
        proc = psutil.Process(side.pid)
        meter = Meter(env, side.pid)
        n = int(rate * seconds)
        sent: dict[str, float] = {}
        started = time.perf_counter()
        for i in range(n):
            delay = started + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            k = i % len(plan.keys)
            sent[f"bench-{i}"] = time.time()
            await producer.send(side.topic, plan.value_of(i, k), key=plan.keys[k])
            if i % 50 == 0:
                run.peak_rss_mb = max(run.peak_rss_mb, pipeline.tree_rss(proc) / 2**20)
        await producer.flush()
        deadline = time.monotonic() + 60
        while int(sandbox_counters(env)["total"]) < base + n and time.monotonic() < deadline:
            await asyncio.sleep(POLL_S)
        run.elapsed_s = time.perf_counter() - started
        meter.finish(run)
        run.peak_rss_mb = max(run.peak_rss_mb, peak_rss(side.pid))
        run.calls = int(sandbox_counters(env)["total"]) - base
        state = pipeline.admin_call(env.sandbox.url, "GET", "state")
    finally:
        await producer.stop()
    latencies = sorted(
        (time_of(t["created_datetime"]) - sent[t["external_id"]]) * 1000
        for t in state["tickets"] if t.get("external_id") in sent
    )
    if len(latencies) < n:
        run.problems.append(f"{n - len(latencies)} of {n} records were not stored within 60 s")
    if latencies:
        run.p50_ms = percentile(latencies, 50)
        run.p99_ms = percentile(latencies, 99)
        run.max_ms = latencies[-1]
        run.calls_per_s = run.records_per_s = len(latencies) / run.elapsed_s


def time_of(stamp: str) -> float:
    return datetime.fromisoformat(stamp).timestamp()


def percentile(sorted_values: list[float], pct: float) -> float:
    index = min(len(sorted_values) - 1, max(0, round(pct / 100 * len(sorted_values)) - 1))
    return sorted_values[index]


# --------------------------------------------------------------------------------------------------
# Runs


def plan_for(scenario: str, args: argparse.Namespace) -> tuple[pipeline.Plan, int]:
    if scenario == "batched":
        plan = pipeline.batched_plan(args.backlog, "arrival_order", [], args.keys, args.batch_size, args.max_wait_ms)
        return plan, args.backlog
    return pipeline.unbatched_plan(args.records, args.keys), args.records


# complexity: a benchmark run read top to bottom: start, measure, stop, each part optional
async def one_run(env: pipeline.Env, scenario: str, side_name: str, rnd: int, classpath: str,  # noqa: C901
                  args: argparse.Namespace) -> Run:
    plan, records = plan_for(scenario, args)
    run_id = uuid.uuid4().hex[:8]
    run = Run(scenario, side_name, rnd, records if scenario != "latency" else int(args.rate * args.latency_seconds))
    env.sandbox.reset()
    side: Any
    if side_name.startswith("ours"):
        side = WorkerProcess(env, plan, run_id, respond=side_name == "ours")
    else:
        kind = "batched" if scenario == "batched" else "unbatched"
        side = ConnectProcess(classpath, env.bootstrap, env.sandbox.url, kind, run_id,
                              publish=side_name == "peer-publish", batch_size=args.batch_size)
    await pipeline.create_topic(env.bootstrap, side.topic, pipeline.PARTITIONS)
    if scenario != "latency":
        await pipeline.produce_backlog(env.bootstrap, side.topic, records, plan.keys, plan.value_of)
    run.load_before = os.getloadavg()[0]
    env.worker = side
    try:
        spawned = time.perf_counter()
        await side.start(timeout=240)
        run.startup_s = time.perf_counter() - spawned
        run.ready_rss_mb = run.peak_rss_mb = pipeline.tree_rss(psutil.Process(side.pid)) / 2**20
        if scenario == "latency":
            await paced(env, side, run, plan, args.rate, args.latency_seconds)
        else:
            limit = args.timeout or max(180.0, records / 100)
            await drain(env, side, run, records, limit)
    except RuntimeError as exc:
        run.problems.append(str(exc))
    finally:
        await asyncio.to_thread(side.stop)
        env.worker = None
    run.statuses = statuses(sandbox_counters(env))
    failed = {k: v for k, v in run.statuses.items() if not k.rsplit(" ", 1)[1].startswith("2")}
    if failed:
        run.problems.append(f"calls not 2xx: {failed}")
    if scenario == "unbatched" and run.calls != records and not run.problems:
        run.problems.append(f"{run.calls} calls for {records} records")
    if scenario == "batched" and run.calls < -(-records // args.batch_size) and not run.problems:
        run.problems.append(f"{run.calls} calls for {records} records in batches of at most {args.batch_size}: "
                            "records were dropped")
    if isinstance(side, ConnectProcess) and side.errors:
        run.problems.append(f"the sink logged {side.errors} ERROR line(s); log kept at {side.kept_log}")
    if isinstance(side, WorkerProcess):
        run.dead_letters = await dead_letters(env.bootstrap, side.dead_letter_topic)
        if run.dead_letters:
            run.problems.append(f"{run.dead_letters} dead letter(s)")
    if run.calls:
        run.cpu_ms_per_1k_calls = run.cpu_s / run.calls * 1e6
    return run


def line(run: Run) -> str:
    lat = f", p50 {run.p50_ms:.1f} ms, p99 {run.p99_ms:.1f} ms" if run.scenario == "latency" else ""
    resp = f", {pipeline.fmt_int(run.responses)} responses" if run.responses else ""
    return (f"[{run.scenario} r{run.round} {run.side}] {pipeline.fmt_int(run.records_per_s)} records/s "
            f"({pipeline.fmt_int(run.calls)} calls{resp}), CPU {run.cpu_s:.1f} s = "
            f"{run.cpu_ms_per_1k_calls / 1000:.2f} s per 1k calls, peak RSS {run.peak_rss_mb:.0f} MB{lat}; "
            f"sandbox CPU {run.sandbox_cpu_s:.1f} s, broker {run.broker_cpu_s:.1f} s; "
            f"ready after {run.startup_s:.1f} s; machine {run.machine_busy:.0%} busy, "
            f"load before {run.load_before:.1f}" + "".join(f"\n    problem: {p}" for p in run.problems))


def spread(values: list[float], digits: int = 0) -> str:
    if not values:
        return "-"
    med = statistics.median(values)
    if len(values) == 1:
        return f"{med:,.{digits}f}"
    return f"{med:,.{digits}f} ({min(values):,.{digits}f}-{max(values):,.{digits}f})"


def summary(runs: list[Run], sides: list[str]) -> str:
    out = []
    for scenario in SCENARIOS:
        mine = [r for r in runs if r.scenario == scenario and not r.problems]
        if not mine:
            continue
        out.append(f"\n{scenario}: median of the rounds (range)")
        head = f"  {'side':<13} {'rounds':>6} {'records/s':>22} {'CPU s / 1k calls':>22} {'peak RSS MB':>16}"
        if scenario == "latency":
            head += f" {'p50 ms':>18} {'p99 ms':>18}"
        out.append(head)
        med: dict[str, dict[str, float]] = {}
        for side in sides:
            rs = [r for r in mine if r.side == side]
            if not rs:
                continue
            med[side] = {"rate": statistics.median(r.records_per_s for r in rs),
                         "cpu": statistics.median(r.cpu_ms_per_1k_calls for r in rs),
                         "rss": statistics.median(r.peak_rss_mb for r in rs),
                         "p50": statistics.median(r.p50_ms for r in rs), "p99": statistics.median(r.p99_ms for r in rs)}
            cpu = spread([r.cpu_ms_per_1k_calls / 1000 for r in rs], 2)
            row = (f"  {side:<13} {len(rs):>6} {spread([r.records_per_s for r in rs]):>22} "
                   f"{cpu:>22} {spread([r.peak_rss_mb for r in rs]):>16}")
            if scenario == "latency":
                row += f" {spread([r.p50_ms for r in rs], 1):>18} {spread([r.p99_ms for r in rs], 1):>18}"
            out.append(row)
        for ours, peer in (("ours", "peer"), ("ours-noresp", "peer"), ("ours", "peer-publish")):
            if ours in med and peer in med:
                a, b = med[ours], med[peer]
                ratio = (f"  {ours} / {peer}: records/s {a['rate'] / b['rate']:.2f}x, CPU per call "
                         f"{a['cpu'] / b['cpu']:.2f}x, peak RSS {a['rss'] / b['rss']:.2f}x")
                if scenario == "latency" and b["p50"] and b["p99"]:
                    ratio += f", p50 {a['p50'] / b['p50']:.2f}x, p99 {a['p99'] / b['p99']:.2f}x"
                out.append(ratio)
    out.append("\nper call: " + "; ".join(f"{s}: {WHAT[s]}" for s in sides))
    return "\n".join(out)


async def run_all(env: pipeline.Env, classpath: str, args: argparse.Namespace) -> list[Run]:
    scenarios = args.scenarios
    sides = args.sides
    runs = []
    for rnd in range(1, args.rounds + 1):  # whole rounds first: a run cut short still has every scenario
        for scenario in scenarios:
            shift = (rnd - 1) % len(sides)  # alternate, and rotate who goes first each round
            for side in sides[shift:] + sides[:shift]:
                env.say(f"[{scenario} r{rnd} {side}] starting...")
                run = await one_run(env, scenario, side, rnd, classpath, args)
                env.say(line(run))
                runs.append(run)
    return runs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenario", default="all", help=f"all, or comma-separated, of {', '.join(SCENARIOS)}")
    parser.add_argument("--sides", default=",".join(SIDES), help=f"comma-separated, of {', '.join(SIDES)}")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--records", type=int, default=50_000, help="unbatched backlog (one call each)")
    parser.add_argument("--backlog", type=int, default=200_000, help="batched backlog")
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--max-wait-ms", type=int, default=2000, help="our batching.max_wait_ms")
    parser.add_argument("--keys", type=int, default=1000, help="distinct Kafka keys")
    parser.add_argument("--rate", type=float, default=50.0, help="records/s of the latency scenario")
    parser.add_argument("--latency-seconds", type=float, default=30.0)
    parser.add_argument("--timeout", type=float, default=None, help="longest drain per run in seconds")
    parser.add_argument("--json", metavar="FILE", help="also write every run (and the machine) as JSON here")
    parser.add_argument("--quiet", action="store_true", help="print only the summary")
    args = parser.parse_args(argv)
    args.scenarios = list(SCENARIOS) if args.scenario == "all" else [s.strip() for s in args.scenario.split(",")]
    if not set(args.scenarios) <= set(SCENARIOS) or not args.scenarios:
        parser.error(f"--scenario: choose all, or from {', '.join(SCENARIOS)}")
    args.sides = [s.strip() for s in args.sides.split(",") if s.strip()]
    unknown = [s for s in args.sides if s not in SIDES]
    if unknown or not args.sides:
        parser.error(f"--sides: unknown {', '.join(unknown) or '(none given)'}; choose from {', '.join(SIDES)}")
    if min(args.rounds, args.records, args.backlog, args.keys, args.batch_size) < 1 or args.rate <= 0:
        parser.error("--rounds, --records, --backlog, --keys, --batch-size and --rate must be positive")

    def on_term(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    env = pipeline.Env(args.quiet)
    info = pipeline.machine()
    env.say(f"{info['nproc']} cores ({info['cpu_model']}), load average {info['loadavg'][0]:.2f}; "
            f"Python {info['python']}; worker at {info['revision']}")
    runs: list[Run] = []
    try:
        classpath = ""
        if any(s.startswith("peer") for s in args.sides):
            try:
                classpath = connect_classpath(env.say)
            except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
                print(f"peer_bench: cannot set up Kafka Connect: {exc}", file=sys.stderr)
                return 1
        env.start()
        runs = asyncio.run(run_all(env, classpath, args))
    except KeyboardInterrupt:
        print("interrupted; stopping the worker or Connect, the sandbox and the broker", file=sys.stderr)
        return 130
    finally:
        env.stop()
    print(summary(runs, args.sides))
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": info, "argv": sys.argv[1:],
                                               "runs": [asdict(r) for r in runs]}, indent=2))
    return 0 if runs and not any(r.problems for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
