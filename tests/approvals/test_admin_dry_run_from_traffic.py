"""The dry run from real traffic: pick a recorded gate check, and see the policy being edited
(the draft) decide it next to the stored policies. Nothing is written; queries stay bounded."""

import json
from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse
from django.utils import timezone

from approvals.models import GateCheck, Policy, PolicyVersion
from approvals.services.policies import policy_save
from audit.models import AuditEvent

DRY_RUN_URL = reverse("admin:approvals_policy_dry_run")
ADD_URL = reverse("admin:approvals_policy_add")


@pytest.fixture
def traffic(gate, db):
    """Twelve checks: eleven IAM grants on onboard-N, then one payout, the newest."""
    for number in range(11):
        gate(execution__thread_id=f"onboard-{number}", step__index=number)
    gate(
        step__index=99,
        execution__thread_id="payout-7",
        execution__workflow="payments",
        action__tool="payments.send",
        action__args={"amount": 25000},
    )
    # One test transaction gives every check the same now(); real traffic is spread in time.
    start = timezone.now() - timedelta(hours=1)
    for position, check in enumerate(GateCheck.objects.order_by("step_index", "tool")):
        GateCheck.objects.filter(pk=check.pk).update(created_at=start + timedelta(seconds=position))
    return list(GateCheck.objects.order_by("-created_at"))


@pytest.fixture
def grants_policy(db):
    Group.objects.create(name="it-approvers")
    saved, _ = policy_save(
        document={
            "name": "grants",
            "priority": 10,
            "match": {"tool": "iam.*"},
            "effect": "require_approval",
            "approvers": "it-approvers",
        },
        actor="user:setup",
    )
    return saved


def _threads(response) -> list[str]:
    return [check.execution.thread_id for check in response.context["panel"].checks]


def test_the_dry_run_page_lists_recent_checks_newest_first_ten_a_page(admin_client, traffic):
    first = admin_client.get(DRY_RUN_URL)
    second = admin_client.get(DRY_RUN_URL, {"page": "2"})

    assert _threads(first)[:2] == ["payout-7", "onboard-10"]
    assert len(_threads(first)) == 10 and first.context["panel"].has_next
    assert _threads(second) == ["onboard-1", "onboard-0"]
    assert not second.context["panel"].has_next
    assert "Older</a>" in first.content.decode()


@pytest.mark.parametrize(
    ("search", "threads"),
    [("payout", ["payout-7"]), ("payments", ["payout-7"]), ("send", ["payout-7"]),
     ("onboard-1", ["onboard-10", "onboard-1"]), ("nothing-like-it", [])],
    ids=["thread", "workflow", "tool", "thread-prefix", "none"],
)  # fmt: skip
def test_the_checks_are_searched_by_thread_tool_or_workflow(admin_client, traffic, search, threads):
    assert _threads(admin_client.get(DRY_RUN_URL, {"q": search})) == threads


def test_picking_a_check_fills_the_request_with_what_the_agent_sent(admin_client, traffic):
    payout = traffic[0]

    response = admin_client.get(DRY_RUN_URL, {"check": str(payout.id)})

    text = response.context["form"]["request"].value()
    assert json.loads(text) == payout.request
    assert response.context["verdict"].decision == "require_approval"
    assert "Result" in response.content.decode()
    assert admin_client.get(DRY_RUN_URL, {"check": "not-a-uuid"}).status_code == 200


def test_a_picked_check_evaluates_as_the_gate_answered_it(admin_client, traffic, grants_policy):
    grant = traffic[1]
    response = admin_client.post(DRY_RUN_URL, {"request": json.dumps(grant.request)})

    assert response.context["verdict"].rule.name == "grants"


def _form(**overrides) -> dict:
    data = {
        "priority": "10",
        "enabled": "on",
        "effect": "require_approval",
        "match_workflow": "",
        "match_tool": "iam.*",
        "match_min_risk": "",
        "match_labels_any": "",
        "approvers": "it-approvers",
        "escalate_to": "",
        "required_approvals": "",
        "forbid_self_approval": "unknown",
        "allow_edit": "unknown",
        "fresh_for_seconds": "",
        "expires_after_seconds": "",
        "remind_before_seconds": "",
        "conditions-TOTAL_FORMS": "1",
        "conditions-INITIAL_FORMS": "0",
        "conditions-MIN_NUM_FORMS": "0",
        "conditions-MAX_NUM_FORMS": "50",
        "dry_run_q": "",
    }
    data.update(overrides)
    return data


def test_the_draft_and_the_stored_policies_decide_a_picked_check_side_by_side(
    admin_client, traffic, grants_policy
):
    grant = traffic[1]
    url = reverse("admin:approvals_policy_change", args=[grants_policy.pk])
    counts = [m.objects.count() for m in (AuditEvent, GateCheck, PolicyVersion)]

    # The draft turns grants into a block: the stored policy still asks for approval.
    response = admin_client.post(url, _form(effect="block", _dry_run_use=str(grant.id)))

    assert response.status_code == 200
    panel = response.context["dry_run"]
    assert (panel.stored.decision, panel.stored.rule.version) == ("require_approval", 1)
    assert (panel.draft.decision, panel.draft.rule.version) == ("block", 2)
    content = response.content.decode()
    assert "This draft changes the answer from require_approval to block." in content
    assert json.loads(response.context["adminform"].form.dry_run["request"].value()) == (
        grant.request
    )
    grants_policy.refresh_from_db()
    assert (grants_policy.effect, grants_policy.version) == ("require_approval", 1)
    assert [m.objects.count() for m in (AuditEvent, GateCheck, PolicyVersion)] == counts


def test_a_new_policy_is_dry_run_as_if_added(admin_client, traffic, grants_policy):
    payout = traffic[0]
    data = _form(
        name="big-payouts",
        priority="1",
        effect="block",
        match_tool="payments.*",
        approvers="",
        **{
            "conditions-TOTAL_FORMS": "2",
            "conditions-0-path": "amount",
            "conditions-0-op": "gt",
            "conditions-0-value": "10000",
        },
    )
    data.update({"dry_run-request": json.dumps(payout.request), "_dry_run": "1"})

    response = admin_client.post(ADD_URL, data)

    panel = response.context["dry_run"]
    assert panel.stored.rule is None
    assert (panel.draft.decision, panel.draft.rule.name) == ("block", "big-payouts")
    assert "big-payouts: matches, effect block" in panel.draft.trace
    assert not Policy.objects.filter(name="big-payouts").exists()


def test_searching_and_paging_the_checks_in_the_form_keeps_the_draft(
    admin_client, traffic, grants_policy
):
    url = reverse("admin:approvals_policy_change", args=[grants_policy.pk])

    response = admin_client.post(
        url, _form(match_tool="iam.grant", dry_run_q="onboard", _dry_run_search="2")
    )

    assert [c.execution.thread_id for c in response.context["dry_run"].checks] == ["onboard-0"]
    assert response.context["adminform"].form["match_tool"].value() == "iam.grant"
    grants_policy.refresh_from_db()
    assert grants_policy.match == {"tool": "iam.*"}


def _queries(client, url, django_assert_num_queries, expected, **data) -> None:
    with django_assert_num_queries(expected):
        if data:
            client.post(url, data)
        else:
            client.get(url)


@pytest.mark.parametrize("checks", [1, 12])
def test_the_policy_pages_run_a_fixed_number_of_queries(
    admin_client, gate, grants_policy, django_assert_num_queries, checks
):
    """Whatever the number of checks, policies and groups: the picker is one query, the form's
    group pickers one, the rules one. (A dry run of a draft: the picked check, the policy, the
    groups, the group check of the model's clean, the name's uniqueness, the picker, the rules
    and the history, with the session, the user and the admin's savepoints.)"""
    for number in range(checks):
        gate(execution__thread_id=f"t-{number}", step__index=number)
        Group.objects.create(name=f"g-{number}")
        policy_save(document={"name": f"p{number}", "effect": "allow"}, actor="test")
    change = reverse("admin:approvals_policy_change", args=[grants_policy.pk])
    grant = GateCheck.objects.first()

    _queries(admin_client, DRY_RUN_URL, django_assert_num_queries, 3)
    _queries(admin_client, ADD_URL, django_assert_num_queries, 4)
    _queries(admin_client, change, django_assert_num_queries, 6)
    _queries(
        admin_client, change, django_assert_num_queries, 14,
        **_form(effect="block", _dry_run_use=str(grant.id)),
    )  # fmt: skip
