"""Python client for Gatekeeper's orchestrator API (v1): ask before each step, wait for humans.

Standard library only and no Django: an agent process can use it through the installed
`gatekeeper` package or as this one file copied next to its code (Python 3.10 or newer).

    from gatekeeper.client import GatekeeperClient

    gk = GatekeeperClient("http://127.0.0.1:8000", token)

    @gk.gated(thread_id="onboard-77", workflow="hr-onboarding", step_index=2, tool="iam.grant")
    def set_privileges(user, role):
        ...  # the real write

    set_privileges(user="jdoe", role="admin")  # runs once the gate allows it, with approved args

The lower-level calls map one to one onto the API: `check` (POST /gate), `approval` and `wait`
(GET /approvals/{id}, long-polled), `refresh`, `record_outcome`, `change_owner`, `execution`.
`run_step` (and its decorator form `gated`) puts them together: gate, wait for reviewers, follow
the branch they chose, run the tool only when allowed, and report what happened to its write.

Network errors and 502/503/504 answers are retried after the server's Retry-After, or else with
exponential backoff and jitter; every other error answer raises a `GatekeeperError` subclass
named after the API's error code.
"""

from __future__ import annotations

import functools
import hashlib
import http.client
import inspect
import json
import logging
import math
import random
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

__all__ = [
    "Action",
    "AlreadyDecided",
    "Approval",
    "Blocked",
    "Conflict",
    "ExecutionRef",
    "Expired",
    "GateDecision",
    "GatekeeperClient",
    "GatekeeperError",
    "IdempotencyConflict",
    "InvalidState",
    "MethodNotAllowed",
    "NeedsFreshContext",
    "NotFound",
    "OutcomeUnknown",
    "PayloadTooLarge",
    "PolicyRef",
    "Skipped",
    "StepNotRun",
    "StepRef",
    "StillWaiting",
    "Unauthorized",
    "Unavailable",
    "UnsupportedMediaType",
    "ValidationError",
    "context_items",
    "idempotency_key_for",
]

log = logging.getLogger("gatekeeper.client")

API_PREFIX = "/api/v1"
MAX_WAIT = 60  # the server's bound on ?wait=N
MAX_KEY = 200  # the server's bound on idempotency_key
MAX_BACKOFF = 30.0
OPEN_STATUSES = ("pending", "re_review", "reconciling")
# Answers a load balancer or a restarting server gives: worth the same request again.
RETRY_STATUSES = (502, 503, 504)
UTC = timezone.utc  # noqa: UP017 - datetime.UTC is Python 3.11+, this file runs on 3.10


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
# What the API answers


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
class Skipped:
    """`run_step`'s answer when a reviewer found the write had already happened.

    The approval was reconciled as `applied` (decision `skip`): the function was not called
    and must not be; the workflow continues after this step.
    """

    approval: Approval


# What `run_step` reports to its `on_update` callback: the gate's answer, then the approval
# each time it is waited on and once more when it is decided.
Update = GateDecision | Approval


# ---------------------------------------------------------------------------------------------
# Request bodies


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _rfc3339(value: datetime | str) -> str:
    if isinstance(value, str):
        return value
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("observed_at must carry a time zone (RFC 3339)")
    return value.astimezone(UTC).isoformat()


def context_items(context: Mapping[str, Any] | Iterable[Mapping[str, Any]] | None) -> list[dict]:
    """The API's context list, from `{name: value}` or from `[{"name", "value", "observed_at"}]`.

    An item without `observed_at` is stamped with the current time. Say when each input was
    really read when you can: it is what reviewers judge freshness by, and a body with the same
    timestamps gets the same default idempotency key after a restart.
    """
    if context is None:
        return []
    if isinstance(context, Mapping):
        items = [{"name": name, "value": value} for name, value in context.items()]
    else:
        items = [dict(item) for item in context]
    now = datetime.now(UTC)
    for item in items:
        item["observed_at"] = _rfc3339(item.get("observed_at") or now)
    return items


def idempotency_key_for(body: Mapping[str, Any]) -> str:
    """The default idempotency key of a gate request: thread, step index and a body hash.

    Deterministic, so sending the same request again (a retry after a lost answer, a restarted
    agent with the same inputs) replays the first answer instead of making a second check; a
    different request for the same step gets a different key, not an idempotency conflict.
    """
    content = {key: value for key, value in body.items() if key != "idempotency_key"}
    digest = hashlib.sha256(_canonical(content).encode()).hexdigest()[:32]
    thread_id = body["execution"]["thread_id"]
    index = body["step"]["index"]
    key = f"{thread_id}:{index}:{digest}"
    if len(key) > MAX_KEY:
        key = f"{hashlib.sha256(thread_id.encode()).hexdigest()[:32]}:{index}:{digest}"
    return key


def _risk(risk: float | Mapping[str, Any]) -> dict:
    if isinstance(risk, Mapping):
        return dict(risk)
    return {"score": float(risk)}


def _args_of(fn: Callable, positional: tuple, keywords: dict) -> dict:
    """A call's arguments by parameter name, defaults included: the exact action to approve."""
    signature = inspect.signature(fn)
    bound = signature.bind(*positional, **keywords)
    bound.apply_defaults()
    args: dict = {}
    for name, value in bound.arguments.items():
        kind = signature.parameters[name].kind
        if kind is inspect.Parameter.VAR_POSITIONAL:
            raise TypeError(f"{fn.__name__}: *{name} cannot be named in an action's args")
        if kind is inspect.Parameter.VAR_KEYWORD:
            args.update(value)
        else:
            args[name] = value
    return args


def _why_blocked(approval: Approval) -> str:
    who = ", ".join(approval.decided_by)
    comment = f": {approval.comment}" if approval.comment else ""
    if approval.status == "rejected":
        return f"rejected by {who or 'a reviewer'}{comment}"
    if approval.status == "expired":
        return f"expired: nobody decided before {approval.expires_at.isoformat()}"
    if approval.status == "terminated":
        if approval.decided_by:
            return f"terminated: taken over by {who}{comment}"
        return f"terminated: the execution's owner is now {approval.execution.owner}"
    return f"approval is {approval.status} (decision {approval.decision})"


# ---------------------------------------------------------------------------------------------
# The client


class GatekeeperClient:
    """A service account's connection to Gatekeeper.

    `base_url` is the server (`http://127.0.0.1:8000`; a trailing `/api/v1` is accepted too),
    `token` the service account's bearer token. `timeout` bounds each HTTP request (a
    long-poll gets its wait on top). A request that finds no server, or gets 502/503/504, is
    sent again up to `retries` times after `backoff`, 2 x `backoff`, 4 x ... seconds
    (with jitter, at most 30 s), or after the server's Retry-After when it gives one. Gate
    checks are safe to resend (idempotency key); an outcome resent after a lost answer may be
    recorded twice.
    """

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        timeout: float = 30,
        retries: int = 5,
        backoff: float = 0.5,
    ):
        if not token:
            raise ValueError("a service account token is required")
        base = base_url.rstrip("/")
        if base.endswith(API_PREFIX):
            base = base[: -len(API_PREFIX)]
        self.base_url = base
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self._token = token
        self._opener = urllib.request.build_opener()

    def __repr__(self) -> str:
        # Never the token: reprs end up in logs and tracebacks.
        return f"GatekeeperClient({self.base_url!r})"

    # -- the API, one method per endpoint --------------------------------------------------

    def check(
        self,
        thread_id: str,
        workflow: str,
        step_index: int,
        step_name: str | None,
        tool: str,
        args: Mapping[str, Any] | None,
        *,
        side_effect: str = "not_started",
        context: Mapping[str, Any] | Iterable[Mapping[str, Any]] | None = None,
        risk: float | Mapping[str, Any] | None = None,
        owner: str | None = None,
        parent_thread_id: str | None = None,
        on_behalf_of: str | None = None,
        idempotency_key: str | None = None,
    ) -> GateDecision:
        """May step `step_index` of execution `thread_id` run `tool` with `args`? (POST /gate)

        `side_effect` says whether this write already happened (`not_started`, `landed`,
        `indeterminate`); `context` is what the agent knew (see `context_items`); `risk` a score
        from 0 to 1 or `{"score", "labels"}`. Without `idempotency_key` one is derived from the
        request (see `idempotency_key_for`), so a resent request replays the first answer.
        """
        execution: dict[str, Any] = {"thread_id": thread_id, "workflow": workflow}
        for key, value in (
            ("owner", owner),
            ("parent_thread_id", parent_thread_id),
            ("on_behalf_of", on_behalf_of),
        ):
            if value is not None:
                execution[key] = value
        step: dict[str, Any] = {"index": step_index}
        if step_name is not None:
            step["name"] = step_name
        body: dict[str, Any] = {
            "execution": execution,
            "step": step,
            "action": {"tool": tool, "args": dict(args or {}), "side_effect": side_effect},
            "context": context_items(context),
        }
        if risk is not None:
            body["risk"] = _risk(risk)
        body["idempotency_key"] = idempotency_key or idempotency_key_for(body)
        return GateDecision.from_json(self._request("POST", "/gate", body))

    def approval(self, approval_id: str, *, wait: int = 0, seen: str | None = None) -> Approval:
        """The approval now; with `wait` (0 to 60 s), once its status is not `seen` (the status
        the caller last saw; pending if None) or after `wait`, and at once when it already is not.
        """
        query = {"wait": str(wait)} if wait else None
        if query and seen:
            query["seen"] = seen
        data = self._request(
            "GET",
            f"/approvals/{_quote(approval_id)}",
            query=query,
            timeout=self.timeout + wait,
        )
        return Approval.from_json(data)

    def wait(
        self,
        approval_id: str,
        *,
        timeout: float | None = None,
        poll: int = 55,
        while_in: Iterable[str] = ("pending",),
    ) -> Approval:
        """Long-poll until the approval's status leaves `while_in`, or `timeout` seconds pass.

        Returns the approval as it then is: check `status`/`decision` (after a timeout it may
        still be pending). Each request waits up to `poll` seconds on the server (at most 60),
        which answers the moment the status changes; each poll names the status last seen, so
        a change between two polls is answered at once. Network errors and 503 are retried as
        for every request (a server too busy to hold the poll says when to come back, in
        Retry-After). Should a poll still come back early unchanged, the next one waits a
        backoff first instead of spinning.
        """
        if not 1 <= poll <= MAX_WAIT:
            raise ValueError(f"poll must be 1 to {MAX_WAIT} seconds")
        waiting_in = tuple(while_in)
        deadline = None if timeout is None else time.monotonic() + timeout
        early = 0
        seen = None
        while True:
            seconds = poll
            if deadline is not None:
                seconds = max(0, min(poll, math.ceil(deadline - time.monotonic())))
            started = time.monotonic()
            approval = self.approval(approval_id, wait=seconds, seen=seen)
            if approval.status not in waiting_in:
                return approval
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                return approval
            changed, seen = approval.status != (seen or "pending"), approval.status
            if seconds and not changed and now - started < seconds / 2:
                early += 1
                pause = self._delay(early - 1)
                if deadline is not None:
                    pause = min(pause, max(0.0, deadline - now))
                time.sleep(pause)
            else:
                early = 0

    def refresh(
        self,
        approval_id: str,
        context: Mapping[str, Any] | Iterable[Mapping[str, Any]],
        args: Mapping[str, Any] | None = None,
        side_effect: str | None = None,
    ) -> Approval:
        """New context (and optionally args) for a stale approval: returns the new approval.

        Only a `re_review` approval, or a `pending` one past `fresh_until`, can be refreshed
        (else `InvalidState`; `Expired` when its deadline passed). The old approval becomes
        `superseded`. When a resent refresh finds that an earlier attempt already went through,
        the approval that superseded it is returned.
        """
        body: dict[str, Any] = {"context": context_items(context)}
        action: dict[str, Any] = {}
        if args is not None:
            action["args"] = dict(args)
        if side_effect is not None:
            action["side_effect"] = side_effect
        if action:
            body["action"] = action
        try:
            data = self._request("POST", f"/approvals/{_quote(approval_id)}/refresh", body)
        except AlreadyDecided:
            old = self.approval(approval_id)
            if old.status == "superseded" and old.superseded_by:
                return self.approval(old.superseded_by)
            raise
        return Approval.from_json(data)

    def record_outcome(
        self,
        thread_id: str,
        step_index: int,
        side_effect: str,
        detail: Mapping[str, Any] | None = None,
    ) -> bool:
        """What happened to a step's write: `landed`, `not_landed`, `indeterminate` or `failed`.

        Returns whether the step was gated (an outcome for an ungated step is kept and flagged
        as a gap). Reporting `indeterminate` while the step's approval is open sends it to
        reconcile.
        """
        path = f"/executions/{_quote(thread_id)}/steps/{int(step_index)}/outcome"
        body = {"side_effect": side_effect, "detail": dict(detail or {})}
        return bool(self._request("POST", path, body)["gated"])

    def change_owner(self, thread_id: str, owner: str, reason: str = "") -> dict:
        """Name the execution's new owner; its open approvals are terminated. Returns it."""
        body = {"owner": owner, "reason": reason}
        return self._request("POST", f"/executions/{_quote(thread_id)}/owner", body)

    def execution(self, thread_id: str) -> dict:
        """The execution: owner, status, steps with decisions and outcomes, record, gaps."""
        return self._request("GET", f"/executions/{_quote(thread_id)}")

    # -- gated steps -----------------------------------------------------------------------

    def run_step(
        self,
        fn: Callable[..., Any],
        args: Mapping[str, Any] | None = None,
        *,
        thread_id: str,
        workflow: str,
        step_index: int,
        tool: str,
        step_name: str | None = None,
        context: Mapping[str, Any] | Iterable[Mapping[str, Any]] | None = None,
        risk: float | Mapping[str, Any] | None = None,
        owner: str | None = None,
        parent_thread_id: str | None = None,
        on_behalf_of: str | None = None,
        side_effect: str = "not_started",
        idempotency_key: str | None = None,
        refresh_context: Callable[[], Any] | None = None,
        wait_timeout: float | None = None,
        outcome_detail: Callable[[Any], Mapping[str, Any]] | None = None,
        on_update: Callable[[Update], None] | None = None,
    ) -> Any:
        """Gate one step and call `fn(**args)` only when it may run; returns what `fn` returns.

        - allow: `fn` runs with `args`.
        - require_approval: waits (long-poll, up to `wait_timeout`, else `StillWaiting`) and
          follows the branch the reviewers' action took:
          resume: `fn` runs with the approved args, a reviewer's edit included;
          re_review (the context went stale): `refresh_context()` is called for new context
          (a mapping or list, as for `check`), the approval is refreshed and waited on again;
          without `refresh_context`, `NeedsFreshContext` is raised;
          reconciling: keeps waiting while a human finds out whether the write happened;
          applied (it did): `fn` is not called and a `Skipped` is returned.
        - block, or an approval rejected, expired or terminated: `Blocked` is raised.

        After `fn` runs the outcome is recorded: `landed` when it returns (with
        `outcome_detail(result)` as detail), `indeterminate` when it raises `OutcomeUnknown`,
        `failed` when it raises anything else; exceptions are re-raised. If recording fails
        for good the result still stands (the write happened): it is logged, and Gatekeeper
        shows the step as a `no_outcome` gap.

        `on_update` is called with the GateDecision, then with the approval whenever waiting
        on it starts and once it is decided: handy for printing progress.

        This is not a checkpointer: calling it again for a step that already ran replays the
        gate's answer and runs `fn` again. Keep your workflow's own state, or gate the retry
        with `side_effect="indeterminate"` so a human reconciles it.
        """
        call_args = dict(args or {})
        decision = self.check(
            thread_id,
            workflow,
            step_index,
            step_name if step_name is not None else getattr(fn, "__name__", tool),
            tool,
            call_args,
            side_effect=side_effect,
            context=context,
            risk=risk,
            owner=owner,
            parent_thread_id=parent_thread_id,
            on_behalf_of=on_behalf_of,
            idempotency_key=idempotency_key,
        )
        if on_update is not None:
            on_update(decision)
        if decision.allowed:
            return self._run(fn, call_args, thread_id, step_index, outcome_detail)
        if decision.blocked or decision.approval is None:
            raise Blocked(decision.reason, decision=decision)
        approval = self._decided(decision.approval, refresh_context, wait_timeout, on_update)
        if approval.decision == "allow":
            return self._run(fn, dict(approval.action.args), thread_id, step_index, outcome_detail)
        if approval.decision == "skip":
            return Skipped(approval)
        raise Blocked(_why_blocked(approval), approval=approval)

    def gated(
        self,
        *,
        thread_id: str,
        workflow: str,
        step_index: int,
        tool: str,
        **options: Any,
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Decorator form of `run_step`: calling the function gates it first.

        The call's arguments, by parameter name, are the action's args; the function runs
        with the approved args. The step name defaults to the function's name. `options` are
        `run_step`'s keyword arguments (context, risk, refresh_context, on_update, ...).
        """
        # A misspelt option fails here, where the step is defined, not when it first runs.
        inspect.signature(self.run_step).bind_partial(
            thread_id=thread_id, workflow=workflow, step_index=step_index, tool=tool, **options
        )

        def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
            @functools.wraps(fn)
            def gated_call(*positional: Any, **keywords: Any) -> Any:
                return self.run_step(
                    fn,
                    _args_of(fn, positional, keywords),
                    thread_id=thread_id,
                    workflow=workflow,
                    step_index=step_index,
                    tool=tool,
                    **options,
                )

            return gated_call

        return decorate

    def _decided(
        self,
        approval: Approval,
        refresh_context: Callable[[], Any] | None,
        wait_timeout: float | None,
        on_update: Callable[[Update], None] | None,
    ) -> Approval:
        """Wait until the approval is decided, refreshing it when it goes stale."""
        deadline = None if wait_timeout is None else time.monotonic() + wait_timeout
        reported = None
        while True:
            if on_update is not None and (approval.id, approval.status) != reported:
                on_update(approval)
                reported = (approval.id, approval.status)
            if approval.status in ("pending", "reconciling"):
                remaining = None
                if deadline is not None:
                    remaining = max(0.0, deadline - time.monotonic())
                # One status at a time, so on_update hears of each (pending, reconciling, ...).
                waited_in = approval.status
                approval = self.wait(approval.id, timeout=remaining, while_in=(waited_in,))
                if approval.status == waited_in:
                    raise StillWaiting(
                        f"approval {approval.id} is still {approval.status}", approval=approval
                    )
            elif approval.status == "re_review":
                if refresh_context is None:
                    raise NeedsFreshContext(
                        f"approval {approval.id} went stale: refresh it with new context",
                        approval=approval,
                    )
                try:
                    approval = self.refresh(approval.id, refresh_context())
                except Expired as error:
                    raise Blocked(
                        "expired before its context was refreshed", approval=approval
                    ) from error
            elif approval.status == "superseded" and approval.superseded_by:
                approval = self.approval(approval.superseded_by)
            else:
                return approval

    def _run(
        self,
        fn: Callable[..., Any],
        args: dict,
        thread_id: str,
        step_index: int,
        outcome_detail: Callable[[Any], Mapping[str, Any]] | None,
    ) -> Any:
        try:
            result = fn(**args)
        except OutcomeUnknown as error:
            detail = error.detail if error.detail is not None else {"error": str(error)}
            self._report(thread_id, step_index, "indeterminate", detail)
            raise
        except Exception as error:
            self._report(
                thread_id, step_index, "failed", {"error": f"{type(error).__name__}: {error}"}
            )
            raise
        self._report(
            thread_id, step_index, "landed", outcome_detail(result) if outcome_detail else None
        )
        return result

    def _report(self, thread_id: str, step_index: int, side_effect: str, detail) -> None:
        try:
            self.record_outcome(thread_id, step_index, side_effect, detail)
        except GatekeeperError as error:
            # The step has run: raising now would invite a retry that writes twice.
            log.warning(
                "could not record outcome %s of %s step %s: %s",
                side_effect,
                thread_id,
                step_index,
                error,
            )

    # -- HTTP ------------------------------------------------------------------------------

    def _request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        query: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> Any:
        url = f"{self.base_url}{API_PREFIX}{path}"
        if query:
            url += "?" + urllib.parse.urlencode(query)
        data = None if body is None else json.dumps(body, ensure_ascii=False).encode()
        attempt = 0
        while True:
            try:
                return self._send(method, url, data, timeout or self.timeout)
            except Unavailable as error:
                if attempt >= self.retries:
                    raise
                # The server knows when it can serve again; without that, a backoff lottery.
                if error.retry_after is not None:
                    delay = min(error.retry_after, MAX_BACKOFF)
                else:
                    delay = self._delay(attempt)
                log.info("%s %s: %s; trying again in %.1f s", method, path, error, delay)
                time.sleep(delay)
                attempt += 1

    def _delay(self, attempt: int) -> float:
        """Exponential backoff with jitter: half fixed, half random, so clients spread out."""
        ceiling = min(MAX_BACKOFF, self.backoff * 2**attempt)
        return ceiling / 2 + random.uniform(0, ceiling / 2)  # noqa: S311 - jitter, not secrets

    def _send(self, method: str, url: str, data: bytes | None, timeout: float) -> Any:
        headers = {
            "Authorization": f"Bearer {self._token}",
            "Accept": "application/json",
            "User-Agent": "gatekeeper-client/1",
        }
        if data is not None:
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(url, data=data, method=method, headers=headers)  # noqa: S310
        try:
            with self._opener.open(request, timeout=timeout) as response:
                payload = response.read()
        except urllib.error.HTTPError as error:
            with error:
                raise _error_from(error) from None
        except (OSError, http.client.HTTPException) as error:
            # Refused, reset, timed out, or cut off mid-answer: no answer to go by.
            reason = getattr(error, "reason", None) or error
            raise Unavailable(f"no answer from {self.base_url}: {reason}") from error
        try:
            return json.loads(payload)
        except ValueError:
            raise GatekeeperError(
                f"the answer from {url.split('?')[0]} is not JSON", code="bad_response"
            ) from None


def _quote(value: str) -> str:
    return urllib.parse.quote(str(value), safe="")


def _error_from(error: urllib.error.HTTPError) -> GatekeeperError:
    status = error.code
    try:
        body = json.loads(error.read())
        detail = body["error"]
        code, message = str(detail["code"]), str(detail["message"])
        details = detail.get("details") or {}
    except (OSError, http.client.HTTPException, ValueError, KeyError, TypeError):
        code, message, details = None, f"HTTP {status} {error.reason}", {}
    if status in RETRY_STATUSES:
        retry_after = error.headers.get("Retry-After") if error.headers else None
        seconds = float(retry_after) if retry_after and retry_after.isdigit() else None
        return Unavailable(
            message, code="unavailable", status=status, details=details, retry_after=seconds
        )
    kind = _ERRORS_BY_CODE.get(code or "") or _ERRORS_BY_STATUS.get(status, GatekeeperError)
    return kind(message, code=code or kind.code, status=status, details=details)
