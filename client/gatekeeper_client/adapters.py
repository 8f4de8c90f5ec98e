"""What every framework adapter shares: a tool call's step identity, and the gate's verdict.

No framework is imported here and nothing is sent by itself. An adapter (a `ToolGate`) names
the call (`gated_step`), runs `gate_call` with its client (`drive`), and turns what comes back into
its framework's own construct. That is the engines' `Verdict` (gatekeeper_client.verdicts): `run`
(the tool ran: `result`), `skip` (its write had already happened: `reason` tells the model),
neither (refused: a refused tool call carrying `reason`); or the `Approval` still open, which
pauses the run durably (or is raised as `StillWaiting` in wait mode). Re-review goes through
the caller's `refresh_context` hook, and reconcile waits like any open approval
(`steps.run_step` follows both branches).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Union

from . import calls, steps
from .bodies import MAX_KEY
from .errors import Blocked, NotFound, OutcomeUnknown, StillWaiting
from .models import Approval, GateDecision, Skipped
from .verdicts import Verdict, allowed_verdict, applied_verdict, blocked_verdict, verdict_of

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
) -> Flow[Verdict | Approval]:
    """Gate one tool call and run `fn(**args)` if it may run: its `Verdict`, or the approval
    still open (never a refusal error).

    The verdict's `run` says the tool ran (with `args`, a reviewer's edits included; `result`
    is what it returned), `skip` that its write had already happened (not run again), neither
    that it was refused (`reason`, and `error`: the `Blocked` to raise if the caller wants it).
    `wait_timeout` is how long to wait for reviewers here: None waits as long as it takes
    (wait mode), 0 does not wait (durable mode: the open approval pauses the run, and calling
    `gate_call` again for the same step after a resume replays the check and picks up the
    decision). `rerun=True` (durable mode) first reads the step's recorded outcome, so a step
    that already ran is not run again by a re-run. When `fn` raises `OutcomeUnknown`, the step
    is gated again as `indeterminate`: a human reconciles it (applied: not run again; not
    applied: approved to run again). `options` are `run_step`'s (context, risk,
    refresh_context, ...).
    """
    side_effect = (yield from _recorded_side_effect(client, step)) if rerun else "not_started"
    if side_effect == "landed":
        reason = f"not run again: step {step.index} of {step.thread_id} already ran"
        return applied_verdict(reason, args)
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


class _Seen:
    """`run_step`'s `on_update`: keeps the gate's answer and the approval last seen for the
    verdict, then calls the caller's own hook (if any)."""

    def __init__(self, hook: Callable[[Any], Any] | None):
        self.hook = hook
        self.decision: GateDecision | None = None
        self.approval: Approval | None = None

    def __call__(self, update: Any) -> Any:
        if isinstance(update, GateDecision):
            self.decision = update
        else:
            self.approval = update
        return self.hook(update) if self.hook is not None else None


def _gated(client, fn, args, step, workflow, wait_timeout, side_effect, options):
    # A reconcile is another request for the same step: a key of its own, replayed likewise.
    key = (
        step.idempotency_key
        if side_effect == "not_started"
        else f"{step.idempotency_key}:{side_effect}"
    )
    seen = _Seen(options.get("on_update"))
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
            **{**options, "on_update": seen},
        )
    except Blocked as error:
        if error.approval is None:
            return replace(blocked_verdict(error.reason, args), error=error)
        refused = verdict_of(error.approval.raw)
        return replace(refused, run=False, skip=False, reason=error.reason, error=error)
    except StillWaiting as error:
        return error.approval
    if isinstance(result, Skipped):
        return verdict_on(result.approval)
    if seen.approval is None:
        return replace(allowed_verdict(args, seen.decision.reason), result=result)
    return replace(verdict_of(seen.approval.raw), result=result)


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


def verdict_on(approval: Approval) -> Verdict:
    """What a decided approval means for its step, in the words the framework adapters give
    the model: a refusal's reason as `run_step`'s `Blocked` says it, a skip's that the write
    had already happened."""
    verdict = verdict_of(approval.raw)
    if verdict.skip:
        message = f"not run again: a reviewer found its write already applied ({approval.url})"
        return replace(verdict, reason=message)
    if not verdict.run:
        return replace(verdict, reason=steps.why_blocked(approval))
    return verdict


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


class ToolGate:
    """The framework adapters' common part: the gate's settings, the steps of the calls it
    gates, and the calls it refused.

    `client` is a `GatekeeperClient` or an `AsyncGatekeeperClient` (`drive` runs a flow with
    it: await what it returns for the async one). `tool_names` maps a framework's tool name
    to the gate's `tool`. `context(tool, args)` returns the context reviewers see.
    `wait_timeout` bounds a wait for reviewers (None: as long as it takes). Other keyword
    `options` go to `run_step` (`refresh_context`, `risk`, `owner`, `outcome_detail`, ...).
    """

    def __init__(
        self,
        client: Any,
        *,
        workflow: str,
        tool_names: ToolNames = None,
        context: Callable[..., Any] | None = None,
        wait_timeout: float | None = None,
        **options: Any,
    ):
        self.client = client
        self.workflow = workflow
        self.tool_names = tool_names
        self.context = context
        self.wait_timeout = wait_timeout
        self.options = options
        # (gate tool, reason) of each call this object refused, in order: for logs and prints.
        self.refusals: list[tuple[str, str]] = []

    def drive(self, flow: Flow[Any]) -> Any:
        """Run a flow with the client (a coroutine, for an `AsyncGatekeeperClient`)."""
        return self.client._drive(flow)  # noqa: SLF001 - the clients' one way to run a flow

    def gated_step(self, thread_id: str, call_id: str, call_ids: Iterable[str], name: str) -> Step:
        """The step of the framework's call `call_id` of tool `name` (see `step_for`)."""
        tool = gate_tool_name(self.tool_names, name)
        return step_for(thread_id, call_id, call_ids, name, tool)

    def context_of(self, step: Step, args: Mapping[str, Any]) -> Any:
        return self.context(step.tool, dict(args)) if self.context else None

    def check(self, step: Step, args: Mapping[str, Any]) -> Flow[GateDecision]:
        """The gate check `call` sends for `step`, asked before the framework runs the call."""
        context = self.context_of(step, args)
        return check_step(
            self.client, step, args, workflow=self.workflow, context=context, **self.options
        )

    def call(
        self,
        fn: Callable[..., Any],
        args: Mapping[str, Any],
        step: Step,
        *,
        wait_timeout: float | None,
        context: Any,
        rerun: bool = False,
    ) -> Flow[Verdict | Approval]:
        """`gate_call` with this gate's settings."""
        return gate_call(
            self.client,
            fn,
            dict(args),
            step,
            workflow=self.workflow,
            wait_timeout=wait_timeout,
            rerun=rerun,
            context=context,
            **self.options,
        )

    def decided(self, approval: Approval, *, wait_timeout: float | None) -> Flow[Approval | None]:
        """`decided` with this gate's settings (refresh_context, on_update)."""
        return decided(self.client, approval, wait_timeout=wait_timeout, **self.options)

    def refused(self, step: Step, reason: str) -> str:
        """Note a refused call; its reason."""
        self.refusals.append((step.tool, reason))
        return reason
