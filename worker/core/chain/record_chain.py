"""The record chain: how a Kafka record becomes part of a Gorgias call, or a dead letter.

    bytes + source ─decode─▶ Record ─prepare─▶ Prepared ─group─▶ QueuedCall ─render─▶ RenderedCall
          │                    │                                     │
          └──── Rejected(stage=decode) ──── Rejected(stage=render) ──┘

* **decode** (:func:`worker.core.records.record.decode_record`): the value must be a JSON object (or a Nexla
  envelope) no larger than ``kafka.max_record_bytes``;
* **prepare** (:meth:`RequestRenderer.prepare`): the transform runs once, the grouping key is read;
* **group** (:class:`worker.core.grouping.open_batches.OpenBatches`): the grouper closes batches, due calls wait in
  their key's lane and keep filling until they are taken (a key's batch is cut where the job its records were
  in before a restart changes: a call that follows a job carries only its records);
* **render** (:meth:`RequestRenderer.render_one` / ``render_batch``): the request is made from what the
  call holds when it is taken.

The consuming pipeline, ``preview`` and the endpoint test all drive this one chain; they differ only
in where records come from and what is done with a call. Pure: no I/O, and ``now`` comes from the
caller.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator
from dataclasses import dataclass
from typing import Any

from worker.core.chain.job_coalescing import JobCoalescer, JobGroup, Riding
from worker.core.config.delivery import Coalesce
from worker.core.config.worker_config import Destination
from worker.core.grouping.batching import BatchPolicy
from worker.core.grouping.open_batches import OpenBatches, QueuedCall
from worker.core.outcomes.dead_letters import record_item, reference_item
from worker.core.outcomes.documents import DeadLetterStage
from worker.core.records.record import POSSIBLY_DELIVERED, RESUME_JOB, DecodeError, SourceRef, decode_record
from worker.core.requests.call import RenderedCall
from worker.core.requests.render_error import RenderError
from worker.core.requests.rendering import Prepared, RequestRenderer
from worker.core.requests.request import RenderedRequest
from worker.core.templates import renderer_for

__all__ = ["RecordChain", "Rejected", "batch_policy", "build_renderer"]

Headers = tuple[tuple[str, bytes], ...]


def build_renderer(dest: Destination) -> RequestRenderer:
    """The destination's request renderer: its template's, or the manual endpoint's. Configuration
    problems raise ``ValueError``."""
    return renderer_for(dest) if dest.endpoint.template is not None else RequestRenderer(dest)


def batch_policy(dest: Destination) -> BatchPolicy:
    """The grouper's policy from a destination's ``batching`` settings (times in seconds)."""
    b = dest.batching
    return BatchPolicy(
        algorithm=b.algorithm.value,
        batch_size=b.batch_size,
        max_bytes=b.max_bytes,
        max_wait=b.max_wait_ms / 1000,
        window=b.window_ms / 1000,
        gap=b.gap_ms / 1000,
        max_session=None if b.max_session_ms is None else b.max_session_ms / 1000,
    )


@dataclass(frozen=True, slots=True)
class Rejected:
    """Records the chain cannot turn into a call: they go to the dead-letter topic at ``stage``."""

    stage: DeadLetterStage
    reason: str
    items: list[dict[str, Any]]  # the dead letter's ``records`` (outcomes.dead_letters.record_item / reference_item)
    sources: list[SourceRef]

    @property
    def key(self) -> bytes | None:
        """The Kafka key the dead letter is written with: its first record's."""
        return self.sources[0].key


def _resumed_job(prepared: Prepared) -> Hashable:
    """The job a record was in before a restart (None: none). A call that follows a job carries only that job's
    records: a ticket's records not in it wait behind it in its lane, so none overtakes one still in the job."""
    return prepared.record.extra.get(RESUME_JOB)


class RecordChain:
    """One destination's chain from consumed bytes to rendered calls.

    Records go in with :meth:`take_in`; calls come out with :meth:`take` (the pipeline, once the
    account's dispatcher gives the call its token) or :meth:`take_ready` (``preview``: every call that may
    go now, in the order they became due). ``open`` is the open batches, for the caller's scheduling.
    """

    def __init__(self, dest: Destination, max_record_bytes: int, renderer: RequestRenderer | None = None) -> None:
        self.dest = dest
        self.renderer = renderer if renderer is not None else build_renderer(dest)
        self.max_record_bytes = max_record_bytes
        batching = dest.batching
        keyed = batching.enabled and bool(batching.attributes)
        # Keyed batches keep per-key order, and so do unbatched records with a Kafka key.
        self.open: OpenBatches[Prepared] = OpenBatches(
            batch_policy(dest) if batching.enabled else None,
            ordered=keyed or not batching.enabled,
            fill=batching.fill_while_waiting,
        )
        # delivery.coalesce: jobs: waiting calls of several tickets asking the same change become one Gorgias job
        template = dest.endpoint.template
        self.coalescer = (JobCoalescer(template, self._peek, dest.delivery.coalesce_max_tickets,
                                       dest.delivery.coalesce_gather_s)
                          if dest.delivery.coalesce is Coalesce.JOBS and template is not None else None)

    # -- records in ----------------------------------------------------------------------------------

    def take_in(self, value: bytes | None, source: SourceRef, headers: Headers, now: float,
                possibly_delivered: bool = False, created_job: int | None = None) -> Rejected | None:
        """Decode, prepare and group one record; a record that cannot go comes back as :class:`Rejected`.

        ``possibly_delivered``: a previous owner may have sent it before it died (for duplicate checks);
        ``created_job``: the Gorgias job it created for it then (followed instead of created again).
        """
        try:
            record = decode_record(value, source, headers, self.max_record_bytes)
        except DecodeError as exc:
            if value is not None and len(value) > self.max_record_bytes:  # too large to carry: named by its hash
                item = reference_item(source, value, headers)
            else:
                item = record_item(None, source, raw=value, headers=headers)
            return Rejected(DeadLetterStage.DECODE, exc.reason, [item], [source])
        if possibly_delivered:
            record.extra[POSSIBLY_DELIVERED] = True
        if created_job is not None:
            record.extra[RESUME_JOB] = created_job
            self.open.apart = _resumed_job  # from now on a key's batch is cut where its resumed job changes
        try:
            prepared = self.renderer.prepare(record)
        except RenderError as exc:
            return Rejected(DeadLetterStage.RENDER, exc.reason, [record_item(record, source)], [source])
        if self.open.grouper is None:
            self.open.add_single(prepared, source.key, len(prepared.body_bytes), now)
        else:
            self.open.add(prepared, prepared.key, len(prepared.body_bytes), now)
        return None

    # -- calls out -----------------------------------------------------------------------------------

    def take(self, queued: QueuedCall[Prepared]) -> RenderedCall | Rejected:
        """Take ``queued`` out of the open batches and render its request from what it holds now.

        A :class:`RenderedCall` keeps its key's lane busy until :meth:`done`; a :class:`Rejected` one has
        released it already.
        """
        taken = self.open.take(queued)
        items = taken.items
        try:
            if self.open.grouper is None:
                return RenderedCall(items, self.renderer.render_one(items[0]), queued=taken)
            request = self.renderer.render_batch(taken.key, items)
        except RenderError as exc:
            self.open.done(taken)
            sources = [p.record.source for p in items]
            return Rejected(DeadLetterStage.RENDER, exc.reason, [record_item(p.record, p.record.source) for p in items],
                            sources)
        return RenderedCall(items, request, taken.as_batch(), taken)

    def candidates(self) -> Iterator[QueuedCall[Prepared] | JobGroup | Riding]:
        """What may take the account's next token: every call that may start now (in the order they became
        ready), then, when coalescing into jobs, the groups of those calls that one job can make; a call with
        a part in a group is offered as :class:`Riding` (it goes with the group when calls wait)."""
        if self.coalescer is None:
            yield from self.open.eligible()
            return
        groups = self.coalescer.groups(self.open.eligible())
        riding = {call.cid for group in groups for call in group.calls}
        for call in self.open.eligible():
            yield Riding(call) if call.cid in riding else call
        yield from groups

    def take_job(self, group: JobGroup) -> RenderedCall:
        """Take every call of ``group`` out of the open batches (of a call in parts, the part asking the group's
        change: the rest keeps waiting): one call, the job over their tickets. Their lanes stay busy until
        :meth:`done`."""
        assert self.coalescer is not None
        items: list[Prepared] = []
        members: list[QueuedCall[Prepared]] = []
        for queued in group.calls:
            indices = self.coalescer.part_of(queued, group.change)
            taken = self.open.take(queued) if indices is None else self.open.split(queued, indices)
            items.extend(taken.items)
            members.append(taken)
        return RenderedCall(items, group.request(), members=tuple(members))

    def _peek(self, queued: QueuedCall[Prepared], items: list[Prepared]) -> RenderedRequest | None:
        """The request ``queued`` would make with ``items`` (some or all of its records) if it were taken now
        (None when it cannot be rendered)."""
        try:
            if self.open.grouper is None:
                return self.renderer.render_one(items[0])
            return self.renderer.render_batch(queued.key, items)
        except RenderError:
            return None

    def done(self, call: RenderedCall, now: float | None = None) -> None:
        """``call`` is off the wire (a job: ended): the next call of its key (of each of its keys) may go, from
        ``now`` on (None: counted from when it was due)."""
        if call.queued is not None:
            self.open.done(call.queued, now)
        for member in call.members:
            self.open.done(member, now)

    def take_ready(self) -> Iterator[RenderedCall | Rejected]:
        """Every call that may go now, taken, rendered and released at once, oldest first (for previews)."""
        while self.open.has_eligible:
            first = min(self.open.eligible(), key=lambda c: c.cid)
            made = self.take(first)
            if isinstance(made, RenderedCall):
                self.done(made)
            yield made

    def flush(self, now: float) -> None:
        """Every open batch becomes a due call now, whatever its window (previews: the input has ended)."""
        self.open.flush_grouped(now)
