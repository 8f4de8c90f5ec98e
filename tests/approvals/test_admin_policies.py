"""Policies in the admin: every save goes through policy_save, every problem is a form error.

The match is edited as fields and condition rows (the form posts them as a formset), groups are
picked from those that exist, and empty settings show the default they take.
"""

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse

from approvals.models import Policy, PolicyVersion
from approvals.services.policies import policy_save
from audit.models import AuditEvent

ADD_URL = reverse("admin:approvals_policy_add")


def conditions_data(*rows) -> dict:
    """The condition formset's fields: (path, op, value) rows, and one empty extra row."""
    data = {
        "conditions-TOTAL_FORMS": str(len(rows) + 1),
        "conditions-INITIAL_FORMS": "0",
        "conditions-MIN_NUM_FORMS": "0",
        "conditions-MAX_NUM_FORMS": "50",
    }
    for position, (path, op, value) in enumerate([*rows, ("", "", "")]):
        data.update(
            {
                f"conditions-{position}-path": path,
                f"conditions-{position}-op": op,
                f"conditions-{position}-value": value,
            }
        )
    return data


def form_data(*conditions, **overrides) -> dict:
    """What the admin's policy form posts; a checkbox left out of the dict is unchecked."""
    data = {
        "name": "privileged-iam",
        "priority": "10",
        "enabled": "on",
        "effect": "require_approval",
        "match_workflow": "hr-*",
        "match_tool": "iam.*",
        "match_min_risk": "",
        "match_labels_any": "",
        "approvers": "it-approvers",
        "escalate_to": "",
        "required_approvals": "2",
        "forbid_self_approval": "unknown",
        "allow_edit": "unknown",
        "fresh_for_seconds": "",
        "expires_after_seconds": "",
        "remind_before_seconds": "",
        **conditions_data(*conditions),
    }
    data.update(overrides)
    return data


@pytest.fixture(autouse=True)
def route_groups(db):
    """The groups the form's policies route to: the pickers offer only existing groups."""
    for name in ("it-approvers", "it-leads"):
        Group.objects.create(name=name)


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
    ("fields", "conditions", "field", "message"),
    [
        ({"match_tool": "iam.[admin"}, (), "match_tool", "has an unclosed [ at position 4"),
        ({"match_min_risk": "2"}, (), "match_min_risk", "less than or equal to 1"),
        ({"match_labels_any": " , "}, (), None, None),
    ],
)
def test_a_bad_match_field_is_a_form_error_and_nothing_is_saved(
    admin_client, fields, conditions, field, message
):
    response = admin_client.post(ADD_URL, form_data(*conditions, **fields))

    if field is None:
        # Only separators: no labels, so no labels_any key at all.
        assert response.status_code == 302
        assert "labels_any" not in Policy.objects.get().match
        return
    assert response.status_code == 200
    assert message in str(response.context["adminform"].form.errors[field])
    assert not Policy.objects.exists()
    assert not AuditEvent.objects.exists()


@pytest.mark.parametrize(
    ("row", "field", "message"),
    [
        (("amount", "between", "1"), "op", "Select a valid choice"),
        (("amount", "gt", "lots"), "value", "must be a number for op gt"),
        (("", "eq", "1"), "path", "must be a dotted path"),
        (("user..role", "eq", "1"), "path", "must be a dotted path"),
        (("amount", "", "1"), "op", "unknown op"),
        (("role", "in", "admin"), "value", "must be a list for op in"),
        (("email", "glob", "*@[x"), "value", "has an unclosed ["),
        (("role", "eq", ""), "value", "is required"),
        (("role", "eq", '"\\ud800"'), "value", "lone surrogate"),
        (("amount", "exists", "7"), "value", "must be true or false for op exists"),
    ],
)
def test_a_bad_condition_row_is_an_error_on_that_row_and_nothing_is_saved(
    admin_client, row, field, message
):
    response = admin_client.post(ADD_URL, form_data(("amount", "gt", "10"), row))

    assert response.status_code == 200
    rows = response.context["adminform"].form.conditions.forms
    assert not rows[0].errors
    assert message in str(rows[1].errors[field])
    assert "A condition row has a problem" in response.content.decode()
    assert not Policy.objects.exists()


def test_condition_rows_are_saved_as_the_match_of_the_json_document(admin_client):
    response = admin_client.post(
        ADD_URL,
        form_data(
            ("amount", "gt", "10000"),
            ("user.role", "in", '["admin", "owner"]'),
            ("note", "eq", "plain text"),
            ("flag", "exists", ""),
            match_min_risk="0.5",
            match_labels_any="privilege, pii",
        ),
    )

    assert response.status_code == 302
    assert Policy.objects.get().match == {
        "workflow": "hr-*",
        "tool": "iam.*",
        "min_risk": 0.5,
        "labels_any": ["privilege", "pii"],
        "conditions": [
            {"path": "amount", "op": "gt", "value": 10000},
            {"path": "user.role", "op": "in", "value": ["admin", "owner"]},
            {"path": "note", "op": "eq", "value": "plain text"},
            {"path": "flag", "op": "exists"},
        ],
    }


def test_the_change_form_shows_the_stored_match_as_rows_and_saving_it_changes_nothing(
    admin_client,
):
    match = {
        "tool": "payments.*",
        "min_risk": 0.25,
        "labels_any": ["money"],
        "conditions": [
            {"path": "amount", "op": "gte", "value": 5000},
            {"path": "currency", "op": "eq", "value": "10"},
            {"path": "memo", "op": "contains", "value": "refund"},
        ],
    }
    saved, _ = policy_save(
        document={"name": "payouts", "match": match, "effect": "block"}, actor="user:setup"
    )
    response = admin_client.get(change_url(saved))
    form = response.context["adminform"].form
    rows = [row.initial for row in form.conditions.forms if row.initial]
    assert rows == [
        {"path": "amount", "op": "gte", "value": "5000"},
        {"path": "currency", "op": "eq", "value": '"10"'},
        {"path": "memo", "op": "contains", "value": "refund"},
    ]

    data = {
        "priority": "100",
        "enabled": "on",
        "effect": "block",
        "match_workflow": "",
        "match_tool": "payments.*",
        "match_min_risk": "0.25",
        "match_labels_any": "money",
        "approvers": "",
        "escalate_to": "",
        "forbid_self_approval": "unknown",
        "allow_edit": "unknown",
        **conditions_data(*((r["path"], r["op"], r["value"]) for r in rows)),
    }
    admin_client.post(change_url(saved), data)

    saved.refresh_from_db()
    assert (saved.version, saved.match) == (1, match)


def test_add_a_condition_redisplays_the_form_with_one_more_empty_row_and_saves_nothing(
    admin_client,
):
    data = form_data(("amount", "gt", "10"))
    data["_add_condition"] = "1"

    response = admin_client.post(ADD_URL, data)

    assert response.status_code == 200
    form = response.context["adminform"].form
    assert len(form.conditions.forms) == 3
    assert form.conditions.forms[0]["path"].value() == "amount"
    assert not form.errors
    content = response.content.decode()
    assert "Please correct" not in content
    assert "This match as JSON (as drafted)" in content
    assert "&quot;path&quot;: &quot;amount&quot;" in content
    assert not Policy.objects.exists()


def test_group_pickers_offer_only_existing_groups_and_refuse_others(admin_client):
    page = admin_client.get(ADD_URL)
    choices = dict(page.context["adminform"].form.fields["approvers"].choices)
    response = admin_client.post(ADD_URL, form_data(approvers="finance-aprovers"))

    assert list(choices) == ["", "it-approvers", "it-leads"]
    assert choices[""] == "default (reviewers, from GATEKEEPER_DEFAULT_APPROVERS)"
    assert response.status_code == 200
    assert "finance-aprovers is not one of the available choices" in response.content.decode()
    assert not Policy.objects.exists()


def test_a_stored_group_that_vanished_is_shown_missing_and_refused(admin_client, policy):
    Policy.objects.filter(pk=policy.pk).update(escalate_to="ghosts")

    page = admin_client.get(change_url(policy))
    response = admin_client.post(change_url(policy), form_data(escalate_to="ghosts"))

    choices = dict(page.context["adminform"].form.fields["escalate_to"].choices)
    assert choices["ghosts"] == "ghosts (missing group)"
    assert "names no existing group &#x27;ghosts&#x27;" in response.content.decode()
    policy.refresh_from_db()
    assert policy.version == 1


def test_empty_settings_show_the_default_they_take_and_where_it_comes_from(admin_client, settings):
    settings.GATEKEEPER_DEFAULT_FORBID_SELF_APPROVAL = True
    settings.GATEKEEPER_DEFAULT_ALLOW_EDIT = False
    settings.GATEKEEPER_DEFAULT_REMIND_BEFORE_SECONDS = None

    content = admin_client.get(ADD_URL).content.decode()

    assert "default (yes, from GATEKEEPER_DEFAULT_FORBID_SELF_APPROVAL)" in content
    assert "default (no, from GATEKEEPER_DEFAULT_ALLOW_EDIT)" in content
    assert "Empty: default (1, from GATEKEEPER_DEFAULT_REQUIRED_APPROVALS)." in content
    assert "Empty: default (86400, from GATEKEEPER_DEFAULT_EXPIRES_AFTER_SECONDS)." in content
    assert "a quarter of the expiry" in content
    assert "Unknown" not in content


def test_a_bad_edit_leaves_the_stored_policy_and_its_version_alone(admin_client, policy):
    response = admin_client.post(change_url(policy), form_data(match_workflow="hr-["))

    assert response.status_code == 200
    assert "has an unclosed [" in response.content.decode()
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


def test_a_view_only_admin_sees_the_policy_and_its_match_without_the_editor(client, policy):
    from django.contrib.auth.models import Permission, User

    viewer = User.objects.create_user("viewer", password="pw", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_policy"))
    client.force_login(viewer)

    response = client.get(change_url(policy))

    content = response.content.decode()
    assert response.status_code == 200
    assert "&quot;workflow&quot;: &quot;hr-*&quot;" in content
    assert 'name="_add_condition"' not in content
    assert 'name="_dry_run"' not in content
