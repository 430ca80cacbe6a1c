"""Sending one destination's call to Gorgias: the duplicate check of a create template, the intent mark,
then the delivery itself (a job's call follows its Gorgias job until the job ends)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from worker.core.config.delivery import Coalesce
from worker.core.config.worker_config import Destination
from worker.core.outcomes.call_outcome import CallOutcome
from worker.core.requests.call import RenderedCall
from worker.core.requests.jobs import created_jobs
from worker.gorgias.calls import AttemptTokens, Holds
from worker.gorgias.dedupe import Deduper, hook_for
from worker.gorgias.delivery import DeliveryService
from worker.gorgias.jobs import Following, job_polling_for

IntentMark = Callable[[int | None], Awaitable[None]]
"""Records that a call's records are about to reach Gorgias (None), or that Gorgias created job N for
them; it returns once the mark is on Kafka."""


class DestinationSender:
    """Sends the calls of one destination through the account's delivery service."""

    def __init__(self, dest: Destination, delivery: DeliveryService) -> None:
        self.dest = dest
        self.delivery = delivery
        # calls that make Gorgias jobs (a job template's, or jobs coalesced from waiting calls) follow them
        self._job_polling = job_polling_for(dest)
        self._job_template = self._job_polling is not None and dest.delivery.coalesce is not Coalesce.JOBS
        self.watch = delivery.jobs.watch(dest.name) if self._job_polling is not None else None

    async def send(self, call: RenderedCall, tokens: AttemptTokens | None, mark: IntentMark | None,
                   holds: Holds | None = None, following: Following | None = None) -> CallOutcome:
        """Send ``call`` (its first token is taken) and return its outcome. A create template first looks
        for the object a previous attempt may have created, and marks its intent before the create goes.
        With ``holds``, a refused credential or route holds the call (:mod:`worker.gorgias.holds`).
        ``following``: called when a job's call is off the wire and only waits for its job to end."""
        dedupe = hook_for(self.dest, self.delivery)  # duplicate check of create templates, else None
        if dedupe is not None:
            found = await dedupe.before_first_attempt(call.request, call.items, holds)
            if found is not None:
                return found
            if mark is not None:
                await mark(None)
        return await self._deliver(call, tokens, mark, dedupe, holds, following)

    async def _deliver(self, call: RenderedCall, tokens: AttemptTokens | None, mark: IntentMark | None,
                       dedupe: Deduper | None, holds: Holds | None, following: Following | None) -> CallOutcome:
        """Deliver the call; a job's call then follows its job, the job's id marked on the intent topic first
        (a restarted worker follows that job instead of creating another)."""
        dest = self.dest
        polling = self._job_polling
        resume = created_jobs(p.record for p in call.items) if polling is not None else ()
        if polling is None or not (self._job_template or call.coalesced or resume):
            return await self.delivery.call(call.request, dest.credential, dest.delivery,
                                            unknown_outcome_hook=dedupe, tokens=tokens, holds=holds)

        async def created(job_id: int) -> None:
            if mark is not None:
                await mark(job_id)

        return await self.delivery.jobs.deliver(call.request, dest.credential, dest.delivery, polling,
                                                tokens=tokens, created=created, resume=resume, holds=holds,
                                                watch=self.watch, following=following)
