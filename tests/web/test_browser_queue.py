"""The queue in a real browser: logging in, filtering through htmx, moving with the keyboard."""

import re

from playwright.sync_api import expect


def rows(page):
    return page.locator("[data-row-link]")


def test_a_reviewer_logs_in_through_the_form_and_lands_on_the_queue(browsing, alice, packet_for):
    packet_for(execution__thread_id="onboard-7")
    page = browsing.page()
    page.goto("/approvals/")
    expect(page).to_have_url(re.compile(r"/accounts/login/\?next=/approvals/$"))
    browsing.login(page, "alice", "pw-alice")
    expect(page.get_by_role("heading", level=1)).to_have_text("Approval queue")
    expect(rows(page)).to_have_text(["onboard-7"])
    expect(page.locator("[data-open-count]")).to_have_text("1")


def test_filters_and_search_swap_the_queue_in_place(browsing, alice, packet_for, policy):
    packet_for(execution__thread_id="hr-1", action__tool="iam.grant")
    packet_for(
        execution__thread_id="pay-1", execution__workflow="payments", action__tool="payments.send"
    )
    rejected = packet_for(execution__thread_id="hr-gone")
    page = browsing.page(alice)
    page.goto("/approvals/")
    page.get_by_role("link", name=re.compile("^Rejected")).wait_for()
    expect(rows(page)).to_have_text(["hr-1", "pay-1", "hr-gone"])
    # A full page load would drop this flag: every change below must be an htmx swap.
    page.evaluate("window.stillTheSamePage = true")

    page.get_by_label("Workflow").fill("payments")
    page.get_by_label("Workflow").press("Enter")
    expect(page).to_have_url(re.compile(r"\?workflow=payments$"))
    expect(rows(page)).to_have_text(["pay-1"])

    page.get_by_label("Workflow").fill("")
    page.get_by_label("Search").fill("HR-")
    page.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(re.compile(r"\?q=HR-$"))
    expect(rows(page)).to_have_text(["hr-1", "hr-gone"])

    from approvals.services.review import packet_reject

    packet_reject(packet_id=rejected.id, user=alice)
    page.get_by_role("link", name=re.compile("^Rejected")).click()
    expect(page).to_have_url(re.compile(r"\?status=rejected&q=HR-$"))
    expect(rows(page)).to_have_text(["hr-gone"])
    expect(page.get_by_role("link", name=re.compile("^Rejected"))).to_have_attribute(
        "aria-current", "page"
    )
    # A search from the Rejected tab stays on it.
    page.get_by_label("Search").fill("gone")
    page.get_by_label("Search").press("Enter")
    expect(page).to_have_url(re.compile(r"\?q=gone&status=rejected$"))
    expect(rows(page)).to_have_text(["hr-gone"])

    page.get_by_label("Search").fill("no-such-thread")
    page.get_by_label("Search").press("Enter")
    expect(page.get_by_role("heading", name="Nothing here")).to_be_visible()
    assert page.evaluate("window.stillTheSamePage") is True


def test_j_and_k_move_through_the_queue_and_keep_their_place_when_it_refreshes(
    browsing, alice, packet_for
):
    for thread in ("kb-1", "kb-2", "kb-3"):
        packet_for(execution__thread_id=thread)
    page = browsing.page(alice)
    page.goto("/approvals/")
    expect(rows(page)).to_have_count(3)

    page.keyboard.press("j")
    expect(rows(page).nth(0)).to_be_focused()
    page.keyboard.press("j")
    expect(rows(page).nth(1)).to_be_focused()

    # The queue refreshes itself (every 10 s, and after any action): the selection stays.
    page.evaluate("document.getElementById('queue').dataset.before = 'refresh'")
    page.evaluate("htmx.trigger(document.body, 'packetChanged')")
    expect(page.locator("#queue:not([data-before])")).to_have_count(1)
    expect(rows(page).nth(1)).to_be_focused()

    page.keyboard.press("j")
    page.keyboard.press("j")
    expect(rows(page).nth(2)).to_be_focused()
    page.keyboard.press("k")
    expect(rows(page).nth(1)).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_contain_text("kb-2")


def test_an_outsider_sees_the_empty_queue_and_a_404_for_the_packet(browsing, charlie, packet_for):
    packet = packet_for(execution__thread_id="secret-thread")
    page = browsing.page()
    page.goto("/accounts/login/")
    browsing.login(page, "charlie", "pw-charlie")
    expect(page.get_by_role("heading", name="Nothing here needs you")).to_be_visible()
    expect(page.get_by_text("appears here")).to_be_visible()
    expect(page.locator("[data-open-count]")).to_have_text("0")
    assert "secret-thread" not in page.content()

    response = page.goto(f"/approvals/{packet.id}/")
    assert response.status == 404
    assert "secret-thread" not in page.content()
    browsing.expect_error(r"status of 404")
