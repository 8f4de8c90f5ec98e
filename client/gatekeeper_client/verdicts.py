"""What a decision means for a step: shared by the engine adapters and the framework adapters.

Plain data and the standard library only, so a Temporal workflow may import it in its sandbox.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

BLOCKED_ERROR = "Gatekeeper.Blocked"  # the error an engine's step ends with when refused
# A reviewer approved, but the step's facts had changed or grown old (branch re_review).
RE_REVIEW_ERROR = "Gatekeeper.ReReview"
STALE = "re_review"


@dataclass(frozen=True)
class Verdict:
    """`run`: run the tool with `args` (a reviewer's edits included); `skip`: the write had
    already happened, continue without running it; neither: refused, `reason` says why."""

    approval_id: str
    status: str
    run: bool
    skip: bool
    args: dict
    reason: str
    # The framework adapters run the tool themselves (adapters.gate_call): what it returned,
    # and a refusal as the error to raise when their caller asks for one.
    result: Any = field(default=None, repr=False, compare=False)
    error: Exception | None = field(default=None, repr=False, compare=False)

    def as_json(self) -> dict:
        return {
            "approval_id": self.approval_id,
            "status": self.status,
            "decision": "allow" if self.run else "skip" if self.skip else "block",
            "args": self.args,
            "reason": self.reason,
        }

    @property
    def stale(self) -> bool:
        """Re-review: the workflow reads its facts again and asks again (DESIGN section 11)."""
        return self.status == STALE


def verdict_of(approval: Mapping[str, Any]) -> Verdict:
    """The verdict of a decided approval, as the API or a webhook shows it (JSON)."""
    status, decision = approval["status"], approval.get("decision")
    run = status == "approved" and decision == "allow"
    skip = decision == "skip"
    who = ", ".join(approval.get("decided_by") or ()) or "Gatekeeper"
    comment = approval.get("comment") or ""
    reason = f"{status} by {who}" + (f": {comment}" if comment else "")
    if status == STALE:
        reason = (
            f"approval {approval['id']} went back to review: the step's facts changed or grew"
            " too old to approve; read them again and ask again"
        )
    return Verdict(
        approval_id=approval["id"],
        status=status,
        run=run,
        skip=skip,
        args=dict(approval["action"]["args"]),
        reason=reason,
    )


def blocked_verdict(reason: str, args: Mapping[str, Any]) -> Verdict:
    """The verdict of a gate check that blocked the step outright (no approval)."""
    return Verdict(
        approval_id="", status="blocked", run=False, skip=False, args=dict(args), reason=reason
    )


def allowed_verdict(args: Mapping[str, Any], reason: str) -> Verdict:
    """The verdict of a gate check that allowed the step outright (no approval)."""
    return Verdict(
        approval_id="", status="allowed", run=True, skip=False, args=dict(args), reason=reason
    )


def applied_verdict(reason: str, args: Mapping[str, Any]) -> Verdict:
    """The verdict of a step whose write had already happened (recorded as landed): not run."""
    return Verdict(
        approval_id="", status="applied", run=False, skip=True, args=dict(args), reason=reason
    )
