"""Config documents for the config and CLI tests: a valid base to vary, and the problems a change brings."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from typer.testing import Result

from worker.core.config.base import ConfigError
from worker.core.config.worker_config import parse_config

BASE: dict[str, Any] = {
    "kafka": {"bootstrap_servers": "localhost:9092"},
    "destinations": [
        {
            "name": "support-tickets",
            "source_topics": ["nexset.support-requests"],
            "credential": {"domain": "mystore", "username": "agent@mystore.com", "api_key_env": "GORGIAS_API_KEY"},
            "endpoint": {"method": "PUT", "url": "https://{domain}.gorgias.com/api/tickets/{ticket_id}"},
        }
    ],
}


def with_(path: str, value: Any) -> dict[str, Any]:
    """BASE with one value set at a dotted path (digits index lists)."""
    doc = copy.deepcopy(BASE)
    node: Any = doc
    parts = path.split(".")
    for part in parts[:-1]:
        node = node[int(part)] if part.isdigit() else node.setdefault(part, {})
    node[parts[-1]] = value
    return doc


def problems(doc: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(doc)
    return info.value.problems


# A config whose broker nothing answers on: for CLI commands that must fail with one line.
CONFIG = {
    "kafka": {"bootstrap_servers": "127.0.0.1:1"},
    "destinations": [{
        "name": "support-tickets",
        "source_topics": ["nexset.support-requests"],
        "credential": {"domain": "mystore", "username": "agent@mystore.com", "api_key_env": "CLI_ERR_KEY"},
        "endpoint": {"method": "POST", "url": "https://{domain}.gorgias.com/api/tickets"},
        "response_webhook": {"topic": "mystore.responses"},
    }],
}


def one_error_line(result: Result, *needles: str) -> str:
    assert result.exit_code == 1, (result.exit_code, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]
