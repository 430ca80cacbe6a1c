"""An OAuth app authorized without a scope its destination needs, as the console shows it: the Destinations
screen flags the destination with a "scopes missing" badge that says what to do, and once Gorgias refuses a
call for that scope, the hold's reason names the scope where the state is shown."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.support import http
from tests.support.console import PHONE, Console, Watched, screenshots, start_console, stop_console

pytestmark = pytest.mark.integration

OpenPage = Callable[..., tuple[Page, Watched]]
CLIENT_SECRET = "sandbox-client-secret"  # the sandbox's app sandbox-client
HELP = ("The OAuth app was not granted these scopes, which this destination needs: authorize the app again with "
        "them and give the worker its new refresh token (README, OAuth apps).")
GRANTED = "openid offline account:read tickets:read tags:read tags:write"  # tickets:write forgotten


def app_destination(folder: Path) -> Callable[[str, str], list[dict[str, Any]]]:
    """The config's destination: tags for tickets on an OAuth app whose user granted ``GRANTED`` (the
    sandbox's ``POST /__admin/oauth/authorize``, as the authorization-code flow would)."""

    def destinations(sandbox_url: str, run: str) -> list[dict[str, Any]]:
        answer = http.request("POST", f"{sandbox_url}/__admin/oauth/authorize", timeout=10,
                              json={"client_id": "sandbox-client", "scope": GRANTED})
        answer.raise_for_status()
        (folder / "refresh-token").write_text(answer.json()["refresh_token"])
        (folder / "client-secret").write_text(CLIENT_SECRET)
        credential = {"domain": "acme", "auth": "oauth_app", "client_id": "sandbox-client",
                      "client_secret_file": str(folder / "client-secret"),
                      "refresh_token_file": str(folder / "refresh-token"), "base_url": sandbox_url}
        return [{"name": name, "source_topics": [f"tags-{run}"], "active": active, "credential": credential,
                 "endpoint": {"template": "add_ticket_tags"}, "dead_letter_topic": f"dead-{run}"}
                for name, active in (("app-tags", True), ("app-tags-paused", False))]

    return destinations


@pytest.fixture(scope="module")
def console(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    folder = tmp_path_factory.mktemp("scopes")
    started = start_console(kafka_bootstrap, folder, {"tags": [{"ticket_id": 1, "tags": ["vip"]}]},
                            app_destination(folder))
    try:
        yield started
    finally:
        stop_console(started)


def test_a_destination_whose_app_lacks_a_scope_shows_it_and_the_hold_names_it(
    open_page: OpenPage, console: Console,
) -> None:
    page, _ = open_page(console.url)
    # paused, nothing refused yet: the badge, and beside it what to do (also its tooltip)
    paused = page.locator("tr[data-destination='app-tags-paused'] [data-col='state']")
    expect(paused.locator(".scopes-missing")).to_have_text("scopes missing: tickets:write", timeout=60_000)
    expect(paused.locator(".scopes-missing")).to_have_attribute("title", HELP)
    expect(paused.locator(".reason")).to_have_text(HELP)
    expect(paused.locator(".state")).to_have_text("paused")
    # active: the record's call is refused for the scope, and the hold's reason names it, beside the state
    held = page.locator("tr[data-destination='app-tags'] [data-col='state']")
    expect(held.locator(".state")).to_have_text("held", timeout=60_000)
    expect(held.locator(".scopes-missing")).to_have_text("scopes missing: tickets:write")
    expect(held.locator(".reason")).to_contain_text("the OAuth app was not granted scope tickets:write — "
                                                    "authorize it again with that scope")
    page.screenshot(path=str(screenshots() / "13-scopes-missing.png"), full_page=False)


def test_the_badge_and_the_reason_fit_a_phone(open_page: OpenPage, console: Console) -> None:
    page, _ = open_page(console.url, viewport=PHONE)
    expect(page.locator("tr[data-destination='app-tags'] .scopes-missing")).to_be_visible(timeout=60_000)
    assert page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth") <= 0
