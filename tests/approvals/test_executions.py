"""Owner changes, step outcomes and refreshed context."""

from datetime import timedelta

import pytest
from django.utils import timezone

from approvals.errors import AlreadyDecided, Expired, InvalidState, NotFound
from approvals.gate_request import ContextInput
from approvals.models import PausePacket, StepOutcome
from approvals.permissions import can_resume
from approvals.services.executions import (
    execution_change_owner,
    packet_refresh,
    step_record_outcome,
)
from audit.models import AuditEvent

FRESH = (
    ContextInput(
        name="employee_record", value={"id": 7, "v": 2}, observed_at="2026-11-23T10:00:00+00:00"
    ),
)


def test_an_owner_change_terminates_open_packets_without_crediting_anyone(
    packet_for, agent, make_user
):
    make_user("lee", "it-leads")
    packet = packet_for()
    execution_change_owner(
        service_account=agent, thread_id="onboard-42", owner="it-leads", reason="handoff"
    )
    packet.refresh_from_db()
    assert (packet.status, packet.branch, packet.decision, packet.decided_by) == (
        "terminated",
        "terminate",
        "block",
        [],
    )
    assert packet.execution.owner == "it-leads"
    changed = AuditEvent.objects.get(kind="execution.owner_changed")
    assert changed.data == {"from": "reviewers", "to": "it-leads", "reason": "handoff"}


def test_naming_the_current_owner_changes_nothing(packet_for, agent):
    packet = packet_for()
    execution_change_owner(service_account=agent, thread_id="onboard-42", owner="reviewers")
    assert PausePacket.objects.get(id=packet.id).status == "pending"


def test_owner_change_of_an_unknown_execution_is_not_found(agent):
    with pytest.raises(NotFound):
        execution_change_owner(service_account=agent, thread_id="nope", owner="x")


def test_an_outcome_for_a_gated_step_is_recorded(gate, agent, policy):
    policy("all", effect="allow")
    gate()
    assert step_record_outcome(
        service_account=agent,
        thread_id="onboard-42",
        step_index=3,
        side_effect="landed",
        detail={"id": 1},
    ) == {"gated": True}
    assert StepOutcome.objects.get().gated is True


def test_an_outcome_for_a_step_never_gated_is_kept_and_flagged(gate, agent, policy):
    policy("all", effect="allow")
    gate()
    assert step_record_outcome(
        service_account=agent, thread_id="onboard-42", step_index=9, side_effect="landed", detail={}
    ) == {"gated": False}
    assert AuditEvent.objects.get(kind="step.outcome").data["gated"] is False


@pytest.mark.parametrize(
    ("reported", "packet_side_effect"),
    [
        ("landed", "landed"),
        ("indeterminate", "indeterminate"),
        ("not_landed", "not_started"),
        ("failed", "not_started"),
    ],
)
def test_an_outcome_updates_the_open_packet_of_its_step(
    packet_for, agent, reported, packet_side_effect
):
    packet = packet_for(
        action__side_effect="indeterminate"
        if reported in ("not_landed", "failed")
        else "not_started"
    )
    step_record_outcome(
        service_account=agent, thread_id="onboard-42", step_index=3, side_effect=reported, detail={}
    )
    assert PausePacket.objects.get(id=packet.id).side_effect == packet_side_effect


def test_outcomes_for_unknown_executions_are_not_found(agent):
    with pytest.raises(NotFound):
        step_record_outcome(
            service_account=agent, thread_id="nope", step_index=0, side_effect="landed", detail={}
        )


def _stale(packet):
    PausePacket.objects.filter(id=packet.id).update(
        fresh_until=timezone.now() - timedelta(seconds=1)
    )


def test_refresh_supersedes_a_stale_packet_with_new_deadlines(packet_for, agent, alice):
    packet = packet_for()
    _stale(packet)
    fresh = packet_refresh(
        service_account=agent,
        packet_id=packet.id,
        context=FRESH,
        args={"user": "new.hire", "role": "viewer"},
    )
    packet.refresh_from_db()
    assert (packet.status, packet.superseded_by_id) == ("superseded", fresh.id)
    assert fresh.status == "pending" and fresh.args == {"user": "new.hire", "role": "viewer"}
    assert fresh.context[0]["value"] == {"id": 7, "v": 2}
    assert fresh.fresh_until > timezone.now() and fresh.expires_at > packet.expires_at
    assert (fresh.policy_name, fresh.policy_version) == (packet.policy_name, packet.policy_version)
    assert can_resume(alice, fresh)


def test_refresh_of_a_re_review_packet(packet_for, agent, alice):
    from approvals.services.review import packet_approve

    packet = packet_for()
    _stale(packet)
    packet_approve(packet_id=packet.id, user=alice)
    fresh = packet_refresh(service_account=agent, packet_id=packet.id, context=FRESH)
    assert PausePacket.objects.get(id=packet.id).status == "superseded"
    assert fresh.status == "pending"


def test_refresh_of_a_fresh_packet_is_refused(packet_for, agent):
    with pytest.raises(InvalidState):
        packet_refresh(service_account=agent, packet_id=packet_for().id, context=FRESH)


def test_refresh_of_an_expired_packet_expires_it(packet_for, agent):
    packet = packet_for()
    past = timezone.now() - timedelta(seconds=1)
    PausePacket.objects.filter(id=packet.id).update(
        created_at=past - timedelta(hours=1), expires_at=past
    )
    with pytest.raises(Expired):
        packet_refresh(service_account=agent, packet_id=packet.id, context=FRESH)
    assert PausePacket.objects.get(id=packet.id).status == "expired"


def test_refresh_of_a_closed_packet_is_already_decided(packet_for, agent, alice):
    from approvals.services.review import packet_reject

    packet = packet_for()
    packet_reject(packet_id=packet.id, user=alice)
    with pytest.raises(AlreadyDecided):
        packet_refresh(service_account=agent, packet_id=packet.id, context=FRESH)


def test_another_service_account_cannot_refresh(packet_for):
    from approvals.services.service_accounts import service_account_create

    other, _ = service_account_create(name="other")
    with pytest.raises(NotFound):
        packet_refresh(service_account=other, packet_id=packet_for().id, context=FRESH)
