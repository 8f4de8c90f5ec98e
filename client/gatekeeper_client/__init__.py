"""Python client for Gatekeeper's orchestrator API (v1): ask before each step, wait for humans.

Standard library only, never Django (Python 3.10 or newer); `AsyncGatekeeperClient` needs the
`async` extra (httpx).

    from gatekeeper_client import GatekeeperClient

    gk = GatekeeperClient("http://127.0.0.1:8000", token)

    @gk.gated(thread_id="onboard-77", workflow="hr-onboarding", step_index=2, tool="iam.grant")
    def set_privileges(user, role):
        ...  # the real write

    set_privileges(user="jdoe", role="admin")  # runs once the gate allows it, with approved args

The lower-level calls map one to one onto the API: `check` (POST /gate), `dry_run` (POST
/gate/dry-run: what the gate would answer, recording nothing), `approval` and `wait`
(GET /approvals/{id}, long-polled), `refresh`, `record_outcome`, `change_owner`, `execution`.
`run_step` (and its decorator form `gated`) puts them together: gate, wait for reviewers, follow
the branch they chose, run the tool only when allowed, and report what happened to its write.
`verify_webhook` checks a webhook delivery before a receiver acts on it.

Network errors and 502/503/504 answers are retried after the server's Retry-After, or else with
exponential backoff and jitter; every other error answer raises a `GatekeeperError` subclass
named after the API's error code.
"""

from .bodies import context_items, idempotency_key_for
from .client import GatekeeperClient
from .errors import (
    AlreadyDecided,
    Blocked,
    Conflict,
    Expired,
    GatekeeperError,
    IdempotencyConflict,
    InvalidDelivery,
    InvalidSignature,
    InvalidState,
    MethodNotAllowed,
    NeedsFreshContext,
    NotFound,
    OutcomeUnknown,
    PayloadTooLarge,
    RepeatedDelivery,
    StaleSignature,
    StepNotRun,
    StillWaiting,
    Unauthorized,
    Unavailable,
    UnsupportedMediaType,
    ValidationError,
    WebhookRefused,
)
from .models import (
    Action,
    Approval,
    DryRunResult,
    ExecutionRef,
    GateDecision,
    PolicyRef,
    Skipped,
    StepRef,
    Update,
)
from .webhooks import SeenDeliveries, verify_webhook

__all__ = [
    "Action",
    "AlreadyDecided",
    "Approval",
    "AsyncGatekeeperClient",
    "Blocked",
    "Conflict",
    "DryRunResult",
    "ExecutionRef",
    "Expired",
    "GateDecision",
    "GatekeeperClient",
    "GatekeeperError",
    "IdempotencyConflict",
    "InvalidDelivery",
    "InvalidSignature",
    "InvalidState",
    "MethodNotAllowed",
    "NeedsFreshContext",
    "NotFound",
    "OutcomeUnknown",
    "PayloadTooLarge",
    "PolicyRef",
    "RepeatedDelivery",
    "SeenDeliveries",
    "Skipped",
    "StaleSignature",
    "StepNotRun",
    "StepRef",
    "StillWaiting",
    "Unauthorized",
    "Unavailable",
    "UnsupportedMediaType",
    "Update",
    "ValidationError",
    "WebhookRefused",
    "context_items",
    "idempotency_key_for",
    "verify_webhook",
]


def __getattr__(name: str):
    # The async client imports httpx, which the core must not need: loaded on first use.
    if name == "AsyncGatekeeperClient":
        from .aio import AsyncGatekeeperClient

        return AsyncGatekeeperClient
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
