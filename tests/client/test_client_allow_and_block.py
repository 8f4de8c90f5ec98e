"""Steps the gate decides alone: allow runs the tool and records its outcome; block raises."""

import pytest
from gatekeeper_client import Blocked, GateDecision, OutcomeUnknown

from approvals.models import GateCheck, StepOutcome
from tests.client.conftest import Tool, step


def test_an_allowed_step_runs_the_tool_and_records_that_it_landed(gk, policy):
    policy("grants", effect="allow", match={"tool": "iam.*"})
    tool = Tool(result={"role": "admin"})
    updates = []
    result = gk.run_step(
        tool,
        {"user": "jdoe", "role": "admin"},
        on_update=updates.append,
        outcome_detail=lambda result: {"granted": result["role"]},
        **step(),
    )
    assert result == {"role": "admin"}
    assert tool.calls == [{"user": "jdoe", "role": "admin"}]
    assert [u.decision for u in updates if isinstance(u, GateDecision)] == ["allow"]
    execution = gk.execution("onboard-42")
    assert [(s["index"], s["name"], s["outcome"]) for s in execution["steps"]] == [
        (2, "set_privileges", "landed")
    ]
    assert execution["gaps"] == []
    assert StepOutcome.objects.get().detail == {"granted": "admin"}


def test_the_decorator_names_the_args_after_the_parameters(gk, policy):
    policy("grants", effect="allow", match={"tool": "iam.*"})
    calls = []

    @gk.gated(**step(step_index=0))
    def set_privileges(user, role="viewer", **extra):
        calls.append((user, role, extra))
        return "ok"

    assert set_privileges("jdoe", scope="prod") == "ok"
    assert calls == [("jdoe", "viewer", {"scope": "prod"})]
    check = GateCheck.objects.get()
    assert check.request["action"]["args"] == {"user": "jdoe", "role": "viewer", "scope": "prod"}
    assert check.step_name == "set_privileges"


def test_a_misspelt_decorator_option_fails_where_the_step_is_defined(gk):
    with pytest.raises(TypeError):
        gk.gated(**step(), refresh_contxt=lambda: {})


def test_a_blocked_step_raises_and_the_tool_never_runs(gk, policy):
    policy("no-grants", effect="block", match={"tool": "iam.*"})
    tool = Tool()
    with pytest.raises(Blocked) as blocked:
        gk.run_step(tool, {"user": "jdoe"}, **step())
    assert tool.calls == []
    assert blocked.value.decision.blocked and blocked.value.decision.policy.name == "no-grants"
    assert "no-grants" in blocked.value.reason


def test_a_tool_that_fails_records_failed_and_the_error_propagates(gk, policy):
    policy("grants", effect="allow", match={"tool": "iam.*"})
    with pytest.raises(RuntimeError, match="directory down"):
        gk.run_step(Tool(error=RuntimeError("directory down")), {"user": "jdoe"}, **step())
    outcome = StepOutcome.objects.get()
    assert outcome.side_effect == "failed"
    assert outcome.detail == {"error": "RuntimeError: directory down"}


def test_a_tool_unsure_whether_its_write_happened_records_indeterminate(gk, policy):
    policy("grants", effect="allow", match={"tool": "iam.*"})
    unsure = OutcomeUnknown("timed out after sending", detail={"request_id": "r-1"})
    with pytest.raises(OutcomeUnknown):
        gk.run_step(Tool(error=unsure), {"user": "jdoe"}, **step())
    outcome = StepOutcome.objects.get()
    assert (outcome.side_effect, outcome.detail) == ("indeterminate", {"request_id": "r-1"})
    # Gating the step again as indeterminate asks a human: never allowed straight away.
    again = gk.check(
        "onboard-42",
        "hr-onboarding",
        2,
        "set_privileges",
        "iam.grant",
        {"user": "jdoe"},
        side_effect="indeterminate",
        context=step()["context"],
    )
    assert again.needs_approval and again.reason


def test_the_same_check_twice_replays_the_same_answer(gk):
    args = ("onboard-42", "hr-onboarding", 2, "set_privileges", "iam.grant", {"user": "jdoe"})
    first = gk.check(*args, context=step()["context"], risk=0.7)
    again = gk.check(*args, context=step()["context"], risk=0.7)
    assert again.check_id == first.check_id and again.approval.id == first.approval.id
    assert GateCheck.objects.count() == 1
    # Another request gets another default key: a new check, not an idempotency conflict.
    other = gk.check(*args[:2], 3, *args[3:], context=step()["context"], risk=0.7)
    assert other.check_id != first.check_id
