"""The Content-Security-Policy in a real browser: every kind of page works under it, unbroken.

Chromium reports each thing the policy blocks twice: a `securitypolicyviolation` event in the
page, and a console message naming the Content Security Policy. Both are collected on every page
below, from the login form to the admin and the API docs, and there must be none.
"""

import json

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from tests.conftest import gate_body

LISTEN = """() => document.addEventListener("securitypolicyviolation", (event) =>
  window.reportViolation(
    `${event.violatedDirective} blocked ${event.blockedURI || "inline"} ` +
    `at ${event.sourceFile || document.location.pathname}:${event.lineNumber} ` +
    `(${event.sample || "no sample"})`
  )
)"""


@pytest.fixture
def watched(browsing):
    """browsing.page, plus every CSP violation in any page it opens, in `violations`."""
    violations = []

    def page(user=None):
        opened = browsing.page(user)
        opened.expose_function("reportViolation", lambda text: violations.append(text))
        # An init script is added by the browser itself: the policy under test cannot block it.
        opened.add_init_script(f"({LISTEN})()")
        opened.on(
            "console",
            lambda message: (
                violations.append(f"console: {message.text}")
                if "Content Security Policy" in message.text
                else None
            ),
        )
        return opened

    page.violations = violations
    return page


@pytest.fixture
def root(make_user):
    return make_user("root", is_staff=True, is_superuser=True)


def test_the_dashboard_works_under_the_policy_with_nothing_blocked(watched, alice, packet_for):
    packet = packet_for(execution__thread_id="csp-1")
    page = watched()

    response = page.goto("/accounts/login/")
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill("pw-alice")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Approval queue")
    # htmx ran: it filled the open count, and sends its CSRF header from <body hx-headers>.
    expect(page.locator("[data-open-count]")).to_have_text("1")
    # No <style> of htmx's own: includeIndicatorStyles is off.
    assert page.locator("head style").count() == 0

    page.goto(f"/approvals/{packet.id}/")
    page.evaluate("window.stillTheSamePage = true")
    page.get_by_role("button", name="Approve").click()
    expect(page.locator("#decision [data-outcome]")).to_have_text(
        "Approved: the orchestrator may run the step."
    )
    # The approval went through htmx (same page, no reload), CSRF header and all.
    assert page.evaluate("window.stillTheSamePage") is True
    packet.refresh_from_db()
    assert packet.status == "approved"
    expect(page.locator("[data-open-count]")).to_have_text("0")

    assert watched.violations == []


def test_the_admin_works_under_the_policy_with_nothing_blocked(watched, browsing, root, policy):
    saved = policy(name="privileged-iam", approvers="it-approvers")
    page = watched(root)

    page.goto(reverse("admin:index"))
    expect(page.locator("#site-name")).to_be_visible()

    page.goto(reverse("admin:approvals_policy_change", args=[saved.pk]))
    expect(page.locator("input[name=priority]")).to_be_visible()
    page.locator("input[name=priority]").fill("20")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.locator(".messagelist")).to_contain_text("was changed successfully")

    page.goto(reverse("admin:approvals_policy_dry_run"))
    page.get_by_label("Gate request (JSON)").fill(json.dumps(gate_body()))
    page.get_by_role("button", name="Evaluate").click()
    expect(page.locator("#content")).to_contain_text("privileged-iam")

    # The date and time widgets (calendar and clock pop-ups) are the admin's busiest script.
    page.goto(reverse("admin:approvals_serviceaccount_add"))
    page.locator("#id_token_expires_at_0").wait_for()
    page.locator(".datetimeshortcuts a", has_text="Today").first.click()
    expect(page.locator("#id_token_expires_at_0")).not_to_have_value("")

    assert watched.violations == []
    # The admin's pages name no icon, so the browser asks for /favicon.ico; that is no CSP matter.
    browsing.expect_error(r"favicon\.ico")


def test_the_api_docs_render_under_their_policy_with_nothing_blocked(watched, browsing, root):
    page = watched(root)

    response = page.goto("/api/v1/docs")
    policy = response.headers["content-security-policy"]
    assert "img-src 'self' data:" in policy and "script-src 'self'" in policy
    assert "unsafe" not in policy
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("Gatekeeper orchestrator API")
    expect(page.locator(".opblock").first).to_be_visible()
    page.locator(".opblock-summary").first.click()
    expect(page.locator(".opblock-body").first).to_be_visible()

    assert watched.violations == []
    browsing.expect_error(r"favicon\.ico")
