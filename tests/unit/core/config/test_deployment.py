"""A deployment's scope on a shared cluster: its store topics, its keys, and what it reads as its own."""

from __future__ import annotations

import pytest

from worker.core.config.base import ConfigError
from worker.core.config.deployment import Deployment, Store, is_unscoped
from worker.core.config.kafka import KafkaSettings
from worker.core.config.worker_config import parse_config


def test_store_topics_default_to_the_deployment_name() -> None:
    prod = Deployment("prod")
    assert [prod.topic(s) for s in Store] == [
        "prod.control", "prod.intents", "prod.destinations", "prod.credentials", "prod.demand"]


def test_a_deployment_reads_only_the_keys_it_wrote() -> None:
    prod, staging = Deployment("prod"), Deployment("prod-2")
    assert prod.key("ticket-tags") == b"prod/ticket-tags"
    assert prod.entry(prod.key("ticket-tags")) == "ticket-tags"
    assert prod.entry(staging.key("ticket-tags")) is None  # "prod-2/..." does not start with "prod/"
    assert staging.entry(prod.key("ticket-tags")) is None
    assert prod.entry(b"ticket-tags") is None  # unscoped (written before deployments)
    assert prod.entry(b"prod/") is None and prod.entry(None) is None
    assert prod.key(b"\x00raw") == b"prod/\x00raw" and prod.key(None) == b"prod/"


def test_unscoped_keys_are_those_without_a_deployment() -> None:
    assert is_unscoped(b"ticket-tags")
    assert not is_unscoped(b"prod/ticket-tags") and not is_unscoped(None)


def test_the_deployment_is_the_group_id_unless_named() -> None:
    default = KafkaSettings()
    assert default.scope == Deployment("gorgias-worker")
    assert default.store_topic(Store.CONTROL) == "gorgias-worker.control"
    assert default.store_topic(Store.INTENTS) == "gorgias-worker.intents"
    named = KafkaSettings(group_id="g", deployment="eu-prod")
    assert named.store_topic(Store.CONTROL) == "eu-prod.control"
    pinned = KafkaSettings(group_id="g", control_topic="ops.control")
    assert pinned.store_topic(Store.CONTROL) == "ops.control" and pinned.store_topic(Store.INTENTS) == "g.intents"


def test_a_group_id_that_cannot_name_topics_asks_for_a_deployment() -> None:
    doc = {"kafka": {"group_id": "team a/worker"}, "destinations": []}
    with pytest.raises(ConfigError) as caught:
        parse_config(doc)
    assert caught.value.problems[0] == (
        "kafka: group_id 'team a/worker' cannot name the deployment's topics (letters, digits, '.', '_', '-', "
        "at most 200): set kafka.deployment")
    assert KafkaSettings(group_id="team a/worker", deployment="team-a").scope == Deployment("team-a")


def test_a_deployment_name_must_fit_in_topic_names() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config({"kafka": {"deployment": "a/b"}, "destinations": []})
    assert caught.value.problems[0].startswith("kafka.deployment: has an invalid format (got 'a/b'")
