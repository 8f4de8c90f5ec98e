"""The packet page in a real browser: agent text stays text, and the keys are explained."""

from playwright.sync_api import expect

SCRIPT = "<script>alert(1)</script>"
IMAGE = "<img src=x onerror=alert(2)>"


def test_agent_markup_in_args_context_and_step_name_stays_inert_text(browsing, alice, packet_for):
    packet = packet_for(
        execution__thread_id="markup-1",
        step__name=IMAGE,
        action__args={"body": SCRIPT, IMAGE: "key"},
        context=[{"name": SCRIPT, "value": {"note": IMAGE}, "observed_at": "2026-11-22T09:00:00Z"}],
    )
    page = browsing.page(alice)
    page.goto("/approvals/")
    expect(page.locator("#queue").get_by_text(f"step 3 · {IMAGE}")).to_be_visible()

    page.goto(f"/approvals/{packet.id}/")
    page.wait_for_load_state("networkidle")
    expect(page.get_by_role("heading", level=1)).to_have_text(f"markup-1 step 3 · {IMAGE}")
    args = page.locator("pre.json").first
    expect(args).to_contain_text(f'"body": "{SCRIPT}"')
    expect(args).to_contain_text(f'"{IMAGE}": "key"')
    expect(page.get_by_role("rowheader", name=SCRIPT)).to_be_visible()
    expect(page.locator("table.context pre.json")).to_contain_text(f'"note": "{IMAGE}"')
    # The markup made no elements: the only scripts are ours, and no image was asked for.
    assert page.locator("main img, main script, #decision script").count() == 0
    assert page.locator("script").count() == 2
    # The browsing fixture fails the test if an alert opened or the browser logged an error.


def test_question_mark_opens_the_keyboard_help_and_escape_closes_it(browsing, alice, packet_for):
    packet = packet_for()
    page = browsing.page(alice)
    page.goto(f"/approvals/{packet.id}/")
    help_dialog = page.get_by_role("dialog", name="Keyboard shortcuts")
    expect(help_dialog).to_be_hidden()

    page.keyboard.press("?")
    expect(help_dialog).to_be_visible()
    expect(help_dialog).to_contain_text("next / previous packet in the queue")
    page.keyboard.press("Escape")
    expect(help_dialog).to_be_hidden()

    page.get_by_role("button", name="Keys").click()
    expect(help_dialog).to_be_visible()
    help_dialog.get_by_role("button", name="Close").click()
    expect(help_dialog).to_be_hidden()

    # Typing a "?" into a comment is just typing.
    page.get_by_label("Add a comment to the record").press("?")
    expect(help_dialog).to_be_hidden()
    expect(page.get_by_label("Add a comment to the record")).to_have_value("?")


def test_a_bidi_override_in_agent_text_is_shown_as_an_escape_not_obeyed(
    browsing, alice, packet_for
):
    spoof = "invoice\u202efdp.exe"
    packet = packet_for(
        execution__thread_id="bidi-1",
        step__name=spoof,
        action__tool=spoof,
        action__args={"file": spoof},
    )
    page = browsing.page(alice)
    page.goto(f"/approvals/{packet.id}/")
    page.wait_for_load_state("networkidle")
    # What the reviewer reads: the override written out, the name in its true order.
    heading = page.get_by_role("heading", level=1).inner_text()
    assert heading == "bidi-1 step 3 · invoice\\u202efdp.exe"
    assert page.locator("#action code").inner_text() == "invoice\\u202efdp.exe"
    assert '"file": "invoice\\u202efdp.exe"' in page.locator("pre.json").first.inner_text()
    assert "\u202e" not in page.locator("body").inner_text()
