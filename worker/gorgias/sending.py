"""Sending one destination's call to Gorgias: the duplicate check of a create template, the intent mark,
then the delivery itself (a job template's call follows its Gorgias job until the job ends)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from worker.core.config.worker_config import Destination
from worker.core.outcomes.call_outcome import CallOutcome
from worker.core.requests.call import RenderedCall
from worker.core.requests.jobs import created_jobs
from worker.gorgias.calls import AttemptTokens, Holds
from worker.gorgias.dedupe import Deduper, hook_for
from worker.gorgias.delivery import DeliveryService
from worker.gorgias.jobs import job_polling_for

IntentMark = Callable[[int | None], Awaitable[None]]
"""Records that a call's records are about to reach Gorgias (None), or that Gorgias created job N for
them; it returns once the mark is on Kafka."""


class DestinationSender:
    """Sends the calls of one destination through the account's delivery service."""

    def __init__(self, dest: Destination, delivery: DeliveryService) -> None:
        self.dest = dest
        self.delivery = delivery
        self._job_polling = job_polling_for(dest)  # a job template's calls follow their Gorgias job

    async def send(self, call: RenderedCall, tokens: AttemptTokens | None, mark: IntentMark | None,
                   holds: Holds | None = None) -> CallOutcome:
        """Send ``call`` (its first token is taken) and return its outcome. A create template first looks
        for the object a previous attempt may have created, and marks its intent before the create goes.
        With ``holds``, a refused credential or route holds the call (:mod:`worker.gorgias.holds`)."""
        dedupe = hook_for(self.dest, self.delivery)  # duplicate check of create templates, else None
        if dedupe is not None:
            found = await dedupe.before_first_attempt(call.request, call.items, holds)
            if found is not None:
                return found
            if mark is not None:
                await mark(None)
        return await self._deliver(call, tokens, mark, dedupe, holds)

    async def _deliver(self, call: RenderedCall, tokens: AttemptTokens | None, mark: IntentMark | None,
                       dedupe: Deduper | None, holds: Holds | None) -> CallOutcome:
        """Deliver the call; a job template's call then follows its job, the job's id marked on the intent
        topic first (a restarted worker follows that job instead of creating another)."""
        dest = self.dest
        if self._job_polling is None:
            return await self.delivery.call(call.request, dest.credential, dest.delivery,
                                            unknown_outcome_hook=dedupe, tokens=tokens, holds=holds)

        async def created(job_id: int) -> None:
            if mark is not None:
                await mark(job_id)

        return await self.delivery.jobs.deliver(call.request, dest.credential, dest.delivery, self._job_polling,
                                                tokens=tokens, created=created,
                                                resume=created_jobs(p.record for p in call.items), holds=holds)
