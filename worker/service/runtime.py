"""The worker's runtime: shared Kafka producer and Gorgias delivery, one pipeline per destination, control."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import aiokafka
from aiokafka.errors import KafkaError

from worker.core.chain.record_chain import build_renderer
from worker.core.config.account import AuthType, Credential
from worker.core.config.deployment import Store
from worker.core.config.topics import TopicKind
from worker.core.config.worker_config import Destination, WorkerConfig
from worker.core.templates import configured_for
from worker.gorgias.delivery import DeliveryService
from worker.gorgias.dispatch import Dispatchers
from worker.gorgias.share import BudgetShares
from worker.host import metrics
from worker.host.environment import resolve_secret
from worker.host.logs import register_secret
from worker.host.secret_box import STORED, load_box
from worker.kafka.clients import (
    MAX_REQUEST_BYTES,
    ensure_topic,
    make_producer,
    outcome_limits,
    probe_brokers,
    topic_max_message_bytes,
    wait_for_broker,
)
from worker.kafka.control import UNSCOPED_CONTROL_TOPIC, ControlReader, unscoped_commands
from worker.kafka.demand import DemandExchange
from worker.kafka.pipeline import STOP_MARGIN_S, DestinationPipeline
from worker.kafka.publisher import Publisher
from worker.kafka.recovery import SharedEndOffsets
from worker.service.saved_credentials import SavedCredentials
from worker.service.saved_destinations import SavedDestinations
from worker.service.shared_tokens import StoreTokenShare, is_token_entry, token_share

log = logging.getLogger(__name__)

HEALTH_INTERVAL_S = 5.0  # how often the broker is probed
HEALTH_PROBE_TIMEOUT_S = 5.0
OUTAGE_LOG_INTERVAL_S = 30.0  # one line per destination per interval while Kafka is unreachable
CREDENTIAL_CHECK_WAIT_S = 10.0  # the start waits this long at most for the credential checks
# Pipelines starting at once (each opens its consumer: bootstrap, metadata, outcome end offsets): a thousand
# destinations start in seconds, without a thousand connections opened in the same instant.
PIPELINE_STARTS_AT_ONCE = 16


def _creates(dest: Destination) -> bool:
    """Does ``dest`` create objects (a create template, whose records are looked up after a crash; or a job
    template, whose job ids are marked so that a restarted worker follows them)?"""
    if dest.endpoint.template is None:
        return False
    configured = configured_for(dest)
    return bool(configured.template.creates) or configured.job_polling is not None


def outcome_topics(config: WorkerConfig, dest: Destination) -> dict[str, TopicKind]:
    """The topics ``dest`` writes its outcomes (and intent marks) to, with their kinds."""
    topics = {dest.dead_letter_topic: TopicKind.DEAD_LETTERS}
    if dest.response_webhook.enabled:
        topics[dest.response_webhook.topic] = TopicKind.RESPONSES
    if _creates(dest):
        topics[config.kafka.store_topic(Store.INTENTS)] = TopicKind.INTENTS
    return topics


async def prepare_topics(config: WorkerConfig) -> None:
    """Create the outcome, intent and control topics the config needs, or refuse one of the wrong kind
    (:class:`~worker.kafka.clients.TopicMisconfigured`, naming the setting) before anything starts."""
    topics = {t: kind for d in config.destinations for t, kind in outcome_topics(config, d).items()}
    topics[config.kafka.store_topic(Store.CONTROL)] = TopicKind.CONTROL
    for topic, kind in sorted(topics.items()):
        await ensure_topic(config.kafka, topic, kind)


class Runtime:
    """Starts and stops everything a worker process runs, in the right order, and adds, replaces and removes
    one destination's pipeline while the others run (the destinations saved at runtime)."""

    def __init__(self, config: WorkerConfig, config_file: str | None = None) -> None:
        self.config = config
        self.config_file = config_file
        self.pipelines: dict[str, DestinationPipeline] = {}
        self.sources: dict[str, str] = {}  # name -> "file" | "store"
        self.failed_destinations: dict[str, str] = {}  # saved destinations that cannot run -> why
        self.control: ControlReader | None = None
        self.saved: SavedDestinations | None = None
        self.saved_credentials: SavedCredentials | None = None
        self.token_share: StoreTokenShare | None = None
        self.delivery: DeliveryService | None = None
        self.ready = asyncio.Event()  # started, and Kafka can be read and written (/health/ready)
        self.started = False
        self.trouble: str | None = None  # why the worker cannot consume or record outcomes right now
        self._trouble_since = 0.0
        self._last_outage_log = float("-inf")
        self._publisher: Publisher | None = None
        self._starting: asyncio.Task[Any] | None = None
        self._shares: BudgetShares | None = None
        self.demand: DemandExchange | None = None
        self._dispatchers: Dispatchers | None = None
        self._topic_partitions: dict[str, list[int]] = {}  # the outcome topics prepared, and their partitions
        self._limits: dict[str, int] = {}  # the largest outcome document each of them takes
        self._reconcilers: dict[str, asyncio.Task[None]] = {}
        self._starts = asyncio.Semaphore(PIPELINE_STARTS_AT_ONCE)
        self._outcome_ends = SharedEndOffsets(config.kafka)
        self._topics_lock = asyncio.Lock()  # one preparation of a topic, however many pipelines start at once
        self._dirty: set[str] = set()
        self._health: asyncio.Task[None] | None = None
        self._state_series: set[tuple[str, str]] = set()
        self.failed: BaseException | None = None
        self.failure = asyncio.Event()

    def _on_fatal(self, exc: BaseException) -> None:
        self.failed = exc
        self.failure.set()

    def _outcome_topics(self, dest: Destination) -> dict[str, TopicKind]:
        return outcome_topics(self.config, dest)

    async def _prepare_topics(self, topics: dict[str, TopicKind]) -> None:
        """Create the outcome topics not prepared yet and fit outcome documents to their size limits."""
        config = self.config
        async with self._topics_lock:
            todo = sorted(set(topics) - set(self._topic_partitions))
            if not todo:
                return
            found = {topic: await ensure_topic(config.kafka, topic, topics[topic]) for topic in todo}
            limits = outcome_limits(await topic_max_message_bytes(config.kafka, todo), MAX_REQUEST_BYTES)
            self._topic_partitions.update(found)
            self._limits.update(limits)
        log.info("outcome documents fitted to %s", ", ".join(f"{t}: {n} bytes" for t, n in sorted(limits.items())))

    async def start(self) -> None:
        """Prepare the topics, the producer and Gorgias delivery, read the control and destination stores and
        start every pipeline; :meth:`stop` may be called meanwhile (it cancels the start)."""
        self._starting = asyncio.current_task()
        try:
            await self._start()
        finally:
            self._starting = None

    async def _start(self) -> None:
        config = self.config
        topics = {t: kind for d in config.destinations for t, kind in self._outcome_topics(d).items()}
        await wait_for_broker("preparing the outcome topics", lambda: self._prepare_topics(topics),
                              config.worker.broker_wait_s)
        self.delivery = DeliveryService()
        STORED.box = load_box(config.worker.secrets_key())  # the key of the credentials store's secrets
        self._publisher = Publisher(await self._new_producer(), renew=self._new_producer)
        self._publisher.limits = self._limits  # shared: topics prepared later (saved destinations) add theirs
        self._shares = BudgetShares(self.delivery.limiters)  # one per process: destinations of an account add up
        self._dispatchers = Dispatchers()  # one per Gorgias account, shared by the destinations on it
        # replicas on one account divide its budget by the calls each has waiting (worker.kafka.demand)
        self.demand = DemandExchange(config.kafka, self._dispatchers, self.delivery.limiters)
        await self.demand.start()
        self._shares.follow_demand(self.demand.settle)
        self.saved_credentials = SavedCredentials(config, self._credential_changed)
        await self.saved_credentials.start()  # first: OAuth apps share their tokens there; saved destinations name them
        self.token_share = token_share(self.saved_credentials.store)
        self.delivery.oauth.share = self.token_share
        await self._check_credentials(config.destinations)
        self.control = ControlReader(config.kafka, self.apply_command)
        await self.control.start()
        await self._add_file_pipelines(config.destinations)
        await self._warn_unscoped_commands()
        self.saved = SavedDestinations(config, self._saved_changed, self.config_file)
        self.saved.credentials = self.named_credentials
        await self.saved.start()  # read to its end: the saved destinations run before the worker is ready
        for name in self.saved.names():
            self._saved_changed(name)
        await self._settle()
        self.started = True
        self.ready.set()
        self._health = asyncio.get_running_loop().create_task(self._watch_health(), name="health")
        log.info("worker ready: %d destination(s): %s", len(self.pipelines),
                 ", ".join(f"{n} ({'active' if p.active else 'paused'})" for n, p in self.pipelines.items()))

    async def _check_credentials(self, destinations: list[Destination]) -> None:
        """One ``GET /api/account`` per credential through its budget, logging the account and its call limit
        or the problem (a refused credential holds its calls from the start). Waited for a few seconds at most:
        a slow Gorgias does not delay the start, the checks then finish meanwhile."""
        assert self.delivery is not None
        checks = {self.delivery.gates.get(d.credential, d.delivery).start_check() for d in destinations}
        if checks:
            await asyncio.wait(checks, timeout=CREDENTIAL_CHECK_WAIT_S)

    async def _add_file_pipelines(self, destinations: list[Destination]) -> None:
        """Start the config file's pipelines side by side (:data:`PIPELINE_STARTS_AT_ONCE` at a time); one
        that cannot start stops the others' starts and fails the start."""
        loop = asyncio.get_running_loop()
        tasks = [loop.create_task(self.add_pipeline(dest, "file")) for dest in destinations]
        try:
            await asyncio.gather(*tasks)
        except BaseException:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise

    # ---------------------------------------------------------------------------------------------
    # one pipeline at a time

    async def add_pipeline(self, dest: Destination, source: str) -> DestinationPipeline:
        """Start ``dest``'s pipeline beside the others, in the state the control topic holds for it (else
        its config's ``active`` for the file's, paused for a saved one)."""
        async with self._starts:
            return await self._add_pipeline(dest, source)

    async def _add_pipeline(self, dest: Destination, source: str) -> DestinationPipeline:
        assert self.delivery is not None and self._publisher is not None, "start() first"
        topics = self._outcome_topics(dest)
        await self._prepare_topics(topics)
        intents = self.config.kafka.store_topic(Store.INTENTS) if _creates(dest) else None
        pipeline = DestinationPipeline(
            self.config, dest, build_renderer(dest), self.delivery, self._publisher, self._on_fatal,
            [(t, p) for t in topics for p in self._topic_partitions[t]],
            shares=self._shares, intent_topic=intents, dispatchers=self._dispatchers, outcome_ends=self._outcome_ends,
        )
        self.delivery.gates.get(dest.credential, dest.delivery).start_check()  # once per credential
        saved_word = self.control.state.get(dest.name) if self.control is not None else None
        default = dest.active if source == "file" else False
        pipeline.set_active(default if saved_word is None else saved_word)
        self.pipelines[dest.name] = pipeline
        self.sources[dest.name] = source
        try:
            await pipeline.start()
        except BaseException:
            self.pipelines.pop(dest.name, None)
            await pipeline.stop(0)
            raise
        return pipeline

    async def remove_pipeline(self, name: str, why: str) -> None:
        """Stop ``name``'s pipeline as on SIGTERM (calls on the wire finish within the shutdown grace, their
        outcomes are recorded, what is done is committed) and leave its consumer group."""
        pipeline = self.pipelines.get(name)
        if pipeline is None:
            return
        log.info("destination %s: stopping its pipeline (%s)", name, why, extra={"destination": name})
        try:
            await pipeline.stop(self.config.worker.shutdown_grace_s)
        finally:  # listed (status) until it has stopped and committed
            if self.pipelines.get(name) is pipeline:
                del self.pipelines[name]
        if self._shares is not None:
            self._shares.released(name, pipeline.dest.credential)

    # ---------------------------------------------------------------------------------------------
    # following the destinations store

    def named_credentials(self) -> dict[str, Credential]:
        """The credentials destinations may name: the file's, then those saved at runtime."""
        saved = self.saved_credentials.credentials() if self.saved_credentials is not None else {}
        return {**saved, **self.config.credentials}

    def _credential_changed(self, name: str) -> None:
        """A saved credential changed: its clients carry the new secret from their next call, and the saved
        destinations naming it are read again (a change beyond the secret restarts their pipelines)."""
        if is_token_entry(name):  # an OAuth app's shared tokens: another replica refreshed them
            if self.token_share is not None:
                self.token_share.notify(name)
            if self.delivery is not None:
                self.delivery.oauth.shared_changed(name)
            return
        if self.delivery is not None:
            self.delivery.gates.secret_changed(name)
        if self.saved is not None:
            self.saved.refresh()
            for dest in self.saved.users_of(name):
                self._saved_changed(dest)

    def _saved_changed(self, name: str) -> None:
        """A saved destination changed: bring its pipeline in line, one change of a name at a time."""
        self._dirty.add(name)
        if name not in self._reconcilers:
            task = asyncio.get_running_loop().create_task(self._reconcile_loop(name), name=f"reconcile:{name}")
            self._reconcilers[name] = task

    async def _reconcile_loop(self, name: str) -> None:
        try:
            while name in self._dirty:
                self._dirty.discard(name)
                try:
                    await self._reconcile(name)
                except Exception as exc:  # one destination's trouble never stops the others or the worker
                    self.failed_destinations[name] = f"could not start: {exc}"
                    log.error("destination %s could not start: %s", name, exc, extra={"destination": name})
        finally:
            self._reconcilers.pop(name, None)

    async def _settle(self) -> None:
        """Wait until every change seen so far is applied."""
        while self._reconcilers:
            await asyncio.gather(*list(self._reconcilers.values()), return_exceptions=True)

    async def _reconcile(self, name: str) -> None:
        saved = self.saved
        if saved is None or self.sources.get(name) == "file":
            if saved is not None and saved.stored(name) is not None:
                log.warning("destination %s is saved in %s and defined in the config file: the file's runs",
                            name, saved.topic, extra={"destination": name})
            return
        wanted = saved.wanted(name)
        running = self.pipelines.get(name)
        if isinstance(wanted, Destination):
            self.failed_destinations.pop(name, None)
            if running is not None and running.dest == wanted:
                return
            if running is not None:
                await self.remove_pipeline(name, "its saved config changed")
            secret_problem = self._secret_problem(wanted)
            if secret_problem is not None:
                self.failed_destinations[name] = secret_problem
                self.sources[name] = "store"
                log.error("destination %s cannot start: %s", name, secret_problem, extra={"destination": name})
                return
            await self.add_pipeline(wanted, "store")
            entry = saved.stored(name)
            log.info("destination %s started from the destinations store (version %s)", name,
                     entry.version if entry else "?", extra={"destination": name})
            return
        await self.remove_pipeline(name, "deleted from the destinations store" if wanted is None else "failed")
        if wanted is None:
            self.failed_destinations.pop(name, None)
            self.sources.pop(name, None)
        else:
            self.failed_destinations[name] = wanted
            self.sources[name] = "store"
            log.error("destination %s failed: %s", name, wanted, extra={"destination": name})

    def _secret_problem(self, dest: Destination) -> str | None:
        """Why ``dest``'s secret cannot be read on this replica (None: it can, and logs will mask it)."""
        if dest.credential.auth is AuthType.OAUTH_APP and self.token_share is None:
            return ("credential: an OAuth app's tokens are shared by the replicas encrypted in the credentials store, "
                    "and this replica has no key: set worker.secrets_key_env or worker.secrets_key_file")
        try:
            for ref in dest.credential.secret_refs().values():
                register_secret(resolve_secret(ref).get_secret_value())
        except LookupError as exc:
            return f"credential: {exc} on this replica"
        return None

    def destination(self, name: str) -> Destination:
        """The destination ``name`` runs (file or store); KeyError naming the known ones otherwise."""
        pipeline = self.pipelines.get(name)
        if pipeline is not None:
            return pipeline.dest
        return self.config.destination(name)

    async def _warn_unscoped_commands(self) -> None:
        """Control records of the old format (keyed by destination name alone) are never applied: name, once,
        those that would have changed one of this worker's destinations, and how to apply them now."""
        kafka = self.config.kafka
        own_topic = kafka.store_topic(Store.CONTROL)
        for topic in sorted({UNSCOPED_CONTROL_TOPIC, own_topic}):
            try:
                words = await unscoped_commands(kafka, [topic])
            except KafkaError as exc:
                log.debug("could not look for unscoped control records on %s: %s", topic, exc)
                continue
            for name, active in sorted(words.items()):
                pipeline = self.pipelines.get(name)
                if pipeline is None or pipeline.active == active:
                    continue
                log.warning(
                    "destination %s: an old control record on %s (keyed by the name alone) says %s; it is not "
                    "applied, as control records now belong to a deployment (here %s, on %s): run "
                    "`gorgias-worker %s %s` to apply it", name, topic, "active" if active else "paused",
                    kafka.scope.name, own_topic, "activate" if active else "pause", name,
                    extra={"destination": name},
                )

    async def _new_producer(self) -> aiokafka.AIOKafkaProducer:
        """The outcome producer (a new one when Kafka refused the previous one's state)."""
        producer = make_producer(self.config.kafka)
        try:
            await producer.start()
        except BaseException:
            await producer.stop()
            raise
        return producer

    def apply_command(self, name: str, active: bool) -> None:
        pipeline = self.pipelines.get(name)
        if pipeline is None:
            log.debug("control command for destination %s, which this worker does not run", name)
            return
        pipeline.set_active(active)

    async def _watch_health(self) -> None:
        while self.started:  # stop() clears it first: the loop ends even if a probe missed the cancellation
            await asyncio.sleep(HEALTH_INTERVAL_S)
            try:
                await self.check_health()
            except Exception:  # a probe that fails in a way nobody foresaw must not end readiness checks for good
                log.exception("the health check failed; it runs again in %.0f s", HEALTH_INTERVAL_S)

    async def _health_problems(self) -> list[str]:
        """What keeps the worker from being ready now: Kafka unreachable, outcome records not written."""
        problems: list[str] = []
        if self._publisher is not None:
            try:
                # asyncio.timeout, not wait_for: 3.11's wait_for drops a cancellation that lands as the
                # probe answers, and stop() would wait for this loop forever
                async with asyncio.timeout(HEALTH_PROBE_TIMEOUT_S):
                    await probe_brokers(self._publisher.producer, (t for t in self._limits if t))
            except (KafkaError, OSError, TimeoutError) as exc:
                problems.append(f"Kafka unreachable ({str(exc) or type(exc).__name__})")
        if self._publisher is not None and not self._publisher.healthy:
            problems.append(self._publisher.trouble or "outcome records cannot be written")
        return problems

    async def check_health(self) -> None:
        """Probe Kafka and the outcome writes; readiness follows, and an outage is logged calmly."""
        problems = await self._health_problems()
        now = time.monotonic()
        if problems:
            self.ready.clear()
            if self.trouble is None:
                self._trouble_since = now
            self.trouble = "; ".join(problems)
            if now - self._last_outage_log >= OUTAGE_LOG_INTERVAL_S:
                self._last_outage_log = now
                for name, pipeline in self.pipelines.items():
                    log.warning(
                        "destination %s cannot consume or record outcomes for %.0f s: %s; %d record(s) wait for "
                        "their outcome", name, now - self._trouble_since, self.trouble,
                        pipeline.partitions.pending_records, extra={"destination": name},
                    )
        elif self.trouble is not None:
            for name in self.pipelines:
                log.info("destination %s recovered: Kafka answers again after %.0f s", name,
                         now - self._trouble_since, extra={"destination": name})
            self.trouble = None
            self._last_outage_log = float("-inf")
            if self.started:
                self.ready.set()

    async def stop(self) -> None:
        """Stop everything, from any state (starting, Kafka away, calls on the wire, a rebalance under way,
        calls held for a refused credential): returns within ``worker.shutdown_grace_s`` + 5 s."""
        grace = self.config.worker.shutdown_grace_s
        self.ready.clear()
        self.started = False
        starting, self._starting = self._starting, None
        if starting is not None and not starting.done():  # e.g. still waiting for Kafka: give up starting
            starting.cancel()
            await asyncio.wait([starting], timeout=STOP_MARGIN_S / 2)
        try:
            await asyncio.wait_for(self._stop_parts(grace), grace + STOP_MARGIN_S - 0.5)
        except TimeoutError:
            log.warning("the worker's stop overran %.0f s (grace + %.0f s); what was left is abandoned",
                        grace + STOP_MARGIN_S, STOP_MARGIN_S)
        log.info("worker stopped")

    async def _stop_parts(self, grace: float) -> None:
        if self._health is not None:
            self._health.cancel()
            await asyncio.gather(self._health, return_exceptions=True)
        if self.saved is not None:
            await self.saved.stop()  # no more changes; those being applied finish (a pipeline stop is bounded)
        if self.saved_credentials is not None:
            await self.saved_credentials.stop()
        reconciling = list(self._reconcilers.values())
        if reconciling:
            _, late = await asyncio.wait(reconciling, timeout=grace)
            for task in late:
                task.cancel()
            await asyncio.gather(*reconciling, return_exceptions=True)
        await asyncio.gather(*(p.stop(grace) for p in self.pipelines.values()), return_exceptions=True)
        closing = []
        if self.control is not None:
            closing.append(self.control.stop())
        if self.demand is not None:
            closing.append(self.demand.stop())  # withdraws this replica's demand: the others take its part
        if self._publisher is not None:
            closing.append(self._publisher.close(within_s=2.0))  # outcomes are acknowledged before commits
        if self.delivery is not None:
            closing.append(self.delivery.aclose())
        await asyncio.gather(*closing, return_exceptions=True)

    def status(self) -> dict[str, Any]:
        return {
            "ready": self.ready.is_set(),
            "trouble": self.trouble,
            "failed": str(self.failed) if self.failed else None,
            "destinations": self.destination_statuses(),
            "accounts": self.account_status(),
            "credentials": self.credential_status(),
        }

    def destination_status(self, name: str, records: dict[str, dict[str, int]] | None = None) -> dict[str, Any] | None:
        """One destination's status: where it comes from (``source``: file | store), its ``state``
        (active | paused | failed | held), ``version`` when saved, ``reason`` when failed; None if unknown.
        ``records``: every destination's record counts, read once for a status of them all."""
        pipeline = self.pipelines.get(name)
        if pipeline is not None:
            counts = None if records is None else records.get(name) or metrics.no_records()
            item = {**pipeline.status(counts), "source": self.sources.get(name, "file")}
        elif name in self.failed_destinations:
            item = {"name": name, "source": "store", "state": "failed", "reason": self.failed_destinations[name]}
        else:
            return None
        entry = self.saved.stored(name) if self.saved is not None and item["source"] == "store" else None
        if entry is not None:
            item["version"] = entry.version
        return item

    def destination_statuses(self) -> list[dict[str, Any]]:
        names = [*self.pipelines, *(n for n in self.failed_destinations if n not in self.pipelines)]
        records = metrics.records_by_destination()
        return [item for n in names if (item := self.destination_status(n, records)) is not None]

    def _running_destinations(self) -> list[Destination]:
        return [p.dest for p in self.pipelines.values()]

    def account_status(self) -> dict[str, dict[str, Any]]:
        """Per account: its budget's level (requests in the leaky bucket), capacity and calls waiting."""
        out: dict[str, dict[str, Any]] = {}
        if self.delivery is None:
            return out
        running = self._running_destinations()
        for dest in running:
            key = dest.credential.account_key
            if key in out:
                continue
            limiter = self.delivery.limiters.get(dest.credential)
            out[key] = {"level": round(limiter.level, 2), "capacity": limiter.capacity,
                        "waiting": metrics.account_waiting(key),
                        "destinations": [d.name for d in running if d.credential.account_key == key]}
        return out

    def credential_status(self) -> list[dict[str, Any]]:
        """Per credential (never its secret): the account, whether Gorgias takes it, and who uses it."""
        if self.delivery is None:
            return []
        return [{"credential": gate.describe(), "account": gate.credential.account_key,
                 "state": "held" if gate.held else "ok", "reason": gate.reason,
                 "held_for_s": round(gate.held_for(), 1), "destinations": list(gate.users),
                 "last_check": gate.last_check.as_dict() if gate.last_check is not None else None}
                for gate in self.delivery.gates]

    def metrics_text(self) -> bytes:
        metrics.READY.set(1 if self.ready.is_set() and self.failed is None else 0)
        if self.delivery is not None:
            for dest in self._running_destinations():
                limiter = self.delivery.limiters.get(dest.credential)
                metrics.RATE_LIMIT_LEVEL.labels(dest.credential.account_key).set(limiter.level)
                metrics.RATE_LIMIT_CAPACITY.labels(dest.credential.account_key).set(limiter.capacity)
        self._state_series = metrics.set_destination_states(
            {item["name"]: item["state"] for item in self.destination_statuses()}, self._state_series)
        return metrics.render()
