"""How records travel: batching into calls, delivering them (timeouts, retries, concurrency), and
the response topic that carries every call's outcome."""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field, field_validator, model_validator

from worker.core.config.base import TOPIC_PATTERN, Model
from worker.core.grouping.batching import GroupingAlgorithm


class BatchingSettings(Model):
    """Record batching: several records in one API call, grouped by an algorithm within windows."""

    enabled: bool = Field(default=False, description="Several records in one call; false: one call per record.")
    batch_size: int = Field(default=100, ge=1, le=10_000, description="Most records in one call.")
    algorithm: GroupingAlgorithm = Field(
        default=GroupingAlgorithm.ARRIVAL_ORDER, description="How records are grouped into batches (see Batching).",
    )
    attributes: list[str] = Field(
        default_factory=list, description="Grouping key attributes (dotted paths) for keyed algorithms."
    )
    max_wait_ms: int = Field(default=2000, ge=1, description="arrival_order/by_attribute: longest a batch waits.")
    window_ms: int = Field(default=10_000, ge=1, description="tumbling_window: window size, aligned to the clock.")
    gap_ms: int = Field(default=5000, ge=1, description="session_window: inactivity gap that ends a session.")
    max_session_ms: int | None = Field(default=None, ge=1, description="session_window: longest session.")
    max_bytes: int = Field(default=1_000_000, ge=64, description="Largest request body of a batch, in bytes.")
    wrap_key: str | None = Field(
        default=None, min_length=1, description="Send {wrap_key: [...]} instead of a bare JSON array."
    )
    fill_while_waiting: bool = Field(
        default=True,
        description=(
            "A due batch that waits (for its key's previous call, a call slot or the account's budget) keeps "
            "taking its key's records up to batch_size/max_bytes. false: seal each batch at its window."
        ),
    )

    @model_validator(mode="after")
    def _attributes_needed(self) -> BatchingSettings:
        keyed = (GroupingAlgorithm.BY_ATTRIBUTE, GroupingAlgorithm.SESSION_WINDOW)
        if self.enabled and self.algorithm in keyed and not self.attributes:
            raise ValueError(f"algorithm {self.algorithm.value} needs `attributes` (e.g. [ticket_id])")
        if self.algorithm is GroupingAlgorithm.ARRIVAL_ORDER and self.attributes:
            raise ValueError("arrival_order does not group by attributes; use by_attribute or drop `attributes`")
        return self

    @property
    def keyed(self) -> bool:
        """Whether batches are grouped by the values of ``attributes``: by_attribute, session_window, and a
        tumbling_window given attributes. Calls of one key are then sent one after another."""
        if not self.enabled or self.algorithm is GroupingAlgorithm.ARRIVAL_ORDER:
            return False
        return self.algorithm is not GroupingAlgorithm.TUMBLING_WINDOW or bool(self.attributes)


# Each algorithm's own settings of ``batching``, besides batch_size, max_bytes and the others every algorithm
# reads (the console shows these when the algorithm is chosen).
ALGORITHM_SETTINGS: dict[GroupingAlgorithm, tuple[str, ...]] = {
    GroupingAlgorithm.ARRIVAL_ORDER: ("max_wait_ms",),
    GroupingAlgorithm.BY_ATTRIBUTE: ("attributes", "max_wait_ms"),
    GroupingAlgorithm.TUMBLING_WINDOW: ("attributes", "window_ms"),
    GroupingAlgorithm.SESSION_WINDOW: ("attributes", "gap_ms", "max_session_ms"),
}


def algorithms() -> list[dict[str, object]]:
    """Every grouping algorithm, in the enum's order: its name, one line about it, its own settings."""
    return [{"name": a.value, "summary": a.summary, "settings": list(ALGORITHM_SETTINGS[a])} for a in GroupingAlgorithm]


# --------------------------------------------------------------------------------------------------
# Delivery, responses


class Coalesce(StrEnum):
    """How calls waiting for the account's budget may be combined beyond what batching does."""

    NONE = "none"  # every call goes as its template makes it (per ticket)
    JOBS = "jobs"  # calls of several tickets asking the same change go as one Gorgias ticket job


class DeliverySettings(Model):
    """Timeouts, retries and concurrency of the calls."""

    connect_timeout_s: float = Field(default=5.0, gt=0, description="Connection timeout of one attempt.")
    timeout_s: float = Field(default=30.0, gt=0, description="Whole-request timeout of one attempt.")
    max_attempts: int = Field(default=8, ge=1, le=100, description="Attempts per call, the first included.")
    max_retry_time_s: float = Field(
        default=300.0, gt=0, description="Retry budget of a call: it gives up retrying after this long.",
    )
    backoff_initial_s: float = Field(
        default=0.5, gt=0, description="First pause before a retry; doubled each time, with full jitter.",
    )
    backoff_max_s: float = Field(default=30.0, gt=0, description="Longest pause before a retry.")
    max_in_flight: int = Field(
        default=16, ge=1, le=1024,
        description="Most calls on the wire at once, across keys: each holds one call slot.",
    )
    max_pending_records: int = Field(
        default=50_000, ge=1,
        description="Back-pressure: consumption pauses above this many records without an outcome and resumes "
        "at half (unbatched: at most 32 per call slot, at least 1000).",
    )
    dead_letter_held_calls: bool = Field(
        default=False,
        description=(
            "Calls held because Gorgias refuses the credential (401) or the credential's user this route (403) "
            "wait until it works again (false, the default). true: once a hold has lasted max_retry_time_s, the "
            "held calls go to the dead-letter topic instead, saying why."
        ),
    )
    coalesce: Coalesce = Field(
        default=Coalesce.NONE,
        description=(
            "jobs: calls waiting for the account's budget that ask the same change of different tickets go as one "
            "Gorgias ticket job (POST /api/jobs) over their ticket_ids; their outcome is the job's, known when "
            "Gorgias has run it (minutes). Templates update_ticket, add_ticket_tags and delete_ticket."
        ),
    )
    coalesce_max_tickets: int = Field(
        default=100, ge=2, le=1000,
        description="coalesce jobs: most tickets in one job (a job of more waits for the next token).",
    )
    coalesce_gather_s: float = Field(
        default=30.0, ge=0, le=3600,
        description=(
            "coalesce jobs: while calls wait for the account's budget, a job of fewer than coalesce_max_tickets "
            "tickets takes a token only once its first ticket has waited this long to join one, gathering more "
            "meanwhile (0: at once); the tokens it leaves go to other calls. Not held when the budget is free."
        ),
    )


class BodyCapture(StrEnum):
    FULL = "full"
    HASH = "hash"
    NONE = "none"


DEFAULT_RESPONSE_HEADERS = (
    "x-gorgias-account-api-call-limit",
    "retry-after",
    "location",
    "x-request-id",
    "content-type",
)


class ResponseWebhookSettings(Model):
    """The response topic: one event per API call, consumed by other systems as a webhook source."""

    enabled: bool = Field(default=True, description="Publish one response event per call.")
    topic: str = Field(
        default="gorgias.responses", pattern=TOPIC_PATTERN, description="Where the response events go.",
    )
    request_body: BodyCapture = Field(
        default=BodyCapture.FULL, description="full: the body; hash: its sha256; none: left out."
    )
    response_headers: list[str] = Field(
        default_factory=lambda: list(DEFAULT_RESPONSE_HEADERS),
        description="Response headers kept in the event (lowercase names).",
    )

    @field_validator("response_headers")
    @classmethod
    def _lower(cls, value: list[str]) -> list[str]:
        return [v.lower() for v in value]
