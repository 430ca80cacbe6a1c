"""The topic table: how each kind of topic is created, and which existing topics are refused."""

from __future__ import annotations

import pytest

from worker.core.config.base import ConfigError
from worker.core.config.deployment import Store
from worker.core.config.topics import DAY_MS, TOPIC_SPECS, TopicKind
from worker.core.config.worker_config import parse_config


def test_every_store_is_compacted_and_every_log_has_a_retention() -> None:
    assert {s.value for s in Store} <= {k.value for k in TopicKind}  # every store of a deployment has a spec
    for kind, spec in TOPIC_SPECS.items():
        if kind in (TopicKind.RESPONSES, TopicKind.DEAD_LETTERS, TopicKind.INTENTS):
            assert spec.configs() == {"cleanup.policy": "delete", "retention.ms": str(spec.retention_ms)}
        else:
            assert spec.configs() == {"cleanup.policy": "compact"} and spec.partitions == 1
    assert TOPIC_SPECS[TopicKind.DEAD_LETTERS].retention_ms == 30 * DAY_MS  # time to fix and replay
    assert TOPIC_SPECS[TopicKind.RESPONSES].configs(min_insync_replicas=2)["min.insync.replicas"] == "2"


@pytest.mark.parametrize(("kind", "policy", "refused"), [
    (TopicKind.RESPONSES, "delete", False),
    (TopicKind.RESPONSES, "compact", True),  # would keep one event per key
    (TopicKind.RESPONSES, "compact,delete", True),
    (TopicKind.CONTROL, "compact", False),
    (TopicKind.CONTROL, "delete", True),  # would forget pauses with age
    (TopicKind.CONTROL, "compact,delete", True),
    (TopicKind.INTENTS, "delete", False),
])
def test_an_existing_topic_of_the_wrong_kind_is_refused_naming_the_setting(
    kind: TopicKind, policy: str, refused: bool
) -> None:
    problem = TOPIC_SPECS[kind].refusal("t", policy)
    assert (problem is not None) == refused
    if problem is not None:
        setting = TOPIC_SPECS[kind].setting
        assert problem.startswith(f"{setting}: topic t has cleanup.policy={policy}")
        assert "\n" not in problem and "--add-config cleanup.policy=" in problem


def test_min_insync_replicas_cannot_exceed_the_replication_factor() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config({"kafka": {"replication_factor": 2, "min_insync_replicas": 3}, "destinations": []})
    assert "min_insync_replicas (3) cannot exceed replication_factor (2)" in caught.value.problems[0]
