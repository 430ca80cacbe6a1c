"""Back-pressure: a destination stops consuming while too many of its records wait for their outcome.

Consumption pauses once :func:`pending_limit` records are consumed without an outcome and resumes when
half of them are done, so that a slow Gorgias account holds a bounded amount of memory.
"""

from __future__ import annotations

import logging

from worker.core.config.worker_config import Destination
from worker.host import metrics

log = logging.getLogger(__name__)

UNBATCHED_PENDING_PER_SLOT = 32


def pending_limit(dest: Destination) -> int:
    """Above this many records without an outcome, consumption pauses. Unbatched, each pending record is
    a call waiting its turn: a few dozen per call slot keep every slot busy, and more would only hold
    memory. Batched, records must wait out their windows."""
    d = dest.delivery
    if dest.batching.enabled:
        return d.max_pending_records
    return min(d.max_pending_records, max(1000, UNBATCHED_PENDING_PER_SLOT * d.max_in_flight))


class BackPressure:
    """Whether one destination is throttled, from the number of its records without an outcome."""

    def __init__(self, dest: Destination) -> None:
        self.destination = dest.name
        self.limit = pending_limit(dest)
        self.throttled = False
        self._m_pending = metrics.PENDING_RECORDS.labels(dest.name)

    def update(self, pending: int) -> bool:
        """Note ``pending`` records without an outcome; True while consumption must stay paused."""
        self._m_pending.set(pending)
        name, limit = self.destination, self.limit
        if not self.throttled and pending >= limit:
            self.throttled = True
            log.info("destination %s: %d records wait for their outcome (limit %d): consumption paused until "
                     "half of them are done", name, pending, limit, extra={"destination": name})
        elif self.throttled and pending <= limit // 2:
            self.throttled = False
            log.info("destination %s: consumption resumed (%d records wait for their outcome)", name, pending,
                     extra={"destination": name})
        return self.throttled
