"""Topics fit for production: created with the cluster's replication factor (or the configured one) and
the retention of their kind; a needed topic of the wrong kind stops the start with one line."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from tests.support.processes import WorkerProcess
from tests.support.scenario import Scenario
from worker.core.config.kafka import KafkaSettings
from worker.core.config.topics import TopicKind
from worker.kafka.clients import TopicMisconfigured, ensure_topic

pytestmark = pytest.mark.integration


async def describe(bootstrap: str, topic: str) -> tuple[int, dict[str, str]]:
    """(replicas per partition, the topic's configs) as the broker has them."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        (info,) = await admin.describe_topics([topic])
        (response,) = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic, None)])
    finally:
        await admin.close()
    configs = {entry[0]: entry[1] for entry in response.resources[0][4]}
    return len(info["partitions"][0]["replicas"]), configs


async def test_created_topics_take_the_cluster_s_replication_factor_and_their_kind_s_retention(
    kafka_bootstrap: str,
) -> None:
    run = uuid.uuid4().hex[:8]
    plain = KafkaSettings(bootstrap_servers=kafka_bootstrap)
    assert await ensure_topic(plain, f"resp-{run}", TopicKind.RESPONSES) == [0, 1, 2]
    replicas, configs = await describe(kafka_bootstrap, f"resp-{run}")
    assert replicas == 1  # the test broker's default.replication.factor (one node)
    assert configs["cleanup.policy"] == "delete" and configs["retention.ms"] == str(7 * 24 * 3600 * 1000)

    strict = KafkaSettings(bootstrap_servers=kafka_bootstrap, replication_factor=1, min_insync_replicas=1)
    assert await ensure_topic(strict, f"ctl-{run}", TopicKind.CONTROL) == [0]
    _, configs = await describe(kafka_bootstrap, f"ctl-{run}")
    assert configs["cleanup.policy"] == "compact" and configs["min.insync.replicas"] == "1"


async def test_more_replicas_than_brokers_is_one_line_naming_the_setting(kafka_bootstrap: str) -> None:
    settings = KafkaSettings(bootstrap_servers=kafka_bootstrap, replication_factor=3)
    with pytest.raises(TopicMisconfigured) as refused:
        await ensure_topic(settings, f"resp-{uuid.uuid4().hex[:8]}", TopicKind.RESPONSES)
    assert str(refused.value).startswith("kafka.replication_factor / kafka.min_insync_replicas: Kafka refused")
    assert "\n" not in str(refused.value)


async def test_a_compacted_response_topic_stops_the_start_with_one_line(scenario: Scenario, tmp_path: Path) -> None:
    s = scenario
    await s.create_topics()
    admin = AIOKafkaAdminClient(bootstrap_servers=s.bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(s.responses, 1, 1, topic_configs={"cleanup.policy": "compact"})])
    finally:
        await admin.close()
    worker = WorkerProcess(s.write(tmp_path, s.config()), s.web_port).start(wait_ready=False)
    try:
        assert worker.wait(timeout=90) == 1
    finally:
        worker.stop()
    output = worker.output()
    errors = [line for line in output.splitlines() if "cannot start" in line]
    assert len(errors) == 1 and "Traceback" not in output, output[-3000:]
    assert (f"destinations[].response_webhook.topic: topic {s.responses} has cleanup.policy=compact"
            in errors[0])
