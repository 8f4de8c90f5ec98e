"""What reviewers do to a pause packet: approve, reject, reconcile, take over, comment.

Every action locks the packet row, applies branch-table rows 1 and 2 first (an expired packet
expires, a packet whose owner changed terminates, whatever the reviewer meant to do), and writes
its audit events in the same transaction. A late action finds the packet closed and gets
AlreadyDecided, naming who decided and when.
"""

from dataclasses import dataclass, replace

from django.utils import timezone

from approvals.branch_table import Outcome, decide_approval, guard
from approvals.errors import ActionRefused, AlreadyDecided, InvalidState, NotFound, ValidationFailed
from approvals.events import EventKind
from approvals.identity import same_identity
from approvals.models import Execution, PausePacket, StepOutcome, Vote
from approvals.outcomes import DEADLINE_PASSED, STEP_BLOCKED, STEP_SKIPPED
from approvals.permissions import can_view, packet_authority
from approvals.services.changes import packets_changed
from approvals.services.expiry import expired_event_data
from approvals.services.packets import packet_close
from approvals.services.transactions import action_atomic
from approvals.snapshot import snapshot_hash
from approvals.wakeups import wake_waiters
from audit.actors import user_actor
from audit.services import Event, record_events


@dataclass(frozen=True)
class ActionResult:
    packet: PausePacket
    outcome: Outcome | None
    message: str


def _locked_packet(packet_id, user, *, to_decide: bool, closed_error=AlreadyDecided) -> PausePacket:
    """The packet, locked; NotFound unless the user may view it.

    Viewing is enough to reject and take over (an execution's owner may); deciding (approve,
    reconcile) needs resume authority, which only the policy's route, escalation and
    delegation give.
    """
    packet = (
        PausePacket.objects.select_for_update(of=("self",))
        .select_related("execution", "requested_by")
        .filter(id=packet_id)
        .first()
    )
    may_view, may_resume = packet_authority(user, packet) if packet else (False, False)
    if not may_view:
        raise NotFound("no such approval")
    if to_decide and not may_resume:
        raise ActionRefused("you may view this approval but hold no authority to decide it")
    if not packet.is_open:
        raise closed_error(already_decided_message(packet), details={"status": packet.status})
    return packet


def already_decided_message(packet: PausePacket) -> str:
    by = ", ".join(packet.decided_by) or "Gatekeeper"
    when = packet.decided_at.isoformat(timespec="seconds") if packet.decided_at else "earlier"
    return f"already decided ({packet.status}) by {by} at {when}"


def is_requester(packet: PausePacket, user) -> bool:
    """Four-eyes binds this user: the policy forbids self-approval and the step is theirs."""
    return packet.forbid_self_approval and same_identity(user.get_username(), packet.on_behalf_of)


def _apply_guard(packet: PausePacket, outcome: Outcome, user) -> ActionResult:
    """Rows 1 and 2: expire, or terminate because the owner changed. Nobody is credited."""
    if outcome is Outcome.EXPIRED:
        message = f"{DEADLINE_PASSED}: the approval expired and {STEP_BLOCKED}"
        event = packet_close(
            packet,
            status=outcome.status,
            decision="block",
            actor="system",
            data={**expired_event_data(packet), "noticed_by": user_actor(user)},
        )
    else:
        message = (
            f"the execution's owner changed to {packet.execution.owner}: "
            f"this branch is terminated and {STEP_BLOCKED}"
        )
        event = packet_close(
            packet,
            status=outcome.status,
            branch=outcome.branch,
            decision="block",
            actor="system",
            data={"reason": message, "new_owner": packet.execution.owner},
        )
    record_events([event])
    return ActionResult(packet, outcome, message)


def _current_voters(packet: PausePacket) -> list[str]:
    return list(packet.current_votes().values_list("user__username", flat=True))


def packet_approve(*, packet_id, user, comment: str = "", edited_args=None) -> ActionResult:
    """Approve, optionally with edited args, and let the branch table decide what follows."""
    with action_atomic():
        packet = _locked_packet(packet_id, user, to_decide=True)
        # One moment for the whole action: read the clock twice and a deadline can pass between
        # the guard and the decision, which then meets a row it was told could not happen.
        facts = packet.facts(now=timezone.now())
        guarded = guard(facts)
        if guarded is not None:
            return _apply_guard(packet, guarded, user)
        if packet.status == PausePacket.Status.RECONCILING:
            raise InvalidState("the side effect must be reconciled first: did the write happen?")
        if packet.status == PausePacket.Status.RE_REVIEW:
            raise InvalidState("the context went stale: waiting for the orchestrator to refresh it")
        if is_requester(packet, user):
            raise ActionRefused(
                "four-eyes: this step was requested on your behalf, so someone else must approve it"
            )
        edit = edited_args is not None and edited_args != packet.effective_args
        if edit:
            if not packet.allow_edit:
                raise ActionRefused("the policy does not allow editing this action's args")
            if not isinstance(edited_args, dict):
                raise ValidationFailed.of([{"field": "args", "message": "must be a JSON object"}])
        voters = [] if edit else _current_voters(packet)
        if user.get_username() in voters:
            raise ActionRefused("you already approved this; another reviewer must add theirs")
        outcome = decide_approval(replace(facts, votes_with_this_one=len(voters) + 1))
        events = []
        if not outcome.records_vote:
            message = {
                Outcome.RECONCILE: "the side effect may already have happened "
                f"({packet.side_effect}): reconcile it before anything continues",
                Outcome.RE_REVIEW: "the context went stale at "
                f"{packet.fresh_until.isoformat(timespec='seconds')}: "
                "sent back for re-review with fresh context",
            }[outcome]
            events.append(
                packet_close(
                    packet,
                    status=outcome.status,
                    branch=outcome.branch,
                    actor=user_actor(user),
                    comment=comment,
                    data={"reason": message},
                )
            )
            record_events(events)
            return ActionResult(packet, outcome, message)
        if edit:
            snapshot = _snapshot_with(packet, edited_args)
            _refuse_votes_coming_back(packet, snapshot, user)
            events.append(_edit(packet, edited_args, snapshot, user))
        Vote.objects.create(
            packet=packet, user=user, snapshot_hash=packet.snapshot_hash, comment=comment
        )
        # The approval's JSON counts votes: a waiting poll answers with the count as it is.
        wake_waiters([packet.id])
        voters.append(user.get_username())
        events.append(
            Event(
                EventKind.PACKET_VOTED,
                actor=user_actor(user),
                execution_id=packet.execution_id,
                packet_id=packet.id,
                data={
                    "votes": len(voters),
                    "required": packet.required_approvals,
                    "comment": comment,
                    "snapshot_hash": packet.snapshot_hash,
                },
            )
        )
        if outcome is Outcome.RESUME:
            message = "approved: the orchestrator may run the step" + (
                " with the edited args" if packet.edited_args is not None else ""
            )
            events.append(
                packet_close(
                    packet,
                    status=outcome.status,
                    branch=outcome.branch,
                    decision=outcome.decision,
                    decided_by=voters,
                    actor=user_actor(user),
                    comment=comment,
                    data={"args": packet.effective_args},
                )
            )
        else:
            message = (
                f"vote recorded: {len(voters)} of {packet.required_approvals} approvals; "
                "waiting for another reviewer"
            )
        record_events(events)
        return ActionResult(packet, outcome, message)


def _snapshot_with(packet: PausePacket, args: dict) -> str:
    return snapshot_hash(
        tool=packet.tool,
        args=args,
        context=packet.context,
        policy_name=packet.policy_name,
        policy_version=packet.policy_version,
    )


def _refuse_votes_coming_back(packet: PausePacket, snapshot: str, user) -> None:
    """An edit back to args that were approved before, then edited away, is refused.

    The edit after them cleared those votes (DESIGN section 3); returning to the same snapshot
    would count them again, and a reviewer among them cannot vote on it twice.
    """
    earlier = sorted(
        set(packet.votes.filter(snapshot_hash=snapshot).values_list("user__username", flat=True))
    )
    if not earlier:
        return
    if user.get_username() in earlier:
        raise ActionRefused(
            "you approved these args before they were edited to the ones shown now; an edit "
            "clears the votes, so approve the args as they are now, or reject"
        )
    raise ActionRefused(
        f"these args were approved before (by {', '.join(earlier)}) and then edited; an edit "
        "clears the votes, so they cannot come back on this packet: approve the args as they "
        "are now, or reject"
    )


def _edit(packet: PausePacket, edited_args: dict, snapshot: str, user) -> Event:
    """Replace the args to run; a new snapshot, so earlier votes no longer count."""
    before = packet.effective_args
    packet.edited_args = edited_args
    packet.snapshot_hash = snapshot
    packet.save(update_fields=["edited_args", "snapshot_hash"])
    return Event(
        EventKind.PACKET_EDITED,
        actor=user_actor(user),
        execution_id=packet.execution_id,
        packet_id=packet.id,
        data={
            "before": before,
            "after": edited_args,
            "diff": args_diff(before, edited_args),
            "snapshot_hash": packet.snapshot_hash,
        },
    )


def args_diff(before: dict, after: dict) -> dict:
    """Top-level keys added, removed and changed."""
    return {
        "added": {k: after[k] for k in sorted(set(after) - set(before))},
        "removed": {k: before[k] for k in sorted(set(before) - set(after))},
        "changed": {
            k: {"from": before[k], "to": after[k]}
            for k in sorted(set(before) & set(after))
            if before[k] != after[k]
        },
    }


def packet_reject(*, packet_id, user, comment: str = "") -> ActionResult:
    """A veto: anyone who may view the packet (route or owner) ends it at once."""
    with action_atomic():
        packet = _locked_packet(packet_id, user, to_decide=False)
        guarded = guard(packet.facts(now=timezone.now()))
        if guarded is not None:
            return _apply_guard(packet, guarded, user)
        record_events(
            [
                packet_close(
                    packet,
                    status=PausePacket.Status.REJECTED,
                    decision="block",
                    decided_by=[user.get_username()],
                    actor=user_actor(user),
                    comment=comment,
                )
            ]
        )
        return ActionResult(packet, None, f"rejected: {STEP_BLOCKED}")


def packet_reconcile(*, packet_id, user, happened: bool, comment: str = "") -> ActionResult:
    """Record whether a write of uncertain fate happened."""
    with action_atomic():
        packet = _locked_packet(packet_id, user, to_decide=True)
        guarded = guard(packet.facts(now=timezone.now()))
        if guarded is not None:
            return _apply_guard(packet, guarded, user)
        if packet.status != PausePacket.Status.RECONCILING:
            raise InvalidState("only a packet in reconciling can be reconciled")
        outcome_event = Event(
            EventKind.STEP_OUTCOME,
            actor=user_actor(user),
            execution_id=packet.execution_id,
            packet_id=packet.id,
            data={
                "step": packet.step_index,
                "side_effect": "landed" if happened else "not_landed",
                "gated": True,
                "reconciled": True,
                "comment": comment,
            },
        )
        if happened:
            packet.side_effect = "landed"
            packet.save(update_fields=["side_effect"])
            StepOutcome.objects.create(
                execution_id=packet.execution_id,
                step_index=packet.step_index,
                side_effect=StepOutcome.Result.LANDED,
                detail={"reconciled_by": user.get_username()},
                gated=True,
                reported_by=user_actor(user),
            )
            close = packet_close(
                packet,
                status=PausePacket.Status.APPLIED,
                branch=PausePacket.Branch.RECONCILE,
                decision="skip",
                decided_by=[user.get_username()],
                actor=user_actor(user),
                comment=comment,
            )
            record_events([outcome_event, close])
            return ActionResult(packet, None, f"applied: {STEP_SKIPPED}")
        packet.side_effect = "not_started"
        packet.status = PausePacket.Status.PENDING
        packet.branch = None
        packet.save(update_fields=["side_effect", "status", "branch"])
        packets_changed([packet])
        record_events([outcome_event])
        return ActionResult(
            packet,
            None,
            "the write did not happen: the packet is pending again and may be approved",
        )


def packet_comment(*, packet_id, user, comment: str) -> ActionResult:
    """A note on the packet, open or closed, by anyone who may view it."""
    comment = comment.strip()
    if not comment:
        raise ValidationFailed.of([{"field": "comment", "message": "is required"}])
    with action_atomic():
        packet = PausePacket.objects.select_related("execution").filter(id=packet_id).first()
        if packet is None or not can_view(user, packet):
            raise NotFound("no such approval")
        record_events(
            [
                Event(
                    EventKind.PACKET_COMMENTED,
                    actor=user_actor(user),
                    execution_id=packet.execution_id,
                    packet_id=packet.id,
                    data={"comment": comment},
                )
            ]
        )
        return ActionResult(packet, None, "comment added")


def packet_take_over(*, packet_id, user, comment: str = "") -> ActionResult:
    """The reviewer becomes the execution's owner; every open branch of it is terminated."""
    from approvals.services.executions import execution_change_owner_locked

    with action_atomic():
        execution_id = (
            PausePacket.objects.filter(id=packet_id).values_list("execution_id", flat=True).first()
        )
        if execution_id is None:
            raise NotFound("no such approval")
        # Execution before packet: the lock order every owner change uses.
        execution = Execution.objects.select_for_update().get(id=execution_id)
        # DESIGN section 4: taking over a closed packet is invalid_state, not already_decided.
        packet = _locked_packet(packet_id, user, to_decide=False, closed_error=InvalidState)
        packet.execution = execution
        guarded = guard(packet.facts(now=timezone.now()))
        if guarded is Outcome.EXPIRED:
            return _apply_guard(packet, guarded, user)
        execution_change_owner_locked(
            execution,
            owner=user_actor(user),
            actor=user_actor(user),
            reason=comment,
            takeover_by=user.get_username(),
        )
        packet.refresh_from_db()
        return ActionResult(
            packet,
            Outcome.TERMINATE,
            f"you now own {execution.thread_id}; its open approvals are terminated",
        )
