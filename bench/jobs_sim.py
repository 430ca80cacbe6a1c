"""Jobs mode in simulated time: the worker's pure core against a modelled account, minutes of stream in seconds.

``bench/budget_bench.py --stream updates`` measures jobs mode for real (broker, sandbox, worker runtime), but a
run needs its warm-up in wall time (7-20 minutes) before its figures mean anything. This simulation runs the
same decisions on a simulated clock: the destination's real :class:`~worker.core.chain.record_chain.RecordChain`
(open batches, per-ticket lanes, :class:`~worker.core.chain.job_coalescing.JobCoalescer`) and the account's real
:class:`~worker.core.grouping.call_scheduler.AccountScheduler`, with models of what lies outside the core:

* the account's budget: the worker's leaky bucket (``capacity - headroom`` = 38 slots draining at 1.9/s), and
  a dispatcher as ``worker.gorgias.dispatch`` runs it (a running call's next request and a job read are served
  first; a token that had to be waited for is *contended*; held candidates wake it when they are offered);
* a call alone: one request per part kind (a tag write, then the status ``PUT``), 0.3 s each;
* a job: one ``POST``, done ``--job-duration`` s later (the sandbox's 120 s), seen ``done`` by the destination's
  watch, which reads every job it follows together: 2 s after a job arrives at an idle watch, then at pauses
  doubling up to 60 s, a token per list page of 100 jobs;
* the stream: ``update_ticket`` records, each one of 10 changes (status closed or open, or one of 8 tags),
  Zipf-skewed (s = 1) over 5,000 tickets, at a fixed rate; batched ``by_attribute`` on ``ticket_id``, window
  2 s, batch size 100.

It prints, per minute, the delivered rate, the lag (produced - delivered) and the tokens spent, then the
steady window's figures as ``budget_bench.py`` reports them (delivered / produced, requests per record, p50 /
p99 latency). What it leaves out: HTTP latency beyond a fixed 0.3 s, retries, Kafka, the call slots.

    .venv/bin/python bench/jobs_sim.py --rate 20 --warmup 1200 --duration 300
    .venv/bin/python bench/jobs_sim.py --rate 40 --gather 0 20 40 60      # compare gathering times
"""

from __future__ import annotations

import argparse
import bisect
import heapq
import itertools
import math
import random
import sys
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from worker.core.chain.job_coalescing import JobGroup, Riding  # noqa: E402
from worker.core.chain.record_chain import RecordChain  # noqa: E402
from worker.core.config.account import RateLimitSettings  # noqa: E402
from worker.core.config.worker_config import Destination  # noqa: E402
from worker.core.grouping.call_scheduler import AccountScheduler, Candidate, SchedulerPolicy  # noqa: E402
from worker.core.grouping.open_batches import QueuedCall  # noqa: E402
from worker.core.records.record import SourceRef  # noqa: E402
from worker.core.requests.call import RenderedCall  # noqa: E402
from worker.gorgias.ratelimit import AccountRateLimiter  # noqa: E402

UPDATES = [{"status": "closed"}, {"status": "open"}] + [{"tags": [name]} for name in (
    "vip", "refund", "late-delivery", "churn-risk", "b2b", "damaged", "nps-detractor", "nps-promoter")]
REQUEST_S = 0.3
FIRST_READ_S, MAX_READ_PAUSE_S, LIST_PAGE = 2.0, 60.0, 100
STEP_S = 0.05


@dataclass
class Figures:
    produced: list[float] = field(default_factory=list)  # produced-at of each record, in order
    delivered: list[tuple[float, float]] = field(default_factory=list)  # (delivered at, produced at)
    tokens: list[tuple[float, str]] = field(default_factory=list)  # (at, what: job, call, read, more)
    job_sizes: list[tuple[float, int, int]] = field(default_factory=list)  # (at, tickets, records)
    call_sizes: list[tuple[float, int, int]] = field(default_factory=list)  # (at, requests, records) of calls alone


class Source:
    """The destination as the scheduler sees it."""

    def __init__(self, chain: RecordChain) -> None:
        self.chain = chain

    def candidates(self) -> Iterator[Candidate]:
        return self.chain.candidates()

    def waiting_records(self) -> int:
        return self.chain.open.waiting_records


class Sim:
    def __init__(self, args: argparse.Namespace, gather: float) -> None:
        doc: dict[str, Any] = {
            "name": "updates", "source_topics": ["t"],
            "credential": {"domain": "acme", "username": "agent@acme.com", "api_key_env": "GORGIAS_API_KEY"},
            "endpoint": {"template": "update_ticket"},
            "batching": {"enabled": True, "algorithm": "by_attribute", "attributes": ["ticket_id"],
                         "max_wait_ms": 2000, "batch_size": 100},
            "delivery": {"coalesce": args.coalesce, "coalesce_max_tickets": args.max_tickets},
        }
        if gather >= 0 and args.coalesce == "jobs":
            doc["delivery"]["coalesce_gather_s"] = gather
        self.chain = RecordChain(Destination.model_validate(doc), max_record_bytes=10_000)
        self.source = Source(self.chain)
        self.scheduler = AccountScheduler(SchedulerPolicy(age_bound_s=30.0, aged_call_every=args.aged_call_every))
        self.scheduler.add(self.source)
        self.now = 0.0
        self.limiter = AccountRateLimiter(RateLimitSettings(), 40, clock=lambda: self.now)
        self.args = args
        self.figures = Figures()
        self.events: list[tuple[float, int, str, Any]] = []  # (at, seq, kind, payload)
        self._seq = itertools.count()
        self.front: deque[str] = deque()  # requests served before any waiting call: "more", "read"
        self.watched: dict[int, tuple[float, RenderedCall]] = {}  # job id -> (ends at, call)
        self._job_ids = itertools.count(1)
        self.next_read: float | None = None
        self.pause = FIRST_READ_S
        self.contended = False

    def at(self, when: float, kind: str, payload: Any) -> None:
        heapq.heappush(self.events, (when, next(self._seq), kind, payload))

    # -- the stream ----------------------------------------------------------------------------------

    def produce(self, until: float, rng: random.Random, cum: list[float], offset: Iterator[int]) -> None:
        rate = self.args.rate
        while len(self.figures.produced) < int(until * rate):
            at = len(self.figures.produced) / rate
            ticket = 1 + bisect.bisect_left(cum, rng.random() * cum[-1])
            value = orjson.dumps({"ticket_id": ticket, **rng.choice(UPDATES)})
            n = next(offset)
            self.figures.produced.append(at)
            rejected = self.chain.take_in(value, SourceRef("t", 0, n, str(ticket).encode()), (), at)
            assert rejected is None, rejected

    # -- the outside world ---------------------------------------------------------------------------

    def deliver(self, call: RenderedCall) -> None:
        self.chain.done(call, self.now)
        for p in call.items:
            self.figures.delivered.append((self.now, self.figures.produced[p.record.source.offset]))

    def start(self, call: Candidate) -> None:
        if isinstance(call, JobGroup):
            made = self.chain.take_job(call)
            self.figures.job_sizes.append((self.now, len(call.tickets), len(made.items)))
            self.watched[next(self._job_ids)] = (self.now + self.args.job_duration, made)
            if self.next_read is None:
                self.pause = FIRST_READ_S
                self.next_read = self.now + FIRST_READ_S
            return
        queued = call.call if isinstance(call, Riding) else call
        assert isinstance(queued, QueuedCall)
        made = self.chain.take(queued)
        assert isinstance(made, RenderedCall)
        data = [p.record.data for p in made.items]
        requests = 1 + (any("tags" in d for d in data) and any("status" in d for d in data))  # tags, then status
        self.figures.call_sizes.append((self.now, requests, len(made.items)))
        for _ in range(requests - 1):
            self.front.append("more")
        self.at(self.now + REQUEST_S * requests, "call_done", (made, requests))

    def read_jobs(self) -> None:
        """The watch reads every job it follows: a token per list page."""
        pages = max(1, math.ceil(len(self.watched) / LIST_PAGE))
        for _ in range(pages):
            self.front.append("read")
        for jid, (ends, call) in list(self.watched.items()):
            if ends <= self.now:
                del self.watched[jid]
                self.deliver(call)
        if self.watched:
            self.pause = min(self.pause * 2, MAX_READ_PAUSE_S)
            self.next_read = self.now + self.pause
        else:
            self.next_read = None

    # -- the dispatcher ------------------------------------------------------------------------------

    def dispatch(self) -> None:
        """Hand out every token free now, as ``AccountDispatcher._run`` does."""
        while True:
            if not self.front and next(self.source.candidates(), None) is None:
                self.contended = False
                return
            if self.limiter.wait_s() > 0:
                self.contended = True
                return
            if self.front:
                self.limiter.take()
                self.figures.tokens.append((self.now, self.front.popleft()))
                continue
            picked = self.scheduler.choose(self.now, contended=self.contended, losing=self.limiter.level < 1)
            if picked is None:
                return
            _, call = picked
            self.limiter.take()
            self.scheduler.charge(self.source)
            self.figures.tokens.append((self.now, "job" if isinstance(call, JobGroup) else "call"))
            self.start(call)
            self.contended = self.scheduler.next_offer is not None  # held groups keep the room for themselves

    def run(self) -> None:
        rng = random.Random(7)
        cum = list(itertools.accumulate(1.0 / k for k in range(1, 5001)))
        offset = itertools.count()
        end = self.args.warmup + self.args.duration
        while self.now < end:
            self.now = round(self.now + STEP_S, 6)
            self.produce(self.now, rng, cum, offset)
            self.chain.open.tick(self.now)
            while self.events and self.events[0][0] <= self.now:
                _, _, kind, payload = heapq.heappop(self.events)
                if kind == "call_done":
                    made, requests = payload
                    self.chain.open.call_made(requests)
                    self.deliver(made)
            if self.next_read is not None and self.next_read <= self.now:
                self.read_jobs()
            self.dispatch()


def window(fig: Figures, start: float, end: float) -> dict[str, float]:
    """The figures of [start, end): records produced in it, calls and jobs started in it, records delivered in it."""
    seconds = end - start
    produced = bisect.bisect_left(fig.produced, end) - bisect.bisect_left(fig.produced, start)
    lat = sorted(d - p for d, p in fig.delivered if start <= d < end)
    before = sum(1 for d, _ in fig.delivered if d < start)
    tokens = [w for t, w in fig.tokens if start <= t < end]
    jobs = [(n, r) for t, n, r in fig.job_sizes if start <= t < end]
    alone = [r for t, _, r in fig.call_sizes if start <= t < end]
    in_jobs = sum(r for _, r in jobs)
    return {
        "produced/s": produced / seconds, "delivered/s": len(lat) / seconds, "share": len(lat) / max(1, produced),
        "lag start": bisect.bisect_left(fig.produced, start) - before,
        "lag end": bisect.bisect_left(fig.produced, end) - before - len(lat),
        "req/rec": len(tokens) / max(1, len(lat)), "tokens/s": len(tokens) / seconds,
        **{f"{what}s/s": sum(1 for w in tokens if w == what) / seconds for what in ("job", "call", "read")},
        "job tickets": sum(n for n, _ in jobs) / max(1, len(jobs)), "job records": in_jobs / max(1, len(jobs)),
        "call records": sum(alone) / max(1, len(alone)), "in jobs": in_jobs / max(1, in_jobs + sum(alone)),
        "p50": lat[len(lat) // 2] if lat else 0.0, "p99": lat[min(len(lat) - 1, int(0.99 * len(lat)))] if lat else 0.0,
    }


def spend(w: dict[str, float]) -> str:
    return (f"tokens/s {w['tokens/s']:.2f} (jobs {w['jobs/s']:.2f}, calls alone {w['calls/s']:.2f}, "
            f"job reads {w['reads/s']:.2f})")


def report(sim: Sim, args: argparse.Namespace, gather: float) -> None:
    fig, end = sim.figures, args.warmup + args.duration
    if args.minutes:
        for m in range(0, int(end), 60):
            w = window(fig, m, m + 60)
            print(f"  {m:5d} s: delivered {w['share']:5.0%} of produced, lag {w['lag end']:6,}, {spend(w)}, "
                  f"jobs of {w['job tickets']:.1f} tickets")
    w = window(fig, args.warmup, end)
    print(f"{args.rate:g}/s coalesce {args.coalesce} gather {gather:g} s, window {args.warmup:g}+{args.duration:g} s: "
          f"delivered {w['delivered/s']:.1f}/s = {w['share']:.0%}, lag {w['lag start']:,} -> {w['lag end']:,}, "
          f"p50/p99 {w['p50']:.0f}/{w['p99']:.0f} s, requests/record {w['req/rec']:.3f}, {spend(w)}; jobs of "
          f"{w['job tickets']:.1f} tickets / {w['job records']:.1f} records, calls alone of {w['call records']:.1f} "
          f"records, {w['in jobs']:.0%} of records in jobs; whole run {window(fig, 0, end)['share']:.0%}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, nargs="+", default=[20.0], help="records/s")
    parser.add_argument("--warmup", type=float, default=1200.0)
    parser.add_argument("--duration", type=float, default=300.0, help="seconds of the steady window")
    parser.add_argument("--job-duration", type=float, default=120.0)
    parser.add_argument("--gather", type=float, nargs="+", default=[-1.0],
                        help="delivery.coalesce_gather_s to compare (-1: the setting's default)")
    parser.add_argument("--aged-call-every", type=int, default=4)
    parser.add_argument("--max-tickets", type=int, default=100)
    parser.add_argument("--coalesce", choices=["jobs", "none"], default="jobs")
    parser.add_argument("--minutes", action="store_true", help="print the lag and rates minute by minute")
    args = parser.parse_args(argv)
    for rate in args.rate:
        for gather in args.gather:
            one = argparse.Namespace(**{**vars(args), "rate": rate})
            sim = Sim(one, gather)
            sim.run()
            report(sim, one, gather)
    return 0


if __name__ == "__main__":
    sys.exit(main())
