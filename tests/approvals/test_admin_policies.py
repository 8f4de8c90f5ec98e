"""Policies in the admin: every save goes through policy_save, every problem is a form error."""

import pytest
from django.urls import reverse

from approvals.models import Policy, PolicyVersion
from approvals.services.policies import policy_save
from audit.models import AuditEvent

ADD_URL = reverse("admin:approvals_policy_add")


def form_data(**overrides) -> dict:
    """What the admin's policy form posts; a checkbox left out of the dict is unchecked."""
    data = {
        "name": "privileged-iam",
        "priority": "10",
        "enabled": "on",
        "effect": "require_approval",
        "match": '{"workflow": "hr-*", "tool": "iam.*"}',
        "approvers": "it-approvers",
        "escalate_to": "",
        "required_approvals": "2",
        "forbid_self_approval": "unknown",
        "allow_edit": "unknown",
        "fresh_for_seconds": "",
        "expires_after_seconds": "",
        "remind_before_seconds": "",
    }
    data.update(overrides)
    return data


@pytest.fixture
def policy(db):
    saved, _ = policy_save(
        document={
            "name": "privileged-iam",
            "priority": 10,
            "match": {"workflow": "hr-*", "tool": "iam.*"},
            "effect": "require_approval",
            "approvers": "it-approvers",
            "required_approvals": 2,
        },
        actor="user:setup",
    )
    return saved


def change_url(policy: Policy) -> str:
    return reverse("admin:approvals_policy_change", args=[policy.pk])


def test_adding_a_policy_saves_version_1_with_its_history_and_an_audit_event(admin_client):
    response = admin_client.post(ADD_URL, form_data())

    assert response.status_code == 302
    policy = Policy.objects.get(name="privileged-iam")
    assert policy.version == 1
    assert policy.match == {"workflow": "hr-*", "tool": "iam.*"}
    assert policy.required_approvals == 2
    assert policy.forbid_self_approval is None
    version = PolicyVersion.objects.get(policy=policy)
    assert version.version == 1
    assert version.changed_by == "user:admin"
    assert version.document["approvers"] == "it-approvers"
    event = AuditEvent.objects.get(kind="policy.changed")
    assert event.actor == "user:admin"
    assert event.data["policy"] == "privileged-iam"
    assert event.data["version"] == 1


def test_editing_a_policy_bumps_the_version_and_records_who_changed_it(admin_client, policy):
    response = admin_client.post(change_url(policy), form_data(priority="5"))

    assert response.status_code == 302
    policy.refresh_from_db()
    assert policy.version == 2
    assert policy.priority == 5
    versions = list(policy.versions.order_by("version").values_list("version", "changed_by"))
    assert versions == [(1, "user:setup"), (2, "user:admin")]
    assert AuditEvent.objects.filter(kind="policy.changed", actor="user:admin").count() == 1


def test_saving_an_unchanged_policy_makes_no_new_version_and_no_audit_event(admin_client, policy):
    events = AuditEvent.objects.count()

    response = admin_client.post(change_url(policy), form_data(), follow=True)

    assert response.status_code == 200
    policy.refresh_from_db()
    assert policy.version == 1
    assert policy.versions.count() == 1
    assert AuditEvent.objects.count() == events
    assert "Nothing changed, so no new version." in response.content.decode()


def test_clearing_a_setting_is_a_change_back_to_the_default(admin_client, policy):
    admin_client.post(change_url(policy), form_data(required_approvals=""))

    policy.refresh_from_db()
    assert policy.version == 2
    assert policy.required_approvals is None
    assert "required_approvals" not in policy.versions.get(version=2).document


def test_the_name_cannot_be_changed_because_policies_are_found_by_name(admin_client, policy):
    admin_client.post(change_url(policy), form_data(name="renamed", priority="5"))

    assert list(Policy.objects.values_list("name", flat=True)) == ["privileged-iam"]


@pytest.mark.parametrize(
    ("match", "message"),
    [
        ('{"tool": "iam.[admin"}', "match.tool: has an unclosed [ at position 4"),
        (
            '{"conditions": [{"path": "amount", "op": "between", "value": 1}]}',
            "match.conditions[0].op: unknown op &#x27;between&#x27;",
        ),
        ('{"colour": "red"}', "match.colour: is not a known match key"),
        ('{"min_risk": 2}', "match.min_risk: must be a number from 0 to 1"),
        ("[1, 2]", "must be an object"),
        ('{"tool": ', "Enter a valid JSON."),
    ],
)
def test_a_bad_match_is_a_form_error_and_nothing_is_saved(admin_client, match, message):
    response = admin_client.post(ADD_URL, form_data(match=match))

    assert response.status_code == 200
    assert message in response.content.decode()
    assert "match" in response.context["adminform"].form.errors
    assert not Policy.objects.exists()
    assert not AuditEvent.objects.exists()


def test_a_bad_edit_leaves_the_stored_policy_and_its_version_alone(admin_client, policy):
    response = admin_client.post(change_url(policy), form_data(match='{"workflow": "hr-["}'))

    assert response.status_code == 200
    assert "match.workflow: has an unclosed [" in response.content.decode()
    policy.refresh_from_db()
    assert policy.version == 1
    assert policy.match == {"workflow": "hr-*", "tool": "iam.*"}


def test_out_of_range_settings_are_form_errors(admin_client):
    response = admin_client.post(ADD_URL, form_data(required_approvals="101"))

    assert response.status_code == 200
    assert "must be at most 100" in response.content.decode()
    assert not Policy.objects.exists()


def test_a_name_already_taken_is_a_form_error_not_an_update(admin_client, policy):
    response = admin_client.post(ADD_URL, form_data(priority="1"))

    assert response.status_code == 200
    assert "already exists" in response.content.decode()
    policy.refresh_from_db()
    assert (policy.version, policy.priority) == (1, 10)


def test_the_change_page_shows_the_version_history_newest_first(admin_client, policy):
    policy_save(
        document={"name": "privileged-iam", "match": {"tool": "<b>x</b>"}, "effect": "block"},
        actor="user:bob",
    )

    content = admin_client.get(change_url(policy)).content.decode()

    assert content.index("<td>v2</td>") < content.index("<td>v1</td>")
    assert "user:bob" in content
    # Documents are escaped JSON, never markup.
    assert "&lt;b&gt;x&lt;/b&gt;" in content
    assert "<b>x</b>" not in content


def test_the_list_shows_filters_and_searches_policies(admin_client, policy):
    policy_save(document={"name": "mail-ok", "effect": "allow", "enabled": False}, actor="user:x")
    url = reverse("admin:approvals_policy_changelist")

    listed = admin_client.get(url, {"enabled__exact": "0"}).context["cl"].result_list
    searched = admin_client.get(url, {"q": "it-approvers"}).context["cl"].result_list

    assert [p.name for p in listed] == ["mail-ok"]
    assert [p.name for p in searched] == ["privileged-iam"]


def test_policies_cannot_be_deleted_so_their_history_survives(admin_client, policy):
    url = reverse("admin:approvals_policy_delete", args=[policy.pk])

    assert admin_client.post(url, {"post": "yes"}).status_code == 403
    assert Policy.objects.filter(pk=policy.pk).exists()


@pytest.mark.parametrize(
    ("match", "shown"),
    [
        ('{"tool": "\\ud800"}', "Is not valid Unicode (a lone surrogate) (at tool)."),
        ('{"tool": "\\u0000"}', "Contains a NUL character (at tool)."),
    ],
)
def test_a_match_jsonb_cannot_hold_is_a_form_error_shown_back_as_typed(admin_client, match, shown):
    response = admin_client.post(ADD_URL, form_data(match=match))
    assert response.status_code == 200
    html = response.content.decode()
    assert shown in html
    assert not Policy.objects.exists()
