"""Guards the worker's hot path from regressions: the per-call and per-record functions, timed in-process.

No broker, no sandbox, no network: each case runs the worker's own functions on fixed inputs, and an HTTP
call goes to an in-process ``httpx`` transport that answers at once, so what is timed is our code and the
libraries it calls (httpx, orjson, prometheus_client), not a server. Cases:

* ``call``           - one unbatched call: ``DeliveryService.call`` (token, ``GorgiasClient.send`` straight to
  the transport, classify, parse the response) for a ``POST /api/tickets`` of 316 bytes;
* ``response_event`` - the response event of that call, built and encoded to fit its topic;
* ``record_batched`` - one record of the batched scenario: decode, prepare (transform, grouping key, the key's
  URL), the offset tracker, the open batches, and its share of rendering and finishing its batch of 100;
* ``record_unbatched`` - one record of the unbatched scenario up to its rendered request.

Time is CPU time (``time.process_time``) so other processes on a shared machine disturb it less; each case is
run ``--rounds`` times and the fastest round counts. Figures are also given in *calibration units*: the time
of a fixed pure-Python loop timed in the same run, so that a slower or busier machine moves both alike.
The verdict compares units against ``bench/hotpath_baseline.json``: a case more than ``--tolerance`` (default
1.5x) slower than its baseline is a regression, and the exit status is 1.

    .venv/bin/python bench/hotpath_bench.py                     # ~20 s
    .venv/bin/python bench/hotpath_bench.py --update-baseline   # after a deliberate change; commit the file
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import orjson
from pydantic import SecretStr

ROOT = Path(__file__).resolve().parents[1]
BASELINE = Path(__file__).resolve().parent / "hotpath_baseline.json"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from worker.core.chain.record_chain import batch_policy  # noqa: E402
from worker.core.config.worker_config import Destination  # noqa: E402
from worker.core.grouping.open_batches import OpenBatches  # noqa: E402
from worker.core.outcomes.fit import fit_parts  # noqa: E402
from worker.core.outcomes.response_events import response_event  # noqa: E402
from worker.core.progress.offsets import OffsetTracker, TopicPartitionKey  # noqa: E402
from worker.core.records.record import SourceRef, decode_record  # noqa: E402
from worker.core.requests.call import RenderedCall  # noqa: E402
from worker.core.requests.rendering import Prepared, RequestRenderer  # noqa: E402
from worker.gorgias.client import ClientRegistry, GorgiasClient  # noqa: E402
from worker.gorgias.delivery import DeliveryService  # noqa: E402

CREDENTIAL = {"domain": "acme", "username": "agent@acme.com", "api_key_env": "GORGIAS_API_KEY",
              "rate_limit": {"enabled": False}}
TICKET = orjson.dumps({
    "channel": "api", "via": "api", "from_agent": False, "customer": {"email": "bench@example.com"},
    "messages": [{"channel": "api", "via": "api", "from_agent": False, "body_text": "hello " * 30}],
})
ANSWER = orjson.dumps({"id": 123456, "uri": "/api/tickets/123456/", "channel": "api", "status": "open",
                       "subject": None, "customer": {"id": 99, "email": "bench@example.com"}})
ANSWER_HEADERS = [("Content-Type", "application/json; charset=utf-8"), ("X-Gorgias-Account-Api-Call-Limit", "1/40"),
                  ("Date", "Tue, 01 Dec 2026 04:00:00 GMT"), ("Server", "nginx")]


def destination(batched: bool) -> Destination:
    doc: dict[str, Any] = {"name": "bench", "source_topics": ["bench.src"], "credential": CREDENTIAL}
    if batched:
        doc["endpoint"] = {"method": "PUT", "url": "https://{domain}.gorgias.com/api/tickets/{ticket_id}/custom-fields",
                           "exclude_attributes": ["ticket_id"]}
        doc["batching"] = {"enabled": True, "algorithm": "by_attribute", "attributes": ["ticket_id"],
                           "batch_size": 100, "max_wait_ms": 2000}
    else:
        doc["endpoint"] = {"method": "POST", "url": "https://{domain}.gorgias.com/api/tickets"}
    return Destination.model_validate(doc)


class Answering(httpx.AsyncBaseTransport):
    """An httpx transport that answers every request at once, as Gorgias answers a ticket create."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return httpx.Response(201, headers=ANSWER_HEADERS, stream=httpx.ByteStream(ANSWER), request=request)


# --------------------------------------------------------------------------------------------------
# Cases: each returns (function running `n` operations, n)


def calibration() -> tuple[Callable[[], None], int]:
    n = 20_000

    def run() -> None:
        d: dict[int, int] = {}
        for i in range(n):
            d[i & 255] = d.get(i & 255, 0) + i
        sorted(d.items())

    return run, n


def case_call() -> tuple[Callable[[], None], int]:
    dest = destination(batched=False)
    registry = ClientRegistry(factory=lambda c, s, d: GorgiasClient(c, s, d, transport=Answering()),
                              secret_resolver=lambda c: SecretStr("bench-key"))
    delivery = DeliveryService(clients=registry)
    renderer = RequestRenderer(dest)
    record = decode_record(TICKET, SourceRef("bench.src", 0, 0, b"k", 0))
    request = renderer.render_one(renderer.prepare(record))
    n = 2_000
    loop = asyncio.new_event_loop()

    async def calls() -> None:
        for _ in range(n):
            outcome = await delivery.call(request, dest.credential, dest.delivery)
            assert outcome.ok

    return lambda: loop.run_until_complete(calls()), n


def case_response_event() -> tuple[Callable[[], None], int]:
    dest = destination(batched=False)
    registry = ClientRegistry(factory=lambda c, s, d: GorgiasClient(c, s, d, transport=Answering()),
                              secret_resolver=lambda c: SecretStr("bench-key"))
    delivery = DeliveryService(clients=registry)
    renderer = RequestRenderer(dest)
    prepared = renderer.prepare(decode_record(TICKET, SourceRef("bench.src", 0, 0, b"k", 0)))
    call = RenderedCall([prepared], renderer.render_one(prepared))
    outcome = asyncio.new_event_loop().run_until_complete(delivery.call(call.request, dest.credential, dest.delivery))
    n = 5_000

    def run() -> None:
        for _ in range(n):
            fit_parts(response_event("prod", dest, call, outcome), 1_000_000)

    return run, n


def case_record_batched() -> tuple[Callable[[], None], int]:
    dest = destination(batched=True)
    renderer = RequestRenderer(dest)
    values = [orjson.dumps({"ticket_id": 1000 + i % 500, "custom_fields": [{"id": 7, "value": f"v{i}"}]})
              for i in range(50_000)]
    n = len(values)

    def run() -> None:
        tracker = OffsetTracker()
        open_batches: OpenBatches[Prepared] = OpenBatches(batch_policy(dest), ordered=True)
        tpk = TopicPartitionKey("bench.src", 0)
        for offset, value in enumerate(values):
            tracker.consumed(tpk, offset)
            record = decode_record(value, SourceRef("bench.src", 0, offset, b"k", 0))
            prepared = renderer.prepare(record)
            open_batches.add(prepared, prepared.key, len(prepared.body_bytes), 0.0)
        open_batches.tick(10.0)
        while (call := open_batches.first_eligible()) is not None:
            taken = open_batches.take(call)
            renderer.render_batch(taken.key, taken.items)
            open_batches.done(taken)
            for p in taken.items:
                tracker.finished(tpk, p.record.source.offset)
        assert tracker.pending_records == 0

    return run, n


def case_record_unbatched() -> tuple[Callable[[], None], int]:
    dest = destination(batched=False)
    renderer = RequestRenderer(dest)
    n = 20_000

    def run() -> None:
        tracker = OffsetTracker()
        open_batches: OpenBatches[Prepared] = OpenBatches(None, ordered=True)
        tpk = TopicPartitionKey("bench.src", 0)
        for offset in range(n):
            tracker.consumed(tpk, offset)
            prepared = renderer.prepare(decode_record(TICKET, SourceRef("bench.src", 0, offset, b"k", 0)))
            call = open_batches.add_single(prepared, None, len(prepared.body_bytes), 0.0)
            open_batches.done(open_batches.take(call))
            renderer.render_one(prepared)
            tracker.finished(tpk, offset)

    return run, n


CASES: dict[str, Callable[[], tuple[Callable[[], None], int]]] = {
    "call": case_call,
    "response_event": case_response_event,
    "record_batched": case_record_batched,
    "record_unbatched": case_record_unbatched,
}


# --------------------------------------------------------------------------------------------------


def fastest(run: Callable[[], None], rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        started = time.process_time()
        run()
        best = min(best, time.process_time() - started)
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5, help="runs of each case; the fastest counts")
    parser.add_argument("--tolerance", type=float, default=1.5, help="slowest allowed, as a multiple of the baseline")
    parser.add_argument("--baseline", type=Path, default=BASELINE)
    parser.add_argument("--update-baseline", action="store_true", help="store this run's figures as the baseline")
    parser.add_argument("--only", nargs="+", choices=list(CASES), help="run only these cases")
    args = parser.parse_args(argv)

    baseline: dict[str, Any] = json.loads(args.baseline.read_text()) if args.baseline.exists() else {}
    base_units: dict[str, float] = baseline.get("units", {})
    cal_run, _ = calibration()
    figures: dict[str, dict[str, float]] = {}
    regressions = []
    print(f"{'case':<18} {'per op':>10} {'units':>8} {'baseline':>9} {'ratio':>6}  verdict")
    for name, make in CASES.items():
        if args.only and name not in args.only:
            continue
        run, n = make()
        run()  # warm up: caches, lazy imports, the JIT-less interpreter's specializations
        unit = fastest(cal_run, args.rounds)  # timed next to each case: load on the machine moves both
        seconds = fastest(run, args.rounds) / n
        units = seconds / unit
        figures[name] = {"us_per_op": round(seconds * 1e6, 3), "units": round(units, 6)}
        base = base_units.get(name)
        if base is None:
            verdict, ratio = "no baseline", float("nan")
        else:
            ratio = units / base
            if ratio > args.tolerance:
                verdict = f"REGRESSION (over {args.tolerance:g}x)"
                regressions.append(name)
            elif ratio < 1 / args.tolerance:
                verdict = "faster: consider --update-baseline"
            else:
                verdict = "ok"
        print(f"{name:<18} {seconds * 1e6:>8.2f}us {units:>8.5f} {base if base is not None else '-':>9} "
              f"{ratio:>6.2f}  {verdict}", flush=True)
    if args.update_baseline:
        doc = {"note": "hotpath_bench.py figures; units = time per op / time of the calibration loop",
               "units": {**base_units, **{k: v["units"] for k, v in figures.items()}},
               "us_per_op": {**baseline.get("us_per_op", {}), **{k: v["us_per_op"] for k, v in figures.items()}}}
        args.baseline.write_text(json.dumps(doc, indent=2) + "\n")
        print(f"baseline written to {args.baseline}")
        return 0
    if regressions:
        print(f"FAIL: {', '.join(regressions)} slower than the baseline by more than {args.tolerance:g}x")
        return 1
    print("OK: no case slower than its baseline by more than " f"{args.tolerance:g}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
