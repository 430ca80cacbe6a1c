"""aiokafka clients built from the config: security settings, producer and consumer factories."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from typing import Any, TypeVar

import aiokafka
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import (
    InvalidConfigurationError,
    InvalidReplicationFactorError,
    KafkaError,
    PolicyViolationError,
    TopicAlreadyExistsError,
    for_code,
)
from aiokafka.protocol.metadata import MetadataRequest
from aiokafka.structs import OffsetAndMetadata

from worker.core.config.kafka import KafkaSettings
from worker.core.config.topics import TOPIC_SPECS, TopicKind, TopicSpec
from worker.host.environment import bootstrap_servers, resolve_secret
from worker.host.tls import client_context
from worker.kafka.partitioner import KeyHashPartitioner
from worker.kafka.sasl_check import check_sasl
from worker.kafka.tls_check import check_tls

# Every consumer group of the worker (each destination's and faust's own) notices a dead member within
# this time, so a replacement worker takes its partitions over in seconds rather than a minute. Kafka's
# smallest allowed session timeout is 6 s by default (group.min.session.timeout.ms).
GROUP_SESSION_TIMEOUT_MS = 10_000
GROUP_HEARTBEAT_INTERVAL_MS = 1_000
# How long the worker's long-lived producers and consumers wait before trying a broker again (aiokafka's
# default is 100 ms). Every client keeps a few loops (metadata, fetch, coordinator, sender) that retry at this
# pace while no broker answers: at 100 ms a worker with four destinations spent 4 % of a core on a broker
# outage doing nothing else, at 1 s 2 % (of which faust's own clients, at 100 ms, ~1.3 %). Cost: after a
# leader moves, a fetch or an outcome write is retried up to a second later.
RETRY_BACKOFF_MS = 1_000

log = logging.getLogger(__name__)

# The producer's largest request, and what a record needs on top of its value in a batch (batch and
# record headers, varints) besides its key and headers: outcome documents are fitted below the difference.
MAX_REQUEST_BYTES = 1_048_576
ENVELOPE_HEADROOM = 1024
# Kafka's default max.message.bytes, for a topic whose config cannot be read (no DescribeConfigs ACL).
DEFAULT_TOPIC_MAX_MESSAGE_BYTES = 1_048_588

T = TypeVar("T")


class BrokerUnavailable(Exception):
    """Kafka could not be reached within the time allowed."""


def client_options(settings: KafkaSettings) -> dict[str, Any]:
    """Connection and security keyword arguments shared by producers, consumers and admin clients."""
    opts: dict[str, Any] = {
        "bootstrap_servers": bootstrap_servers(settings),
        "client_id": settings.client_id,
        "security_protocol": settings.security_protocol.value,
    }
    context = client_context(settings)
    if context is not None:
        opts["ssl_context"] = context
    if settings.sasl_mechanism is not None:
        ref = settings.sasl_password()
        assert ref is not None  # guaranteed by the model
        opts["sasl_mechanism"] = settings.sasl_mechanism.value
        opts["sasl_plain_username"] = settings.sasl_username
        opts["sasl_plain_password"] = resolve_secret(ref).get_secret_value()
    return opts


def make_producer(settings: KafkaSettings, **overrides: Any) -> aiokafka.AIOKafkaProducer:
    """An idempotent producer that waits for all in-sync replicas: an outcome is recorded or it fails."""
    options: dict[str, Any] = {
        "acks": "all",
        "enable_idempotence": True,
        "retry_backoff_ms": RETRY_BACKOFF_MS,
        "linger_ms": 5,
        "max_batch_size": 256 * 1024,
        "compression_type": None,
        "request_timeout_ms": 30_000,
        "max_request_size": MAX_REQUEST_BYTES,
        "partitioner": KeyHashPartitioner(),
    }
    options.update(overrides)
    producer = aiokafka.AIOKafkaProducer(**client_options(settings), **options)
    pace_failed_metadata_updates(producer.client, RETRY_BACKOFF_MS / 1000)
    return producer


def pace_failed_metadata_updates(client: aiokafka.AIOKafkaClient, backoff_s: float) -> None:
    """Make a failed metadata update of ``client`` answer only after ``backoff_s``.

    aiokafka's producer (``Sender._sender_routine``) while a partition it holds records for has no known
    leader, and its consumer's fetcher while a partition's metadata is invalid, ask for a metadata update and
    wait for it in a loop with no pause of their own. With no broker answering, each update fails at once, so
    the loop spun: a core for the whole outage (~3,400 connection attempts a second) in a quarter to half of
    the outages of test_broker_outage on a loaded machine (a broker going away first says its partitions have
    no leader). Every caller of ``force_metadata_update`` awaits its answer or ignores it, so answering a
    failure later changes nothing else.
    """
    force = client.force_metadata_update

    async def paced(answer: Awaitable[bool]) -> bool:
        updated = bool(await answer)
        if not updated:
            await asyncio.sleep(backoff_s)
        return updated

    # force() itself at once, as before: asked during an update (a connection failing inside it), it changes
    # nothing; called later, it would start another update, and the failures would feed each other
    client.force_metadata_update = lambda: asyncio.ensure_future(paced(force()))


async def probe_brokers(producer: aiokafka.AIOKafkaProducer, topics: Iterable[str]) -> None:
    """One metadata request about ``topics`` (the worker's own outcome topics), sent to the brokers the
    producer knows in turn until one answers; a :class:`KafkaError` when none does. aiokafka's own
    ``fetch_all_metadata`` asks about every topic of the cluster (on a shared cluster of thousands of topics,
    megabytes every probe), and its requests about named topics let the broker create a missing one with
    the broker's defaults: this one names what the worker writes to and never creates anything."""
    names = sorted(set(topics))
    client = producer.client
    nodes: list[Any] = [broker.nodeId for broker in client.cluster.brokers()] if names else []
    if not nodes:  # nothing named yet, or no broker known: ask the bootstrap servers about everything
        await client.fetch_all_metadata()
        return
    request = MetadataRequest(names, allow_auto_topic_creation=False)
    random.shuffle(nodes)
    trouble: KafkaError | None = None
    for node in nodes:
        try:
            await client.send(node, request)
            return
        except KafkaError as exc:
            trouble = exc
    raise KafkaError(f"no broker answered a metadata request ({trouble})")


async def stop_client(client: aiokafka.AIOKafkaConsumer | aiokafka.AIOKafkaProducer, within_s: float = 5.0) -> None:
    """Stop an aiokafka consumer or producer, always, and within ``within_s`` seconds.

    ``AIOKafkaConsumer.stop()`` awaits the fetch (or committed-offset) tasks it has just cancelled, so their
    ``CancelledError`` escapes it (aio-libs/aiokafka#647) — whenever a fetch is under way, e.g. all through a
    broker outage — and the stop ends half-way: its connections and metadata task live on, retrying the
    brokers for the life of the process. That error is taken here for what it is (unless this task itself
    is being cancelled) and the close is finished. A stop still running after ``within_s`` (a LeaveGroup or
    a flush to a broker that is away) is abandoned with one warning: stopping must end.
    """
    try:
        await asyncio.wait_for(_stop_fully(client), within_s)
    except TimeoutError:
        log.warning("a Kafka client did not stop within %.0f s; left behind (Kafka unreachable?)", within_s)
    except (KafkaError, OSError) as exc:
        log.warning("stopping a Kafka client: %s", exc)


async def _stop_fully(client: aiokafka.AIOKafkaConsumer | aiokafka.AIOKafkaProducer) -> None:
    try:
        await client.stop()
    except asyncio.CancelledError:
        current = asyncio.current_task()
        if current is not None and current.cancelling():
            raise  # we are being cancelled: not aiokafka's own cancelled task
        await _finish_consumer_close(client)


async def _finish_consumer_close(consumer: Any) -> None:
    """The rest of ``AIOKafkaConsumer.stop()`` after aiokafka#647 cut it short (private parts, so best effort)."""
    fetcher = getattr(consumer, "_fetcher", None)
    coordinator = getattr(consumer, "_coordinator", None)
    tasks = [getattr(fetcher, "_fetch_task", None), *getattr(fetcher, "_pending_tasks", ()),
             getattr(coordinator, "_reset_committed_task", None)]
    alive = [t for t in tasks if isinstance(t, asyncio.Task) and not t.done()]
    for task in alive:
        task.cancel()
    await asyncio.gather(*alive, return_exceptions=True)
    inner = getattr(consumer, "_client", None)
    if inner is not None:
        await inner.close()


def make_consumer(settings: KafkaSettings, group_id: str | None, **overrides: Any) -> aiokafka.AIOKafkaConsumer:
    """A consumer that never commits by itself: the pipeline commits what is finished."""
    options: dict[str, Any] = {
        "group_id": group_id,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "max_partition_fetch_bytes": 4 * 1024 * 1024,
        "fetch_max_bytes": 32 * 1024 * 1024,
        "session_timeout_ms": GROUP_SESSION_TIMEOUT_MS,
        "heartbeat_interval_ms": GROUP_HEARTBEAT_INTERVAL_MS,
        "max_poll_interval_ms": 300_000,
        "isolation_level": "read_committed",
        "retry_backoff_ms": RETRY_BACKOFF_MS,
    }
    options.update(overrides)
    consumer = aiokafka.AIOKafkaConsumer(**client_options(settings), **options)
    pace_failed_metadata_updates(consumer._client, RETRY_BACKOFF_MS / 1000)
    return consumer


class TopicMisconfigured(Exception):
    """A topic the worker needs cannot be made or used as it must be; the message names the setting."""


async def ensure_topic(settings: KafkaSettings, topic: str, kind: TopicKind | TopicSpec) -> list[int]:
    """Create ``topic`` as its kind says (:mod:`worker.core.config.topics`) unless it exists, in which case its
    cleanup policy must fit the kind (else :class:`TopicMisconfigured`); returns its partition numbers once
    their leaders are known."""
    spec = kind if isinstance(kind, TopicSpec) else TOPIC_SPECS[kind]
    admin = AIOKafkaAdminClient(**client_options(settings))
    await admin.start()
    try:
        if not await _create_topic(admin, settings, topic, spec):
            policy = (await _topic_config(admin, [topic], "cleanup.policy")).get(topic)
            problem = spec.refusal(topic, policy) if policy is not None else None
            if problem is not None:
                raise TopicMisconfigured(problem)
        for _ in range(100):
            (described,) = await admin.describe_topics([topic])
            parts = [p["partition"] for p in described.get("partitions", []) if p.get("leader", -1) >= 0]
            if described.get("error_code") == 0 and parts:
                return sorted(parts)
            await asyncio.sleep(0.1)
        raise RuntimeError(f"topic {topic} has no available partitions")
    finally:
        await admin.close()


async def _create_topic(admin: AIOKafkaAdminClient, settings: KafkaSettings, topic: str, spec: TopicSpec) -> bool:
    """Create ``topic``; False when it exists already."""
    replicas = settings.replication_factor or await _default_replication_factor(admin)
    new = NewTopic(topic, spec.partitions, replicas, topic_configs=spec.configs(settings.min_insync_replicas))
    response = await admin.create_topics([new])  # per-topic errors come in the answer, not raised
    code, message = next(((c, m) for t, c, *m in response.topic_errors if t == topic), (0, []))
    error = for_code(code)
    if error is TopicAlreadyExistsError:
        return False
    if error in (InvalidReplicationFactorError, InvalidConfigurationError, PolicyViolationError):
        raise TopicMisconfigured(
            f"kafka.replication_factor / kafka.min_insync_replicas: Kafka refused to create {topic} with "
            f"{replicas} replica(s){_isr_text(settings)} ({error.__name__}): the cluster has fewer brokers, "
            f"or a policy forbids it"
        )
    if code != 0:
        raise error(f"creating topic {topic}: {message[0] if message and message[0] else error.__name__}")
    log.info("created topic %s: %d partition(s), %d replica(s), %s", topic, spec.partitions, replicas,
             ", ".join(f"{k}={v}" for k, v in spec.configs(settings.min_insync_replicas).items()))
    return True


def _isr_text(settings: KafkaSettings) -> str:
    isr = settings.min_insync_replicas
    return f", min.insync.replicas={isr}" if isr is not None else ""


async def _default_replication_factor(admin: AIOKafkaAdminClient) -> int:
    """The cluster's ``default.replication.factor`` (read from a broker); when it cannot be read, as many
    replicas as there are brokers, at most 3."""
    brokers = [b["node_id"] for b in (await admin.describe_cluster()).get("brokers", [])]
    if not brokers:
        return 1
    try:
        responses = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.BROKER, str(brokers[0]), {"default.replication.factor": None})])
    except KafkaError:
        responses = []
    for value in _config_values(responses, "default.replication.factor").values():
        if value.isdigit():
            return int(value)
    return min(3, len(brokers))


async def _topic_config(admin: AIOKafkaAdminClient, topics: list[str], name: str) -> dict[str, str]:
    """One config of each topic (topics whose config cannot be read are left out)."""
    try:
        responses = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, t, {name: None}) for t in topics])
    except KafkaError as exc:
        log.warning("could not read %s of %s (%s)", name, ", ".join(topics), exc)
        return {}
    return _config_values(responses, name)


def _config_values(responses: Iterable[Any], name: str) -> dict[str, str]:
    """Resource name -> value of config ``name`` in DescribeConfigs responses."""
    out: dict[str, str] = {}
    for response in responses:
        for resource in response.resources:
            error_code, _, _, resource_name, entries = resource[:5]
            if error_code != 0:
                continue
            for entry in entries:
                if entry[0] == name and entry[1] is not None:
                    out[resource_name] = str(entry[1])
    return out


async def topic_max_message_bytes(settings: KafkaSettings, topics: list[str]) -> dict[str, int]:
    """Each topic's ``max.message.bytes`` (Kafka's default when it cannot be read)."""
    limits = dict.fromkeys(topics, DEFAULT_TOPIC_MAX_MESSAGE_BYTES)
    if not topics:
        return limits
    admin = AIOKafkaAdminClient(**client_options(settings))
    await admin.start()
    try:
        found = await _topic_config(admin, topics, "max.message.bytes")
    finally:
        await admin.close()
    if not found:
        log.warning("could not read the outcome topics' max.message.bytes; assuming Kafka's default %d",
                    DEFAULT_TOPIC_MAX_MESSAGE_BYTES)
    limits.update({t: int(v) for t, v in found.items() if t in limits})
    return limits


def outcome_limits(topic_limits: dict[str, int], max_request_bytes: int = MAX_REQUEST_BYTES) -> dict[str, int]:
    """The largest outcome document each topic takes: the smaller of its limit and the producer's, less headroom."""
    return {t: min(limit, max_request_bytes) - ENVELOPE_HEADROOM for t, limit in topic_limits.items()}


async def read_at(
    consumer: aiokafka.AIOKafkaConsumer, topic: str, partition: int, offset: int, timeout_s: float = 10.0
) -> aiokafka.ConsumerRecord[bytes, bytes] | None:
    """The record at ``offset`` of a partition, read with a group-less ``consumer`` (reassigned for the
    purpose); None when it is gone (retention, compaction) or does not come within ``timeout_s``."""
    tp = aiokafka.TopicPartition(topic, partition)
    consumer.assign([tp])
    consumer.seek(tp, offset)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        fetched = await consumer.getmany(tp, timeout_ms=500, max_records=1)
        for msg in fetched.get(tp, []):
            return msg if msg.offset == offset else None  # a later offset: the record was deleted
    return None


async def existing_partitions(settings: KafkaSettings, topics: Iterable[str]) -> dict[str, list[int]]:
    """The partition numbers of each of ``topics`` that exists; a missing topic is left out.

    Reads the metadata of *all* topics (the admin client's public ``describe_topics()``): a metadata
    request naming a topic would create it on a broker with ``auto.create.topics.enable``.
    """
    wanted = set(topics)
    return {topic: parts for topic, parts in (await all_partitions(settings)).items() if topic in wanted}


async def all_partitions(settings: KafkaSettings) -> dict[str, list[int]]:
    """Every topic on the cluster with its partition numbers (metadata only: nothing is created)."""
    admin = AIOKafkaAdminClient(**client_options(settings))
    await admin.start()
    try:
        described = await admin.describe_topics()
    finally:
        await admin.close()
    return {t["topic"]: sorted(p["partition"] for p in t.get("partitions", ()))
            for t in described if t.get("error_code", 0) == 0}


async def read_ranges(
    consumer: aiokafka.AIOKafkaConsumer, ranges: Mapping[aiokafka.TopicPartition, tuple[int, int]],
    deadline: float | None = None, clock: Callable[[], float] = time.monotonic,
) -> AsyncIterator[aiokafka.ConsumerRecord[bytes, bytes]]:
    """The records of each assigned partition from its first offset up to (not including) its end one,
    e.g. the tail of a topic up to the end offsets read just before; until ``deadline`` (``clock`` time).

    A partition is done once the consumer's position reaches its end, so offsets that hold no record
    (transaction markers, compacted or deleted records) cannot keep the read going.
    """
    todo = {tp: end for tp, (first, end) in ranges.items() if end > first}
    for tp in todo:
        consumer.seek(tp, ranges[tp][0])
    while todo and (deadline is None or clock() < deadline):
        fetched = await consumer.getmany(*todo, timeout_ms=500)
        for tp, messages in fetched.items():
            end = todo.get(tp, 0)
            for msg in messages:
                if msg.offset < end:
                    yield msg
        for tp in list(todo):
            if await consumer.position(tp) >= todo[tp]:
                del todo[tp]


COMMITTED_ATTEMPTS = 8


async def committed_offsets(
    settings: KafkaSettings, group_id: str, partitions: Iterable[aiokafka.TopicPartition]
) -> dict[aiokafka.TopicPartition, OffsetAndMetadata]:
    """``group_id``'s committed offsets of ``partitions`` *with their metadata* (where the pipeline keeps
    its checkpoint); an offset of -1 means none.

    Read with the admin client's public ``list_consumer_group_offsets``: a consumer's public
    ``committed()`` returns the offset alone. An error Kafka calls retriable (the group coordinator
    moving or still loading, as around a rebalance) is retried with a growing pause, a few seconds in all.
    """
    admin = AIOKafkaAdminClient(**client_options(settings))
    await admin.start()
    try:
        pause = 0.1
        for attempt in range(1, COMMITTED_ATTEMPTS + 1):
            try:
                offsets: dict[aiokafka.TopicPartition, OffsetAndMetadata] = await admin.list_consumer_group_offsets(
                    group_id, partitions=list(partitions))
                return offsets
            except KafkaError as exc:
                if not exc.retriable or attempt == COMMITTED_ATTEMPTS:
                    raise
                await asyncio.sleep(pause)
                pause = min(pause * 2, 2.0)
        raise AssertionError("unreachable")
    finally:
        await admin.close()


async def check_access(settings: KafkaSettings) -> None:
    """TLS, then the SASL login, each tried on one connection before any client starts: a problem is a
    :class:`~worker.kafka.tls_check.KafkaAccessError` of one line naming the setting (waiting will not fix
    it); a broker that cannot be reached is left to the caller."""
    await check_tls(settings)
    await check_sasl(settings)


async def probe(settings: KafkaSettings) -> None:
    """Connect to the cluster once (bootstrap and metadata), or raise the connection error; a security
    problem is a :class:`~worker.kafka.tls_check.KafkaAccessError`, which waiting longer does not fix."""
    await check_access(settings)
    admin = AIOKafkaAdminClient(**client_options(settings))
    try:
        await admin.start()
    finally:
        await admin.close()


async def wait_for_broker(
    what: str, attempt: Callable[[], Awaitable[T]], within_s: float,
    clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> T:
    """Run ``attempt`` until Kafka answers, logging each failure once with its cause and the next wait,
    for at most ``within_s`` seconds; then :class:`BrokerUnavailable` says so in one line."""
    deadline = clock() + within_s
    delay = 1.0
    tries = 0
    while True:
        tries += 1
        try:
            return await attempt()
        except (KafkaError, OSError) as exc:
            cause = str(exc) or type(exc).__name__
            left = deadline - clock()
            if left <= 0:
                raise BrokerUnavailable(
                    f"Kafka is unreachable ({cause}); gave up on {what} after {tries} attempt(s) in "
                    f"{within_s:g} s (check kafka.bootstrap_servers, or raise worker.broker_wait_s)"
                ) from None
            wait = min(delay, left)
            log.warning("Kafka is not reachable yet (%s); %s: retrying in %.0f s (gives up in %.0f s)",
                        cause, what, wait, left)
            await sleep(wait)
            delay = min(delay * 2, 15.0)
