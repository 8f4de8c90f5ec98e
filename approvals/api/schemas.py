"""Schemas of the API's JSON, for the OpenAPI document and response checking.

Request bodies are validated by approvals.gate_request (one set of rules for the API and the
admin's dry run); the request models here describe the same rules to clients. An optional field
sent as null counts as absent, so those fields are documented as nullable.
"""

from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from approvals.api.dry_run import MAX_CHECKS
from approvals.gate_request import MAX_OWNER, THREAD_ID_PATTERN
from approvals.identity import identity_pattern

ThreadId = Field(pattern=f"^{THREAD_ID_PATTERN}$")


def _identity(schema: dict) -> None:
    # Built when the document is, not at import: the pattern comes from a scan of Unicode.
    schema["pattern"] = identity_pattern()


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ExecutionIn(Strict):
    thread_id: str = ThreadId
    workflow: str = Field(min_length=1, max_length=200)
    owner: str | None = Field(
        default=None,
        max_length=MAX_OWNER,
        json_schema_extra=_identity,
        description="an existing group, user:<name> or service:<name>",
    )
    parent_thread_id: str | None = Field(default=None, pattern=f"^{THREAD_ID_PATTERN}$")
    on_behalf_of: str | None = Field(default=None, max_length=150, json_schema_extra=_identity)


class StepIn(Strict):
    index: int = Field(ge=0, le=2**31 - 1)
    name: str | None = Field(default=None, max_length=200)


class ActionIn(Strict):
    tool: str = Field(min_length=1, max_length=200)
    args: dict[str, Any] = Field(default_factory=dict)
    side_effect: Literal["not_started", "landed", "indeterminate"] | None = "not_started"


class ContextIn(Strict):
    name: str = Field(min_length=1, max_length=200)
    value: Any
    observed_at: datetime = Field(description="RFC 3339 with a zone")


class RiskIn(Strict):
    score: float | None = Field(default=None, ge=0, le=1)
    labels: list[str] | None = Field(default_factory=list)


class GateIn(Strict):
    idempotency_key: str = Field(min_length=1, max_length=200)
    execution: ExecutionIn
    step: StepIn
    action: ActionIn
    context: list[ContextIn] | None = Field(default_factory=list)
    risk: RiskIn | None = None
    callback: dict[str, Any] | None = Field(
        default=None,
        description="Your own routing data (at most 4096 bytes of JSON), stored with the"
        " approval and echoed in every answer and webhook; Gatekeeper never interprets it."
        " A relay uses it to find the workflow run that waits on the approval.",
    )


class RefreshActionIn(Strict):
    args: dict[str, Any] | None = None
    side_effect: Literal["not_started", "landed", "indeterminate"] | None = None


class RefreshIn(Strict):
    context: list[ContextIn]
    action: RefreshActionIn | None = None
    callback: dict[str, Any] | None = Field(
        default=None,
        description="a new `callback` for the new approval (by default the stale one's), "
        "at most 4096 bytes of JSON",
    )


class OutcomeIn(Strict):
    side_effect: Literal["landed", "not_landed", "indeterminate", "failed"]
    detail: dict[str, Any] = Field(default_factory=dict)


class OwnerIn(Strict):
    owner: str = Field(
        min_length=1,
        max_length=MAX_OWNER,
        json_schema_extra=_identity,
        description="an existing group, user:<name> or service:<name>",
    )
    reason: str | None = Field(default="", max_length=1000)


class PolicyRef(BaseModel):
    name: str
    version: int


class ActionOut(BaseModel):
    tool: str
    args: dict[str, Any]


class ApprovalExecution(BaseModel):
    thread_id: str
    owner: str


class ApprovalStep(BaseModel):
    index: int
    name: str


class ApprovalOut(BaseModel):
    id: UUID
    status: Literal[
        "pending",
        "approved",
        "rejected",
        "expired",
        "re_review",
        "reconciling",
        "applied",
        "terminated",
        "superseded",
    ]
    branch: Literal["resume", "re_review", "reconcile", "terminate"] | None
    decision: Literal["allow", "block", "skip"] | None
    action: ActionOut
    edited: bool
    comment: str
    decided_by: list[str]
    decided_at: datetime | None
    fresh_until: datetime
    expires_at: datetime
    required_approvals: int
    approvals: int
    execution: ApprovalExecution
    step: ApprovalStep
    superseded_by: UUID | None
    callback: dict[str, Any] | None = Field(description="the gate check's `callback`, as sent")
    url: str


class WebhookOut(BaseModel):
    """The body of a webhook; `id` equals the Gatekeeper-Delivery header, inside the signature."""

    id: UUID
    event: Literal["approval.decided", "approval.updated"]
    approval: ApprovalOut


class GateOut(BaseModel):
    decision: Literal["allow", "block", "require_approval"]
    reason: str
    check_id: UUID
    policy: PolicyRef | None
    approval: ApprovalOut | None


class OutcomeOut(BaseModel):
    gated: bool


class StepOut(BaseModel):
    index: int
    name: str
    decision: Literal["allow", "block", "require_approval", "skip"]
    outcome: Literal["landed", "not_landed", "indeterminate", "failed"] | None
    approval: UUID | None


class RecordOut(BaseModel):
    seq: int
    at: datetime
    kind: str
    actor: str
    data: dict[str, Any]


class GapOut(BaseModel):
    step: int
    kind: Literal["ungated", "no_outcome", "skipped_index"]


class ExecutionOut(BaseModel):
    id: UUID
    thread_id: str
    workflow: str
    owner: str
    status: Literal["active", "waiting"]
    url: str
    parent_thread_id: str | None
    steps: list[StepOut]
    record: list[RecordOut]
    gaps: list[GapOut]


class ErrorBody(BaseModel):
    code: str
    message: str
    details: dict[str, Any]


class ErrorOut(BaseModel):
    error: ErrorBody


class DryRunExecutionIn(ExecutionIn):
    thread_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9._:-]{1,200}$")


class DryRunCheckIn(GateIn):
    """The body of POST /gate; what names no policy fact (the key, the thread, the step) may
    be left out."""

    idempotency_key: str | None = Field(
        default=None, max_length=200, description="ignored: a dry run claims no key"
    )
    execution: DryRunExecutionIn
    step: StepIn | None = None


class DryRunIn(Strict):
    checks: list[DryRunCheckIn] = Field(min_length=1, max_length=MAX_CHECKS)


class DryRunResultOut(BaseModel):
    tool: str
    decision: Literal["allow", "block", "require_approval"]
    reason: str
    policy: PolicyRef | None


class DryRunOut(BaseModel):
    results: list[DryRunResultOut] = Field(description="one per check, in the order sent")
