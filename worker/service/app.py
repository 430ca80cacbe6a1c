"""The faust-streaming application that hosts the worker: lifecycle, signals, web server.

faust runs the process (its ``Worker`` handles SIGTERM/SIGINT and stops services in order) and hosts
the destination pipelines and the control API. The data path itself is the pipelines' own consumers
(see :mod:`worker.kafka.pipeline` for why).

The pipelines and the control API start with the app itself, not once faust is "ready": faust's own
``<group_id>.host`` consumer group carries no data, and a replacement worker would otherwise wait for
that group to rebalance (faust's default session timeout is 60 s) before delivering anything. Every
group, that one included, uses the short session timeout of :mod:`worker.kafka.clients`.
"""

from __future__ import annotations

import asyncio
import faulthandler
import gc
import logging
import os
import socket
import sys
import tempfile
import threading
import time
from typing import Any

import faust
import mode
import uvloop
from aiohttp import web

from worker.core.config.kafka import SaslMechanism, SecurityProtocol
from worker.core.config.worker_config import WorkerConfig
from worker.host.environment import bootstrap_servers, resolve_secret
from worker.host.logs import logging_config, setup_logging
from worker.host.tls import TlsSettingError
from worker.kafka.clients import (
    GROUP_HEARTBEAT_INTERVAL_MS,
    GROUP_SESSION_TIMEOUT_MS,
    BrokerUnavailable,
    TopicMisconfigured,
    client_options,
    probe,
    wait_for_broker,
)
from worker.kafka.pipeline import STOP_MARGIN_S
from worker.kafka.store import StoreUnavailable
from worker.kafka.tls_check import KafkaAccessError
from worker.service.control_api import create_control_app
from worker.service.runtime import Runtime, prepare_topics
from worker.service.saved_destinations import prepare_store_topics

log = logging.getLogger(__name__)


def _faust_credentials(config: WorkerConfig) -> Any:
    k = config.kafka
    opts = client_options(k)
    if k.sasl_mechanism is not None:
        return faust.SASLCredentials(
            username=k.sasl_username,
            password=opts["sasl_plain_password"],
            mechanism=k.sasl_mechanism.value if k.sasl_mechanism is not SaslMechanism.PLAIN else "PLAIN",
            ssl_context=opts.get("ssl_context"),
        )
    if k.security_protocol is SecurityProtocol.SSL:
        return faust.SSLCredentials(opts["ssl_context"])
    return None


def create_app(
    config: WorkerConfig, runtime: Runtime | None = None, config_file: str | None = None,
) -> tuple[faust.App, Runtime]:
    """The faust app running ``config``'s destinations (and those saved at runtime), and the runtime it hosts."""
    host: Runtime = runtime or Runtime(config, config_file)
    bootstrap = bootstrap_servers(config.kafka)
    brokers = ";".join(f"kafka://{b.strip()}" for b in bootstrap.split(",") if b.strip())
    control = ControlWeb(host, config.worker.web_host, config.worker.web_port)

    class WorkerApp(faust.App):
        """Starts the control API and the pipelines before faust's own consumer group is joined."""

        async def on_start(self) -> None:
            await super().on_start()
            await control.start()
            await host.start()
            # What start-up built lives as long as the process: keep it out of every collection, and
            # collect less often (the hot path allocates many short-lived, mostly acyclic dicts).
            gc.freeze()
            gc.set_threshold(10_000, 10, 10)

        async def on_stop(self) -> None:
            deadline = time.monotonic() + config.worker.shutdown_grace_s + STOP_MARGIN_S - 0.5
            await host.stop()  # bounded: the work is stopped, its outcomes written and its offsets committed
            await control.stop()
            exit_by(deadline)  # faust's own clients may not stop at all with Kafka away (aiokafka#647)
            await super().on_stop()

    app = WorkerApp(
        f"{config.kafka.group_id}.host",
        broker=brokers,
        broker_credentials=_faust_credentials(config),
        autodiscover=False,
        store="memory://",
        datadir=tempfile.mkdtemp(prefix="gorgias-worker-"),
        topic_partitions=1,
        web_enabled=False,  # the control API below is the worker's web server
        producer_acks=-1,
        broker_session_timeout=GROUP_SESSION_TIMEOUT_MS / 1000,
        broker_heartbeat_interval=GROUP_HEARTBEAT_INTERVAL_MS / 1000,
        broker_rebalance_timeout=GROUP_SESSION_TIMEOUT_MS / 1000,
    )

    @app.service
    class FailureWatch(mode.Service):
        """Crashes the worker (so that Kubernetes restarts it) when a pipeline fails for good."""

        @mode.Service.task
        async def _watch_failure(self) -> None:
            await host.failure.wait()
            log.error("fatal: %s", host.failed)
            await self.crash(host.failed or RuntimeError("pipeline failed"))

    return app, host


class ControlWeb:
    """The control API (health, status, activate/pause, metrics) on the worker's web port."""

    def __init__(self, host: Runtime, bind: str, port: int) -> None:
        self.host = host
        self.bind = bind
        self.port = port
        self.runner: web.AppRunner | None = None

    async def start(self) -> None:
        ref = self.host.config.worker.control_token()
        token = resolve_secret(ref) if ref is not None else None
        self.runner = web.AppRunner(create_control_app(self.host, token=token), access_log=None)
        await self.runner.setup()
        await web.TCPSite(self.runner, self.bind, self.port).start()
        log.info("control API on http://%s:%d (POST routes %s)", self.bind, self.port,
                 "need the control token" if token is not None else "open to this machine only")

    async def stop(self) -> None:
        runner, self.runner = self.runner, None
        if runner is not None:
            await runner.cleanup()


def exit_by(deadline: float) -> None:
    """Exit the process at ``deadline`` (``time.monotonic()``) if it is still running then.

    Called once the worker's own parts are stopped: what is left is faust's ``<group_id>.host`` group, which
    carries no data, and its aiokafka consumer's stop can raise its fetcher's ``CancelledError`` half-way and
    leave faust waiting for ever during a broker outage. A timer thread, so that it fires whatever the
    event loop is blocked on.
    """
    def leave() -> None:
        log.warning("faust's own Kafka clients did not stop in time (Kafka unreachable?); exiting, the worker's "
                    "work is already stopped")
        logging.shutdown()
        os._exit(0)

    timer = threading.Timer(max(0.0, deadline - time.monotonic()), leave)
    timer.daemon = True
    timer.start()


def web_port_taken(host: str, port: int) -> str | None:
    """Why the control API could not listen on ``host:port`` now (None: it can)."""
    try:
        with socket.create_server((host, port)):
            return None
    except OSError as exc:
        return os.strerror(exc.errno) if exc.errno else str(exc)


def install_event_loop(kind: str) -> asyncio.AbstractEventLoop:
    """Make the main thread's event loop (the one faust's ``Worker`` runs) of ``kind`` and return it.

    Only that loop: the loops created after it (``asyncio.new_event_loop()``) stay the standard library's.
    faust runs its own group's consumer in a thread with a loop of its own and touches that loop from the
    main thread at stop; with uvloop there (a process-wide uvloop policy) the worker died of SIGSEGV in about
    one SIGTERM in fifty on a loaded machine. The data path runs on the main loop, so it keeps uvloop's gain.
    """
    loop = uvloop.new_event_loop() if kind == "uvloop" else asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    return loop


def run(config: WorkerConfig, level: str = "info", config_file: str | None = None) -> None:
    """Run the worker in this process until SIGTERM/SIGINT (blocks; exits the process)."""
    faulthandler.enable()  # a crash in a C extension prints every thread's Python stack, not just "SIGSEGV"
    setup_logging(level, config.worker.log_format)
    busy = web_port_taken(config.worker.web_host, config.worker.web_port)
    if busy is not None:  # faust would log a traceback for it, after connecting to Kafka
        log.error("cannot start: worker.web_port %d on %s is not free (%s): stop what listens there, or set "
                  "worker.web_port", config.worker.web_port, config.worker.web_host, busy)
        sys.exit(1)
    try:  # faust's own clients give up at once with a traceback when Kafka is down: wait for it first
        asyncio.run(wait_for_broker("starting", lambda: probe(config.kafka), config.worker.broker_wait_s))
    except (BrokerUnavailable, KafkaAccessError, TlsSettingError) as exc:
        log.error("cannot start: %s", exc)
        sys.exit(1)
    try:  # a topic that cannot be used is one line, not faust's traceback from inside the start
        asyncio.run(prepare_store_topics(config))
        asyncio.run(prepare_topics(config))
    except (StoreUnavailable, TopicMisconfigured) as exc:
        log.error("cannot start: %s", exc)
        sys.exit(1)
    install_event_loop(config.worker.event_loop)
    app, _ = create_app(config, config_file=config_file)
    worker = faust.Worker(
        app,
        loglevel={"warning": "warn"}.get(level, level),
        logging_config=logging_config(level, config.worker.log_format),
        redirect_stdouts=False,
        quiet=True,
    )
    worker.execute_from_commandline()

