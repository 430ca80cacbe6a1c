"""`gorgias-worker status`: is each destination healthy?

Two sources make one report per destination (the config file's, and those saved at runtime in the
destinations store, a saved one that cannot run shown failed with the reason):

* **Kafka** (always): the effective state (control topic word, else the config's ``active``), and per
  source partition the consumer group's committed offset, the end offset and the lag;
* **a running worker** (when its control API answers): held calls and why they are held, the OAuth scopes
  the destination needs that its app was not granted, records delivered / dead-lettered / unknown since it
  started, the last error with its time, calls waiting for budget, and per account the budget level
  (``GET /destinations``).

:func:`format_report` turns the merged report into lines (pure).
"""

from __future__ import annotations

from typing import Any

from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from worker.core.config.worker_config import Destination, WorkerConfig
from worker.kafka.clients import client_options, existing_partitions, make_consumer
from worker.kafka.control import read_commands
from worker.service.saved_destinations import opened


def group_id_of(config: WorkerConfig, dest: Destination) -> str:
    """The consumer group a destination's pipeline uses."""
    return dest.consumer_group(config.kafka.group_id)


def fetch_worker(url: str, timeout_s: float = 3.0) -> tuple[dict[str, Any] | None, str]:
    """``GET {url}/destinations`` of a running worker: (its status, "") or (None, why not)."""
    import httpx

    try:
        resp = httpx.get(f"{url.rstrip('/')}/destinations", timeout=timeout_s)
        resp.raise_for_status()
        doc = resp.json()
    except (httpx.HTTPError, ValueError) as exc:
        return None, f"not reachable at {url} ({exc.__class__.__name__})"
    return (doc, "") if isinstance(doc, dict) else (None, f"{url} did not answer a status document")


async def saved_view(config: WorkerConfig) -> tuple[list[Destination], dict[str, dict[str, Any]]]:
    """The destinations saved at runtime: those that can run, and those that cannot (failed, with why)."""
    runnable: list[Destination] = []
    failed: dict[str, dict[str, Any]] = {}
    async with opened(config) as saved:
        for name in saved.names():
            wanted = saved.wanted(name)
            if isinstance(wanted, Destination):
                runnable.append(wanted)
            elif wanted is not None and name not in saved.file_destinations:
                failed[name] = {"name": name, "source": "store", "state": "failed", "state_from": "store",
                                "reason": wanted, "partitions": []}
    return runnable, failed


async def kafka_view(config: WorkerConfig) -> dict[str, dict[str, Any]]:
    """Per destination (the file's and the saved ones): effective state and, per source partition,
    committed offset, end offset and lag."""
    words = await read_commands(config.kafka)
    saved, failed = await saved_view(config)
    sources = {**{d.name: "store" for d in saved}, **{d.name: "file" for d in config.destinations}}
    destinations = [*config.destinations, *(d for d in saved if sources[d.name] == "store")]
    admin = AIOKafkaAdminClient(**client_options(config.kafka))
    consumer = make_consumer(config.kafka, None)
    await admin.start()
    try:
        await consumer.start()
        existing = await existing_partitions(config.kafka, {t for d in destinations for t in d.source_topics})
        out: dict[str, dict[str, Any]] = {}
        for dest in destinations:
            word = words.get(dest.name)
            source = sources.get(dest.name, "file")
            active = (dest.active if source == "file" else False) if word is None else word
            group = group_id_of(config, dest)
            tps = [TopicPartition(t, p) for t in dest.source_topics for p in existing.get(t, ())]
            committed = await admin.list_consumer_group_offsets(group, partitions=tps) if tps else {}
            ends = await consumer.end_offsets(tps) if tps else {}
            partitions = []
            for tp in tps:
                meta = committed.get(tp)
                done = meta.offset if meta is not None and meta.offset >= 0 else None
                end = ends.get(tp)
                partitions.append({
                    "topic": tp.topic, "partition": tp.partition, "committed": done, "end": end,
                    "lag": None if end is None else end - (done or 0),
                })
            out[dest.name] = {
                "name": dest.name,
                "source": source,
                "state": "active" if active else "paused",
                "state_from": ("config" if source == "file" else "store") if word is None else "control topic",
                "group_id": group,
                "start_from": dest.start_from,
                "partitions": partitions,
                "missing_topics": [t for t in dest.source_topics if t not in existing],
            }
        return {**out, **failed}
    finally:
        await consumer.stop()
        await admin.close()


def merge(kafka: dict[str, dict[str, Any]], worker: dict[str, Any] | None) -> dict[str, Any]:
    """The report: Kafka's view of each destination, with the running worker's numbers when given."""
    running = {d["name"]: d for d in (worker or {}).get("destinations", [])}
    destinations = []
    for name, view in kafka.items():
        entry = dict(view)
        live = running.get(name)
        if live is not None:
            if "calls_in_flight" in live:  # a worker of the previous release: the old name of calls_on_wire
                live = {"calls_on_wire": live["calls_in_flight"], **live}
            for key in ("held_calls", "calls_on_wire", "pending_records", "calls_waiting_for_budget",
                        "records", "last_error", "account", "scopes_missing"):
                if key in live:
                    entry[key] = live[key]
            if live.get("state") == "held" and live.get("reason"):  # not "reason": that is a saved one's failure
                entry["held_reason"] = live["reason"]
        destinations.append(entry)
    return {
        "worker": None if worker is None else {"ready": worker.get("ready"), "failed": worker.get("failed")},
        "accounts": (worker or {}).get("accounts", {}),
        "destinations": destinations,
    }


def format_report(report: dict[str, Any]) -> list[str]:
    """Readable lines: one block per destination, then the accounts' budgets."""
    lines: list[str] = []
    worker = report.get("worker")
    if worker is None:
        lines.append(f"worker: {report.get('worker_note') or 'not asked'} (Kafka's view only; "
                     "counters come from a running worker's control API: --worker URL)")
    else:
        lines.append(f"worker: {'ready' if worker.get('ready') else 'starting'}"
                     + (f", FAILED: {worker['failed']}" if worker.get("failed") else ""))
    for dest in report["destinations"]:
        lines.append("")
        lines.extend(_destination_lines(dest))
    accounts = report.get("accounts") or {}
    if accounts:
        lines.append("")
        for key, acc in sorted(accounts.items()):
            waiting = f", {acc['waiting']} call(s) waiting" if acc.get("waiting") is not None else ""
            lines.append(f"account {key}: budget {acc['level']:g}/{acc['capacity']} used{waiting}")
    return lines


def _destination_lines(dest: dict[str, Any]) -> list[str]:
    """One destination's block: its state, its partitions (Kafka's view), the running worker's counters."""
    state = dest["state"]
    held = dest.get("held_calls")
    if held:
        state += f", {held} call(s) held"
    if "reason" in dest:
        return [f"{dest['name']}: {state} (saved): {dest['reason']}"]
    lines = [f"{dest['name']}: {state} (from {dest['state_from']}), group {dest['group_id']}, "
             f"start_from {dest.get('start_from', 'earliest')} (a new group only)"]
    for topic in dest.get("missing_topics", []):
        lines.append(f"  {topic}: topic does not exist yet")
    total = 0
    for p in dest["partitions"]:
        committed = "-" if p["committed"] is None else p["committed"]
        lag = "-" if p["lag"] is None else p["lag"]
        total += p["lag"] or 0
        lines.append(f"  {p['topic']}[{p['partition']}]  committed {committed}  end {p['end']}  lag {lag}")
    if dest["partitions"]:
        lines.append(f"  lag total {total}")
    return lines + _counter_lines(dest)


def _counter_lines(dest: dict[str, Any]) -> list[str]:
    """What a running worker counted for one destination (absent when no worker was asked)."""
    lines = []
    records = dest.get("records")
    if records is not None:
        lines.append(f"  since start: {records['delivered']} delivered, {records['dead_lettered']} dead-lettered "
                     f"({records.get('unknown', 0)} of them with outcome unknown)")
    if "calls_on_wire" in dest:
        waiting = dest.get("calls_waiting_for_budget")
        lines.append(f"  calls on the wire {dest['calls_on_wire']}, waiting for budget "
                     f"{'n/a' if waiting is None else waiting}, records pending {dest.get('pending_records', 0)}")
    if dest.get("held_reason"):
        lines.append(f"  held: {dest['held_reason']}")
    if dest.get("scopes_missing"):
        lines.append(f"  scopes missing: {' '.join(dest['scopes_missing'])} (its OAuth app was not granted them: "
                     "authorize the app again with them, README, OAuth apps)")
    if "last_error" in dest:
        err = dest["last_error"]
        lines.append(f"  last error: {err['at']} {err['message']}" if err else "  last error: none")
    return lines
