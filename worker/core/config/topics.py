"""The topics the worker writes, by kind: how each is created and what an existing one must be.

One table for every kind, so that the worker (which creates what is missing), the operations guide and
the Helm chart's Strimzi ``KafkaTopic`` objects declare the same topics the same way. Outcome topics
(responses, dead letters) and intent marks are logs: ``cleanup.policy=delete`` with a retention. The stores
(control, destinations, credentials, demand) keep the latest entry per key for ever: ``compact``. A topic
of the wrong kind is refused at start, not used: compacting response events would drop every event of a
key but the last; deleting store entries with age would forget pauses and saved destinations.

The replication factor and ``min.insync.replicas`` are settings (``kafka.replication_factor``,
``kafka.min_insync_replicas``); by default the cluster decides (its ``default.replication.factor``,
its ``min.insync.replicas``).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

DAY_MS = 24 * 3600 * 1000


class TopicKind(StrEnum):
    RESPONSES = "responses"
    DEAD_LETTERS = "dead-letters"
    INTENTS = "intents"
    CONTROL = "control"
    DESTINATIONS = "destinations"
    CREDENTIALS = "credentials"
    DEMAND = "demand"


@dataclass(frozen=True)
class TopicSpec:
    """How a topic of one kind is created: partitions, cleanup policy, retention (None: the cluster's)."""

    kind: str  # a TopicKind, or what a tool's own topic is for
    setting: str  # the setting that names such a topic
    partitions: int
    compacted: bool
    retention_ms: int | None

    @property
    def cleanup_policy(self) -> str:
        return "compact" if self.compacted else "delete"

    def configs(self, min_insync_replicas: int | None = None) -> dict[str, str]:
        """The topic configs to create it with."""
        out = {"cleanup.policy": self.cleanup_policy}
        if self.retention_ms is not None:
            out["retention.ms"] = str(self.retention_ms)
        if min_insync_replicas is not None:
            out["min.insync.replicas"] = str(min_insync_replicas)
        return out

    def refusal(self, topic: str, policy: str) -> str | None:
        """Why an existing ``topic`` with ``cleanup.policy=policy`` cannot serve as this kind (None: it can)."""
        policies = {p.strip() for p in policy.split(",")}
        if self.compacted and policies == {"compact"}:
            return None
        if not self.compacted and "compact" not in policies:
            return None
        harm = ("would delete its entries with age" if self.compacted
                else "would drop every record of a key but the last")
        return (f"{self.setting}: topic {topic} has cleanup.policy={policy}, which {harm}; it must be "
                f"{self.cleanup_policy} (kafka-configs.sh --alter --entity-type topics --entity-name {topic} "
                f"--add-config cleanup.policy={self.cleanup_policy}), or name another topic in {self.setting}")


# A source topic a tool creates to try things (`gorgias-worker try`, the demo): the cluster's retention.
SOURCE_SPEC = TopicSpec("source", "destinations[].source_topics", 3, False, None)

TOPIC_SPECS: dict[TopicKind, TopicSpec] = {TopicKind(spec.kind): spec for spec in (
    TopicSpec(TopicKind.RESPONSES, "destinations[].response_webhook.topic", 3, False, 7 * DAY_MS),
    TopicSpec(TopicKind.DEAD_LETTERS, "destinations[].dead_letter_topic", 3, False, 30 * DAY_MS),
    TopicSpec(TopicKind.INTENTS, "kafka.deployment", 3, False, 7 * DAY_MS),
    TopicSpec(TopicKind.CONTROL, "kafka.control_topic", 1, True, None),
    TopicSpec(TopicKind.DESTINATIONS, "kafka.destinations_topic", 1, True, None),
    TopicSpec(TopicKind.CREDENTIALS, "kafka.credentials_topic", 1, True, None),
    TopicSpec(TopicKind.DEMAND, "kafka.demand_topic", 1, True, None),
)}
