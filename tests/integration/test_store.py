"""The compacted store through the real broker: read to the end, followed, versioned writes, one winner
of concurrent creates, unreadable values kept aside, other deployments' keys ignored."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import orjson
import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from tests.support.kafka_io import produce_raw, wait_for
from worker.core.config.deployment import Deployment
from worker.core.config.kafka import KafkaSettings
from worker.core.store.writes import ABSENT, EntryExists, Expect, NoSuchEntry, StaleVersion
from worker.kafka.store import CompactedStore, StoreUnavailable

pytestmark = pytest.mark.integration

StoreFactory = Callable[..., Awaitable[CompactedStore]]


@pytest.fixture
async def open_store(kafka_bootstrap: str, unique_topic: str) -> AsyncIterator[StoreFactory]:
    """Start stores (one per "replica") on one topic; stopped at the end of the test."""
    stores: list[CompactedStore] = []

    async def start(deployment: str = "prod", on_change: Callable[[str], None] | None = None) -> CompactedStore:
        settings = KafkaSettings(bootstrap_servers=kafka_bootstrap)
        store = CompactedStore(settings, unique_topic, Deployment(deployment), "kafka.destinations_topic", on_change)
        stores.append(store)
        await store.start()
        return store

    yield start
    for store in stores:
        await store.stop()


async def test_writes_reach_every_replica_and_a_new_replica_reads_the_current_state(open_store: StoreFactory) -> None:
    changes: list[str] = []
    first = await open_store()
    second = await open_store(on_change=changes.append)
    written = await first.put("tickets", {"batch": 1}, ABSENT)
    assert (written.version, first.entries["tickets"].document) == (1, {"batch": 1})  # read back before it returns
    assert await wait_for(lambda: "tickets" in second.entries, 10)
    assert changes == ["tickets"]
    await second.put("tickets", {"batch": 2}, Expect(version=1))
    await first.put("fields", {"batch": 9})
    assert await first.delete("fields") == 1
    third = await open_store()  # a replica started now: the latest of each entry, the deleted one gone
    assert {n: (e.version, e.document) for n, e in third.entries.items()} == {"tickets": (2, {"batch": 2})}
    assert await wait_for(lambda: changes == ["tickets", "tickets", "fields", "fields"], 10), changes


async def test_stale_or_missing_expectations_are_refused_and_nothing_is_written(open_store: StoreFactory) -> None:
    store = await open_store()
    await store.put("tickets", {"v": 1}, ABSENT)
    await store.put("tickets", {"v": 2}, Expect(version=1))
    with pytest.raises(StaleVersion, match="at version 2, not 1"):
        await store.put("tickets", {"v": 3}, Expect(version=1))
    with pytest.raises(EntryExists):
        await store.put("tickets", {"v": 3}, ABSENT)
    with pytest.raises(NoSuchEntry):
        await store.delete("other")
    assert (store.entries["tickets"].version, store.entries["tickets"].document) == (2, {"v": 2})
    await store.delete("tickets", Expect(version=2))
    recreated = await store.put("tickets", {"v": 1}, ABSENT)
    assert recreated.version == 3  # continues past the deleted version: an old If-Match cannot match it


async def test_concurrent_creates_of_one_name_on_two_replicas_have_exactly_one_winner(
    open_store: StoreFactory,
) -> None:
    left, right = await open_store(), await open_store()
    for round_ in range(4):
        name = f"dest-{round_}"
        results = await asyncio.gather(left.put(name, {"by": "left"}, ABSENT), right.put(name, {"by": "right"}, ABSENT),
                                        return_exceptions=True)
        wins = [r for r in results if not isinstance(r, BaseException)]
        refusals = [r for r in results if isinstance(r, EntryExists)]
        assert (len(wins), len(refusals)) == (1, 1), results
        await left.sync()
        await right.sync()
        assert left.entries[name] == right.entries[name]
        assert left.entries[name].document == wins[0].document  # type: ignore[union-attr]
    fresh = await open_store()  # what the topic holds agrees with what the replicas saw
    assert {n: e.document for n, e in fresh.entries.items()} == {n: e.document for n, e in left.entries.items()}


async def test_a_value_that_does_not_parse_is_kept_aside_for_its_key_and_can_be_replaced(
    open_store: StoreFactory, kafka_bootstrap: str, unique_topic: str,
) -> None:
    store = await open_store()
    await store.put("good", {"v": 1})
    await produce_raw(kafka_bootstrap, unique_topic, b"prod/bad", b"{written by hand")
    await produce_raw(kafka_bootstrap, unique_topic, b"prod/old", orjson.dumps({"format": 9, "version": 1}))
    assert await wait_for(lambda: len(store.unreadable) == 2, 10)
    assert "not JSON" in store.unreadable["bad"]
    assert "format 9" in store.unreadable["old"]
    assert set(store.entries) == {"good"}
    with pytest.raises(EntryExists):  # it exists, unreadable: replace or delete it, not create it again
        await store.put("bad", {"v": 1}, ABSENT)
    fixed = await store.put("bad", {"v": 1})
    assert fixed.version == 1 and "bad" not in store.unreadable
    await store.delete("old")
    assert store.unreadable == {}


async def test_another_deployments_entries_are_not_seen(open_store: StoreFactory) -> None:
    prod, staging = await open_store("prod"), await open_store("staging")
    await prod.put("tickets", {"v": "prod"})
    await staging.put("tickets", {"v": "staging"}, ABSENT)  # the same name: its own entry
    await prod.sync()
    assert prod.entries["tickets"].document == {"v": "prod"}
    assert staging.entries["tickets"].document == {"v": "staging"}


async def test_an_existing_topic_that_is_not_compacted_is_refused_naming_the_setting(
    kafka_bootstrap: str, unique_topic: str,
) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(unique_topic, 1, 1, topic_configs={"cleanup.policy": "delete"})])
    finally:
        await admin.close()
    store = CompactedStore(KafkaSettings(bootstrap_servers=kafka_bootstrap), unique_topic, Deployment("prod"),
                           "kafka.destinations_topic")
    with pytest.raises(StoreUnavailable) as refused:
        await store.start()
    await store.stop()
    message = str(refused.value)
    assert message.startswith(f"kafka.destinations_topic: topic {unique_topic} has cleanup.policy=delete")
    assert "\n" not in message
