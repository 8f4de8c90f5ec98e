"""What the API answers, as frozen dataclasses (`raw` keeps the JSON as it came)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

OPEN_STATUSES = ("pending", "re_review", "reconciling")


def _time(value: str | None) -> datetime | None:
    if value is None:
        return None
    # Python before 3.11 does not read a trailing "Z"; the server writes "+00:00" anyway.
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


@dataclass(frozen=True)
class PolicyRef:
    """The policy that decided a gate check."""

    name: str
    version: int


@dataclass(frozen=True)
class Action:
    """The pending action: the tool and the args it runs with (a reviewer's edit included)."""

    tool: str
    args: dict


@dataclass(frozen=True)
class ExecutionRef:
    """The execution an approval belongs to, with its current owner."""

    thread_id: str
    owner: str


@dataclass(frozen=True)
class StepRef:
    index: int
    name: str


@dataclass(frozen=True)
class Approval:
    """An approval (pause packet) as the API shows it to the service account that asked.

    `status` is one of pending, approved, rejected, expired, re_review, reconciling, applied,
    terminated, superseded; `decision` is allow, block, skip or None (not decided yet);
    `action.args` are the args to run, edited by a reviewer when `edited`.
    """

    id: str
    status: str
    branch: str | None
    decision: str | None
    action: Action
    edited: bool
    comment: str
    decided_by: tuple[str, ...]
    decided_at: datetime | None
    fresh_until: datetime
    expires_at: datetime
    required_approvals: int
    approvals: int
    execution: ExecutionRef
    step: StepRef
    superseded_by: str | None
    url: str
    callback: dict | None = None  # the gate check's `callback`, as sent
    raw: dict = field(repr=False, compare=False, default_factory=dict)

    @property
    def is_open(self) -> bool:
        """Pending, re_review or reconciling: not decided yet."""
        return self.status in OPEN_STATUSES

    @classmethod
    def from_json(cls, data: dict) -> Approval:
        return cls(
            id=data["id"],
            status=data["status"],
            branch=data["branch"],
            decision=data["decision"],
            action=Action(tool=data["action"]["tool"], args=data["action"]["args"]),
            edited=data["edited"],
            comment=data["comment"],
            decided_by=tuple(data["decided_by"]),
            decided_at=_time(data["decided_at"]),
            fresh_until=_time(data["fresh_until"]),
            expires_at=_time(data["expires_at"]),
            required_approvals=data["required_approvals"],
            approvals=data["approvals"],
            execution=ExecutionRef(**data["execution"]),
            step=StepRef(**data["step"]),
            superseded_by=data["superseded_by"],
            url=data["url"],
            callback=data.get("callback"),
            raw=data,
        )


@dataclass(frozen=True)
class GateDecision:
    """The gate's answer: `decision` is allow, block or require_approval (with `approval`)."""

    decision: str
    reason: str
    check_id: str
    policy: PolicyRef | None
    approval: Approval | None
    raw: dict = field(repr=False, compare=False, default_factory=dict)

    @property
    def allowed(self) -> bool:
        return self.decision == "allow"

    @property
    def blocked(self) -> bool:
        return self.decision == "block"

    @property
    def needs_approval(self) -> bool:
        return self.decision == "require_approval"

    @classmethod
    def from_json(cls, data: dict) -> GateDecision:
        return cls(
            decision=data["decision"],
            reason=data["reason"],
            check_id=data["check_id"],
            policy=PolicyRef(**data["policy"]) if data["policy"] else None,
            approval=Approval.from_json(data["approval"]) if data["approval"] else None,
            raw=data,
        )


@dataclass(frozen=True)
class DryRunResult:
    """What the gate would answer for one action (`dry_run`): nothing was asked or recorded."""

    tool: str
    decision: str
    reason: str
    policy: PolicyRef | None
    raw: dict = field(repr=False, compare=False, default_factory=dict)

    @property
    def needs_approval(self) -> bool:
        return self.decision == "require_approval"

    @classmethod
    def from_json(cls, data: dict) -> DryRunResult:
        return cls(
            tool=data["tool"],
            decision=data["decision"],
            reason=data["reason"],
            policy=PolicyRef(**data["policy"]) if data["policy"] else None,
            raw=data,
        )


@dataclass(frozen=True)
class Skipped:
    """`run_step`'s answer when a reviewer found the write had already happened.

    The approval was reconciled as `applied` (decision `skip`): the function was not called
    and must not be; the workflow continues after this step.
    """

    approval: Approval


# What `run_step` reports to its `on_update` callback: the gate's answer, then the approval
# each time it is waited on and once more when it is decided.
Update = GateDecision | Approval
