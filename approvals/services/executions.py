"""What the orchestrator changes on an execution: owner, step outcomes, refreshed context."""

from datetime import datetime

from django.utils import timezone

from approvals.errors import AlreadyDecided, Expired, InvalidState, NotFound, ValidationFailed
from approvals.events import EventKind
from approvals.gate_request import ContextInput
from approvals.models import Execution, GateCheck, PausePacket, ServiceAccount, StepOutcome
from approvals.permissions import UNKNOWN_OWNER, owner_exists
from approvals.services.packets import packet_close, packet_open
from approvals.services.policies import PacketSettings
from approvals.services.transactions import action_atomic
from audit.services import Event, record_events

OUTCOME_SIDE_EFFECT = {
    "landed": "landed",
    "indeterminate": "indeterminate",
    "not_landed": "not_started",
    "failed": "not_started",
}


def execution_for(
    service_account: ServiceAccount, thread_id: str, *, lock: bool = False
) -> Execution:
    queryset = Execution.objects.filter(service_account=service_account, thread_id=thread_id)
    execution = (queryset.select_for_update() if lock else queryset).first()
    if execution is None:
        raise NotFound(f"no execution {thread_id}")
    return execution


def execution_change_owner_locked(
    execution: Execution,
    *,
    owner: str,
    actor: str,
    reason: str = "",
    takeover_by: str | None = None,
) -> list[PausePacket]:
    """Change the owner of a locked execution and terminate its open packets; returns them."""
    previous = execution.owner
    now = timezone.now()
    execution.owner = owner
    execution.owner_changed_at = now
    execution.save(update_fields=["owner", "owner_changed_at"])
    kind = EventKind.EXECUTION_TAKEN_OVER if takeover_by else EventKind.EXECUTION_OWNER_CHANGED
    events = [
        Event(
            kind,
            actor=actor,
            execution_id=execution.id,
            data={"from": previous, "to": owner, "reason": reason},
        )
    ]
    terminated = list(
        PausePacket.objects.select_for_update()
        .filter(execution=execution, status__in=PausePacket.OPEN_STATUSES)
        .order_by("step_index")
    )
    for packet in terminated:
        packet.execution = execution
        why = f"taken over by {takeover_by}" if takeover_by else f"owner changed to {owner}"
        events.append(
            packet_close(
                packet,
                status=PausePacket.Status.TERMINATED,
                branch=PausePacket.Branch.TERMINATE,
                decision="block",
                decided_by=[takeover_by] if takeover_by else [],
                actor=actor,
                now=now,
                data={"reason": why, "new_owner": owner},
            )
        )
    record_events(events)
    return terminated


def execution_change_owner(
    *, service_account: ServiceAccount, thread_id: str, owner: str, reason: str = ""
) -> Execution:
    """The orchestrator names a new owner: every open branch made under the old one ends.

    The owner must exist already (a group, `user:<name>` or `service:<name>`): nothing is
    ever created for a name an agent sends.
    """
    with action_atomic():
        execution = execution_for(service_account, thread_id, lock=True)
        if not owner_exists(owner):
            raise ValidationFailed.of([{"field": "owner", "message": UNKNOWN_OWNER}])
        if execution.owner != owner:
            execution_change_owner_locked(
                execution, owner=owner, actor=service_account.actor, reason=reason
            )
        return execution


def step_record_outcome(
    *,
    service_account: ServiceAccount,
    thread_id: str,
    step_index: int,
    side_effect: str,
    detail: dict,
) -> dict:
    """Record what happened to a step's write; an outcome for an ungated step is kept as a gap."""
    with action_atomic():
        execution = execution_for(service_account, thread_id)
        gated = GateCheck.objects.filter(execution=execution, step_index=step_index).exists()
        StepOutcome.objects.create(
            execution=execution,
            step_index=step_index,
            side_effect=side_effect,
            detail=detail,
            gated=gated,
            reported_by=service_account.actor,
        )
        packet = (
            PausePacket.objects.select_for_update()
            .filter(
                execution=execution, step_index=step_index, status__in=PausePacket.OPEN_STATUSES
            )
            .first()
        )
        data = {"step": step_index, "side_effect": side_effect, "gated": gated, "detail": detail}
        if packet is not None and packet.side_effect != OUTCOME_SIDE_EFFECT[side_effect]:
            packet.side_effect = OUTCOME_SIDE_EFFECT[side_effect]
            packet.save(update_fields=["side_effect"])
            data["packet_side_effect"] = packet.side_effect
        record_events(
            [
                Event(
                    EventKind.STEP_OUTCOME,
                    actor=service_account.actor,
                    execution_id=execution.id,
                    packet_id=packet.id if packet else None,
                    data=data,
                )
            ]
        )
        return {"gated": gated}


def packet_refresh(
    *,
    service_account: ServiceAccount,
    packet_id,
    context: tuple[ContextInput, ...],
    args: dict | None = None,
    side_effect: str | None = None,
    callback: dict | None = None,
    now: datetime | None = None,
) -> PausePacket:
    """Replace a stale packet by a new pending one with fresh context and new deadlines.

    The new packet keeps the stale one's `callback` unless another is given (a Step Functions
    execution waits on a new task token)."""
    now = now or timezone.now()
    expired = False
    with action_atomic():
        packet = (
            PausePacket.objects.select_for_update(of=("self",))
            .select_related("execution", "gate_check")
            .filter(id=packet_id, requested_by=service_account)
            .first()
        )
        if packet is None:
            raise NotFound("no such approval")
        if not packet.is_open:
            raise AlreadyDecided(f"approval is {packet.status}", details={"status": packet.status})
        if now >= packet.expires_at:
            record_events(
                [
                    packet_close(
                        packet,
                        status=PausePacket.Status.EXPIRED,
                        decision="block",
                        actor="system",
                        now=now,
                    )
                ]
            )
            expired = True
        else:
            stale = packet.status == PausePacket.Status.RE_REVIEW or (
                packet.status == PausePacket.Status.PENDING and now >= packet.fresh_until
            )
            if not stale:
                raise InvalidState(
                    f"approval is {packet.status} and its context is fresh until "
                    f"{packet.fresh_until.isoformat()}; only stale approvals are refreshed"
                )
            return _supersede(packet, context, args, side_effect, callback, service_account, now)
    if expired:
        raise Expired("the approval expired before it was refreshed; gate the step again")


def _supersede(packet, context, args, side_effect, callback, service_account, now) -> PausePacket:
    close = packet_close(
        packet,
        status=PausePacket.Status.SUPERSEDED,
        actor=service_account.actor,
        now=now,
    )
    fresh = packet_open(
        execution=packet.execution,
        gate_check=packet.gate_check,
        step_index=packet.step_index,
        step_name=packet.step_name,
        tool=packet.tool,
        args=packet.args if args is None else args,
        side_effect=packet.side_effect if side_effect is None else side_effect,
        context=[item.as_json() for item in context],
        on_behalf_of=packet.on_behalf_of,
        policy_name=packet.policy_name,
        policy_version=packet.policy_version,
        reason=packet.reason,
        packet_settings=PacketSettings.of_packet(packet),
        actor=service_account.actor,
        now=now,
        callback=packet.callback if callback is None else callback,
    )
    packet.superseded_by = fresh
    packet.save(update_fields=["superseded_by"])
    close.data["superseded_by"] = str(fresh.id)
    record_events([close])
    return fresh
