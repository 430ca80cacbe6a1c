"""The console as a person uses it: the token, the sample payload panel following every setting,
hostile data shown as text, the keyboard, a desktop and a phone screen."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import pytest
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Page, Route, expect

from tests.support.console import DESKTOP, PHONE, TOKEN, Console, Watched, screenshots, start_console, stop_console

pytestmark = pytest.mark.integration

TAG_RECORDS = [{"ticket_id": 1 + i % 3, "tags": [["vip"], ["late"], ["refund"]][i // 3], "source": "crm", "score": i}
               for i in range(9)]  # tickets 1, 2, 3 each get vip, then late, then refund
XSS = "<img src=x onerror=window.__pwned=1>"
HOSTILE_RECORDS = [
    {"ticket_id": 1, "tags": [XSS, "<script>window.__pwned=2</script>"], "note": "</pre><b>bold</b>",
     XSS: "attribute name", "<svg onload=window.__pwned=3>": {"x": 1}},
    {"tags": ["no ticket"], "\"><iframe src=javascript:window.__pwned=4>": 1},
]
OpenPage = Callable[..., tuple[Page, Watched]]


@pytest.fixture(scope="module")
def console(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    started = start_console(kafka_bootstrap, tmp_path_factory.mktemp("console"),
                            {"tags": TAG_RECORDS, "hostile": HOSTILE_RECORDS})
    try:
        yield started
    finally:
        stop_console(started)


def requests_shown(page: Page) -> list[str]:
    """The sample requests the panel shows: 'METHOD URL — records ...' per item."""
    return [re.sub(r"\s+", " ", t).strip() for t in page.locator("#preview-items > li").all_inner_texts()]


def new_destination(page: Page, console: Console, topic: str = "tags", template: str = "add_ticket_tags") -> None:
    page.get_by_role("link", name="New destination").click()
    page.locator("#destination-name").fill("from-the-browser")
    page.get_by_label(console.topics[topic], exact=True).check()
    page.locator("#template-select").select_option(template)
    expect(page.locator("#sample-source")).to_contain_text("read without committing")


# --------------------------------------------------------------------------------------------------


def test_the_page_asks_for_the_token_and_keeps_it_for_this_tab_only(open_page: OpenPage, console: Console) -> None:
    page, _ = open_page(console.url, token=False)
    dialog = page.locator("#token-dialog")
    expect(dialog).to_be_visible()
    page.get_by_label("Token", exact=True).fill(TOKEN)
    page.get_by_role("button", name="Use token").click()
    expect(page.locator("tr[data-destination='ticket-tags']")).to_contain_text("paused")
    # kept for the tab (a reload does not ask again), never in localStorage or a cookie
    page.reload()
    expect(page.locator("tr[data-destination='ticket-tags']")).to_be_visible()
    expect(dialog).to_be_hidden()
    assert page.evaluate("sessionStorage.getItem('gorgias-worker.control-token')") == TOKEN
    assert page.evaluate("localStorage.length") == 0 and page.evaluate("document.cookie") == ""
    # a write carries it as a bearer header
    sent: list[str | None] = []
    page.on("request", lambda r: sent.append(r.headers.get("authorization")) if r.method == "POST" else None)
    row = page.locator("tr[data-destination='ticket-tags']")
    row.get_by_text("Actions").click()
    row.get_by_role("button", name="Activate").click()
    expect(row).to_contain_text("active")
    assert sent and all(s == f"Bearer {TOKEN}" for s in sent)
    row.get_by_text("Actions").click()
    row.get_by_role("button", name="Pause").click()
    expect(row).to_contain_text("paused")
    # another tab starts without it
    other, _ = open_page(console.url, token=False)
    expect(other.locator("#token-dialog")).to_be_visible()
    other.get_by_role("button", name="Cancel").click()


def test_sample_requests_follow_every_setting(open_page: OpenPage, console: Console) -> None:
    page, _ = open_page(console.url)
    new_destination(page, console)
    expect(page.locator("#preview-items > li")).to_have_count(9)  # one call per record
    assert all("/api/tickets/" in line for line in requests_shown(page))
    # batching by ticket: one call per ticket with the union of its tags
    page.get_by_label("Batch records together").check()
    expect(page.get_by_label("Grouping algorithm")).to_have_value("by_attribute")
    expect(page.locator("#preview-items > li")).to_have_count(3)
    first = page.locator("#preview-items > li").first
    first.locator("summary").click()
    for tag in ("vip", "late", "refund"):  # the union of the ticket's tags
        expect(first.locator("pre.body")).to_contain_text(f'"{tag}"')
    # batch size 2: a ticket's three records take two calls
    page.get_by_label("Batch size").fill("2")
    expect(page.locator("#preview-items > li")).to_have_count(6)
    # arrival order cannot group by ticket, which the URL needs: the form says so, the panel empties
    page.get_by_label("Grouping algorithm").select_option("arrival_order")
    expect(page.locator(".field-error.general")).to_contain_text("ticket_id")
    expect(page.locator("#preview-items > li")).to_have_count(0)
    page.get_by_label("Grouping algorithm").select_option("session_window")
    page.get_by_label("Batch size").fill("100")
    expect(page.locator("#preview-items > li")).to_have_count(3)
    expect(page.locator(".field-error.general")).to_be_hidden()
    # a setting that cannot work is marked next to its field, and the panel says so
    page.get_by_label("Batch size").fill("0")
    error = page.locator("[data-path='batching.batch_size'] .field-error")
    expect(error).to_contain_text("must be >= 1")
    expect(page.get_by_label("Batch size")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#preview-state")).to_contain_text("Fix the settings")
    page.get_by_label("Batch size").fill("100")
    expect(error).to_be_hidden()


def test_excluded_attributes_are_chips_chosen_from_the_sample(open_page: OpenPage, console: Console) -> None:
    page, _ = open_page(console.url)
    new_destination(page, console)
    page.get_by_label("Manual").check()
    page.get_by_label("Method").select_option("PUT")
    page.get_by_label("URL", exact=True).fill("https://{domain}.gorgias.com/api/tickets/{ticket_id}")
    page.get_by_label("Request headers").fill("X-Source:nexla,X-Team:cx")
    first = page.locator("#preview-items > li").first
    expect(first).to_contain_text("PUT")
    first.locator("summary").click()
    expect(first.locator("pre.body")).to_contain_text('"source"')
    expect(first).to_contain_text("X-Team")
    # the attributes seen in the sample are offered; picking one adds a chip and drops it from the body
    offered = page.locator("#endpoint-section datalist option").evaluate_all("nodes => nodes.map(n => n.value)")
    assert {"ticket_id", "tags", "source", "score"} <= set(offered)
    page.get_by_label("Exclude attributes", exact=True).fill("source")
    page.get_by_label("Exclude attributes", exact=True).press("Enter")
    expect(page.locator(".chip span")).to_have_text(["source"])
    expect(page.locator("#preview-items > li").first.locator("pre.body")).not_to_contain_text('"source"')
    page.get_by_role("button", name="Remove source").click()
    expect(page.locator(".chip")).to_have_count(0)
    expect(page.locator("#preview-items > li").first.locator("pre.body")).to_contain_text('"source"')


def test_an_answer_overtaken_by_a_later_change_is_discarded(open_page: OpenPage, console: Console) -> None:
    page, _ = open_page(console.url)
    new_destination(page, console)
    page.get_by_label("Batch records together").check()
    expect(page.locator("#preview-items > li")).to_have_count(3)
    held: list[Route] = []

    def hold_first(route: Route) -> None:
        if not held:
            held.append(route)  # this answer comes late: after the next change's
        else:
            route.continue_()

    page.route("**/preview", hold_first)
    page.get_by_label("Batch size").fill("1")  # its answer is held back
    page.wait_for_timeout(400)
    page.get_by_label("Batch size").fill("2")
    expect(page.locator("#preview-items > li")).to_have_count(6)
    try:
        held[0].continue_()  # the old answer (batch size 1: 9 calls) arrives last...
    except PlaywrightError:  # the page gave up on it already: fine
        pass
    page.wait_for_timeout(500)
    expect(page.locator("#preview-items > li")).to_have_count(6)  # ...and changes nothing
    page.unroute("**/preview")


def test_dead_letters_and_emails_are_flagged(open_page: OpenPage, console: Console) -> None:
    page, _ = open_page(console.url)
    new_destination(page, console, topic="hostile")
    dead = page.locator("#preview-items > li.dead")
    expect(dead).to_have_count(1)
    expect(dead).to_contain_text(re.compile(r"record [12] \(render\)"))  # the one without ticket_id
    expect(dead).to_contain_text("field: ticket_id")
    # a message template in send mode: whom it would email
    page.get_by_label("Sample records from").get_by_role("button", name="Paste records").click()
    page.get_by_label("Sample records (JSON array or one JSON object per line)").fill(
        '{"ticket_id": 7, "from_agent": true, "channel": "email", "body_text": "hi", '
        '"sender_email": "agent@acme.com", "receiver_email": "jane@example.com"}')
    page.locator("#template-select").select_option("add_ticket_message")
    expect(page.locator("#preview-items .flag")).to_have_count(0)  # import mode: nobody
    page.get_by_label("Messages", exact=True).select_option("send")
    expect(page.locator("#preview-items .flag")).to_have_count(1)
    expect(page.locator("#preview-items .emails")).to_contain_text("emails jane@example.com")


def test_hostile_records_render_as_text(open_page: OpenPage, console: Console) -> None:
    page, watched = open_page(console.url)
    new_destination(page, console, topic="hostile")
    page.locator("details.records summary").click()
    expect(page.locator("details.records")).to_contain_text(XSS)
    for item in page.locator("#preview-items details").all():
        item.locator("summary").click()
    expect(page.locator("#preview-items")).to_contain_text("<script>window.__pwned=2</script>")
    # attribute names become chips as text
    page.get_by_label("Manual").check()
    page.get_by_label("URL", exact=True).fill("https://{domain}.gorgias.com/api/tickets/{ticket_id}")
    page.get_by_label("Request headers").fill(f"X-Evil:{XSS}")
    page.get_by_label("Exclude attributes", exact=True).fill(XSS)
    page.get_by_label("Exclude attributes", exact=True).press("Enter")
    expect(page.locator(".chip")).to_contain_text(XSS)
    # an error message that quotes the input
    page.locator("#destination-name").fill(XSS)
    expect(page.locator("[data-path='name'] .field-error")).to_contain_text("<img src=x")
    page.wait_for_timeout(300)
    assert page.evaluate("window.__pwned") is None
    assert page.locator("img, iframe, svg, b, script:not([src])").count() == 0
    assert watched.dialogs == []


def test_every_control_is_labelled_and_reachable_by_keyboard(open_page: OpenPage, console: Console) -> None:
    page, _ = open_page(console.url)
    new_destination(page, console)
    page.get_by_label("Batch records together").check()
    expect(page.locator("#preview-items > li")).to_have_count(3)
    unlabelled = page.evaluate("""() => [...document.querySelectorAll('input, select, textarea')]
        .filter(n => n.offsetParent !== null)
        .filter(n => !(n.labels && n.labels.length) && !n.getAttribute('aria-label'))
        .map(n => n.outerHTML)""")
    assert unlabelled == []
    controls = page.evaluate("""() => [...document.querySelectorAll(
          'a[href], button, input, select, textarea, summary')]
        .filter(n => n.offsetParent !== null && !n.disabled && !n.closest('dialog'))
        .filter(n => n.type !== 'radio' || n.checked)  /* a radio group is one stop; arrows move in it */
        .map(n => n.id || n.textContent.trim() || n.getAttribute('aria-label'))""")
    page.evaluate("document.activeElement && document.activeElement.blur()")
    reached = set()
    for _ in range(len(controls) * 2 + 10):
        page.keyboard.press("Tab")
        reached.add(page.evaluate("() => { const n = document.activeElement; "
                                  "return n.id || n.textContent.trim() || n.getAttribute('aria-label'); }"))
    missing = [c for c in controls if c not in reached]
    assert missing == []
    page.get_by_label("Template", exact=True).focus()
    page.keyboard.press("ArrowDown")
    expect(page.get_by_label("Manual", exact=True)).to_be_checked()
    expect(page.get_by_label("URL", exact=True)).to_be_visible()
    # operate the destinations' menu with the keyboard alone
    page.goto(console.url)
    summary = page.locator("tr[data-destination='ticket-tags'] summary")
    summary.focus()
    page.keyboard.press("Enter")
    activate = page.locator("tr[data-destination='ticket-tags']").get_by_role("button", name="Activate")
    expect(activate).to_be_visible()
    page.keyboard.press("Escape")
    expect(activate).to_be_hidden()


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["1280x800", "390x844"])
def test_readable_on_a_desktop_and_a_phone(open_page: OpenPage, console: Console, viewport: dict[str, int]) -> None:
    page, _ = open_page(console.url, viewport=viewport)
    expect(page.locator("tr[data-destination='ticket-tags']")).to_be_visible()
    overflow = "() => document.documentElement.scrollWidth - window.innerWidth"
    assert page.evaluate(overflow) <= 0
    if viewport == PHONE:
        page.screenshot(path=str(screenshots() / "11-phone-destinations.png"))
    new_destination(page, console)
    expect(page.locator("#preview-items > li")).to_have_count(9)
    assert page.evaluate(overflow) <= 0
    small = page.evaluate("""() => [...document.querySelectorAll('button, select, input, summary')]
        .filter(n => n.offsetParent !== null && n.type !== 'checkbox' && n.type !== 'radio')
        .filter(n => n.getBoundingClientRect().height < 24).map(n => n.outerHTML.slice(0, 80))""")
    assert small == []  # every control big enough to hit
    if viewport == PHONE:
        page.locator("#samples-title").scroll_into_view_if_needed()
        page.screenshot(path=str(screenshots() / "12-phone-sample-payload.png"))
