"""Admin: a shadow policy's report, its promotion, and replaying a draft; bounded queries."""

import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from approvals.models import GateCheck, Policy, PolicyVersion
from audit.models import AuditEvent

LIST_URL = reverse("admin:approvals_policy_changelist")


@pytest.fixture
def traffic(gate, policy, alice):
    """An enforced allow for iam.*, a shadow block of iam.grant, and checks of both tools."""
    policy("reads", effect="allow", priority=50, match={"tool": "iam.*"})
    shadow = policy(
        "no-grants", effect="block", priority=10, match={"tool": "iam.grant*"}, mode="shadow"
    )
    steps = iter(range(1000))

    def checks(grants: int, reads: int = 1):
        for _ in range(grants):
            gate(step__index=next(steps), action__tool="iam.grant<b>")
        for _ in range(reads):
            gate(step__index=next(steps), action__tool="iam.read")

    checks(2)
    return shadow, checks


def _queries(client, url, method="get", data=None) -> tuple[int, object]:
    with CaptureQueriesContext(connection) as captured:
        response = getattr(client, method)(url, data) if data else getattr(client, method)(url)
    assert response.status_code == 200, response.content[:500]
    return len(captured.captured_queries), response


def test_the_shadow_report_counts_and_lists_what_it_would_have_changed(admin_client, traffic):
    shadow, _ = traffic
    count, response = _queries(
        admin_client, reverse("admin:approvals_policy_shadow", args=[shadow.pk])
    )
    page = response.content.decode()
    assert '<strong id="shadow-evaluated">3</strong>' in page
    assert '<strong id="shadow-differing">2</strong>' in page
    assert "<td>allow</td><td>block</td><td>2</td>" in page
    assert page.count("iam.grant&lt;b&gt;") == 2 and "iam.grant<b>" not in page
    assert 'id="promote"' in page


def test_the_shadow_report_and_the_list_stay_at_a_fixed_number_of_queries(admin_client, traffic):
    shadow, checks = traffic
    report = reverse("admin:approvals_policy_shadow", args=[shadow.pk])
    few = (_queries(admin_client, report)[0], _queries(admin_client, LIST_URL)[0])
    checks(12, reads=5)
    many, response = _queries(admin_client, report)
    assert (many, _queries(admin_client, LIST_URL)[0]) == few
    assert '<strong id="shadow-differing">14</strong>' in response.content.decode()


def test_the_list_shows_each_shadow_policys_count_with_a_link(admin_client, traffic):
    shadow, _ = traffic
    page = admin_client.get(LIST_URL).content.decode()
    link = reverse("admin:approvals_policy_shadow", args=[shadow.pk])
    assert f'<a href="{link}">2 checks</a>' in page


def test_promoting_from_the_report_is_a_version_in_the_record(admin_client, traffic, gate):
    shadow, _ = traffic
    response = admin_client.post(reverse("admin:approvals_policy_promote", args=[shadow.pk]))
    assert response.status_code == 302
    promoted = Policy.objects.get(pk=shadow.pk)
    assert (promoted.mode, promoted.version) == ("enforce", 2)
    assert PolicyVersion.objects.get(policy=promoted, version=2).changed_by == "user:admin"
    event = AuditEvent.objects.filter(kind="policy.changed").latest("id")
    assert (event.data["policy"], event.data["document"]["mode"]) == ("no-grants", "enforce")
    assert gate(step__index=900, action__tool="iam.grant")["decision"] == "block"


def test_promotion_needs_a_post_and_the_change_permission(client, make_user, traffic):
    from django.contrib.auth.models import Permission

    shadow, _ = traffic
    viewer = make_user("viewer", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_policy"))
    client.force_login(viewer)
    url = reverse("admin:approvals_policy_promote", args=[shadow.pk])
    assert client.get(url).status_code == 405
    assert client.post(url).status_code == 403
    assert Policy.objects.get(pk=shadow.pk).mode == "shadow"
    page = client.get(reverse("admin:approvals_policy_shadow", args=[shadow.pk])).content
    assert b'id="promote"' not in page


def test_the_list_action_promotes_the_selected_shadow_policies(admin_client, traffic):
    shadow, _ = traffic
    reads = Policy.objects.get(name="reads")
    response = admin_client.post(
        LIST_URL,
        {"action": "promote", "_selected_action": [shadow.pk, reads.pk]},
        follow=True,
    )
    page = response.content.decode()
    assert "Promoted no-grants to enforce (v2): it decides from the next gate check on." in page
    assert "Nothing changed: reads is enforced already." in page
    assert Policy.objects.get(pk=reads.pk).version == 1


def test_replaying_a_draft_shows_the_changes_and_writes_nothing(admin_client, traffic):
    shadow, checks = traffic
    url = reverse("admin:approvals_policy_replay", args=[shadow.pk])
    form = admin_client.get(url).content.decode()
    assert "&quot;mode&quot;: &quot;enforce&quot;" in form  # the draft starts as enforced
    draft = {"name": "no-grants", "priority": 10, "match": {"tool": "iam.*"}, "effect": "block"}
    before = (GateCheck.objects.count(), AuditEvent.objects.count(), Policy.objects.count())
    few, response = _queries(admin_client, url, "post", {"document": json.dumps(draft), "days": 7})
    page = response.content.decode()
    assert '<strong id="replay-checks">3</strong>' in page
    assert '<strong id="replay-changed">3</strong>' in page
    assert "allow &rarr; block: 3" in page
    assert "iam.grant&lt;b&gt;" in page and "iam.grant<b>" not in page
    after = (GateCheck.objects.count(), AuditEvent.objects.count(), Policy.objects.count())
    assert after == before and Policy.objects.get(pk=shadow.pk).version == 1
    checks(10, reads=10)
    many, _ = _queries(admin_client, url, "post", {"document": json.dumps(draft), "days": 7})
    assert many == few


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"document": "{", "days": 7}, "Enter a valid JSON"),
        ({"document": '{"name": "no-grants", "effect": "maybe"}', "days": 7}, "effect: must be"),
        ({"document": '{"name": "other", "effect": "block"}', "days": 7}, "must stay"),
        ({"document": '{"name": "no-grants", "effect": "block"}', "days": 0}, "greater than"),
    ],
)
def test_a_bad_draft_is_a_form_error(admin_client, traffic, data, message):
    shadow, _ = traffic
    response = admin_client.post(reverse("admin:approvals_policy_replay", args=[shadow.pk]), data)
    assert response.status_code == 200
    assert message in response.content.decode()
    assert b"replay-result" not in response.content


def test_a_new_draft_replays_beside_the_stored_policies(admin_client, traffic):
    draft = {
        "name": "grants-ask",
        "priority": 1,
        "match": {"tool": "iam.grant*"},
        "effect": "require_approval",
    }
    response = admin_client.post(
        reverse("admin:approvals_policy_replay_new"), {"document": json.dumps(draft), "days": 1}
    )
    page = response.content.decode()
    assert '<strong id="replay-changed">2</strong>' in page
    assert "allow &rarr; require_approval: 2" in page
    assert not Policy.objects.filter(name="grants-ask").exists()


def test_an_unknown_policy_is_404(admin_client, db):
    assert admin_client.get(reverse("admin:approvals_policy_shadow", args=[999])).status_code == 404
    assert admin_client.get("/admin/approvals/policy/x/replay/").status_code == 404


@pytest.mark.parametrize("page", ["shadow", "replay", "promote"])
def test_anonymous_and_non_staff_users_are_sent_to_log_in(client, make_user, traffic, page):
    shadow, _ = traffic
    url = reverse(f"admin:approvals_policy_{page}", args=[shadow.pk])
    assert client.post(url).status_code == 302
    client.force_login(make_user("outsider"))
    response = client.post(url)
    assert response.status_code == 302 and "/login/" in response["Location"]
    assert Policy.objects.get(pk=shadow.pk).mode == "shadow"
