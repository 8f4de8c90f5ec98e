"""Owning an execution lets a team see its packets; approving stays with the policy's route.

The red team's scenario: step 0 (`email.send`, no policy) makes `reviewers` the owner, step 1
(`payments.transfer`) is routed by policy to `finance-approvers`. Bob, in reviewers only, may
see, comment, reject and take over the payout, never approve or reconcile it.
"""

from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.utils import timezone

from approvals.branch_table import Outcome
from approvals.errors import ActionRefused
from approvals.gate_request import ContextInput
from approvals.models import PausePacket, PausePacketGroupObjectPermission
from approvals.permissions import can_resume, can_view, users_who_may_resume
from approvals.services.executions import execution_change_owner, packet_refresh
from approvals.services.reminders import packets_remind
from approvals.services.review import (
    packet_approve,
    packet_comment,
    packet_reconcile,
    packet_reject,
    packet_take_over,
)

THREAD = "payout-7"
PAYOUT = {"action__tool": "payments.transfer", "action__args": {"amount": 90000, "to": "ACME"}}


@pytest.fixture
def fiona(make_user):
    """A finance approver, in the group the payout policy routes to."""
    return make_user("fiona", "finance-approvers")


@pytest.fixture
def routed_payout(policy, packet_for, bob, fiona):
    """Step 0 makes reviewers the owner; step 1 is a payout routed to finance-approvers."""
    policy("payouts", match={"tool": "payments.*"}, approvers="finance-approvers")
    first = packet_for(
        execution__thread_id=THREAD, step__index=0, action__tool="email.send", action__args={}
    )
    assert first.execution.owner == "reviewers" and first.approvers == "reviewers"
    packet_approve(packet_id=first.id, user=bob)

    def gate_payout(**overrides):
        return packet_for(execution__thread_id=THREAD, step__index=1, **PAYOUT, **overrides)

    return gate_payout


def test_the_owning_team_sees_the_payout_but_only_finance_may_approve_it(routed_payout, bob, fiona):
    payout = routed_payout()
    assert (payout.owner, payout.approvers) == ("reviewers", "finance-approvers")
    assert can_view(bob, payout) and not can_resume(bob, payout)
    with pytest.raises(ActionRefused, match="no authority to decide"):
        packet_approve(packet_id=payout.id, user=bob)
    assert PausePacket.objects.get(id=payout.id).votes.count() == 0
    packet_comment(packet_id=payout.id, user=bob, comment="bob had a look")
    assert packet_approve(packet_id=payout.id, user=fiona).outcome is Outcome.RESUME
    assert PausePacket.objects.get(id=payout.id).decided_by == ["fiona"]


def test_the_owning_team_may_reject_the_payout(routed_payout, bob):
    payout = routed_payout()
    packet_reject(packet_id=payout.id, user=bob, comment="not this month")
    payout.refresh_from_db()
    assert (payout.status, payout.decided_by) == ("rejected", ["bob"])


def test_the_owning_team_may_not_reconcile_the_payout(routed_payout, bob, fiona, agent):
    payout = routed_payout(action__side_effect="indeterminate")
    assert packet_approve(packet_id=payout.id, user=fiona).outcome is Outcome.RECONCILE
    with pytest.raises(ActionRefused, match="no authority to decide"):
        packet_reconcile(packet_id=payout.id, user=bob, happened=True)
    assert PausePacket.objects.get(id=payout.id).status == "reconciling"


def test_a_takeover_gives_the_single_user_no_more_than_the_team_had(routed_payout, bob, fiona):
    payout = routed_payout()
    packet_take_over(packet_id=payout.id, user=bob, comment="mine")
    payout.refresh_from_db()
    assert (payout.status, payout.execution.owner) == ("terminated", "user:bob")

    again = routed_payout()
    assert (again.owner, again.approvers) == ("user:bob", "finance-approvers")
    assert can_view(bob, again) and not can_resume(bob, again)
    with pytest.raises(ActionRefused, match="no authority to decide"):
        packet_approve(packet_id=again.id, user=bob)
    assert packet_approve(packet_id=again.id, user=fiona).outcome is Outcome.RESUME


def test_a_refreshed_payout_keeps_the_owner_view_only(routed_payout, agent, bob, fiona):
    payout = routed_payout()
    PausePacket.objects.filter(id=payout.id).update(fresh_until=timezone.now())
    fresh = packet_refresh(
        service_account=agent,
        packet_id=payout.id,
        context=(ContextInput(name="balance", value=1, observed_at=timezone.now().isoformat()),),
    )
    assert can_view(bob, fresh) and not can_resume(bob, fresh)
    assert can_resume(fiona, fresh)


def test_a_new_owner_named_by_the_orchestrator_sees_later_packets_only(
    routed_payout, agent, make_user, fiona
):
    lee = make_user("lee", "it-leads")
    routed_payout()
    execution_change_owner(service_account=agent, thread_id=THREAD, owner="it-leads")
    later = routed_payout()
    assert later.owner == "it-leads"
    assert can_view(lee, later) and not can_resume(lee, later)
    assert list(users_who_may_resume(later)) == [fiona]


def test_escalation_gives_the_escalation_group_authority_to_decide(policy, packet_for, make_user):
    lena = make_user("lena", "finance-leads")
    policy(
        "payouts",
        match={"tool": "payments.*"},
        approvers="finance-approvers",
        escalate_to="finance-leads",
    )
    payout = packet_for(**PAYOUT)
    assert not can_view(lena, payout)
    PausePacket.objects.filter(id=payout.id).update(
        expires_at=timezone.now() + timedelta(minutes=1)
    )
    assert packets_remind() == 1
    assert can_view(lena, payout) and can_resume(lena, payout)


def test_an_admin_may_delegate_a_single_packet_to_the_owning_team(routed_payout, bob):
    payout = routed_payout()
    PausePacketGroupObjectPermission.objects.create(
        group=bob.groups.get(),
        content_object=payout,
        permission=Permission.objects.get(codename="resume_pausepacket"),
    )
    assert packet_approve(packet_id=payout.id, user=bob).outcome is Outcome.RESUME
