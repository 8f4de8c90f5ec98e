"""Gated steps: gate, wait for reviewers, follow their branch, run the tool, report its write."""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from . import calls
from .bodies import Context
from .effects import Call, Flow
from .errors import (
    Blocked,
    Expired,
    GatekeeperError,
    NeedsFreshContext,
    StillWaiting,
)
from .models import Approval, Skipped, Update
from .step_outcomes import outcome_of

if TYPE_CHECKING:
    from .base import ClientBase

log = logging.getLogger("gatekeeper_client")


def run_step(
    client: ClientBase,
    fn: Callable[..., Any],
    args: Mapping[str, Any] | None = None,
    *,
    thread_id: str,
    workflow: str,
    step_index: int,
    tool: str,
    step_name: str | None = None,
    context: Context | None = None,
    risk: float | Mapping[str, Any] | None = None,
    owner: str | None = None,
    parent_thread_id: str | None = None,
    on_behalf_of: str | None = None,
    side_effect: str = "not_started",
    idempotency_key: str | None = None,
    refresh_context: Callable[[], Any] | None = None,
    wait_timeout: float | None = None,
    outcome_detail: Callable[[Any], Mapping[str, Any]] | None = None,
    on_update: Callable[[Update], Any] | None = None,
) -> Flow[Any]:
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

    With `AsyncGatekeeperClient`, `fn`, `refresh_context`, `outcome_detail` and `on_update`
    may be async functions: what they return is awaited.

    This is not a checkpointer: calling it again for a step that already ran replays the
    gate's answer and runs `fn` again. Keep your workflow's own state, or gate the retry
    with `side_effect="indeterminate"` so a human reconciles it.
    """
    call_args = dict(args or {})
    decision = yield from calls.check(
        client,
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
        yield Call(on_update, (decision,))
    if decision.allowed:
        return (yield from _run(client, fn, call_args, thread_id, step_index, outcome_detail))
    if decision.blocked or decision.approval is None:
        raise Blocked(decision.reason, decision=decision)
    approval = yield from _decided(
        client, decision.approval, refresh_context, wait_timeout, on_update
    )
    if approval.decision == "allow":
        approved = dict(approval.action.args)
        return (yield from _run(client, fn, approved, thread_id, step_index, outcome_detail))
    if approval.decision == "skip":
        return Skipped(approval)
    raise Blocked(why_blocked(approval), approval=approval)


def _decided(
    client: ClientBase,
    approval: Approval,
    refresh_context: Callable[[], Any] | None,
    wait_timeout: float | None,
    on_update: Callable[[Update], Any] | None,
) -> Flow[Approval]:
    """Wait until the approval is decided, refreshing it when it goes stale."""
    deadline = None if wait_timeout is None else time.monotonic() + wait_timeout
    reported = None
    while True:
        if on_update is not None and (approval.id, approval.status) != reported:
            yield Call(on_update, (approval,))
            reported = (approval.id, approval.status)
        if approval.status in ("pending", "reconciling"):
            remaining = None
            if deadline is not None:
                remaining = max(0.0, deadline - time.monotonic())
            # One status at a time, so on_update hears of each (pending, reconciling, ...).
            waited_in = approval.status
            approval = yield from calls.wait(
                client, approval.id, timeout=remaining, while_in=(waited_in,)
            )
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
            context = yield Call(refresh_context)
            try:
                approval = yield from calls.refresh(client, approval.id, context)
            except Expired as error:
                raise Blocked(
                    "expired before its context was refreshed", approval=approval
                ) from error
        elif approval.status == "superseded" and approval.superseded_by:
            approval = yield from calls.approval(client, approval.superseded_by)
        else:
            return approval


def _run(
    client: ClientBase,
    fn: Callable[..., Any],
    args: dict,
    thread_id: str,
    step_index: int,
    outcome_detail: Callable[[Any], Mapping[str, Any]] | None,
) -> Flow[Any]:
    try:
        result = yield Call(fn, (), args)
    except Exception as error:
        yield from _report(client, thread_id, step_index, *outcome_of(error))
        raise
    detail = (yield Call(outcome_detail, (result,))) if outcome_detail else None
    yield from _report(client, thread_id, step_index, "landed", detail)
    return result


def _report(
    client: ClientBase, thread_id: str, step_index: int, side_effect: str, detail
) -> Flow[None]:
    try:
        yield from calls.record_outcome(client, thread_id, step_index, side_effect, detail)
    except GatekeeperError as error:
        # The step has run: raising now would invite a retry that writes twice.
        log.warning(
            "could not record outcome %s of %s step %s: %s",
            side_effect,
            thread_id,
            step_index,
            error,
        )


def why_blocked(approval: Approval) -> str:
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


def args_of(fn: Callable, positional: tuple, keywords: dict) -> dict:
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
