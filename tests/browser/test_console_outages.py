"""Kafka, or the worker itself, out of reach: the console says so in a banner, never a blank page, and
recovers by itself. (A broker of this module's own, so that stopping it disturbs no other test.)"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.support.broker import LocalBroker
from tests.support.console import Console, Watched, start_console, stop_console

pytestmark = pytest.mark.integration

OpenPage = Callable[..., tuple[Page, Watched]]


@pytest.fixture(scope="module")
def broker() -> Iterator[LocalBroker]:
    own = LocalBroker(sasl=False)
    own.start()
    try:
        yield own
    finally:
        own.stop()


@pytest.fixture(scope="module")
def console(broker: LocalBroker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    records = {"tags": [{"ticket_id": 1, "tags": ["a"]}]}
    started = start_console(broker.bootstrap, tmp_path_factory.mktemp("outage"), records)
    try:
        yield started
    finally:
        stop_console(started)


def test_kafka_out_of_reach_is_a_banner_until_it_is_back(open_page: OpenPage, console: Console,
                                                         broker: LocalBroker, tmp_path: Path) -> None:
    page, watched = open_page(console.url)
    expect(page.locator(".screen-head h2")).to_have_text("Destinations")
    banner = page.locator("[data-banner='kafka']")
    expect(banner).to_be_hidden()
    broker.halt()
    try:
        try:
            expect(banner).to_contain_text("Kafka", timeout=40_000)  # the worker probes every 5 s
        except AssertionError as exc:
            raise AssertionError(f"{exc}\nworker log:\n{console.worker.output()[-4000:]}") from None
        expect(page.locator("#new-destination")).to_be_visible()  # the page is still there
        page.screenshot(path=str(tmp_path / "kafka-down.png"))
        page.locator("#new-destination").click()
        expect(page.locator(".topics .hint")).to_contain_text("could not be listed", timeout=30_000)
        watched.errors[:] = [e for e in watched.errors if "503" not in e]  # GET /topics answered 503: expected
    finally:
        broker.start()
    page.locator("a", has_text="Back to destinations").click()
    expect(banner).to_be_hidden(timeout=60_000)


def test_the_worker_gone_is_a_banner(open_page: OpenPage, console: Console) -> None:
    page, watched = open_page(console.url)
    expect(page.locator(".screen-head h2")).to_have_text("Destinations")
    console.worker.stop()
    banner = page.locator("[data-banner='worker']")
    expect(banner).to_contain_text("the worker does not answer", timeout=15_000)
    expect(page.locator(".screen-head h2")).to_have_text("Destinations")
    console.worker.start()
    expect(banner).to_be_hidden(timeout=60_000)
    watched.errors[:] = [e for e in watched.errors if "ERR_CONNECTION_REFUSED" not in e]
