"""Prometheus metrics of the worker, per destination (and per Gorgias account for the budget)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

REGISTRY = CollectorRegistry(auto_describe=True)

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
_BATCH_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 5000)

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
CALLS = Counter(
    "gorgias_worker_calls", "Finished API calls by final HTTP status ('error' when none).",
    ["destination", "status"], registry=REGISTRY,
)
RETRIES = Counter(
    "gorgias_worker_retries", "Attempts beyond the first, by what caused them.", ["destination", "cause"],
    registry=REGISTRY,
)
RATE_LIMIT_WAIT = Counter(
    "gorgias_worker_rate_limit_wait_seconds", "Time calls spent waiting for the account's budget.", ["account"],
    registry=REGISTRY,
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
CALL_LATENCY = Histogram(
    "gorgias_worker_call_latency_seconds", "API call time, retries and waits included.", ["destination"],
    buckets=_LATENCY_BUCKETS, registry=REGISTRY,
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
IN_FLIGHT = Gauge(
    "gorgias_worker_calls_in_flight", "API calls being sent right now.", ["destination"], registry=REGISTRY
)
PENDING_RECORDS = Gauge(
    "gorgias_worker_pending_records", "Records consumed whose outcome is not recorded yet.", ["destination"],
    registry=REGISTRY,
)
DESTINATION_ACTIVE = Gauge(
    "gorgias_worker_destination_active", "1 when the destination is active, 0 when paused.", ["destination"],
    registry=REGISTRY,
)

CALLS_WAITING_FOR_BUDGET = Gauge(
    "gorgias_worker_calls_waiting_for_budget",
    "Calls due and not sent yet (waiting for a token, a call slot or their key's previous call), per account.",
    ["account"], registry=REGISTRY,
)


def render() -> bytes:
    """The Prometheus text exposition of every metric."""
    return generate_latest(REGISTRY)
