"""A policy names only groups that exist, and a group a policy names cannot vanish under it.

Every write path is tried: import_policies, policy_save (what the admin and any API call), the
model's clean; and every way to lose a group: delete, bulk delete, rename, in admin and in code.
"""

import json
from io import StringIO

import pytest
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import transaction
from django.urls import reverse

from approvals.errors import ValidationFailed
from approvals.models import Policy, PolicyVersion
from approvals.policy_groups import GroupInUse
from approvals.services.policies import policies_import, policy_save
from audit.models import AuditEvent

PAYOUTS = {
    "name": "large-payments",
    "priority": 20,
    "match": {"workflow": "payments"},
    "effect": "require_approval",
    "approvers": "finance-approvers",
    "escalate_to": "finance-leads",
}
READS = {"name": "reads", "priority": 50, "match": {"tool": "*.read"}, "effect": "allow"}


@pytest.fixture
def groups(db):
    return {
        name: Group.objects.create(name=name) for name in ("finance-approvers", "finance-leads")
    }


@pytest.fixture
def payouts(groups):
    return policy_save(document=PAYOUTS, actor="test")[0]


def _nothing_written() -> bool:
    return (
        not Policy.objects.exists()
        and not PolicyVersion.objects.exists()
        and not (AuditEvent.objects.exists())
    )


def test_import_refuses_a_typo_in_approvers_naming_it_and_imports_nothing(groups, tmp_path):
    path = tmp_path / "policies.json"
    path.write_text(json.dumps([READS, {**PAYOUTS, "approvers": "finance-aprovers"}]))

    with pytest.raises(CommandError) as refused:
        call_command("import_policies", str(path), stdout=StringIO())

    message = str(refused.value)
    assert "nothing was imported" in message
    assert (
        "entry large-payments, field approvers: names no existing group 'finance-aprovers'"
        in message
    )
    assert _nothing_written()


def test_import_names_every_unknown_group_of_the_file(db):
    with pytest.raises(ValidationFailed) as refused:
        policies_import(documents=[READS, PAYOUTS], actor="test")

    assert [(e["entry"], e["field"]) for e in refused.value.details["errors"]] == [
        ("large-payments", "approvers"),
        ("large-payments", "escalate_to"),
    ]
    assert _nothing_written()


def test_import_refuses_an_unknown_group_in_an_update_and_keeps_the_stored_version(payouts):
    with pytest.raises(ValidationFailed, match="escalate_to: names no existing group 'it-lead'"):
        policies_import(documents=[READS, {**PAYOUTS, "escalate_to": "it-lead"}], actor="test")

    payouts.refresh_from_db()
    assert (payouts.version, payouts.escalate_to) == (1, "finance-leads")
    assert not Policy.objects.filter(name="reads").exists()


def test_policy_save_refuses_an_unknown_group_whoever_calls_it(groups):
    with pytest.raises(ValidationFailed, match="approvers: names no existing group 'nobody'"):
        policy_save(document={**PAYOUTS, "approvers": "nobody"}, actor="test")

    assert _nothing_written()


def test_the_model_clean_refuses_an_unknown_group(groups):
    policy = Policy(name="p", effect="block", approvers="finance-approvers", escalate_to="ghosts")

    with pytest.raises(ValidationError) as refused:
        policy.full_clean()

    assert refused.value.message_dict == {
        "escalate_to": ["names no existing group 'ghosts'; create the group first"]
    }


def test_deleting_a_group_a_policy_names_is_refused_in_code(payouts, groups):
    # A delete runs in a transaction of its own, which the refusal rolls back.
    refused = "Cannot delete group 'finance-leads': the policies "
    with pytest.raises(GroupInUse, match=refused), transaction.atomic():
        groups["finance-leads"].delete()
    with pytest.raises(GroupInUse), transaction.atomic():
        Group.objects.filter(name="finance-approvers").delete()

    assert Group.objects.count() == 2


def test_renaming_a_group_a_policy_names_is_refused_in_code(payouts, groups):
    group = groups["finance-approvers"]
    group.name = "treasury"

    with pytest.raises(GroupInUse, match="large-payments"):
        group.save()

    assert Group.objects.filter(name="finance-approvers").exists()


def test_a_group_no_policy_names_may_be_renamed_and_deleted(payouts):
    group = Group.objects.create(name="spare")
    group.name = "spare-2"
    group.save()
    group.delete()

    assert not Group.objects.filter(name__startswith="spare").exists()


def test_admin_delete_page_names_the_policies_and_refuses(admin_client, payouts, groups):
    url = reverse("admin:auth_group_delete", args=[groups["finance-approvers"].pk])

    page = admin_client.get(url).content.decode()
    response = admin_client.post(url, {"post": "yes"})

    assert "Policy large-payments (routes to group finance-approvers)" in page
    assert "Policy large-payments (routes to group finance-approvers)" in (
        response.content.decode()
    )
    assert Group.objects.filter(name="finance-approvers").exists()


def test_admin_bulk_delete_names_the_policies_and_refuses(admin_client, payouts, groups):
    spare = Group.objects.create(name="spare")
    url = reverse("admin:auth_group_changelist")
    selected = [groups["finance-leads"].pk, spare.pk]

    page = admin_client.post(
        url, {"action": "delete_selected", "_selected_action": selected}
    ).content.decode()
    admin_client.post(
        url, {"action": "delete_selected", "_selected_action": selected, "post": "yes"}
    )

    assert "Policy large-payments (routes to group finance-leads)" in page
    assert set(Group.objects.values_list("name", flat=True)) == {
        "finance-approvers",
        "finance-leads",
        "spare",
    }


def test_admin_rename_is_a_form_error_naming_the_policies(admin_client, payouts, groups):
    url = reverse("admin:auth_group_change", args=[groups["finance-approvers"].pk])

    response = admin_client.post(url, {"name": "treasury", "permissions": []})

    assert response.status_code == 200
    assert (
        "Cannot rename group &#x27;finance-approvers&#x27;: the policies large-payments route"
        in response.content.decode()
    )
    assert Group.objects.filter(name="finance-approvers").exists()
