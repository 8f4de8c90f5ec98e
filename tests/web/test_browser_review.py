"""Deciding a packet in a real browser: by keyboard, racing another reviewer, without JavaScript."""

import re

from playwright.sync_api import expect

from approvals.models import PausePacket

APPROVED = "Approved: the orchestrator may run the step."


def test_a_reviewer_opens_and_approves_a_packet_with_the_keyboard(browsing, alice, packet_for):
    for thread in ("kb-1", "kb-2", "kb-3"):
        packet_for(execution__thread_id=thread)
    page = browsing.page(alice)
    page.goto("/approvals/")
    open_count = page.locator("[data-open-count]")
    expect(open_count).to_have_text("3")

    page.keyboard.press("j")
    page.keyboard.press("j")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_contain_text("kb-2")

    page.keyboard.press("r")
    expect(page.get_by_role("button", name="Reject")).to_be_focused()
    page.keyboard.press("a")
    approve = page.get_by_role("button", name="Approve")
    expect(approve).to_be_focused()
    # The button names its consequence before anyone presses it.
    expect(approve).to_have_accessible_description(re.compile("^Approving now lets the agent run"))
    page.keyboard.press("Enter")

    outcome = page.locator("#decision [data-outcome]")
    expect(outcome).to_have_text(APPROVED)
    expect(outcome).to_be_focused()
    expect(page.locator("#decision")).to_contain_text("✓ approved")
    expect(page.locator("#decision dt:text-is('Decided by') + dd")).to_have_text("alice")
    expect(open_count).to_have_text("2")
    assert PausePacket.objects.get(execution__thread_id="kb-2").status == "approved"

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Queue").click()
    expect(page.locator("[data-row-link]")).to_have_text(["kb-1", "kb-3"])


def test_two_reviewers_racing_on_one_packet_get_one_decision_and_one_explanation(
    browsing, alice, bob, packet_for
):
    packet = packet_for()
    pages = {user.username: browsing.page(user) for user in (alice, bob)}
    for page in pages.values():
        page.goto(f"/approvals/{packet.id}/")
        page.get_by_role("button", name="Approve").wait_for()
    # Both press Approve before either answer is back.
    for page in pages.values():
        page.get_by_role("button", name="Approve").click()
    outcomes = {}
    for name, page in pages.items():
        outcome = page.locator("#decision [data-outcome]")
        outcome.wait_for()
        outcomes[name] = outcome.inner_text()
    winner = next(name for name, text in outcomes.items() if text == APPROVED)
    loser = next(name for name in outcomes if name != winner)
    assert re.fullmatch(rf"Already decided \(approved\) by {winner} at .+\.", outcomes[loser])
    packet.refresh_from_db()
    assert (packet.status, packet.decided_by) == ("approved", [winner])


def test_without_javascript_the_plain_form_still_approves(browsing, alice, packet_for):
    packet = packet_for()
    page = browsing.page(alice, java_script_enabled=False)
    page.goto(f"/approvals/{packet.id}/")
    page.get_by_label("Comment (optional)").fill("checked by hand")
    with page.expect_response(re.compile(r"/approve/$")) as posted:
        page.get_by_role("button", name="Approve").click()
    assert posted.value.status == 303
    expect(page).to_have_url(re.compile(rf"/approvals/{packet.id}/$"))
    expect(page.get_by_role("status")).to_have_text(APPROVED)
    expect(page.locator("#decision")).to_contain_text("checked by hand")
    packet.refresh_from_db()
    assert (packet.status, packet.comment) == ("approved", "checked by hand")
