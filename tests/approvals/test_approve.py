"""Approving: authority, four-eyes, quorum, edits, and the branch table's rows."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from approvals.branch_table import Outcome
from approvals.errors import ActionRefused, AlreadyDecided, InvalidState, NotFound
from approvals.models import PausePacket
from approvals.services.executions import step_record_outcome
from approvals.services.review import packet_approve
from audit.models import AuditEvent


def test_one_approval_resumes_a_single_approval_packet(packet_for, alice):
    packet = packet_for()
    result = packet_approve(packet_id=packet.id, user=alice, comment="looks right")
    assert result.outcome is Outcome.RESUME
    packet.refresh_from_db()
    assert (packet.status, packet.branch, packet.decision) == ("approved", "resume", "allow")
    assert packet.decided_by == ["alice"] and packet.comment == "looks right"
    kinds = AuditEvent.objects.filter(packet_id=packet.id, kind__startswith="packet.")
    assert list(kinds.values_list("kind", flat=True)) == [
        "packet.created",
        "packet.voted",
        "packet.approved",
    ]


def test_quorum_counts_distinct_users(packet_for, policy, alice, bob):
    policy("two", required_approvals=2)
    packet = packet_for()
    assert packet_approve(packet_id=packet.id, user=alice).outcome is Outcome.VOTE_RECORDED
    with pytest.raises(ActionRefused, match="already approved"):
        packet_approve(packet_id=packet.id, user=alice)
    assert packet_approve(packet_id=packet.id, user=bob).outcome is Outcome.RESUME
    packet.refresh_from_db()
    assert packet.decided_by == ["alice", "bob"]


def test_four_eyes_refuses_the_requester(packet_for, make_user):
    dana = make_user("dana", "reviewers")
    packet = packet_for(execution__on_behalf_of="dana")
    with pytest.raises(ActionRefused, match="four-eyes"):
        packet_approve(packet_id=packet.id, user=dana)
    assert PausePacket.objects.get(id=packet.id).status == "pending"


@pytest.mark.parametrize("requester", ["ALICE", "Alice", " alice", "alice ", "ａｌｉｃｅ"])
def test_four_eyes_compares_names_as_identities(packet_for, alice, requester):
    packet = packet_for(execution__on_behalf_of=requester)
    with pytest.raises(ActionRefused, match="four-eyes"):
        packet_approve(packet_id=packet.id, user=alice)
    assert not PausePacket.objects.get(id=packet.id).votes.exists()


def test_four_eyes_sees_through_an_invisible_character_stored_before_the_gate_refused_it(
    packet_for, alice
):
    packet = packet_for()
    PausePacket.objects.filter(id=packet.id).update(on_behalf_of="alice\u200b")
    with pytest.raises(ActionRefused, match="four-eyes"):
        packet_approve(packet_id=packet.id, user=alice)


def test_four_eyes_binds_superusers_too(packet_for, make_user):
    root = make_user("root", is_superuser=True, is_staff=True)
    packet = packet_for(execution__on_behalf_of="root")
    with pytest.raises(ActionRefused):
        packet_approve(packet_id=packet.id, user=root)


def test_a_policy_may_allow_self_approval(packet_for, policy, make_user):
    policy("self-ok", forbid_self_approval=False)
    dana = make_user("dana", "reviewers")
    packet = packet_for(execution__on_behalf_of="dana")
    assert packet_approve(packet_id=packet.id, user=dana).outcome is Outcome.RESUME


def test_an_outsider_gets_not_found(packet_for, charlie):
    packet = packet_for()
    with pytest.raises(NotFound):
        packet_approve(packet_id=packet.id, user=charlie)


def test_view_without_resume_authority_is_refused(packet_for, make_user):
    from django.contrib.auth.models import Permission

    from approvals.models import PausePacketUserObjectPermission

    viewer = make_user("vic")
    packet = packet_for()
    PausePacketUserObjectPermission.objects.create(
        user=viewer,
        content_object=packet,
        permission=Permission.objects.get(codename="view_pausepacket"),
    )
    with pytest.raises(ActionRefused, match="no authority"):
        packet_approve(packet_id=packet.id, user=viewer)


def test_approving_after_the_deadline_expires_the_packet(packet_for, alice):
    packet = packet_for()
    past = timezone.now() - timedelta(seconds=1)
    PausePacket.objects.filter(id=packet.id).update(
        created_at=past - timedelta(hours=1), expires_at=past
    )
    result = packet_approve(packet_id=packet.id, user=alice)
    assert result.outcome is Outcome.EXPIRED
    packet.refresh_from_db()
    assert (packet.status, packet.decision, packet.decided_by) == ("expired", "block", [])
    assert not packet.votes.exists()


def test_a_deadline_passing_during_the_approval_does_not_change_its_moment(
    packet_for, alice, monkeypatch
):
    """The action judges the packet at one moment, however long its reads take.

    The clock is the outside world here: it reads just before the deadline once, then after it
    for every later call, as when the deadline falls while the approval is in flight.
    """
    packet = packet_for()
    deadline = timezone.now() + timedelta(minutes=5)
    PausePacket.objects.filter(id=packet.id).update(expires_at=deadline)
    readings = iter([deadline - timedelta(microseconds=1)])
    monkeypatch.setattr(
        "approvals.services.review.timezone.now",
        lambda: next(readings, deadline + timedelta(seconds=1)),
    )
    result = packet_approve(packet_id=packet.id, user=alice)
    assert result.outcome is Outcome.RESUME
    packet.refresh_from_db()
    assert (packet.status, packet.decided_by) == ("approved", ["alice"])


def test_approving_after_an_owner_change_terminates(packet_for, alice):
    packet = packet_for()
    packet.execution.owner = "someone-else"
    packet.execution.save()
    result = packet_approve(packet_id=packet.id, user=alice)
    assert result.outcome is Outcome.TERMINATE
    packet.refresh_from_db()
    assert (packet.status, packet.branch, packet.decision) == ("terminated", "terminate", "block")
    assert "someone-else" in result.message


def test_approving_with_an_indeterminate_side_effect_goes_to_reconcile(packet_for, agent, alice):
    packet = packet_for()
    step_record_outcome(
        service_account=agent,
        thread_id="onboard-42",
        step_index=3,
        side_effect="indeterminate",
        detail={},
    )
    result = packet_approve(packet_id=packet.id, user=alice)
    assert result.outcome is Outcome.RECONCILE
    packet.refresh_from_db()
    assert (packet.status, packet.branch, packet.decision) == ("reconciling", "reconcile", None)
    assert not packet.votes.exists()


def test_approving_stale_context_sends_it_back_to_re_review(packet_for, alice):
    packet = packet_for()
    PausePacket.objects.filter(id=packet.id).update(
        fresh_until=timezone.now() - timedelta(seconds=1)
    )
    result = packet_approve(packet_id=packet.id, user=alice)
    assert result.outcome is Outcome.RE_REVIEW
    packet.refresh_from_db()
    assert (packet.status, packet.branch) == ("re_review", "re_review")
    with pytest.raises(InvalidState, match="stale"):
        packet_approve(packet_id=packet.id, user=alice)


def test_a_late_approval_is_told_who_decided(packet_for, alice, bob):
    packet = packet_for()
    packet_approve(packet_id=packet.id, user=alice)
    with pytest.raises(AlreadyDecided, match="by alice"):
        packet_approve(packet_id=packet.id, user=bob)


def test_edited_args_are_approved_and_recorded_with_a_diff(packet_for, policy, alice):
    policy("editable", allow_edit=True)
    packet = packet_for()
    result = packet_approve(
        packet_id=packet.id, user=alice, edited_args={"user": "new.hire", "role": "viewer"}
    )
    assert result.outcome is Outcome.RESUME
    packet.refresh_from_db()
    assert packet.args == {"user": "new.hire", "role": "admin"}
    assert packet.effective_args == {"user": "new.hire", "role": "viewer"}
    edited = AuditEvent.objects.get(kind="packet.edited")
    assert edited.data["diff"]["changed"] == {"role": {"from": "admin", "to": "viewer"}}


def test_an_edit_clears_earlier_votes(packet_for, policy, alice, bob):
    policy("editable-2", allow_edit=True, required_approvals=2)
    packet = packet_for()
    packet_approve(packet_id=packet.id, user=alice)
    result = packet_approve(packet_id=packet.id, user=bob, edited_args={"user": "x"})
    assert result.outcome is Outcome.VOTE_RECORDED
    assert packet_approve(packet_id=packet.id, user=alice).outcome is Outcome.RESUME


def test_edits_are_refused_unless_the_policy_allows_them(packet_for, alice):
    packet = packet_for()
    with pytest.raises(ActionRefused, match="does not allow editing"):
        packet_approve(packet_id=packet.id, user=alice, edited_args={"user": "x"})
    assert PausePacket.objects.get(id=packet.id).status == "pending"


def test_approving_reads_the_reviewers_grants_once_for_view_and_resume(packet_for, alice):
    packet = packet_for()
    with CaptureQueriesContext(connection) as queries:
        packet_approve(packet_id=packet.id, user=alice)
    grant_reads = [
        q["sql"]
        for q in queries.captured_queries
        if "objectpermission" in q["sql"] and q["sql"].lstrip().startswith("SELECT")
    ]
    # One guardian checker: its user-grant and group-grant reads, once each.
    assert len(grant_reads) == 2


ORIGINAL = {"user": "new.hire", "role": "admin"}
EDITED = {"user": "new.hire", "role": "viewer"}


def _state(packet_id) -> tuple:
    packet = PausePacket.objects.get(id=packet_id)
    return (
        packet.status,
        packet.edited_args,
        packet.snapshot_hash,
        packet.votes.count(),
        AuditEvent.objects.count(),
    )


@pytest.fixture
def approved_then_edited(packet_for, policy, alice):
    """A packet of two approvals: alice approves the original args, then `editor` edits them."""

    def make(editor) -> PausePacket:
        policy("editable-2", allow_edit=True, required_approvals=2)
        packet = packet_for()
        packet_approve(packet_id=packet.id, user=alice)
        packet_approve(packet_id=packet.id, user=editor, edited_args=EDITED)
        return packet

    return make


def test_approving_the_original_args_again_after_editing_them_is_refused_and_changes_nothing(
    approved_then_edited, alice
):
    packet = approved_then_edited(alice)
    before = _state(packet.id)
    with pytest.raises(ActionRefused, match="you approved these args before they were edited"):
        packet_approve(packet_id=packet.id, user=alice, edited_args=ORIGINAL)
    assert _state(packet.id) == before
    assert PausePacket.objects.get(id=packet.id).effective_args == EDITED


def test_a_stale_form_cannot_bring_back_votes_an_edit_cleared(
    approved_then_edited, alice, bob, make_user
):
    """Alice approved what she saw; Bob edited; her old page (and anyone's) sends the old args."""
    carol = make_user("carol", "reviewers")
    packet = approved_then_edited(bob)
    before = _state(packet.id)
    with pytest.raises(ActionRefused, match="you approved these args before"):
        packet_approve(packet_id=packet.id, user=alice, edited_args=ORIGINAL)
    with pytest.raises(ActionRefused, match=r"approved before \(by alice\)"):
        packet_approve(packet_id=packet.id, user=carol, edited_args=ORIGINAL)
    assert _state(packet.id) == before
    assert list(
        PausePacket.objects.get(id=packet.id)
        .current_votes()
        .values_list("user__username", flat=True)
    ) == ["bob"]
    assert packet_approve(packet_id=packet.id, user=alice).outcome is Outcome.RESUME


def test_args_nobody_approved_may_be_edited_back_to(packet_for, policy, alice, bob):
    policy("editable-2", allow_edit=True, required_approvals=2)
    packet = packet_for()
    packet_approve(packet_id=packet.id, user=alice, edited_args=EDITED)
    result = packet_approve(packet_id=packet.id, user=bob, edited_args=ORIGINAL)
    assert result.outcome is Outcome.VOTE_RECORDED
    packet = PausePacket.objects.get(id=packet.id)
    assert packet.effective_args == ORIGINAL
    assert list(packet.current_votes().values_list("user__username", flat=True)) == ["bob"]
