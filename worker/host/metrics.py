"""Prometheus metrics of the worker, per destination (and per Gorgias account for the budget).

Times are split so that each answers one question: ``gorgias_worker_request_seconds`` is Gorgias' own
latency (one HTTP attempt on the wire, no budget wait, no backoff), ``gorgias_worker_budget_wait_seconds``
is the time an attempt waited for the account's rate-limit budget (the first attempt's wait is spent in
the account's dispatcher, before the call starts), and ``gorgias_worker_call_duration_seconds`` is the
call from its first attempt to its final outcome: every attempt, the retries' waits and the backoff.
The pipeline observes the first two per attempt from the call's attempt log (which
``worker.gorgias.delivery`` measures), so each wait is counted once. The process (memory, CPU, file descriptors) and
Python (version, garbage collector) collectors are registered; counters expose no ``_created`` series.
"""

from __future__ import annotations

import asyncio
import platform
from importlib.metadata import PackageNotFoundError, version

import prometheus_client
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info, generate_latest
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

# A `_created` twin per counter and histogram doubles the series for a timestamp nobody queries.
prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]

REGISTRY = CollectorRegistry(auto_describe=True)
ProcessCollector(registry=REGISTRY)  # process_resident_memory_bytes, process_cpu_seconds_total, process_open_fds...
PlatformCollector(registry=REGISTRY)  # python_info
GCCollector(registry=REGISTRY)  # python_gc_objects_collected_total, python_gc_collections_total...

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
_WAIT_BUCKETS = (0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120)
_BATCH_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 5000)


def _package_version() -> str:
    try:
        return version("nexset-gorgias-worker")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "unknown"


BUILD_INFO = Info("gorgias_worker_build", "The worker's version and Python runtime (value always 1).",
                  registry=REGISTRY)
BUILD_INFO.info({"version": _package_version(), "python_version": platform.python_version(),
                 "python_implementation": platform.python_implementation()})

RECORDS_CONSUMED = Counter(
    "gorgias_worker_records_consumed", "Records read from the source topics.", ["destination"], registry=REGISTRY
)
RECORDS_DELIVERED = Counter(
    "gorgias_worker_records_delivered", "Records carried by a successful API call.", ["destination"],
    registry=REGISTRY,
)
RECORDS_DEAD_LETTERED = Counter(
    "gorgias_worker_records_dead_lettered", "Records sent to the dead-letter topic.", ["destination", "stage"],
    registry=REGISTRY,
)
RECORDS_OUTCOME_UNKNOWN = Counter(
    "gorgias_worker_records_outcome_unknown",
    "Records dead-lettered with an unknown outcome: their call may have taken effect in Gorgias (a connection "
    "lost after the request was written, and no lookup settled it). Also counted in records_dead_lettered.",
    ["destination"], registry=REGISTRY,
)
CALLS = Counter(
    "gorgias_worker_calls", "Finished API calls by final HTTP status ('error' when none).",
    ["destination", "status"], registry=REGISTRY,
)
RETRIES = Counter(
    "gorgias_worker_retries", "Attempts beyond the first, by what caused them.", ["destination", "cause"],
    registry=REGISTRY,
)
BUDGET_WAIT = Histogram(
    "gorgias_worker_budget_wait_seconds",
    "Time one attempt waited for the account's rate-limit budget before it could be sent.", ["account"],
    buckets=_WAIT_BUCKETS, registry=REGISTRY,
)
RATE_LIMIT_LEVEL = Gauge(
    "gorgias_worker_rate_limit_used", "Requests currently in the account's leaky bucket.", ["account"],
    registry=REGISTRY,
)
RATE_LIMIT_CAPACITY = Gauge(
    "gorgias_worker_rate_limit_capacity", "Size of the account's leaky bucket.", ["account"], registry=REGISTRY
)
BATCH_SIZE = Histogram(
    "gorgias_worker_batch_records", "Records per API call.", ["destination"], buckets=_BATCH_BUCKETS,
    registry=REGISTRY,
)
REQUEST_LATENCY = Histogram(
    "gorgias_worker_request_seconds",
    "Gorgias' latency: one HTTP attempt from send to response or transport error; no budget wait, no backoff.",
    ["destination"], buckets=_LATENCY_BUCKETS, registry=REGISTRY,
)
CALL_DURATION = Histogram(
    "gorgias_worker_call_duration_seconds",
    "A call from its first attempt to its final outcome: every attempt, retries' budget waits and backoff.",
    ["destination"], buckets=_LATENCY_BUCKETS, registry=REGISTRY,
)
END_TO_END_LATENCY = Histogram(
    "gorgias_worker_end_to_end_latency_seconds",
    "Per call: from the Kafka timestamp of its oldest record to its outcome being recorded.", ["destination"],
    buckets=_LATENCY_BUCKETS, registry=REGISTRY,
)
CONSUMER_LAG = Gauge(
    "gorgias_worker_consumer_lag", "Records behind the end of each source partition.",
    ["destination", "topic", "partition"], registry=REGISTRY,
)
CALLS_ON_WIRE = Gauge(
    "gorgias_worker_calls_on_wire",
    "Calls started and not finished: each holds one of the destination's delivery.max_in_flight call slots.",
    ["destination"], registry=REGISTRY,
)
CALLS_IN_FLIGHT = Gauge(  # deprecated: the same as CALLS_ON_WIRE, kept for one release
    "gorgias_worker_calls_in_flight", "Deprecated, removed in the next release: gorgias_worker_calls_on_wire.",
    ["destination"], registry=REGISTRY,
)
REBALANCES = Counter(
    "gorgias_worker_rebalances",
    "Assignments the destination's consumer received from its group: its first, then one per rebalance of its "
    "group (a replica or a consumer joining or leaving it); other destinations' changes never add to it.",
    ["destination"], registry=REGISTRY,
)
PENDING_RECORDS = Gauge(
    "gorgias_worker_pending_records", "Records consumed whose outcome is not recorded yet.", ["destination"],
    registry=REGISTRY,
)
DESTINATION_ACTIVE = Gauge(
    "gorgias_worker_destination_active", "1 when the destination is active, 0 when paused.", ["destination"],
    registry=REGISTRY,
)

DESTINATION_STATES = ("active", "paused", "failed", "held")
DESTINATION_STATE = Gauge(
    "gorgias_worker_destination_state",
    "1 for the destination's current state (active, paused, failed, held), 0 for the others.",
    ["destination", "state"], registry=REGISTRY,
)

CALLS_WAITING_FOR_BUDGET = Gauge(
    "gorgias_worker_calls_waiting_for_budget",
    "Calls due and not sent yet (waiting for a token, a call slot or their key's previous call), per account.",
    ["account"], registry=REGISTRY,
)

EVENT_LOOP_TASKS = Gauge(
    "gorgias_worker_event_loop_tasks",
    "asyncio tasks alive in the worker's event loop (flat on a steady stream; growth is a leak).",
    registry=REGISTRY,
)


def _tasks_alive() -> int:
    try:
        return len(asyncio.all_tasks())
    except RuntimeError:  # scraped outside the event loop (a test rendering the metrics)
        return 0


EVENT_LOOP_TASKS.set_function(_tasks_alive)


READY = Gauge(
    "gorgias_worker_ready",
    "1 while GET /health/ready answers 200 (every pipeline started, Kafka readable and writable), else 0.",
    registry=REGISTRY,
)

CREDENTIAL_HELD = Gauge(
    "gorgias_worker_credential_held",
    "1 while calls of the account are held because Gorgias refused its credential (HTTP 401), else 0.",
    ["account"], registry=REGISTRY,
)


def set_destination_states(states: dict[str, str], before: set[tuple[str, str]]) -> set[tuple[str, str]]:
    """Set ``gorgias_worker_destination_state`` from each destination's state; the series of destinations
    gone since ``before`` (the set returned last time) are removed. Returns the series now set."""
    now = {(name, state) for name in states for state in DESTINATION_STATES}
    for name, state in before - now:
        DESTINATION_STATE.remove(name, state)
    for name, current in states.items():
        for state in DESTINATION_STATES:
            DESTINATION_STATE.labels(name, state).set(1 if state == current else 0)
    return now


def render() -> bytes:
    """The Prometheus text exposition of every metric."""
    return generate_latest(REGISTRY)


def no_records() -> dict[str, int]:
    """The record counts of a destination that has delivered and dead-lettered nothing yet."""
    return {"delivered": 0, "dead_lettered": 0}


def records_since_start(destination: str) -> dict[str, int]:
    """Records delivered and dead-lettered (every stage) since this process started, from the metrics."""
    return records_by_destination().get(destination) or no_records()


def records_by_destination() -> dict[str, dict[str, int]]:
    """:func:`records_since_start` of every destination, in one pass over the two counters (not the whole
    registry once per destination: a status of a thousand destinations would hold the event loop for
    seconds, long enough for their consumer groups' sessions to expire)."""
    totals: dict[str, dict[str, int]] = {}
    for counter, key in ((RECORDS_DELIVERED, "delivered"), (RECORDS_DEAD_LETTERED, "dead_lettered")):
        for family in counter.collect():
            for sample in family.samples:
                name = sample.labels.get("destination")
                if name is not None and sample.name.endswith("_total"):
                    found = totals.setdefault(name, no_records())
                    found[key] += int(sample.value)
    return totals


def account_waiting(account: str) -> int | None:
    """Calls of ``account`` due and not sent yet (the dispatcher's gauge), or None before it reported."""
    value = REGISTRY.get_sample_value("gorgias_worker_calls_waiting_for_budget", {"account": account})
    return None if value is None else int(value)
