"""Steps that wait for reviewers: long-poll, edit, reject, re-review, reconcile, owner change."""

import time

import pytest
from gatekeeper_client import (
    Approval,
    Blocked,
    GateDecision,
    NeedsFreshContext,
    Skipped,
    StillWaiting,
)

from approvals.services.review import packet_approve, packet_reconcile, packet_reject
from tests.client.conftest import Tool, next_packet, stale_then_approve, step


def _statuses(updates) -> list[str]:
    return [u.decision if isinstance(u, GateDecision) else u.status for u in updates]


def test_an_approval_a_second_later_runs_the_tool_with_the_edited_args(
    gk, policy, alice, in_background
):
    policy("grants", approvers="reviewers", allow_edit=True, match={"tool": "iam.*"})
    approved_at = []

    def approve():
        packet = next_packet("onboard-42")
        packet_approve(
            packet_id=packet.id, user=alice, edited_args={"user": "jdoe", "role": "viewer"}
        )
        approved_at.append(time.monotonic())

    tool = Tool()
    updates = []
    in_background(approve, delay=1.0)
    result = gk.run_step(
        tool, {"user": "jdoe", "role": "admin"}, on_update=updates.append, **step()
    )
    answered = time.monotonic()
    assert result == "done"
    assert tool.calls == [{"user": "jdoe", "role": "viewer"}]
    # The long-poll answers on the decision: far below the 55 s a poll that missed it would sleep.
    assert answered - approved_at[0] < 10
    assert _statuses(updates) == ["require_approval", "pending", "approved"]
    assert updates[-1].edited and updates[-1].decided_by == ("alice",)
    assert gk.execution("onboard-42")["steps"][0]["outcome"] == "landed"


def test_a_rejected_step_raises_blocked_with_the_reviewers_reason(gk, bob, in_background):
    in_background(
        lambda: packet_reject(
            packet_id=next_packet("onboard-42").id, user=bob, comment="not in the template"
        ),
        delay=0.3,
    )
    tool = Tool()
    with pytest.raises(Blocked) as blocked:
        gk.run_step(tool, {"user": "jdoe"}, **step())
    assert tool.calls == []
    assert blocked.value.reason == "rejected by bob: not in the template"
    assert blocked.value.approval.status == "rejected"


def test_a_stale_approval_is_refreshed_with_new_context_and_waited_on_again(
    gk, alice, in_background
):
    def review():
        stale = stale_then_approve("onboard-42", alice)
        packet_approve(packet_id=next_packet("onboard-42", exclude=[stale.id]).id, user=alice)

    reads = []

    def read_again():
        reads.append(1)
        return {"employee_record": {"id": 7, "title": "Engineer"}}

    in_background(review)
    tool = Tool()
    updates = []
    gk.run_step(
        tool, {"user": "jdoe"}, refresh_context=read_again, on_update=updates.append, **step()
    )
    assert reads == [1] and tool.calls == [{"user": "jdoe"}]
    assert _statuses(updates) == ["require_approval", "pending", "re_review", "pending", "approved"]
    old, new = (u for u in updates if isinstance(u, Approval) and u.status == "pending")
    assert gk.approval(old.id).superseded_by == new.id
    assert new.raw["action"] == {"tool": "iam.grant", "args": {"user": "jdoe"}}


def test_a_stale_approval_without_a_way_to_refresh_it_needs_fresh_context(gk, alice, in_background):
    in_background(lambda: stale_then_approve("onboard-42", alice))
    with pytest.raises(NeedsFreshContext) as error:
        gk.run_step(Tool(), {"user": "jdoe"}, **step())
    assert error.value.approval.status == "re_review"


def test_a_write_that_turns_out_to_have_happened_is_skipped(gk, alice, in_background):
    def reconcile():
        packet = next_packet("onboard-42")
        packet_approve(packet_id=packet.id, user=alice)
        next_packet("onboard-42", "reconciling")
        time.sleep(0.3)
        packet_reconcile(packet_id=packet.id, user=alice, happened=True, comment="it is there")

    in_background(reconcile)
    tool = Tool()
    updates = []
    result = gk.run_step(
        tool, {"user": "jdoe"}, side_effect="indeterminate", on_update=updates.append, **step()
    )
    assert isinstance(result, Skipped) and tool.calls == []
    assert (result.approval.status, result.approval.decision) == ("applied", "skip")
    assert _statuses(updates) == ["require_approval", "pending", "reconciling", "applied"]
    assert gk.execution("onboard-42")["steps"][0]["outcome"] == "landed"


def test_a_write_that_did_not_happen_goes_back_to_approval_and_runs(gk, alice, bob, in_background):
    def reconcile():
        packet = next_packet("onboard-42")
        packet_approve(packet_id=packet.id, user=alice)
        next_packet("onboard-42", "reconciling")
        packet_reconcile(packet_id=packet.id, user=alice, happened=False)
        time.sleep(0.3)
        packet_approve(packet_id=packet.id, user=bob)

    in_background(reconcile)
    tool = Tool()
    gk.run_step(tool, {"user": "jdoe"}, side_effect="indeterminate", **step())
    assert tool.calls == [{"user": "jdoe"}]


def test_an_owner_change_while_waiting_blocks_the_step(gk, live_server, in_background, make_user):
    make_user("lee", "it-leads")
    in_background(
        lambda: (next_packet("onboard-42"), gk.change_owner("onboard-42", "it-leads", "handoff")),
        delay=0.2,
    )
    with pytest.raises(Blocked) as blocked:
        gk.run_step(Tool(), {"user": "jdoe"}, **step())
    assert blocked.value.reason == "terminated: the execution's owner is now it-leads"


def test_wait_returns_the_open_approval_when_its_timeout_passes(gk):
    approval = gk.check(
        "onboard-42", "hr-onboarding", 2, "set_privileges", "iam.grant", {"user": "jdoe"}
    ).approval
    started = time.monotonic()
    assert gk.wait(approval.id, timeout=1).status == "pending"
    # It waited its second, and stopped long before the 55 s poll it makes without a timeout.
    assert 1 <= time.monotonic() - started < 30


def test_a_step_still_waiting_after_its_wait_timeout_says_so(gk):
    with pytest.raises(StillWaiting) as error:
        gk.run_step(Tool(), {"user": "jdoe"}, wait_timeout=1, **step())
    assert error.value.approval.status == "pending"
