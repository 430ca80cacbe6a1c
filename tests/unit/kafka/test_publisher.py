"""Outcome records through Kafka trouble: transient errors are waited out, a size refusal is fitted
tighter, anything else is raised (a stand-in producer plays Kafka's answers)."""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

import orjson
import pytest
from aiokafka.errors import (
    InvalidProducerEpoch,
    KafkaConnectionError,
    MessageSizeTooLargeError,
    OutOfOrderSequenceNumber,
    ProducerFenced,
    TopicAuthorizationFailedError,
    UnknownProducerId,
)
from aiokafka.structs import RecordMetadata

from worker.kafka.publisher import SMALLEST_LIMIT, Publisher


class ScriptedProducer:
    """Answers each send with the next scripted error, then with success."""

    def __init__(self, errors: list[Exception]) -> None:
        self.errors = errors
        self.sent: list[bytes] = []
        self.keys: list[bytes | None] = []

    async def send(self, topic: str, value: bytes, key: bytes | None = None,
                   headers: list[tuple[str, bytes]] | None = None) -> asyncio.Future[RecordMetadata]:
        self.sent.append(value)
        self.keys.append(key)
        future: asyncio.Future[RecordMetadata] = asyncio.get_running_loop().create_future()
        if self.errors:
            future.set_exception(self.errors.pop(0))
        else:
            future.set_result(RecordMetadata(topic, 0, None, len(self.sent) - 1, -1, -1, None))  # type: ignore[arg-type]
        return future


def publisher(producer: ScriptedProducer, **limits: int) -> tuple[Publisher, list[tuple[float, bool]]]:
    """A publisher on ``producer``, and the pauses it takes with whether it called itself healthy then."""
    pauses: list[tuple[float, bool]] = []

    async def sleep(seconds: float) -> None:
        pauses.append((seconds, pub.healthy))

    pub = Publisher(producer, dict(limits), sleep=sleep)  # type: ignore[arg-type]
    return pub, pauses


async def test_an_unreachable_broker_is_waited_out_and_reported_meanwhile() -> None:
    producer = ScriptedProducer([KafkaConnectionError("down"), KafkaConnectionError("down")])
    pub, pauses = publisher(producer)
    meta = await pub.publish("resp", {"a": 1}, b"k", [])
    assert meta.offset == 2 and len(producer.sent) == 3
    assert pauses == [(0.5, False), (1.0, False)]
    assert pub.healthy and pub.trouble is None


async def test_a_size_refusal_is_fitted_tighter_and_sent_again() -> None:
    producer = ScriptedProducer([MessageSizeTooLargeError()])
    pub, _ = publisher(producer, resp=200_000)
    doc: dict[str, Any] = {"request": {"body": "x" * 150_000}, "records": [], "reduced": None}
    await pub.publish("resp", doc, None, [])
    first, second = producer.sent
    assert len(first) > 150_000 and len(second) < SMALLEST_LIMIT * 4
    assert orjson.loads(second)["reduced"]["omitted"] == ["request.body"]


async def test_an_error_a_retry_cannot_cure_is_raised() -> None:
    pub, _ = publisher(ScriptedProducer([TopicAuthorizationFailedError()]))
    with pytest.raises(TopicAuthorizationFailedError):
        await pub.publish("resp", {"a": 1}, None, [])
    assert pub.healthy


async def test_a_huge_source_key_is_replaced_by_its_hash_on_the_outcome_record() -> None:
    producer = ScriptedProducer([])
    pub, _ = publisher(producer)
    huge = b"k" * 2_000_000
    await pub.publish("resp", {"a": 1}, huge, [])
    await pub.publish("resp", {"a": 1}, b"short", [])
    assert producer.keys == [b"sha256:" + hashlib.sha256(huge).hexdigest().encode(), b"short"]


class PerTopicProducer(ScriptedProducer):
    """Fails each topic's first sends as scripted for that topic."""

    def __init__(self, failures: dict[str, int]) -> None:
        super().__init__([])
        self.failures = dict(failures)

    async def send(self, topic: str, value: bytes, key: bytes | None = None,
                   headers: list[tuple[str, bytes]] | None = None) -> asyncio.Future[RecordMetadata]:
        if self.failures.get(topic, 0) > 0:
            self.failures[topic] -= 1
            self.errors = [KafkaConnectionError(f"{topic} down")]
        return await super().send(topic, value, key, headers)


async def test_the_publisher_is_healthy_again_only_when_every_waiting_record_is_written() -> None:
    producer = PerTopicProducer({"short": 1, "long": 3})

    async def sleep(seconds: float) -> None:
        await asyncio.sleep(0)  # lets the other record try meanwhile

    pub = Publisher(producer, {}, sleep=sleep)  # type: ignore[arg-type]
    long = asyncio.create_task(pub.publish("long", {"a": 1}, None, []))
    await pub.publish("short", {"a": 2}, None, [])
    assert not long.done()
    assert not pub.healthy and pub.trouble == "cannot write to long: KafkaConnectionError: long down"
    await long
    assert pub.healthy and pub.trouble is None


async def test_trouble_is_logged_once_per_interval(caplog: pytest.LogCaptureFixture) -> None:
    producer = ScriptedProducer([KafkaConnectionError("down")] * 4)
    now = iter([0.0, 10.0, 29.0, 31.0])
    pub = Publisher(producer, {}, clock=lambda: next(now), sleep=lambda s: asyncio.sleep(0))  # type: ignore[arg-type]
    with caplog.at_level("WARNING", logger="worker.kafka.publisher"):
        await pub.publish("resp", {"a": 1}, None, [])
    logged = [r.getMessage().split(";")[0] for r in caplog.records]
    assert logged == ["cannot write to resp: KafkaConnectionError: down"] * 2  # at 0 s and 31 s


def test_the_room_for_a_document_leaves_out_its_key_and_headers_but_never_goes_below_the_floor() -> None:
    pub = Publisher(ScriptedProducer([]), {"resp": 100_000})  # type: ignore[arg-type]
    assert pub.limit_for("resp", b"key", [("destination", b"d")]) == 100_000 - 3 - len("destination") - 1
    assert pub.limit_for("resp", b"k" * 200_000, []) == SMALLEST_LIMIT
    assert pub.limit_for("other", None, []) == pub.default_limit


class StoppableProducer(ScriptedProducer):
    """A scripted producer that knows whether it was stopped."""

    def __init__(self, errors: list[Exception]) -> None:
        super().__init__(errors)
        self.stopped = False

    async def stop(self) -> None:
        self.stopped = True


async def test_a_refused_producer_state_brings_a_new_producer_and_the_records_are_sent_again() -> None:
    old = StoppableProducer([OutOfOrderSequenceNumber(), OutOfOrderSequenceNumber()])
    new = StoppableProducer([])
    made: list[StoppableProducer] = []

    async def renew() -> Any:
        made.append(new)
        return new

    pub = Publisher(old, {}, renew=renew)  # type: ignore[arg-type]
    first = asyncio.create_task(pub.publish("resp", {"event_id": "a"}, b"k", []))
    second = asyncio.create_task(pub.publish("resp", {"event_id": "b"}, b"k", []))
    await asyncio.gather(first, second)
    assert made == [new] and pub.renewals == 1  # both saw the old producer fail: one new producer
    assert sorted(orjson.loads(v)["event_id"] for v in new.sent) == ["a", "b"]  # each written again, same id
    await pub.close()
    assert old.stopped and new.stopped and pub.healthy


@pytest.mark.parametrize("refusal", [UnknownProducerId, ProducerFenced, InvalidProducerEpoch])
async def test_without_a_way_to_renew_a_refused_state_is_raised(refusal: type[Exception]) -> None:
    pub, _ = publisher(ScriptedProducer([refusal()]))
    with pytest.raises(refusal):
        await pub.publish("resp", {"a": 1}, None, [])


async def test_a_new_producer_that_cannot_start_yet_is_waited_for_like_an_outage() -> None:
    old = StoppableProducer([UnknownProducerId()] * 3)
    new = StoppableProducer([])
    attempts = iter([KafkaConnectionError("down"), None])

    async def renew() -> Any:
        failure = next(attempts)
        if failure is not None:
            raise failure
        return new

    pauses: list[float] = []

    async def sleep(seconds: float) -> None:
        pauses.append(seconds)

    pub = Publisher(old, {}, sleep=sleep, renew=renew)  # type: ignore[arg-type]
    meta = await pub.publish("resp", {"a": 1}, None, [])
    assert meta.offset == 0 and len(new.sent) == 1 and pauses == [0.5]
