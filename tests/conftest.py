"""Test-session fixtures and rules: a real Apache Kafka broker, one for the whole run (or
KAFKA_BOOTSTRAP_SERVERS), and the `integration` marker on every test that needs it.

With pytest-xdist (`make test` runs the suite in several processes) every process asks for the broker and
the first one starts it; see tests/support/shared_broker.py. Integration tests are handed out first: they
are the long ones, and a long test started last would end the run alone.
"""

from __future__ import annotations

import os
import uuid

import pytest
from hypothesis import HealthCheck, settings

from tests.support.shared_broker import SharedBroker, close_run, open_run, shared_broker
from tests.support.xdist_groups import GroupScheduling, record_groups

# The suite shares two cores between its processes (and brokers and workers): property tests keep their
# number of examples but are judged on what they find, not on how fast a loaded machine draws inputs.
settings.register_profile("suite", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("suite")

# A test that uses one of these needs the real broker, so it must carry the `integration` marker.
BROKER_FIXTURES = frozenset({"kafka_broker", "kafka_bootstrap"})
# Every test in these folders runs against the broker (or starts one of its own).
INTEGRATION_FOLDERS = ("integration", "browser", "image")


def pytest_configure(config: pytest.Config) -> None:
    if not hasattr(config, "workerinput"):  # the run's main process, not one of xdist's test processes
        open_run()


def pytest_unconfigure(config: pytest.Config) -> None:
    if not hasattr(config, "workerinput"):
        close_run()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Integration tests first (a stable sort: the order within each kind is kept). The tests of a module
    that share a module-scoped fixture (a browser, a broker of their own) form one xdist group: one
    process runs them all and sets the fixture up once."""
    items.sort(key=lambda item: item.get_closest_marker("integration") is None)
    for item in items:
        if shares_module_fixture(item):
            item.add_marker(pytest.mark.xdist_group(item.nodeid.split("::")[0]))
    record_groups(config, items)


def shares_module_fixture(item: pytest.Item) -> bool:
    info = getattr(item, "_fixtureinfo", None)  # pytest's own record of the fixtures a test uses
    if info is None:
        return False
    return any(d.scope == "module" for defs in info.name2fixturedefs.values() for d in defs)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> GroupScheduling | None:
    """`--dist loadgroup` with groups that work under pytest 9.2 (tests/support/xdist_groups.py)."""
    return GroupScheduling(config, log) if config.getvalue("dist") == "loadgroup" else None


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Fail, before any fixture starts, a test that needs Kafka without the `integration` marker."""
    if item.get_closest_marker("integration") is not None:
        return
    fixtures = BROKER_FIXTURES.intersection(getattr(item, "fixturenames", ()))
    folder = folder_of(item)
    if fixtures or folder in INTEGRATION_FOLDERS:
        why = f"uses {', '.join(sorted(fixtures))}" if fixtures else f"is in tests/{folder}/"
        pytest.fail(f"{item.nodeid} {why} but has no `integration` marker: add "
                    "`pytestmark = pytest.mark.integration` to its module", pytrace=False)


def folder_of(item: pytest.Item) -> str:
    """The folder under tests/ that holds ``item`` ("unit", "integration", ...)."""
    parts = item.path.relative_to(item.config.rootpath).parts
    return parts[1] if len(parts) > 2 and parts[0] == "tests" else ""


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
