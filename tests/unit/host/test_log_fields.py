"""Logs an operator can use: fields naming the records, the call's context, libraries kept quiet."""

from __future__ import annotations

import importlib
import io
import json
import logging
import logging.config
import pkgutil
from collections.abc import Iterator
from typing import Any

import pytest

import worker
from worker.core.records.record import SourceRef
from worker.host.logs import (
    ContextFilter,
    JsonFormatter,
    QuietFilter,
    call_context,
    is_own_logger,
    logging_config,
    register_secret,
    source_fields,
)

SECRET = "tok_0123456789abcdef"
SOURCES = [SourceRef("orders", 3, 1200, b"k"), SourceRef("orders", 3, 1201, b"k")]


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def captured(clock: Clock) -> Iterator[io.StringIO]:
    """Loggers ``test.fields`` and ``aiokafka.test`` written as our JSON lines, through our filters."""
    register_secret(SECRET)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(ContextFilter())
    handler.addFilter(QuietFilter(interval=30, clock=clock))
    loggers = [logging.getLogger(name) for name in ("test.fields", "aiokafka.test", "worker.test")]
    for logger in loggers:
        logger.handlers[:] = [handler]
        logger.setLevel(logging.DEBUG)
        logger.propagate = False
    yield stream
    for logger in loggers:
        logger.handlers[:] = []
        logger.propagate = True


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_a_line_about_records_carries_their_coordinates(captured: io.StringIO) -> None:
    logging.getLogger("test.fields").warning(
        "dead letter (stage render) of 2 record(s): %s", f"bad token {SECRET}",
        extra={**source_fields("support", SOURCES), "stage": "render"},
    )
    (line,) = lines(captured)
    assert line["destination"] == "support" and line["topic"] == "orders"
    assert line["partition"] == 3 and line["offset"] == 1200 and line["records"] == 2 and line["stage"] == "render"
    assert SECRET not in captured.getvalue()


def test_lines_logged_during_a_call_carry_the_calls_records(captured: io.StringIO) -> None:
    token = call_context.set(source_fields("support", SOURCES[:1]))
    try:
        logging.getLogger("test.fields").info("attempt %d failed (%s); retrying in %.2f s", 1, "HTTP 503", 0.8)
    finally:
        call_context.reset(token)
    logging.getLogger("test.fields").info("after the call")
    first, after = lines(captured)
    assert first["msg"] == "attempt 1 failed (HTTP 503); retrying in 0.80 s"
    assert (first["destination"], first["topic"], first["partition"], first["offset"]) == ("support", "orders", 3, 1200)
    assert "destination" not in after


def test_a_library_repeating_itself_is_heard_once_per_interval(captured: io.StringIO, clock: Clock) -> None:
    noisy = logging.getLogger("aiokafka.test")
    for _ in range(200):
        noisy.error("Unable connect to %r", "kafka:9092")
        clock.now += 0.05  # 10 s in all
    clock.now = 31
    noisy.error("Unable connect to %r", "kafka:9092")
    noisy.warning("another message")
    out = lines(captured)
    assert [line["msg"] for line in out] == [
        "Unable connect to 'kafka:9092'",
        "Unable connect to 'kafka:9092' (199 similar line(s) in the last 31 s not shown)",
        "another message",
    ]
    assert out[0]["level"] == "warning"  # aiokafka retries these itself: not an error of the worker


def test_the_workers_own_lines_are_never_held_back(captured: io.StringIO) -> None:
    for _ in range(5):
        logging.getLogger("worker.test").warning("dead letter")
    assert len(lines(captured)) == 5


def test_every_module_logs_under_its_own_name_and_counts_as_the_workers_own() -> None:
    named = {}
    for info in pkgutil.walk_packages(worker.__path__, "worker."):
        if info.name == "worker.__main__":  # runs the command line
            continue
        module = importlib.import_module(info.name)
        log = getattr(module, "log", None)
        if isinstance(log, logging.Logger):
            named[info.name] = log.name
    assert len(named) >= 10  # the pipeline, the runtime, the clients, ...
    assert {module: name for module, name in named.items() if name != module} == {}
    assert all(is_own_logger(name) for name in named.values())
    assert not is_own_logger("workers") and not is_own_logger("aiokafka.worker")


def test_httpx_says_nothing_per_call_at_the_default_level() -> None:
    root = logging.getLogger()
    saved, level = list(root.handlers), root.level
    try:
        logging.config.dictConfig(logging_config("info", "json"))
        assert not logging.getLogger("httpx").isEnabledFor(logging.INFO)
        assert not logging.getLogger("faust.worker").isEnabledFor(logging.INFO)  # no "[^Worker]: Starting..."
        assert not logging.getLogger("mode.services").isEnabledFor(logging.INFO)
        assert logging.getLogger("httpx").isEnabledFor(logging.WARNING)
        assert logging.getLogger("worker.gorgias.delivery").isEnabledFor(logging.INFO)
    finally:
        root.handlers[:] = saved
        root.setLevel(level)
