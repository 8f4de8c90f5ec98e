"""What can go wrong: API error answers, steps that did not run, and refused webhooks."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .models import Approval, GateDecision

# Answers a load balancer or a restarting server gives: worth the same request again.
RETRY_STATUSES = (502, 503, 504)


# ---------------------------------------------------------------------------------------------
# Errors the API answers with


class GatekeeperError(Exception):
    """An error answer of the API, `{"error": {"code", "message", "details"}}`.

    `code` is the API's error code (`not_found`, `already_decided`, ...), `status` the HTTP
    status (None when no answer came at all), `details` the error's details object.
    """

    code = "error"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        status: int | None = None,
        details: dict | None = None,
    ):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.status = status
        self.details = details or {}

    def __str__(self) -> str:
        status = f"{self.status} " if self.status else ""
        return f"{status}{self.code}: {self.message}"


class ValidationError(GatekeeperError):
    """400: the request is malformed; `details["errors"]` lists each field and what is wrong."""

    code = "validation_error"


class Unauthorized(GatekeeperError):
    """401: the token is missing, wrong, rotated or revoked."""

    code = "unauthorized"


class NotFound(GatekeeperError):
    """404: no such object, or one this service account may not see."""

    code = "not_found"


class MethodNotAllowed(GatekeeperError):
    code = "method_not_allowed"


class Conflict(GatekeeperError):
    """409: the request clashes with the state on the server."""

    code = "invalid_state"


class IdempotencyConflict(Conflict):
    """409: this idempotency key was used before with a different request."""

    code = "idempotency_conflict"


class AlreadyDecided(Conflict):
    """409: the approval was decided (or superseded) before this request arrived."""

    code = "already_decided"


class InvalidState(Conflict):
    """409: not possible in the current state (e.g. refreshing a fresh approval)."""

    code = "invalid_state"


class Expired(GatekeeperError):
    """410: the approval's decision deadline passed."""

    code = "expired"


class PayloadTooLarge(GatekeeperError):
    code = "payload_too_large"


class UnsupportedMediaType(GatekeeperError):
    code = "unsupported_media_type"


class Unavailable(GatekeeperError):
    """503 (or 502/504), or no answer at all (`status` None); raised once retries ran out."""

    code = "unavailable"

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs):
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


_ERRORS_BY_CODE: dict[str, type[GatekeeperError]] = {
    error.code: error
    for error in (
        ValidationError,
        Unauthorized,
        NotFound,
        MethodNotAllowed,
        IdempotencyConflict,
        AlreadyDecided,
        InvalidState,
        Expired,
        PayloadTooLarge,
        UnsupportedMediaType,
        Unavailable,
    )
}
_ERRORS_BY_STATUS: dict[int, type[GatekeeperError]] = {
    400: ValidationError,
    401: Unauthorized,
    404: NotFound,
    405: MethodNotAllowed,
    409: Conflict,
    410: Expired,
    413: PayloadTooLarge,
    415: UnsupportedMediaType,
}


def error_from(status: int, reason: str, headers: Mapping[str, str], payload: bytes):
    """The typed error for an answer that is not 2xx, from its status, headers and body."""
    try:
        detail = json.loads(payload)["error"]
        code, message = str(detail["code"]), str(detail["message"])
        details = detail.get("details") or {}
    except (ValueError, KeyError, TypeError):
        code, message, details = None, f"HTTP {status} {reason}", {}
    if status in RETRY_STATUSES:
        retry_after = headers.get("Retry-After") if headers else None
        seconds = float(retry_after) if retry_after and retry_after.isdigit() else None
        return Unavailable(
            message, code="unavailable", status=status, details=details, retry_after=seconds
        )
    kind = _ERRORS_BY_CODE.get(code or "") or _ERRORS_BY_STATUS.get(status, GatekeeperError)
    return kind(message, code=code or kind.code, status=status, details=details)


def no_answer(base_url: str, reason: object) -> Unavailable:
    """Refused, reset, timed out, or cut off mid-answer: nothing to go by, worth a retry."""
    return Unavailable(f"no answer from {base_url}: {reason}")


# ---------------------------------------------------------------------------------------------
# Why a gated step did not run (not API errors: the gate answered, and the answer was no)


class StepNotRun(Exception):
    """The gated function was not called. `approval` is the last approval seen, if any."""

    def __init__(self, message: str, *, approval: Approval | None = None):
        super().__init__(message)
        self.approval = approval


class Blocked(StepNotRun):
    """The gate or the reviewers said no: blocked by policy, rejected, expired or terminated.

    `reason` says why; `decision` is the gate's answer when a policy blocked the step.
    """

    def __init__(
        self,
        reason: str,
        *,
        decision: GateDecision | None = None,
        approval: Approval | None = None,
    ):
        super().__init__(reason, approval=approval)
        self.reason = reason
        self.decision = decision


class NeedsFreshContext(StepNotRun):
    """The approval went stale (branch `re_review`) and no `refresh_context` was given.

    Read the inputs again and call `GatekeeperClient.refresh(error.approval.id, context)`.
    """


class StillWaiting(StepNotRun):
    """`wait_timeout` passed while the approval was still open; wait again with its id."""


class OutcomeUnknown(Exception):
    """Raise it from a gated function when its write may or may not have happened.

    For example a timeout after the request was sent. The step's outcome is recorded as
    `indeterminate`, so gating the step again sends it to a human to reconcile instead of
    letting it run twice. `detail` (a JSON object) is recorded with the outcome.
    """

    def __init__(self, message: str = "the write's outcome is unknown", detail: dict | None = None):
        super().__init__(message)
        self.detail = detail


# ---------------------------------------------------------------------------------------------
# Why a webhook delivery must not be acted on (raised by `verify_webhook`)


class WebhookRefused(Exception):
    """The delivery is not one to act on; `str(error)` says why (safe to log, no secrets)."""


class InvalidSignature(WebhookRefused):
    """No `Gatekeeper-Signature`, a malformed one, or one the secret did not make: answer 401."""


class StaleSignature(WebhookRefused):
    """Signed more than `tolerance` seconds from now (a replay, or a clock far off): answer 400."""


class InvalidDelivery(WebhookRefused):
    """Signed, but not a delivery: the body is not a JSON object, or its `id` is not the
    `Gatekeeper-Delivery` header's, or there is no id to check for repeats. Answer 400."""


class RepeatedDelivery(WebhookRefused):
    """This delivery id was seen before: answer 2xx (so Gatekeeper stops resending), act once.

    `delivery_id` is the repeated id; `event` the verified event, for a receiver that logs it.
    """

    def __init__(self, message: str, *, delivery_id: str, event: dict):
        super().__init__(message)
        self.delivery_id = delivery_id
        self.event = event
