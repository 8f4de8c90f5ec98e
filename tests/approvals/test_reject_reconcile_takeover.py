"""Reject, reconcile, comment and take over."""

from datetime import timedelta

import pytest
from django.utils import timezone

from approvals.errors import InvalidState, NotFound, ValidationFailed
from approvals.models import PausePacket, StepOutcome
from approvals.services.review import (
    packet_approve,
    packet_comment,
    packet_reconcile,
    packet_reject,
    packet_take_over,
)
from audit.models import AuditEvent


def test_a_reject_is_a_veto(packet_for, policy, alice, bob):
    policy("two", required_approvals=2)
    packet = packet_for()
    packet_approve(packet_id=packet.id, user=alice)
    packet_reject(packet_id=packet.id, user=bob, comment="no")
    packet.refresh_from_db()
    assert (packet.status, packet.decision, packet.decided_by) == ("rejected", "block", ["bob"])


def test_rejecting_after_the_deadline_expires_instead(packet_for, alice):
    packet = packet_for()
    past = timezone.now() - timedelta(seconds=1)
    PausePacket.objects.filter(id=packet.id).update(
        created_at=past - timedelta(hours=1), expires_at=past
    )
    packet_reject(packet_id=packet.id, user=alice)
    assert PausePacket.objects.get(id=packet.id).status == "expired"


def _reconciling(packet_for, alice):
    packet = packet_for(action__side_effect="indeterminate")
    packet_approve(packet_id=packet.id, user=alice)
    assert PausePacket.objects.get(id=packet.id).status == "reconciling"
    return packet


def test_a_write_that_happened_is_applied_and_skipped(packet_for, alice):
    packet = _reconciling(packet_for, alice)
    packet_reconcile(packet_id=packet.id, user=alice, happened=True)
    packet.refresh_from_db()
    assert (packet.status, packet.branch, packet.decision) == ("applied", "reconcile", "skip")
    assert packet.side_effect == "landed"
    assert packet.decided_by == ["alice"]
    outcome = StepOutcome.objects.get()
    assert (outcome.step_index, outcome.side_effect, outcome.gated) == (3, "landed", True)


def test_a_write_that_did_not_happen_returns_to_pending_and_can_be_approved(packet_for, alice):
    packet = _reconciling(packet_for, alice)
    packet_reconcile(packet_id=packet.id, user=alice, happened=False)
    packet.refresh_from_db()
    assert (packet.status, packet.side_effect, packet.branch) == ("pending", "not_started", None)
    packet_approve(packet_id=packet.id, user=alice)
    assert PausePacket.objects.get(id=packet.id).status == "approved"


def test_only_a_reconciling_packet_is_reconciled(packet_for, alice):
    packet = packet_for()
    with pytest.raises(InvalidState):
        packet_reconcile(packet_id=packet.id, user=alice, happened=True)


def test_comments_are_recorded_even_on_closed_packets(packet_for, alice):
    packet = packet_for()
    packet_reject(packet_id=packet.id, user=alice)
    packet_comment(packet_id=packet.id, user=alice, comment="rejected: wrong role")
    assert AuditEvent.objects.get(kind="packet.commented").data == {
        "comment": "rejected: wrong role"
    }
    with pytest.raises(ValidationFailed):
        packet_comment(packet_id=packet.id, user=alice, comment="  ")


def test_outsiders_cannot_comment(packet_for, charlie):
    with pytest.raises(NotFound):
        packet_comment(packet_id=packet_for().id, user=charlie, comment="hi")


def test_take_over_makes_the_reviewer_owner_and_terminates_every_open_branch(packet_for, alice):
    first = packet_for()
    second = packet_for(step__index=4)
    packet_take_over(packet_id=first.id, user=alice)
    for packet in (first, second):
        packet.refresh_from_db()
        assert (packet.status, packet.branch, packet.decision) == (
            "terminated",
            "terminate",
            "block",
        )
        assert packet.decided_by == ["alice"]
    assert first.execution.__class__.objects.get().owner == "user:alice"
    assert AuditEvent.objects.filter(kind="execution.taken_over").count() == 1


def test_take_over_of_a_closed_packet_is_refused(packet_for, alice):
    packet = packet_for()
    packet_reject(packet_id=packet.id, user=alice)
    with pytest.raises(InvalidState, match="by alice"):
        packet_take_over(packet_id=packet.id, user=alice)


def test_outsiders_cannot_take_over(packet_for, charlie):
    with pytest.raises(NotFound):
        packet_take_over(packet_id=packet_for().id, user=charlie)
