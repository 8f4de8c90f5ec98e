"""The policy dry run: paste a gate request, see which policy decides and why; writes nothing."""

import json

import pytest
from django.test import Client
from django.urls import reverse

from approvals.models import Execution, GateCheck, PausePacket, PolicyVersion
from approvals.services.policies import policy_save
from audit.models import AuditEvent
from tests.conftest import gate_body

URL = reverse("admin:approvals_policy_dry_run")


@pytest.fixture
def policies(db):
    """A mail rule that will not match an IAM grant, then the IAM rule that decides it."""
    for document in (
        {"name": "mail-ok", "priority": 5, "match": {"tool": "email.*"}, "effect": "allow"},
        {"name": "off", "priority": 7, "enabled": False, "effect": "block"},
        {
            "name": "privileged-iam",
            "priority": 10,
            "match": {"workflow": "hr-*", "tool": "iam.*", "min_risk": 0.5},
            "effect": "require_approval",
        },
        {"name": "catch-all", "priority": 50, "effect": "block"},
    ):
        policy_save(document=document, actor="user:setup")


def dry_run(client, body) -> object:
    text = body if isinstance(body, str) else json.dumps(body)
    return client.post(URL, {"request": text})


def test_the_policy_list_links_to_the_dry_run(admin_client):
    content = admin_client.get(reverse("admin:approvals_policy_changelist")).content.decode()

    assert f'href="{URL}"' in content


def test_the_dry_run_shows_the_deciding_policy_its_reason_and_the_trace(admin_client, policies):
    response = dry_run(admin_client, gate_body())

    assert response.status_code == 200
    verdict = response.context["verdict"]
    assert verdict.decision == "require_approval"
    assert verdict.rule.name == "privileged-iam"
    assert verdict.reason == "policy privileged-iam v1 (priority 10): require_approval"
    assert verdict.trace == (
        "mail-ok: no match (tool 'iam.grant' is not 'email.*')",
        "off: disabled",
        "privileged-iam: matches, effect require_approval",
    )
    content = response.content.decode()
    assert "privileged-iam v1 (priority 10)" in content
    assert "mail-ok: no match (tool &#x27;iam.grant&#x27; is not &#x27;email.*&#x27;)" in content
    assert "off: disabled" in content


def test_the_dry_run_writes_nothing(admin_client, policies):
    before = [
        model.objects.count()
        for model in (AuditEvent, GateCheck, Execution, PausePacket, PolicyVersion)
    ]

    response = dry_run(admin_client, gate_body())

    assert response.context["verdict"] is not None
    after = [
        model.objects.count()
        for model in (AuditEvent, GateCheck, Execution, PausePacket, PolicyVersion)
    ]
    assert after == before


def test_without_a_matching_policy_the_default_decision_applies(admin_client, settings):
    settings.GATEKEEPER_DEFAULT_DECISION = "block"

    response = dry_run(admin_client, gate_body())

    verdict = response.context["verdict"]
    assert (verdict.decision, verdict.rule) == ("block", None)
    assert "none: the default decision applies" in response.content.decode()


def test_an_unsettled_side_effect_needs_a_human_whatever_the_policy_says(admin_client, db):
    policy_save(document={"name": "all-ok", "effect": "allow"}, actor="user:setup")

    response = dry_run(admin_client, gate_body(action__side_effect="indeterminate"))

    verdict = response.context["verdict"]
    assert verdict.decision == "require_approval"
    assert verdict.rule.name == "all-ok"
    assert verdict.reason.startswith("side effect is indeterminate")


def test_the_idempotency_key_may_be_left_out(admin_client, policies):
    body = gate_body()
    del body["idempotency_key"]

    response = dry_run(admin_client, body)

    assert response.context["verdict"].rule.name == "privileged-iam"


@pytest.mark.parametrize(
    "text", ["{not json", "", "[" * 100_000 + "]" * 100_000, '{"a": NaN}'], ids=str.__len__
)
def test_text_that_is_not_a_usable_json_body_is_a_form_error(admin_client, db, text):
    response = dry_run(admin_client, text)

    assert response.status_code == 200
    assert response.context["verdict"] is None
    assert response.context["form"].errors["request"]


def test_an_invalid_request_lists_every_field_at_fault(admin_client, db):
    body = gate_body(step__index=-1, risk__score=3)
    del body["action"]["tool"]

    response = dry_run(admin_client, body)

    assert response.context["verdict"] is None
    assert response.context["form"].errors["request"] == [
        "step.index: must be a whole number from 0 to 2147483647",
        "risk.score: must be a number from 0 to 1",
        "action.tool: is required",
    ]
    assert "action.tool: is required" in response.content.decode()


def test_agent_text_in_the_result_is_escaped(admin_client, policies):
    response = dry_run(admin_client, gate_body(action__tool="<script>alert(1)</script>"))

    content = response.content.decode()
    assert "<script>alert(1)</script>" not in content
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in content


def test_the_dry_run_is_for_staff_only(client, charlie):
    assert client.get(URL).status_code == 302
    client.force_login(charlie)

    response = client.post(URL, {"request": json.dumps(gate_body())})

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))


def test_staff_without_permission_to_view_policies_is_refused(client, make_user):
    client.force_login(make_user("dora", is_staff=True))

    assert client.get(URL).status_code == 403


def test_the_dry_run_is_csrf_protected(admin_user):
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user)

    assert client.post(URL, {"request": json.dumps(gate_body())}).status_code == 403
