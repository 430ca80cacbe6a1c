"""The console driven by a real headless Chromium (Debian's `chromium`, through Playwright's
`executable_path`) against the real broker, the sandbox and a real worker process.

One browser and one worker per test module. Every page records what the browser's console says and
any dialog the page opens; a test fails when the page logged an error or opened a dialog it did not
expect. Set ``CONSOLE_SCREENSHOTS=docs/console`` (``make console-screenshots``) to write the flow's
screenshots there; otherwise they go to a temporary folder.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.support.console import DESKTOP, TOKEN, Watched

CHROMIUM = Path(os.environ.get("CONSOLE_CHROMIUM", "/usr/bin/chromium"))
# Saving a credential or a destination is a transactional write to a Kafka topic read back by the worker:
# on a loaded CI machine it took more than Playwright's default 5 s (a fresh-clone run)
expect.set_options(timeout=20_000)

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="session")
def chromium() -> Path:
    if not CHROMIUM.exists():
        pytest.skip(f"browser tests skipped: no Chromium at {CHROMIUM} (make setup installs Debian's chromium "
                    "package when it runs as root with apt-get)")
    return CHROMIUM


@pytest.fixture(scope="module")
def browser(chromium: Path) -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(chromium), args=FLAGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def open_page(browser: Browser) -> Iterator[Callable[..., tuple[Page, Watched]]]:
    """``open_page(url, viewport=DESKTOP, token=True)``: a fresh tab (its own sessionStorage) at ``url``;
    afterwards, the page must have logged no error and opened no alert/confirm/prompt."""
    opened: list[tuple[Any, Watched]] = []

    def open_(url: str, viewport: dict[str, int] = DESKTOP, token: bool = True) -> tuple[Page, Watched]:
        context = browser.new_context(viewport=viewport)  # type: ignore[arg-type]
        if token:
            context.add_init_script(f"sessionStorage.setItem('gorgias-worker.control-token', '{TOKEN}')")
        page = context.new_page()
        watched = Watched(page)
        opened.append((context, watched))
        page.goto(url)
        return page, watched

    yield open_
    for context, watched in opened:
        context.close()
        assert watched.errors == [], watched.errors
        assert watched.dialogs == [], watched.dialogs


