"""The whole flow of issue 22, as a person does it in the browser, against the real broker, the sandbox
and a real worker: create a destination from a template, watch the sample requests follow batch size,
algorithm and excluded attributes, edit a sample and Send Test Data (then delete what it created),
Done, Activate, records delivered and lag at 0, Pause, Edit, Delete. Each step's screenshot goes to
``$CONSOLE_SCREENSHOTS`` (``make console-screenshots``: docs/console/)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import pytest
from playwright.sync_api import Locator, Page, expect

from tests.support.console import Console, Watched, screenshots, start_console, stop_console
from tests.support.processes import API_KEY

pytestmark = pytest.mark.integration

OpenPage = Callable[..., tuple[Page, Watched]]
PEOPLE = [("Jane Doe", "jane@example.com"), ("Omar Haddad", "omar@example.com"), ("Li Wei", "li@example.com")]
REQUESTS = [{"conversation_id": f"conv-{i % 3}", "subject": f"Order #{2000 + i % 3}: where is my parcel?",
             "body_text": f"Message {i} about order #{2000 + i % 3}.", "customer_email": PEOPLE[i % 3][1],
             "customer_name": PEOPLE[i % 3][0], "internal_score": i / 10} for i in range(6)]


@pytest.fixture(scope="module")
def console(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    started = start_console(kafka_bootstrap, tmp_path_factory.mktemp("flow"), {"requests": REQUESTS})
    try:
        yield started
    finally:
        stop_console(started)


def shot(page: Page, name: str, show: Locator | None = None) -> None:
    """The screen as the person sees it, scrolled to ``show``."""
    if show is not None:
        show.scroll_into_view_if_needed()
    page.screenshot(path=str(screenshots() / f"{name}.png"), full_page=False)


def test_the_whole_flow(open_page: OpenPage, console: Console) -> None:
    page, _ = open_page(console.url)
    expect(page.locator("tr[data-destination='ticket-tags']")).to_be_visible()
    shot(page, "01-destinations")

    # New: source topic, credential, template (explained), and the requests of the latest records
    page.get_by_role("link", name="New destination").click()
    page.locator("#destination-name").fill("support-requests")
    page.get_by_label(console.topics["requests"], exact=True).check()
    # a credential created on the spot, tested before it is saved
    page.get_by_role("button", name="New credential…").click()
    creator = page.locator(".credential-new")
    creator.get_by_label("Name", exact=True).fill("sandbox-key")
    creator.get_by_label("Helpdesk domain").fill("acme")
    creator.get_by_label("User email").fill("agent@acme.com")
    creator.get_by_label("API key").fill(API_KEY)
    creator.get_by_label("Base URL (optional)").fill(console.sandbox.url)
    creator.get_by_role("button", name="Test credential").click()
    expect(creator.locator(".test-answer")).to_contain_text("The credential works.")
    expect(creator.locator(".test-answer")).to_contain_text("acme")
    shot(page, "02-credential-tested", creator)
    creator.get_by_role("button", name="Create credential").click()
    expect(page.locator("#credential-select")).to_have_value("sandbox-key")
    assert API_KEY not in page.content()  # the key is not shown again anywhere
    page.locator("#template-select").select_option("create_ticket")
    expect(page.locator(".template-help")).to_contain_text("Record attributes it reads")
    expect(page.locator("#preview-items > li")).to_have_count(6)  # one ticket per record
    expect(page.locator("#preview-items > li").first).to_contain_text(f"POST {console.sandbox.url}/api/tickets")
    shot(page, "03-new-from-a-template")

    # batching by conversation: one ticket per conversation, a message per record
    page.get_by_label("Batch records together").check()
    expect(page.locator(".batch-options .chip span")).to_have_text(["conversation_id"])
    expect(page.locator("#preview-items > li")).to_have_count(3)
    first = page.locator("#preview-items > li").first
    first.locator("summary").click()
    expect(first.locator("summary")).to_contain_text(re.compile(r"records \d, \d$"))  # two records, one ticket
    shot(page, "04-batched-by-conversation", page.locator(".batch-options"))
    page.get_by_label("Batch size").fill("1")
    expect(page.locator("#preview-items > li")).to_have_count(6)
    page.get_by_label("Batch size").fill("100")
    page.get_by_label("Grouping algorithm").select_option("session_window")
    expect(page.locator("#preview-items > li")).to_have_count(3)
    # an excluded attribute leaves the bodies
    body = page.locator("#preview-items > li").first.locator("pre.body")
    expect(body).to_contain_text('"name": "')
    page.get_by_label("Exclude attributes", exact=True).fill("customer_name")
    page.get_by_label("Exclude attributes", exact=True).press("Enter")
    expect(page.locator("#preview-items > li").first.locator("pre.body")).not_to_contain_text('"name": "')
    shot(page, "05-excluded-attribute", page.locator("#endpoint-section .chips"))

    # Test: edit the first request's body in place, Send Test Data (what it does first), then undo it
    page.get_by_role("button", name="Test", exact=True).click()
    payload = page.locator("#preview-items > li").first.locator("textarea.payload")
    expect(payload).to_be_visible()
    edited = payload.input_value().replace("where is my parcel?", "edited in the console", 1)
    payload.fill("{not json")
    expect(page.locator("#preview-items > li").first.get_by_role("button", name="Send Test Data")).to_be_disabled()
    expect(page.locator("#preview-items > li").first.locator(".tester")).to_contain_text("Not valid JSON")
    payload.fill(edited)
    send = page.locator("#preview-items > li").first.get_by_role("button", name="Send Test Data")
    expect(send).to_be_enabled()
    send.click()
    dialog = page.locator("#confirm-dialog")
    expect(dialog).to_contain_text("Will create a ticket on acme.gorgias.com")
    expect(dialog).to_contain_text("Nobody would be emailed.")
    shot(page, "06-send-test-data-asks-first")
    page.get_by_role("button", name="Send", exact=True).click()
    result = page.locator("#preview-items > li").first.locator(".test-result")
    expect(result).to_contain_text("HTTP 201")
    expect(result).to_contain_text("Response headers")
    tickets = console.sandbox.state()["tickets"]
    assert [re.sub(r"#\d+", "#N", t["subject"]) for t in tickets] == ["Order #N: edited in the console"]
    shot(page, "07-test-result", result)
    result.get_by_role("button", name=re.compile(r"^Delete ticket \d+")).click()
    page.get_by_role("button", name="Delete", exact=True).click()
    expect(result).to_contain_text("Deleted (HTTP 204)")
    assert console.sandbox.state()["tickets"] == []

    # Done saves it, paused; Activate starts it
    page.get_by_role("button", name="Done").click()
    expect(page.locator("#save-outcome")).to_contain_text("Saved support-requests. It stays paused")
    shot(page, "08-saved-paused", page.locator("#save-outcome"))
    page.get_by_role("button", name="Activate").click()
    saved = page.locator("tr[data-destination='support-requests']")
    expect(saved).to_contain_text("active")
    expect(saved.locator("[data-col='counts']")).to_have_text("6 / 0 / 0", timeout=60_000)
    expect(saved.locator("[data-col='lag']")).to_have_text("0", timeout=60_000)
    assert len(console.sandbox.state()["tickets"]) == 3  # a ticket per conversation
    shot(page, "09-active-delivered")

    # Pause, Edit (its saved config comes back; a change is saved with its version), Delete
    saved.get_by_text("Actions").click()
    saved.get_by_role("button", name="Pause").click()
    expect(saved.locator(".state")).to_have_text("paused")
    saved.get_by_text("Actions").click()
    saved.get_by_role("button", name="Edit").click()
    expect(page.locator("#editor-title")).to_have_text("Edit support-requests")
    expect(page.locator("#template-select")).to_have_value("create_ticket")
    expect(page.locator("#credential-select")).to_have_value("sandbox-key")
    expect(page.get_by_label("Batch records together")).to_be_checked()
    expect(page.get_by_label("Grouping algorithm")).to_have_value("session_window")
    expect(page.locator("#endpoint-section .chip span")).to_have_text(["customer_name"])
    expect(page.locator(".batch-options .chip span")).to_have_text(["conversation_id"])
    page.get_by_label("Batch size").fill("50")
    page.get_by_role("button", name="Done").click()
    expect(page.locator("#save-outcome")).to_contain_text("Saved support-requests")
    assert console.api("GET", "/destinations/support-requests/config")["config"]["batching"]["batch_size"] == 50
    page.get_by_role("link", name="Back to destinations").click()
    saved = page.locator("tr[data-destination='support-requests']")
    saved.get_by_text("Actions").click()
    saved.get_by_role("button", name="Delete").click()
    expect(page.locator("#confirm-dialog")).to_contain_text("Delete support-requests?")
    shot(page, "10-delete-asks-first")
    page.get_by_role("button", name="Delete", exact=True).click()
    expect(saved).to_have_count(0)
    expect(page.locator(".message")).to_contain_text("Deleted support-requests.")
