"""An accessibility check of every dashboard page in a real browser.

No axe-core here (nothing is fetched from the network), so the checks are the ones that catch
real mistakes in these templates: every control has an accessible name (from Chromium's own
accessibility tree), text meets WCAG AA contrast, one h1 and a language per page, a skip link
that works, and a visible focus ring.
"""

import re

import pytest
from playwright.sync_api import expect

from approvals.services.executions import step_record_outcome
from approvals.services.review import packet_approve

CONTROLS = r"link|button|textbox|searchbox|checkbox|radio|combobox|spinbutton|dialog|table"
UNNAMED = re.compile(rf"^\s*- ({CONTROLS})(\s+\[[^\]]*\])*:?$")

# WCAG 2.x contrast of each text node against the colours actually painted behind it.
CONTRAST = """() => {
  const rgba = (text) => {
    const parts = text.match(/[\\d.]+/g).map(Number);
    return [parts[0], parts[1], parts[2], parts.length > 3 ? parts[3] : 1];
  };
  const over = (top, bottom) => [0, 1, 2].map((i) => top[i] * top[3] + bottom[i] * (1 - top[3]));
  const luminance = (rgb) => {
    const [r, g, b] = rgb.map((v) => {
      v /= 255;
      return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4);
    });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  const backdrop = (el) => {
    const layers = [];
    for (let e = el; e; e = e.parentElement) {
      const colour = rgba(getComputedStyle(e).backgroundColor);
      if (colour[3] > 0) layers.push(colour);
      if (colour[3] >= 1) break;
    }
    return layers.reverse().reduce((below, layer) => over(layer, below), [255, 255, 255]);
  };
  const failures = [];
  const seen = new Set();
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const el = walker.currentNode.parentElement;
    if (!walker.currentNode.textContent.trim() || seen.has(el)) continue;
    seen.add(el);
    const box = el.getBoundingClientRect();
    const style = getComputedStyle(el);
    if (box.width <= 1 || box.height <= 1 || style.visibility === "hidden") continue;
    if (box.right < 0 || el.closest("dialog:not([open])")) continue;
    let opacity = 1;
    for (let e = el; e; e = e.parentElement) opacity *= Number(getComputedStyle(e).opacity);
    const background = backdrop(el);
    const colour = rgba(style.color);
    const text = over([colour[0], colour[1], colour[2], colour[3] * opacity], background);
    const [light, dark] = [luminance(text), luminance(background)].sort((a, b) => b - a);
    const ratio = (light + 0.05) / (dark + 0.05);
    const size = parseFloat(style.fontSize);
    const large = size >= 24 || (size >= 18.66 && Number(style.fontWeight) >= 700);
    if (ratio < (large ? 3 : 4.5)) {
      failures.push(`${ratio.toFixed(2)}:1 "${el.textContent.trim().slice(0, 40)}" ` +
                    `<${el.tagName.toLowerCase()} class="${el.className}">`);
    }
  }
  return failures;
}"""


def check_page(page) -> None:
    unnamed = [
        line for line in page.locator("body").aria_snapshot().splitlines() if UNNAMED.match(line)
    ]
    assert not unnamed, f"{page.url}: controls without an accessible name: {unnamed}"
    failures = page.evaluate(CONTRAST)
    assert not failures, f"{page.url}: text below WCAG AA contrast:\n" + "\n".join(failures)
    assert page.locator("html").get_attribute("lang") == "en"
    expect(page.get_by_role("heading", level=1)).to_have_count(1)
    assert page.title()

    skip = page.get_by_role("link", name="Skip to content")
    first = "el => el === document.querySelector('a[href], button, input, select, textarea')"
    assert skip.evaluate(first), "the skip link must come first"
    skip.focus()
    assert skip.bounding_box()["x"] >= 0, "the skip link must show when it has focus"
    outline = skip.evaluate("el => getComputedStyle(el).outlineStyle")
    assert outline != "none", "focus must be visible"
    page.keyboard.press("Enter")
    expect(page.locator("main")).to_be_focused()


@pytest.fixture
def packets(alice, packet_for, policy, agent):
    """A packet in each state the packet page draws differently."""
    policy("privileged-iam", match={"tool": "iam.*"}, required_approvals=2, allow_edit=True)
    pending = packet_for(execution__thread_id="a11y-pending")
    packet_approve(packet_id=pending.id, user=alice)
    done = packet_for(execution__thread_id="a11y-done", action__tool="email.send")
    packet_approve(packet_id=done.id, user=alice, comment="fine")
    unsure = packet_for(execution__thread_id="a11y-unsure", action__tool="email.send")
    packet_approve(packet_id=unsure.id, user=alice)
    step_record_outcome(
        service_account=agent,
        thread_id="a11y-unsure",
        step_index=3,
        side_effect="indeterminate",
        detail={},
    )
    return {"pending": pending, "done": done, "reconciling": unsure}


def test_the_login_page_passes(browsing, db):
    page = browsing.page()
    page.goto("/accounts/login/")
    check_page(page)


def test_the_queue_and_every_kind_of_packet_page_pass(browsing, bob, packets):
    page = browsing.page(bob)
    page.goto("/approvals/?status=all")
    expect(page.locator("[data-row-link]")).to_have_count(3)
    expect(page.locator("[data-open-count]")).not_to_be_empty()
    check_page(page)
    for packet in packets.values():
        page.goto(f"/approvals/{packet.id}/")
        expect(page.locator("#decision")).to_be_visible()
        check_page(page)


def test_the_empty_queue_and_the_help_dialog_pass(browsing, charlie):
    page = browsing.page(charlie)
    page.goto("/approvals/")
    check_page(page)
    page.keyboard.press("?")
    dialog = page.get_by_role("dialog", name="Keyboard shortcuts")
    expect(dialog).to_be_visible()
    # A modal dialog takes focus, so Tab stays inside it.
    expect(dialog.get_by_role("button", name="Close")).to_be_focused()
    assert not page.evaluate(CONTRAST)
