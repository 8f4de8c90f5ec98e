"""Opening pause packets and moving them between statuses: shared by every service."""

from datetime import datetime, timedelta

from django.utils import timezone

from approvals.events import EventKind
from approvals.models import Execution, GateCheck, PausePacket
from approvals.permissions import grant_packet_access, packet_grants
from approvals.services.changes import packets_changed
from approvals.services.outbox import outbox_packet_opened
from approvals.services.policies import PacketSettings
from approvals.snapshot import snapshot_hash
from approvals.wakeups import wake_waiters
from audit.services import Event, record_events

STATUS_EVENTS = {
    PausePacket.Status.APPROVED: EventKind.PACKET_APPROVED,
    PausePacket.Status.REJECTED: EventKind.PACKET_REJECTED,
    PausePacket.Status.EXPIRED: EventKind.PACKET_EXPIRED,
    PausePacket.Status.RE_REVIEW: EventKind.PACKET_RE_REVIEW,
    PausePacket.Status.RECONCILING: EventKind.PACKET_RECONCILING,
    PausePacket.Status.APPLIED: EventKind.PACKET_APPLIED,
    PausePacket.Status.TERMINATED: EventKind.PACKET_TERMINATED,
    PausePacket.Status.SUPERSEDED: EventKind.PACKET_SUPERSEDED,
}


def packet_open(
    *,
    execution: Execution,
    gate_check: GateCheck,
    step_index: int,
    step_name: str,
    tool: str,
    args: dict,
    side_effect: str,
    context: list,
    on_behalf_of: str,
    policy_name: str,
    policy_version: int | None,
    reason: str,
    packet_settings: PacketSettings,
    actor: str,
    now: datetime | None = None,
    callback: dict | None = None,
) -> PausePacket:
    """Open a pending packet, grant access to its reviewers, record it (caller's transaction)."""
    now = now or timezone.now()
    packet = PausePacket.objects.create(
        execution=execution,
        gate_check=gate_check,
        step_index=step_index,
        step_name=step_name,
        tool=tool,
        args=args,
        side_effect=side_effect,
        context=context,
        callback=callback,
        owner=execution.owner,
        workflow=execution.workflow,
        requested_by=gate_check.service_account,
        on_behalf_of=on_behalf_of,
        policy_name=policy_name,
        policy_version=policy_version,
        reason=reason,
        approvers=packet_settings.approvers,
        escalate_to=packet_settings.escalate_to,
        required_approvals=packet_settings.required_approvals,
        forbid_self_approval=packet_settings.forbid_self_approval,
        allow_edit=packet_settings.allow_edit,
        fresh_for_seconds=packet_settings.fresh_for_seconds,
        expires_after_seconds=packet_settings.expires_after_seconds,
        remind_before_seconds=packet_settings.remind_before_seconds,
        created_at=now,
        fresh_until=now + timedelta(seconds=packet_settings.fresh_for_seconds),
        expires_at=now + timedelta(seconds=packet_settings.expires_after_seconds),
        snapshot_hash=snapshot_hash(
            tool=tool,
            args=args,
            context=context,
            policy_name=policy_name,
            policy_version=policy_version,
        ),
    )
    grant_packet_access([packet], packet_grants(packet, owner=execution.owner))
    wake_waiters([packet.id])  # it arrives in its reviewers' queues
    record_events(
        [
            Event(
                EventKind.PACKET_CREATED,
                actor=actor,
                execution_id=execution.id,
                packet_id=packet.id,
                data={
                    "step": step_index,
                    "tool": tool,
                    "args": args,
                    "side_effect": side_effect,
                    "owner": packet.owner,
                    "approvers": packet.approvers,
                    "policy": {"name": policy_name, "version": policy_version},
                    "reason": reason,
                    "required_approvals": packet.required_approvals,
                    "fresh_until": packet.fresh_until,
                    "expires_at": packet.expires_at,
                    "snapshot_hash": packet.snapshot_hash,
                },
            )
        ]
    )
    outbox_packet_opened(packet, actor=actor)
    return packet


def packet_close(
    packet: PausePacket,
    *,
    status: str,
    actor: str,
    branch: str | None = None,
    decision: str | None = None,
    decided_by: list[str] | None = None,
    comment: str = "",
    data: dict | None = None,
    now: datetime | None = None,
) -> Event:
    """Set a locked packet's status and outcome; return the audit event for the caller to record.

    The caller has locked the row (select_for_update) or claimed it with a conditional update,
    which makes this the compare-and-set on the open status.
    """
    packet.status = status
    packet.branch = branch
    if decision is not None:
        packet.decision = decision
        packet.decided_at = now or timezone.now()
        packet.decided_by = decided_by or []
    if comment:
        packet.comment = comment
    packet.save(
        update_fields=["status", "branch", "decision", "decided_at", "decided_by", "comment"]
    )
    packets_changed([packet])
    return Event(
        STATUS_EVENTS[status],
        actor=actor,
        execution_id=packet.execution_id,
        packet_id=packet.id,
        data={
            "status": status,
            "branch": branch,
            "decision": decision,
            "decided_by": packet.decided_by,
            "comment": comment,
            **(data or {}),
        },
    )
