"""What each event says in words, and Entry: an event as the timeline and the browser show it."""

import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from audit.jsontext import pretty_json
from audit.models import AuditEvent

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


def _get(data, key, default=""):
    value = data.get(key, default) if isinstance(data, dict) else default
    return default if value is None else value


def _shorten(text, limit: int = 120) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _names(value) -> str:
    return ", ".join(str(v) for v in value) if isinstance(value, list) else str(value)


def _policy_words(policy) -> str:
    name = _get(policy, "name")
    if not name:
        return "with no policy matching (the default)"
    return f"by policy {name} v{_get(policy, 'version', '?')}"


def _step_words(step, data) -> str:
    name = _get(data, "step_name")
    label = f"Step {step}" if step is not None else "A step"
    return f"{label} ({name})" if name else label


def _gate_checked(data, step):
    decision = str(_get(data, "decision"))
    words = f"{_step_words(step, data)}: {_get(data, 'tool', 'an action')} "
    words += f"{DECISION_WORDS.get(decision, decision)} {_policy_words(_get(data, 'policy', {}))}"
    side_effect = _get(data, "side_effect", "not_started")
    if side_effect != "not_started":
        words += f"; the write may already have happened ({side_effect})"
    return words


def _packet_created(data, step):
    needed = _get(data, "required_approvals", 1)
    plural = "approval" if needed == 1 else "approvals"
    return (
        f"Approval requested for step {'?' if step is None else step} "
        f"({_get(data, 'tool', 'an action')}): "
        f"{needed} {plural} needed from {_get(data, 'approvers', 'the approvers')}"
    )


def _packet_voted(data, step):
    words = f"Vote to approve: {_get(data, 'votes', '?')} of {_get(data, 'required', '?')}"
    return _with_comment(words, _get(data, "comment"))


def _packet_edited(data, step):
    diff = _get(data, "diff", {})
    parts = [
        f"{verb} {', '.join(sorted(str(key) for key in _get(diff, group, {})))}"
        for group, verb in (("changed", "changed"), ("added", "added"), ("removed", "removed"))
        if _get(diff, group, {})
    ]
    return _shorten("Args edited before approving: " + ("; ".join(parts) or "no change"))


def _with_comment(text: str, comment) -> str:
    return f"{text}: “{_shorten(comment)}”" if comment else text


def _decided(verb: str, outcome: str):
    """ "Approved by alice, bob: the step may run", and the comment when there is one."""

    def words(data, step):
        names = _names(_get(data, "decided_by", []))
        text = f"{verb} by {names}: {outcome}" if names else f"{verb}: {outcome}"
        return _with_comment(text, _get(data, "comment"))

    return words


def _packet_terminated(data, step):
    reason = _get(data, "reason")
    return (
        f"Terminated ({_shorten(reason, 80)}): the step is blocked"
        if reason
        else ("Terminated: the step is blocked")
    )


def _owner_changed(data, step):
    words = f"Owner changed from {_get(data, 'from') or 'nobody'} to {_get(data, 'to')}"
    return _with_comment(words, _get(data, "reason"))


def _taken_over(data, step):
    return (
        f"Taken over: {_get(data, 'to')} now owns the execution "
        f"(was {_get(data, 'from') or 'nobody'}); its open approvals end"
    )


def _step_outcome(data, step):
    side_effect = str(_get(data, "side_effect"))
    words = f"Outcome of step {'?' if step is None else step}: "
    words += OUTCOME_WORDS.get(side_effect, side_effect)
    if _get(data, "reconciled", False):
        words += " (recorded by a reviewer reconciling it)"
    if _get(data, "gated", True) is False:
        words += "; this step was never gated"
    return words


def _notification(verb):
    def words(data, step):
        to = _names(_get(data, "to", [])) or "nobody"
        text = f"Notification “{_get(data, 'topic', 'message')}” {verb} {to}"
        missing = _names(_get(data, "no_address", []))
        return f"{text}; no email address for {missing}" if missing else text

    return words


SUMMARIES = {
    AuditEvent.Kind.GATE_CHECKED: _gate_checked,
    AuditEvent.Kind.PACKET_CREATED: _packet_created,
    AuditEvent.Kind.PACKET_VOTED: _packet_voted,
    AuditEvent.Kind.PACKET_EDITED: _packet_edited,
    AuditEvent.Kind.PACKET_COMMENTED: lambda data, step: _with_comment(
        "Comment", _get(data, "comment")
    ),
    AuditEvent.Kind.PACKET_APPROVED: _decided("Approved", "the step may run"),
    AuditEvent.Kind.PACKET_REJECTED: _decided("Rejected", "the step is blocked"),
    AuditEvent.Kind.PACKET_EXPIRED: lambda data, step: (
        "Expired: nobody decided before the deadline, so the step is blocked"
    ),
    AuditEvent.Kind.PACKET_RE_REVIEW: lambda data, step: (
        "Sent back for re-review: the context went stale and the agent must refresh it"
    ),
    AuditEvent.Kind.PACKET_RECONCILING: lambda data, step: (
        "Sent to reconcile: the write may already have happened"
    ),
    AuditEvent.Kind.PACKET_APPLIED: _decided(
        "Reconciled", "the write happened, so the step is skipped"
    ),
    AuditEvent.Kind.PACKET_TERMINATED: _packet_terminated,
    AuditEvent.Kind.PACKET_SUPERSEDED: lambda data, step: (
        "Superseded: replaced by a new approval with fresh context"
    ),
    AuditEvent.Kind.EXECUTION_OWNER_CHANGED: _owner_changed,
    AuditEvent.Kind.EXECUTION_TAKEN_OVER: _taken_over,
    AuditEvent.Kind.STEP_OUTCOME: _step_outcome,
    AuditEvent.Kind.NOTIFICATION_QUEUED: _notification("queued for"),
    AuditEvent.Kind.NOTIFICATION_SENT: _notification("sent to"),
    AuditEvent.Kind.WEBHOOK_DELIVERED: lambda data, step: (
        f"Webhook {_get(data, 'topic', 'event')} delivered to "
        f"{_get(data, 'to', 'the orchestrator')}"
    ),
    AuditEvent.Kind.POLICY_CHANGED: lambda data, step: (
        f"Policy {_get(data, 'policy', '?')} saved as version {_get(data, 'version', '?')}"
    ),
    AuditEvent.Kind.AUTH_LOGIN: lambda data, step: "Signed in",
    AuditEvent.Kind.AUTH_LOGIN_FAILED: lambda data, step: "Sign-in failed",
    AuditEvent.Kind.AUTH_LOCKED_OUT: lambda data, step: "Locked out after repeated failed sign-ins",
}


def event_summary(kind: str, data, *, step: int | None = None) -> str:
    """One line in words; plain text, for the template to escape like any other."""
    describe = SUMMARIES.get(kind)
    if describe is None:
        return kind
    if step is None:
        step = _step_of(data, None)
    try:
        return describe(data, step)
    except (TypeError, ValueError, AttributeError):
        # Whatever a payload holds, the page still renders: the details show it as it is.
        return kind


# timeline._STEP_ANCHORS_SQL reads an event's step the same way, in SQL.
_STEP_TEXT = re.compile(r"[0-9]{1,9}")


def _step_of(data, packet_step: int | None) -> int | None:
    if packet_step is not None:
        return packet_step
    value = _get(data, "step", None)
    if isinstance(value, bool) or not isinstance(value, int | str):
        return None
    return int(value) if _STEP_TEXT.fullmatch(str(value)) else None


@dataclass
class Entry:
    """One audit event, as the timeline and the browser show it."""

    seq: int
    at: datetime
    kind: str
    actor: str
    data: Any
    execution_id: uuid.UUID | None = None
    packet_id: uuid.UUID | None = None
    thread_id: str = ""
    workflow: str = ""
    step: int | None = None
    packet_visible: bool = False

    is_gap = False

    @property
    def summary(self) -> str:
        return event_summary(self.kind, self.data, step=self.step)

    @property
    def data_json(self) -> str:
        return pretty_json(self.data)
