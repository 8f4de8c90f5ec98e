"""The policy editor in a real Chromium, with JavaScript and without: the match as fields and
condition rows, groups picked from those that exist, a row added by submitting, a bad row shown
on that row, a recorded gate check dry-run against the draft next to the stored policies."""

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse
from playwright.sync_api import expect

from approvals.models import Policy

ADD_URL = reverse("admin:approvals_policy_add")


@pytest.fixture
def root(make_user):
    return make_user("root", is_staff=True, is_superuser=True)


@pytest.fixture
def payout_check(gate, policy):
    """A recorded payout of 25,000 that the stored policies let through."""
    for name in ("finance-approvers", "it-approvers"):
        Group.objects.get_or_create(name=name)
    policy("payments-ok", "allow", priority=50, match={"workflow": "payments"})
    gate(
        execution__thread_id="payout-7",
        execution__workflow="payments",
        step__index=1,
        action__tool="payments.send",
        action__args={"amount": 25000, "currency": "EUR"},
    )


def _row(page, number: int, part: str):
    return page.get_by_label(f"Condition {number} {part}", exact=True)


@pytest.mark.parametrize("javascript", [True, False], ids=["with-js", "without-js"])
def test_an_admin_drafts_a_policy_dry_runs_it_on_a_real_check_and_saves_it(
    browsing, root, payout_check, javascript
):
    page = browsing.page(root, java_script_enabled=javascript)
    page.goto(ADD_URL)

    # Defaults read as what they are, never "Unknown".
    forbid = page.locator("#id_forbid_self_approval")
    expect(forbid.locator("option:checked")).to_have_text(
        "default (yes, from GATEKEEPER_DEFAULT_FORBID_SELF_APPROVAL)"
    )
    page.get_by_label("Name:").fill("large-payments")
    page.get_by_label("Priority:").fill("20")
    page.get_by_label("Effect:").select_option("require_approval")
    page.get_by_label("Tool:").fill("payments.*")
    page.get_by_label("Approvers:").select_option("finance-approvers")
    expect(page.get_by_label("Approvers:").locator("option")).to_have_text(
        ["default (reviewers, from GATEKEEPER_DEFAULT_APPROVERS)", "finance-approvers",
         "it-approvers"]
    )  # fmt: skip
    _row(page, 1, "path").fill("amount")
    _row(page, 1, "operator").select_option("gt")
    _row(page, 1, "value").fill("lots")

    # "Add a condition" submits: the form comes back unsaved, the bad row marked, a row more.
    page.get_by_role("button", name="Add a condition").click()
    expect(page.locator("#condition-rows tbody tr")).to_have_count(2)
    expect(page.locator("#condition-rows tr.errors")).to_contain_text("must be a number for op gt")
    _row(page, 1, "value").fill("10000")
    _row(page, 2, "path").fill("currency")
    _row(page, 2, "operator").select_option("in")
    _row(page, 2, "value").fill('["EUR", "USD"]')

    # The recorded payout, run against the draft and against what is stored.
    checks = page.locator("#dry-run-checks tbody tr")
    expect(checks.first).to_contain_text("payout-7")
    checks.first.get_by_role("button", name="Use this check").click()
    expect(page.locator("#dry-run-stored .dry-run-decision")).to_have_text("allow")
    expect(page.locator("#dry-run-draft .dry-run-decision")).to_have_text("require_approval")
    expect(page.locator("#dry-run-draft .dry-run-trace")).to_contain_text(
        "large-payments: matches, effect require_approval"
    )
    expect(page.locator("#dry-run-difference")).to_have_text(
        "This draft changes the answer from allow to require_approval."
    )
    assert not Policy.objects.filter(name="large-payments").exists()

    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.locator(".messagelist")).to_contain_text("was added successfully")
    saved = Policy.objects.get(name="large-payments")
    assert (saved.approvers, saved.version) == ("finance-approvers", 1)
    assert saved.match == {
        "tool": "payments.*",
        "conditions": [
            {"path": "amount", "op": "gt", "value": 10000},
            {"path": "currency", "op": "in", "value": ["EUR", "USD"]},
        ],
    }

    # Back in the editor: the rows as saved, the JSON read-only beside them.
    page.goto(reverse("admin:approvals_policy_change", args=[saved.pk]))
    expect(_row(page, 2, "value")).to_have_value('["EUR", "USD"]')
    expect(page.locator("#match-json")).to_contain_text("as stored")
    expect(page.locator("#match-json pre")).to_contain_text('"op": "gt"')
    page.get_by_text("Versions").click()  # a folded <details>, opened without script
    expect(page.locator(".field-version_history")).to_contain_text("user:root")
    browsing.expect_error(r"favicon\.ico")
