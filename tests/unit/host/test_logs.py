"""Structured logs never carry a secret."""

from __future__ import annotations

import io
import json
import logging
import logging.config

import pytest

from worker.host.logs import JsonFormatter, logging_config, redact, register_secret

SECRET = "sk_live_9f8e7d6c5b4a"


@pytest.fixture
def captured() -> io.StringIO:
    register_secret(SECRET)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("test.secrets")
    logger.handlers[:] = [handler]
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    return stream


def test_a_registered_secret_never_reaches_a_log_line(captured: io.StringIO) -> None:
    log = logging.getLogger("test.secrets")
    log.info("calling with key %s", SECRET)
    log.warning("headers: %s", {"Authorization": "Basic YWdlbnRAYWNtZS5jb206c2tfbGl2ZQ=="})
    log.error("config said api_key=%s and token: abc.def.ghi", SECRET)
    try:
        raise RuntimeError(f"boom {SECRET}")
    except RuntimeError:
        log.exception("failed")
    text = captured.getvalue()
    assert SECRET not in text
    assert "YWdlbnRAYWNtZS5jb206c2tfbGl2ZQ==" not in text and "abc.def.ghi" not in text
    lines = [json.loads(line) for line in text.splitlines()]
    assert [x["level"] for x in lines] == ["info", "warning", "error", "error"]
    assert "[redacted]" in lines[0]["msg"] and "exc" in lines[3]


@pytest.mark.parametrize(("text", "leak"), [
    ("Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.payload.sig", "eyJhbGciOiJIUzI1NiJ9"),
    ('{"password": "hunter22"}', "hunter22"),
    ("sasl_password=s3cr3t-pw", "s3cr3t-pw"),
    ("basic ZGVtbzpkZW1vLWtleQ==", "ZGVtbzpkZW1vLWtleQ=="),
])
def test_credential_shapes_are_redacted(text: str, leak: str) -> None:
    assert leak not in redact(text)


def test_plain_text_is_left_alone() -> None:
    assert redact("delivered 12 records to acme in 40 ms") == "delivered 12 records to acme in 40 ms"


def test_logging_config_routes_every_logger_through_the_redacting_formatter() -> None:
    config = logging_config("info", "json")
    assert config["formatters"]["json"]["()"] is JsonFormatter
    assert config["root"]["handlers"] == ["stderr"]
    root = logging.getLogger()
    saved, level = list(root.handlers), root.level
    try:
        logging.config.dictConfig(config)
        assert isinstance(root.handlers[0].formatter, JsonFormatter)
    finally:
        root.handlers[:] = saved
        root.setLevel(level)
