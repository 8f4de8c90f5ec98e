"""Gatekeeper for Pydantic AI: tool calls become deferred tools that Gatekeeper's reviewers decide.

    from gatekeeper_client import AsyncGatekeeperClient
    from gatekeeper_client.pydantic_ai import GatekeeperApprovals

    approvals = GatekeeperApprovals(gk, workflow="hr-onboarding", tool_names=names)
    agent = Agent(model, capabilities=[approvals], tools=[hr_lookup, iam_grant])
    result = await agent.run("onboard jdoe", conversation_id="onboard-81")

`GatekeeperApprovals` is a capability. Each tool call asks the gate first: an allowed call runs,
a blocked one is denied with the reason (`ToolDenied`), and one that needs reviewers is deferred
(`ApprovalRequired`). Its `handle_deferred_tool_calls` answers the deferred calls from
Gatekeeper's decisions, inline: `ToolApproved(override_args=<the reviewers' args>)`, or
`ToolDenied(<reason>)` for a rejection, an expiry or a termination. With `wait_timeout=0` it does
not wait: calls still open end the run with `DeferredToolRequests` (put it in the agent's
`output_type`); keep the messages and the requests, and once reviewers decided, in any process,
`results = await approvals.results(requests)` and run the agent again with
`message_history=messages, deferred_tool_results=results`.

The conversation id is the execution's thread id and the tool call id the step's identity, so a
resumed run replays the gate check instead of asking again. An approval binds to the exact args
the reviewers approved: the tool runs with those, and a `ToolApproved` whose args differ from
them is refused.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

try:
    from pydantic_ai import ApprovalRequired, DeferredToolRequests, DeferredToolResults
    from pydantic_ai.capabilities import AbstractCapability
    from pydantic_ai.messages import ModelResponse, ToolCallPart
    from pydantic_ai.tools import ToolApproved, ToolDenied
    from pydantic_core import to_jsonable_python
except ImportError as error:  # pragma: no cover - exercised without the extra installed
    raise ImportError(
        "gatekeeper_client.pydantic_ai needs Pydantic AI: "
        "pip install 'gatekeeper-client[pydantic-ai]'"
    ) from error

from .adapters import Step, ToolGate, pause_payload, verdict_on
from .errors import GatekeeperError
from .models import Approval

__all__ = ["ArgsNotApproved", "GatekeeperApprovals"]


class ArgsNotApproved(GatekeeperError):
    """A call was approved (`ToolApproved`) with args other than those the reviewers approved."""


class GatekeeperApprovals(ToolGate, AbstractCapability):
    """Gate an agent's tool calls with Gatekeeper through Pydantic AI's deferred tools.

    `client` is an `AsyncGatekeeperClient`. `tool_names` maps a tool's name to the gate's
    `tool`; `gated(name)` says which tools to gate (all by default). `context(tool_name, args)`
    returns the context reviewers see (give each item its `observed_at`: a resumed run sends
    the check again, and it must be the same request). `wait_timeout` is how long the inline
    handler waits for reviewers (None: as long as it takes; 0: not at all, the run ends with
    `DeferredToolRequests`). Other keyword `options` go to `run_step` (`refresh_context`,
    `risk`, `owner`, `outcome_detail`, `on_update`, ...).
    """

    def __init__(self, client: Any, *, gated: Callable[[str], bool] | None = None, **settings):
        if not inspect.iscoroutinefunction(client.run_step):
            raise TypeError("Pydantic AI runs tools in asyncio: use an AsyncGatekeeperClient")
        super().__init__(client, **settings)
        self.gated = gated or (lambda name: True)

    @classmethod
    def get_serialization_name(cls) -> str | None:
        return None  # holds a client: built in code, never from an agent spec

    async def wrap_tool_execute(self, ctx: Any, *, call: Any, tool_def: Any, args, handler):
        if not self.gated(call.tool_name):
            return await handler(args)
        step = self._step(ctx, call)
        given = to_jsonable_python(args)
        if not ctx.tool_call_approved:
            decision = await self.drive(self.check(step, given))
            if decision.needs_approval:
                raise ApprovalRequired(metadata=_deferral(step, decision.approval, given))
            checked = given
        else:  # approved: the deferral's check, replayed, decides what runs
            checked = _checked_args(ctx.tool_call_metadata, given)

        async def run(**approved: Any) -> Any:
            if ctx.tool_call_approved and approved != given:
                raise ArgsNotApproved(
                    f"{step.tool} was approved with {given}, the reviewers approved {approved}"
                )
            return await handler(args if approved == given else approved)

        flow = self.call(
            run,
            checked,
            step,
            # Pydantic AI asks the handler once per call and run: once approved, a reconcile
            # (after OutcomeUnknown) is waited on here, or deferred again when not waiting.
            wait_timeout=self.wait_timeout if ctx.tool_call_approved else 0,
            rerun=ctx.tool_call_approved,
            context=self.context_of(step, checked),
        )
        try:
            verdict = await self.drive(flow)
        except ArgsNotApproved as error:  # recorded as failed: the tool did not run
            return ToolDenied(str(error))
        if isinstance(verdict, Approval):
            # Still open (approved early by the caller, or a reconcile not waited on): defer again.
            raise ApprovalRequired(metadata=_deferral(step, verdict, checked))
        if verdict.run:
            return verdict.result
        return verdict.reason if verdict.skip else ToolDenied(verdict.reason)

    async def handle_deferred_tool_calls(self, ctx: Any, *, requests: DeferredToolRequests):
        results = await self.results(requests, wait_timeout=self.wait_timeout)
        return results if results.approvals else None

    async def results(
        self, requests: DeferredToolRequests, *, wait_timeout: float | None = 0
    ) -> DeferredToolResults:
        """Gatekeeper's decisions on the deferred calls it asked for, as `DeferredToolResults`.

        Approved: `ToolApproved(override_args=...)` with the reviewers' args (edits included);
        rejected, expired or terminated: `ToolDenied` with the reason; reconciled as already
        applied: approved, and the tool answers that it is not run again. Calls still open
        after `wait_timeout` (0: do not wait; None: as long as it takes) are left out:
        `requests.remaining(results)` lists them.
        """
        results = DeferredToolResults()
        for call in requests.approvals:
            metadata = requests.metadata.get(call.tool_call_id) or {}
            paused = metadata.get("gatekeeper")
            if not paused:  # deferred by something else: not ours to answer
                continue
            approval = await self.drive(
                self.decided(
                    await self.client.approval(paused["approval_id"]), wait_timeout=wait_timeout
                )
            )
            if approval is None:
                continue
            results.metadata[call.tool_call_id] = metadata
            verdict = verdict_on(approval)
            if verdict.run:
                args = dict(verdict.args)
                results.approvals[call.tool_call_id] = ToolApproved(override_args=args)
            elif verdict.skip:  # the tool says it is not run again
                results.approvals[call.tool_call_id] = ToolApproved()
            else:
                results.approvals[call.tool_call_id] = ToolDenied(verdict.reason)
        return results

    def _step(self, ctx: Any, call: Any) -> Step:
        gated_ids = (
            part.tool_call_id
            for message in ctx.messages
            if isinstance(message, ModelResponse)
            for part in message.parts
            if isinstance(part, ToolCallPart) and self.gated(part.tool_name)
        )
        return self.gated_step(
            ctx.conversation_id or "", call.tool_call_id, gated_ids, call.tool_name
        )


def _deferral(step: Step, approval: Any, checked: dict) -> dict:
    """A deferred call's metadata: where reviewers decide, and the args the gate checked."""
    payload = pause_payload(step, approval)
    payload["gatekeeper"]["checked_args"] = checked
    return payload


def _checked_args(metadata: Any, given: dict) -> dict:
    """The args the deferral's check was sent with (else the call's: a replay must match)."""
    paused = (metadata or {}).get("gatekeeper") if isinstance(metadata, dict) else None
    return dict(paused["checked_args"]) if paused and "checked_args" in paused else given
