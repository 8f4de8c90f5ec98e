"""The README's screenshots, taken from the demo data.

Every run saves them under test-artifacts/; `python3 manage.py screenshots` runs this file with
GATEKEEPER_SCREENSHOTS_DIR=docs to refresh docs/queue.png, docs/packet.png and
docs/policy-editor.png.
"""

import os
import re
from io import StringIO
from pathlib import Path

from django.core.management import call_command
from playwright.sync_api import expect

from approvals.demo import DEMO_PASSWORD
from approvals.models import PausePacket, Policy
from tests.web.browser import ARTIFACTS, screenshot


def test_the_queue_and_a_packet_page_as_the_readme_shows_them(browsing):
    call_command("seed_demo", stdout=StringIO())
    directory = Path(os.environ.get("GATEKEEPER_SCREENSHOTS_DIR") or ARTIFACTS)
    page = browsing.page()
    browsing.login(page, "alice", DEMO_PASSWORD)
    page.locator("[data-row-link]").first.wait_for()
    expect(page.locator("[data-open-count]")).to_have_text(re.compile(r"\d"))
    screenshot(page, "queue.png", directory)

    # Privileged IAM needs two approvals; alice gave the first, so the page waits for bob.
    packet = PausePacket.objects.get(
        execution__thread_id="onboard-1042", step_index=2, status="pending"
    )
    page = browsing.page()
    browsing.login(page, "bob", DEMO_PASSWORD)
    page.goto(f"/approvals/{packet.id}/")
    page.get_by_role("button", name="Approve").wait_for()
    expect(page.locator("[data-open-count]")).to_have_text(re.compile(r"\d"))
    screenshot(page, "packet.png", directory)


def test_the_policy_editor_as_the_readme_shows_it(browsing):
    """large-payments in the editor, its threshold raised in the draft and a recorded payout of
    18,500 dry-run against it next to the stored policies."""
    call_command("seed_demo", stdout=StringIO())
    directory = Path(os.environ.get("GATEKEEPER_SCREENSHOTS_DIR") or ARTIFACTS)
    policy = Policy.objects.get(name="large-payments")
    page = browsing.page()
    page.goto("/admin/login/")
    page.get_by_label("Username").fill("admin")
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.goto(f"/admin/approvals/policy/{policy.pk}/change/")

    page.get_by_label("Condition 1 value", exact=True).fill("20000")
    page.get_by_label("Search thread, tool or workflow").fill("payout")
    page.get_by_role("button", name="Search").click()
    page.locator("#dry-run-checks tbody tr").first.get_by_role(
        "button", name="Use this check"
    ).click()
    expect(page.locator("#dry-run-draft .dry-run-decision")).to_be_visible()
    screenshot(page, "policy-editor.png", directory)
    browsing.expect_error(r"favicon\.ico")
