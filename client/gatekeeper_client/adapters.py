"""What every framework adapter shares: a tool call's step identity, and the gate's verdict.

Pure: no framework is imported here and nothing is sent by itself. An adapter names the call
(`step_for`), runs `gate_call` with its client's driver (`decide` / `adecide`), and turns the
`Verdict` into its framework's own construct: `Ran` returns the tool's result, `Refused`
becomes a refused tool call carrying the reason, `Waiting` pauses the run durably (or is
raised as `StillWaiting` in wait mode), `AlreadyApplied` tells the model the write had
already happened. Re-review goes through the caller's `refresh_context` hook, and reconcile
waits like any open approval (`steps.run_step` follows both branches).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Union

from . import calls, steps
from .bodies import MAX_KEY
from .errors import Blocked, NotFound, OutcomeUnknown, StillWaiting
from .models import Approval, GateDecision, Skipped

if TYPE_CHECKING:
    from .base import ClientBase
    from .effects import Flow

CHECK_OPTIONS = ("risk", "owner", "parent_thread_id", "on_behalf_of")  # run_step's, in the check

# How a framework's tool name becomes the gate's `tool`: a mapping (names not in it pass
# unchanged) or a function. Model APIs allow no dots, so `iam_grant` may stand for `iam.grant`.
ToolNames = Union[Mapping[str, str], Callable[[str], str], None]  # noqa: UP007 - Python 3.10


def gate_tool_name(tool_names: ToolNames, name: str) -> str:
    """The gate's name of a framework's tool `name` (by default the name unchanged)."""
    if tool_names is None:
        return name
    if callable(tool_names):
        return tool_names(name)
    return tool_names.get(name, name)


@dataclass(frozen=True)
class Step:
    """A gated tool call as Gatekeeper knows it, derived from the framework's call identity."""

    thread_id: str
    index: int
    name: str
    tool: str
    idempotency_key: str


def step_for(thread_id: str, call_id: str, call_ids: Iterable[str], name: str, tool: str) -> Step:
    """The step of tool call `call_id` of run `thread_id`, named by the framework `name`.

    Its index is its position among the run's gated calls (`call_ids`: the ids of the gated
    calls the framework has made in the run, in order, with or without this one), so a re-run
    of the same call after a resume gets the same index, and the idempotency key (thread,
    index, call id) replays the first gate check instead of asking again.
    """
    if not thread_id:
        raise ValueError("a gated tool call needs the run's thread id")
    if not call_id:
        raise ValueError(f"tool call {name!r} has no id to key its gate check on")
    earlier = list(dict.fromkeys(call_ids))
    index = earlier.index(call_id) if call_id in earlier else len(earlier)
    key = f"{thread_id}:{index}:{call_id}"
    if len(key) > MAX_KEY:
        key = f"{index}:{hashlib.sha256(key.encode()).hexdigest()}"
    return Step(thread_id=thread_id, index=index, name=name, tool=tool, idempotency_key=key)


@dataclass(frozen=True)
class Ran:
    """The tool ran (allowed, or approved with `args`, a reviewer's edit included)."""

    result: Any


@dataclass(frozen=True)
class Refused:
    """Blocked by policy, rejected, expired or terminated: tell the model `reason`."""

    reason: str
    error: Blocked


@dataclass(frozen=True)
class Waiting:
    """The approval is still open: pause the run durably and resume when it is decided."""

    approval: Approval


@dataclass(frozen=True)
class AlreadyApplied:
    """Not run (again): its write already happened (a reviewer reconciled it as applied, or an
    earlier run of this step recorded it as landed). `message` tells the model."""

    message: str
    approval: Approval | None = None


Verdict = Union[Ran, Refused, Waiting, AlreadyApplied]  # noqa: UP007 - Python 3.10


def gate_call(
    client: ClientBase,
    fn: Callable[..., Any],
    args: Mapping[str, Any],
    step: Step,
    *,
    workflow: str,
    wait_timeout: float | None = None,
    rerun: bool = False,
    **options: Any,
) -> Flow[Verdict]:
    """Gate one tool call and run `fn(**args)` if it may run; the verdict, never a refusal error.

    `wait_timeout` is how long to wait for reviewers here: None waits as long as it takes
    (wait mode), 0 does not wait (durable mode: a `Waiting` verdict pauses the run, and
    calling `gate_call` again for the same step after a resume replays the check and picks
    up the decision). `rerun=True` (durable mode) first reads the step's recorded outcome, so
    a step that already ran is not run again by a re-run. When `fn` raises `OutcomeUnknown`,
    the step is gated again as `indeterminate`: a human reconciles it (applied: not run
    again; not applied: approved to run again). `options` are `run_step`'s (context, risk,
    refresh_context, ...).
    """
    side_effect = (yield from _recorded_side_effect(client, step)) if rerun else "not_started"
    if side_effect == "landed":
        return AlreadyApplied(f"not run again: step {step.index} of {step.thread_id} already ran")
    try:
        return (
            yield from _gated(client, fn, args, step, workflow, wait_timeout, side_effect, options)
        )
    except OutcomeUnknown:
        if side_effect == "indeterminate":
            raise
    return (
        yield from _gated(client, fn, args, step, workflow, wait_timeout, "indeterminate", options)
    )


def _gated(client, fn, args, step, workflow, wait_timeout, side_effect, options) -> Flow[Verdict]:
    # A reconcile is another request for the same step: a key of its own, replayed likewise.
    key = (
        step.idempotency_key
        if side_effect == "not_started"
        else f"{step.idempotency_key}:{side_effect}"
    )
    try:
        result = yield from steps.run_step(
            client,
            fn,
            args,
            thread_id=step.thread_id,
            workflow=workflow,
            step_index=step.index,
            step_name=step.name,
            tool=step.tool,
            side_effect=side_effect,
            idempotency_key=key,
            wait_timeout=wait_timeout,
            **options,
        )
    except Blocked as error:
        return Refused(error.reason, error)
    except StillWaiting as error:
        return Waiting(error.approval)
    if isinstance(result, Skipped):
        return reconciled_as_applied(result.approval)
    return Ran(result)


def check_step(
    client: ClientBase,
    step: Step,
    args: Mapping[str, Any],
    *,
    workflow: str,
    context: Any = None,
    **options: Any,
) -> Flow[GateDecision]:
    """The very gate check `gate_call` sends for `step`, so each replays the other's answer.

    For frameworks that ask "does this call need approval?" before they run it (the Agents
    SDK's `needs_approval`, Pydantic AI's deferred tools). `options` are `gate_call`'s.
    """
    return (
        yield from calls.check(
            client,
            step.thread_id,
            workflow,
            step.index,
            step.name,
            step.tool,
            args,
            context=context,
            idempotency_key=step.idempotency_key,
            **{name: value for name, value in options.items() if name in CHECK_OPTIONS},
        )
    )


def decided(
    client: ClientBase, approval: Approval, *, wait_timeout: float | None, **options: Any
) -> Flow[Approval | None]:
    """`approval` once reviewers decided it, or None while it is still open after `wait_timeout`
    (0: do not wait; None: as long as it takes). A stale approval is refreshed through
    `options`' `refresh_context`, and a superseded one followed, as `gate_call` does."""
    try:
        return (
            yield from steps._decided(  # noqa: SLF001 - the one way approvals are followed
                client,
                approval,
                options.get("refresh_context"),
                wait_timeout,
                options.get("on_update"),
            )
        )
    except StillWaiting:
        return None


def reconciled_as_applied(approval: Approval) -> AlreadyApplied:
    """The verdict on a step a reviewer reconciled as applied (decision `skip`)."""
    message = f"not run again: a reviewer found its write already applied ({approval.url})"
    return AlreadyApplied(message, approval)


def _recorded_side_effect(client: ClientBase, step: Step) -> Flow[str]:
    """`landed` or `indeterminate` when an earlier run of the step recorded so, else not_started."""
    try:
        execution = yield from calls.execution(client, step.thread_id)
    except NotFound:  # the run's first gated call
        return "not_started"
    for recorded in execution["steps"]:
        if recorded["index"] == step.index and recorded["outcome"] in ("landed", "indeterminate"):
            return recorded["outcome"]
    return "not_started"


def decide(client: ClientBase, flow: Flow[Verdict]) -> Verdict:
    """Run `gate_call`'s flow with a `GatekeeperClient`."""
    return client._drive(flow)  # noqa: SLF001 - the clients' one way to run a flow


async def adecide(client: ClientBase, flow: Flow[Verdict]) -> Verdict:
    """Run `gate_call`'s flow with an `AsyncGatekeeperClient`."""
    return await client._drive(flow)  # noqa: SLF001 - the clients' one way to run a flow


def pause_payload(step: Step, approval: Approval) -> dict:
    """What a durable pause hands to whatever resumes the run (JSON, no secrets)."""
    return {
        "gatekeeper": {
            "approval_id": approval.id,
            "status": approval.status,
            "url": approval.url,
            "thread_id": step.thread_id,
            "step": step.index,
            "tool": step.tool,
            "args": dict(approval.action.args),
        }
    }
