"""Structured logs: one JSON object per line, with secrets redacted before anything is written."""

from __future__ import annotations

import logging
import logging.config
import re
import time
from collections.abc import Callable, Sequence
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

import orjson

from worker.core.records.record import SourceRef

# Fields a log line may carry besides its message (given as ``extra=`` or by the call context).
FIELDS = ("destination", "topic", "partition", "offset", "records", "stage")
# The records a coroutine is working for: lines logged inside it (a retry in the delivery) carry them.
call_context: ContextVar[dict[str, Any] | None] = ContextVar("call_context", default=None)
# Other libraries' loggers repeat themselves during a broker outage (aiokafka: several lines per
# connection attempt): each distinct message is let through once per interval, with a count of the rest.
QUIET_INTERVAL_S = 30.0
# The worker's own loggers are named by module (``logging.getLogger(__name__)``): ``worker.kafka.pipeline``.
OWN_PACKAGE = __name__.partition(".")[0]


def is_own_logger(name: str) -> bool:
    """Whether a logger is one of the worker's own (never held back by :class:`QuietFilter`)."""
    return name == OWN_PACKAGE or name.startswith(OWN_PACKAGE + ".")

# Values that must never reach a log line, whatever logged them: Basic/Bearer credentials,
# key=value secrets, and any secret registered at start (API keys, tokens, Kafka passwords).
_PATTERNS = [
    re.compile(r"(?i)(authorization[\"']?\s*[:=]\s*[\"']?)(basic|bearer)\s+[A-Za-z0-9._~+/=-]+"),
    re.compile(r"(?i)\b(basic|bearer)\s+[A-Za-z0-9._~+/=-]{8,}"),
    re.compile(r"(?i)((?:api[_-]?key|password|passwd|secret|token)[\"']?\s*[:=]\s*[\"']?)[^\s\"',}]+"),
]
_known_secrets: set[str] = set()


def register_secret(value: str) -> None:
    """Remember a secret so that it is masked wherever it would appear in a log line."""
    if len(value) >= 4:
        _known_secrets.add(value)


def redact(text: str) -> str:
    for secret in _known_secrets:
        if secret in text:
            text = text.replace(secret, "[redacted]")
    text = _PATTERNS[0].sub(lambda m: f"{m.group(1)}{m.group(2)} [redacted]", text)
    text = _PATTERNS[1].sub(lambda m: f"{m.group(1)} [redacted]", text)
    return _PATTERNS[2].sub(lambda m: f"{m.group(1)}[redacted]", text)


def source_fields(destination: str, sources: Sequence[SourceRef]) -> dict[str, Any]:
    """Log fields naming the records of a call: the first record's coordinates and how many there are."""
    first = sources[0]
    return {"destination": destination, "topic": first.topic, "partition": first.partition, "offset": first.offset,
            "records": len(sources)}


class ContextFilter(logging.Filter):
    """Adds the current call's fields (see :data:`call_context`) to lines logged without their own."""

    def filter(self, record: logging.LogRecord) -> bool:
        context = call_context.get()
        if context:
            for key, value in context.items():
                if not hasattr(record, key):
                    setattr(record, key, value)
        return True


class QuietFilter(logging.Filter):
    """Lets each distinct message of other libraries' loggers through once per interval (and logs
    aiokafka's errors as warnings)."""

    def __init__(self, interval: float = QUIET_INTERVAL_S, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.interval = interval
        self.clock = clock
        self._seen: dict[tuple[str, int, str], tuple[float, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if is_own_logger(record.name) or record.levelno < logging.WARNING:
            return True
        if record.name.startswith("aiokafka") and record.levelno == logging.ERROR:
            # aiokafka reports what it retries by itself (a connection refused, a coordinator not yet
            # elected) as errors; what it cannot cure reaches the worker as an exception, logged there.
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        key = (record.name, record.levelno, str(record.msg))
        now = self.clock()
        last = self._seen.get(key)
        if last is not None and now - last[0] < self.interval:
            self._seen[key] = (last[0], last[1] + 1)
            return False
        if len(self._seen) > 1000:
            self._seen.clear()
        self._seen[key] = (now, 0)
        if last is not None and last[1]:
            record.msg = f"{record.msg} ({last[1]} similar line(s) in the last {now - last[0]:.0f} s not shown)"
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": redact(record.getMessage()),
        }
        for field in FIELDS:
            value = getattr(record, field, None)
            if value is not None:
                doc[field] = redact(value) if isinstance(value, str) else value
        if record.exc_info:
            doc["exc"] = redact(self.formatException(record.exc_info))
        return orjson.dumps(doc).decode()


class RedactingFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        fields = " ".join(f"{f}={getattr(record, f)}" for f in FIELDS if getattr(record, f, None) is not None)
        return redact(f"{super().format(record)} [{fields}]" if fields else super().format(record))


def logging_config(level: str = "info", fmt: str = "json") -> dict[str, Any]:
    """A ``logging.config.dictConfig`` document: every logger (faust's and aiokafka's too) through us."""
    formatters: dict[str, Any] = {
        "json": {"()": JsonFormatter},
        "text": {"()": RedactingFormatter, "format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
    }
    # Libraries speak at WARNING and above unless debugging: httpx's INFO line per request would
    # otherwise be one line per API call, and faust (with mode, its service framework) says
    # "Starting..."/"Stopping..." for each of its ~20 services.
    quiet = "WARNING" if level.lower() in ("info", "debug") else level.upper()
    libraries = {name: {"level": quiet} for name in ("aiokafka", "httpx", "httpcore", "faust", "mode")}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": formatters,
        "filters": {"context": {"()": ContextFilter}, "quiet": {"()": QuietFilter}},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": fmt, "stream": "ext://sys.stderr",
                                "filters": ["context", "quiet"]}},
        "root": {"handlers": ["stderr"], "level": level.upper()},
        "loggers": libraries,
    }


def setup_logging(level: str = "info", fmt: str = "json") -> None:
    logging.config.dictConfig(logging_config(level, fmt))
