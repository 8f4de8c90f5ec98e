"""gatekeeper_client.adapters: a framework's call identity becomes the same step every run,
and a decided approval means the same for a framework's tool call as for an engine's step."""

import pytest
from gatekeeper_client import Approval
from gatekeeper_client.adapters import gate_tool_name, step_for, verdict_on
from gatekeeper_client.verdicts import verdict_of


def test_a_call_is_indexed_by_its_place_among_the_runs_gated_calls():
    first = step_for("onboard-1", "call_a", [], "hr_lookup", "hr.lookup")
    second = step_for("onboard-1", "call_b", ["call_a"], "iam_grant", "iam.grant")
    assert (first.index, second.index) == (0, 1)
    assert second.idempotency_key == "onboard-1:1:call_b"
    assert (second.thread_id, second.name, second.tool) == ("onboard-1", "iam_grant", "iam.grant")


def test_a_rerun_of_the_same_call_is_the_same_step():
    # After a resume the framework's history already holds the call (and later ones may follow).
    before = step_for("onboard-1", "call_b", ["call_a"], "iam_grant", "iam.grant")
    rerun = step_for(
        "onboard-1", "call_b", ["call_a", "call_b", "call_a"], "iam_grant", "iam.grant"
    )
    assert rerun == before


def test_a_long_key_is_hashed_within_the_servers_bound_and_stays_distinct():
    one = step_for("t" * 200, "call_a", [], "x", "x").idempotency_key
    two = step_for("t" * 200, "call_b", [], "x", "x").idempotency_key
    assert len(one) <= 200 and one != two and one.startswith("0:")


@pytest.mark.parametrize(("thread_id", "call_id"), [("", "call_a"), ("onboard-1", "")])
def test_a_call_without_identity_is_refused(thread_id, call_id):
    with pytest.raises(ValueError, match="thread id|no id"):
        step_for(thread_id, call_id, [], "iam_grant", "iam.grant")


def test_tool_names_map_by_mapping_or_function_and_default_to_the_name():
    assert gate_tool_name(None, "iam_grant") == "iam_grant"
    assert gate_tool_name({"iam_grant": "iam.grant"}, "iam_grant") == "iam.grant"
    assert gate_tool_name({"iam_grant": "iam.grant"}, "hr_lookup") == "hr_lookup"
    assert gate_tool_name(lambda name: name.replace("_", ".", 1), "iam_grant") == "iam.grant"


def approval(status: str, decision: str | None, **more) -> Approval:
    """An approval of iam.grant as the API shows it once decided."""
    return Approval.from_json(
        {
            "id": "a1",
            "status": status,
            "branch": None,
            "decision": decision,
            "action": {"tool": "iam.grant", "args": {"user": "jdoe", "role": "dev"}},
            "edited": True,
            "comment": "",
            "decided_by": ["alice"],
            "decided_at": "2026-12-06T12:00:00+00:00",
            "fresh_until": "2026-12-06T12:30:00+00:00",
            "expires_at": "2026-12-06T13:00:00+00:00",
            "required_approvals": 1,
            "approvals": 1,
            "execution": {"thread_id": "onboard-1", "owner": "it"},
            "step": {"index": 1, "name": "iam_grant"},
            "superseded_by": None,
            "url": "http://gk/approvals/a1/",
            **more,
        }
    )


def test_an_approval_runs_the_step_with_the_reviewers_args_for_frameworks_and_engines():
    approved = approval("approved", "allow")
    framework, engine = verdict_on(approved), verdict_of(approved.raw)
    assert framework == engine
    assert (framework.run, framework.skip, framework.args) == (
        True,
        False,
        {"user": "jdoe", "role": "dev"},
    )


def test_a_rejection_refuses_the_step_and_tells_the_model_who_and_why():
    rejected = approval("rejected", "block", comment="not admin")
    framework = verdict_on(rejected)
    assert (framework.run, framework.skip) == (False, False)
    assert framework.reason == "rejected by alice: not admin" == verdict_of(rejected.raw).reason


def test_an_expiry_refuses_the_step_saying_nobody_decided_in_time():
    framework = verdict_on(approval("expired", "block", decided_by=[]))
    assert (framework.run, framework.skip) == (False, False)
    assert framework.reason == "expired: nobody decided before 2026-12-06T13:00:00+00:00"


def test_a_write_reconciled_as_applied_is_skipped_and_the_model_told_so():
    framework = verdict_on(approval("applied", "skip"))
    assert (framework.run, framework.skip) == (False, True)
    assert framework.reason.startswith("not run again: a reviewer found its write already applied")
