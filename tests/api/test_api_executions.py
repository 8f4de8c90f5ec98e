"""Outcomes, owner changes and the execution view, with gaps."""

import pytest

from tests.api.conftest import error_of
from tests.conftest import gate_body


def _gate(api, index, **overrides):
    return api.post(
        "/gate", gate_body(step__index=index, step__name=f"step{index}", **overrides)
    ).json()


def test_an_outcome_reports_whether_the_step_was_gated(api, policy):
    policy("all", effect="allow")
    _gate(api, 0)
    gated = api.post(
        "/executions/onboard-42/steps/0/outcome", {"side_effect": "landed", "detail": {"id": 3}}
    )
    assert gated.status_code == 200 and gated.json() == {"gated": True}
    ungated = api.post("/executions/onboard-42/steps/5/outcome", {"side_effect": "landed"})
    assert ungated.json() == {"gated": False}


@pytest.mark.parametrize(
    ("path", "body", "status", "code"),
    [
        ("/executions/nope/steps/0/outcome", {"side_effect": "landed"}, 404, "not_found"),
        (
            "/executions/onboard-42/steps/0/outcome",
            {"side_effect": "maybe"},
            400,
            "validation_error",
        ),
        (
            "/executions/onboard-42/steps/0/outcome",
            {"side_effect": "landed", "detail": []},
            400,
            "validation_error",
        ),
        (
            "/executions/onboard-42/steps/-1/outcome",
            {"side_effect": "landed"},
            400,
            "validation_error",
        ),
        (
            "/executions/onboard-42/steps/99999999999/outcome",
            {"side_effect": "landed"},
            400,
            "validation_error",
        ),
        ("/executions/bad%20id/steps/0/outcome", {"side_effect": "landed"}, 404, "not_found"),
    ],
)
def test_bad_outcomes_are_clear_errors(api, path, body, status, code):
    _gate(api, 0)
    response = api.post(path, body)
    assert response.status_code == status and error_of(response)["code"] == code


def test_an_indeterminate_outcome_sends_the_next_approval_to_reconcile(api, alice):
    from approvals.services.review import packet_approve

    approval = _gate(api, 0)["approval"]
    api.post("/executions/onboard-42/steps/0/outcome", {"side_effect": "indeterminate"})
    packet_approve(packet_id=approval["id"], user=alice)
    assert api.get(f"/approvals/{approval['id']}").json()["status"] == "reconciling"


def test_an_owner_change_terminates_open_approvals(api, make_user):
    make_user("lee", "it-leads")
    approval = _gate(api, 0)["approval"]
    response = api.post("/executions/onboard-42/owner", {"owner": "it-leads", "reason": "handoff"})
    assert response.status_code == 200 and response.json()["owner"] == "it-leads"
    after = api.get(f"/approvals/{approval['id']}").json()
    assert (after["status"], after["branch"], after["decision"]) == (
        "terminated",
        "terminate",
        "block",
    )
    assert after["execution"]["owner"] == "it-leads"


def test_owner_changes_are_validated(api):
    _gate(api, 0)
    assert api.post("/executions/onboard-42/owner", {}).status_code == 400
    assert api.post("/executions/onboard-42/owner", {"owner": "x", "extra": 1}).status_code == 400
    assert api.post("/executions/unknown/owner", {"owner": "x"}).status_code == 404


def test_the_execution_lists_steps_record_and_every_kind_of_gap(api, policy, alice):
    from approvals.services.review import packet_approve

    policy("allow-reads", effect="allow", priority=1, match={"tool": "*.read"})
    _gate(api, 0, action__tool="hr.read")  # allowed, outcome reported
    api.post("/executions/onboard-42/steps/0/outcome", {"side_effect": "landed"})
    _gate(api, 1, action__tool="hr.read")  # allowed, no outcome: no_outcome
    approval = _gate(api, 3)["approval"]  # index 2 never gated: skipped_index
    packet_approve(packet_id=approval["id"], user=alice)  # approved, no outcome: no_outcome
    api.post("/executions/onboard-42/steps/7/outcome", {"side_effect": "landed"})  # ungated
    execution = api.get("/executions/onboard-42").json()
    assert execution["status"] == "active" and execution["workflow"] == "hr-onboarding"
    assert [(s["index"], s["decision"], s["outcome"]) for s in execution["steps"]] == [
        (0, "allow", "landed"),
        (1, "allow", None),
        (3, "allow", None),
    ]
    assert execution["steps"][2]["approval"] == approval["id"]
    assert execution["gaps"] == [
        {"step": 1, "kind": "no_outcome"},
        {"step": 2, "kind": "skipped_index"},
        {"step": 3, "kind": "no_outcome"},
        {"step": 7, "kind": "ungated"},
    ]
    kinds = [event["kind"] for event in execution["record"]]
    assert kinds[0] == "gate.checked" and "packet.approved" in kinds and "step.outcome" in kinds
    assert [e["seq"] for e in execution["record"]] == sorted(e["seq"] for e in execution["record"])


def test_an_execution_with_an_open_approval_is_waiting(api):
    _gate(api, 0)
    assert api.get("/executions/onboard-42").json()["status"] == "waiting"


def test_executions_of_other_accounts_are_not_found(api, other_api):
    _gate(api, 0)
    assert other_api.get("/executions/onboard-42").status_code == 404
