"""A call in the making: the prepared records it carries, the request they became, and the batch it closed."""

from __future__ import annotations

from dataclasses import dataclass

from worker.core.grouping.batching import Batch
from worker.core.grouping.open_batches import QueuedCall
from worker.core.records.record import SourceRef
from worker.core.requests.rendering import Prepared
from worker.core.requests.request import RenderedRequest

__all__ = ["RenderedCall"]


@dataclass(slots=True)
class RenderedCall:
    """One API call in the making: the records it carries and the request they became."""

    items: list[Prepared]
    request: RenderedRequest
    batch: Batch[Prepared] | None = None  # batched destinations: the batch it closed (for the response event)
    queued: QueuedCall[Prepared] | None = None  # its place in the open batches, released by RecordChain.done
    # a Gorgias job made of several waiting calls (delivery.coalesce: jobs): their lanes, released by RecordChain.done
    members: tuple[QueuedCall[Prepared], ...] = ()

    @property
    def coalesced(self) -> bool:
        """Whether the call is a Gorgias job standing for several per-ticket calls."""
        return bool(self.members)

    @property
    def sources(self) -> list[SourceRef]:
        return [p.record.source for p in self.items]
