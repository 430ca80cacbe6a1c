"""Test-session fixtures: a real Apache Kafka broker, one for the whole run (or KAFKA_BOOTSTRAP_SERVERS).

With pytest-xdist (`make test` runs the suite in several processes) every process asks for the broker and
the first one starts it; see tests/support/shared_broker.py.
"""

from __future__ import annotations

import os
import uuid

import pytest

from tests.support.shared_broker import SharedBroker, close_run, open_run, shared_broker


def pytest_configure(config: pytest.Config) -> None:
    if not hasattr(config, "workerinput"):  # the run's main process, not one of xdist's test processes
        open_run()


def pytest_unconfigure(config: pytest.Config) -> None:
    if not hasattr(config, "workerinput"):
        close_run()


@pytest.fixture(scope="session")
def kafka_broker() -> SharedBroker | None:
    """The run's broker; None when KAFKA_BOOTSTRAP_SERVERS points at an external one."""
    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        return None
    return shared_broker()


@pytest.fixture(scope="session")
def kafka_bootstrap(kafka_broker: SharedBroker | None) -> str:
    """Bootstrap address of the real broker the integration tests use."""
    if kafka_broker is None:
        return os.environ["KAFKA_BOOTSTRAP_SERVERS"]
    return kafka_broker.bootstrap


@pytest.fixture
def unique_topic() -> str:
    return f"test-{uuid.uuid4().hex[:12]}"
