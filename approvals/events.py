"""The events approvals writes to the decision record, and what each says in words.

Registered with audit.kinds when the app is ready (ApprovalsConfig.ready); the stored values
are the record's, so they never change.
"""

from django.db import models

from approvals.outcomes import (
    AGENT_MUST_REFRESH,
    STEP_BLOCKED,
    STEP_RUNS,
    STEP_SKIPPED,
    WRITE_MAY_HAVE_HAPPENED,
)
from audit import kinds
from audit.words import get, names, shorten, with_comment


class EventKind(models.TextChoices):
    GATE_CHECKED = "gate.checked"
    PACKET_CREATED = "packet.created"
    PACKET_VOTED = "packet.voted"
    PACKET_EDITED = "packet.edited"
    PACKET_COMMENTED = "packet.commented"
    PACKET_APPROVED = "packet.approved"
    PACKET_REJECTED = "packet.rejected"
    PACKET_EXPIRED = "packet.expired"
    PACKET_RE_REVIEW = "packet.re_review"
    PACKET_RECONCILING = "packet.reconciling"
    PACKET_APPLIED = "packet.applied"
    PACKET_TERMINATED = "packet.terminated"
    PACKET_SUPERSEDED = "packet.superseded"
    EXECUTION_OWNER_CHANGED = "execution.owner_changed"
    EXECUTION_TAKEN_OVER = "execution.taken_over"
    STEP_OUTCOME = "step.outcome"
    NOTIFICATION_QUEUED = "notification.queued"
    NOTIFICATION_SENT = "notification.sent"
    WEBHOOK_DELIVERED = "webhook.delivered"
    POLICY_CHANGED = "policy.changed"


DECISION_WORDS = {
    "allow": "allowed",
    "block": "blocked",
    "require_approval": "sent for approval",
    "skip": "skipped",
}
OUTCOME_WORDS = {
    "landed": "the write happened",
    "not_landed": "the write did not happen",
    "indeterminate": "nobody knows yet whether the write happened",
    "failed": "the step failed",
}


def _policy_words(policy) -> str:
    name = get(policy, "name")
    if not name:
        return "with no policy matching (the default)"
    return f"by policy {name} v{get(policy, 'version', '?')}"


def _step_words(step, data) -> str:
    name = get(data, "step_name")
    label = f"Step {step}" if step is not None else "A step"
    return f"{label} ({name})" if name else label


def _gate_checked(data, step):
    decision = str(get(data, "decision"))
    words = f"{_step_words(step, data)}: {get(data, 'tool', 'an action')} "
    words += f"{DECISION_WORDS.get(decision, decision)} {_policy_words(get(data, 'policy', {}))}"
    side_effect = get(data, "side_effect", "not_started")
    if side_effect != "not_started":
        words += f"; {WRITE_MAY_HAVE_HAPPENED} ({side_effect})"
    return words


def _packet_created(data, step):
    needed = get(data, "required_approvals", 1)
    plural = "approval" if needed == 1 else "approvals"
    return (
        f"Approval requested for step {'?' if step is None else step} "
        f"({get(data, 'tool', 'an action')}): "
        f"{needed} {plural} needed from {get(data, 'approvers', 'the approvers')}"
    )


def _packet_voted(data, step):
    words = f"Vote to approve: {get(data, 'votes', '?')} of {get(data, 'required', '?')}"
    return with_comment(words, get(data, "comment"))


def _packet_edited(data, step):
    diff = get(data, "diff", {})
    parts = [
        f"{verb} {', '.join(sorted(str(key) for key in get(diff, group, {})))}"
        for group, verb in (("changed", "changed"), ("added", "added"), ("removed", "removed"))
        if get(diff, group, {})
    ]
    return shorten("Args edited before approving: " + ("; ".join(parts) or "no change"))


def _decided(verb: str, outcome: str):
    """ "Approved by alice, bob: the step may run", and the comment when there is one."""

    def words(data, step):
        deciders = names(get(data, "decided_by", []))
        text = f"{verb} by {deciders}: {outcome}" if deciders else f"{verb}: {outcome}"
        return with_comment(text, get(data, "comment"))

    return words


def _packet_terminated(data, step):
    reason = get(data, "reason")
    return (
        f"Terminated ({shorten(reason, 80)}): {STEP_BLOCKED}"
        if reason
        else f"Terminated: {STEP_BLOCKED}"
    )


def _owner_changed(data, step):
    words = f"Owner changed from {get(data, 'from') or 'nobody'} to {get(data, 'to')}"
    return with_comment(words, get(data, "reason"))


def _taken_over(data, step):
    return (
        f"Taken over: {get(data, 'to')} now owns the execution "
        f"(was {get(data, 'from') or 'nobody'}); its open approvals end"
    )


def _step_outcome(data, step):
    side_effect = str(get(data, "side_effect"))
    words = f"Outcome of step {'?' if step is None else step}: "
    words += OUTCOME_WORDS.get(side_effect, side_effect)
    if get(data, "reconciled", False):
        words += " (recorded by a reviewer reconciling it)"
    if get(data, "gated", True) is False:
        words += "; this step was never gated"
    return words


def _notification(verb):
    def words(data, step):
        to = names(get(data, "to", [])) or "nobody"
        text = f"Notification “{get(data, 'topic', 'message')}” {verb} {to}"
        missing = names(get(data, "no_address", []))
        return f"{text}; no email address for {missing}" if missing else text

    return words


SUMMARIES = {
    EventKind.GATE_CHECKED: _gate_checked,
    EventKind.PACKET_CREATED: _packet_created,
    EventKind.PACKET_VOTED: _packet_voted,
    EventKind.PACKET_EDITED: _packet_edited,
    EventKind.PACKET_COMMENTED: lambda data, step: with_comment("Comment", get(data, "comment")),
    EventKind.PACKET_APPROVED: _decided("Approved", STEP_RUNS),
    EventKind.PACKET_REJECTED: _decided("Rejected", STEP_BLOCKED),
    EventKind.PACKET_EXPIRED: lambda data, step: (
        f"Expired: nobody decided before the deadline, so {STEP_BLOCKED}"
    ),
    EventKind.PACKET_RE_REVIEW: lambda data, step: (
        f"Sent back for re-review: the context went stale and {AGENT_MUST_REFRESH}"
    ),
    EventKind.PACKET_RECONCILING: lambda data, step: (
        f"Sent to reconcile: {WRITE_MAY_HAVE_HAPPENED}"
    ),
    EventKind.PACKET_APPLIED: _decided("Reconciled", STEP_SKIPPED),
    EventKind.PACKET_TERMINATED: _packet_terminated,
    EventKind.PACKET_SUPERSEDED: lambda data, step: (
        "Superseded: replaced by a new approval with fresh context"
    ),
    EventKind.EXECUTION_OWNER_CHANGED: _owner_changed,
    EventKind.EXECUTION_TAKEN_OVER: _taken_over,
    EventKind.STEP_OUTCOME: _step_outcome,
    EventKind.NOTIFICATION_QUEUED: _notification("queued for"),
    EventKind.NOTIFICATION_SENT: _notification("sent to"),
    EventKind.WEBHOOK_DELIVERED: lambda data, step: (
        f"Webhook {get(data, 'topic', 'event')} delivered to {get(data, 'to', 'the orchestrator')}"
    ),
    EventKind.POLICY_CHANGED: lambda data, step: (
        f"Policy {get(data, 'policy', '?')} saved as version {get(data, 'version', '?')}"
    ),
}


def register() -> None:
    kinds.register(EventKind, SUMMARIES)
