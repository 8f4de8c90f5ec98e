"""Gatekeeper for the OpenAI Agents SDK: tool approvals decided by Gatekeeper's reviewers.

    from gatekeeper_client import AsyncGatekeeperClient
    from gatekeeper_client.openai_agents import GatekeeperApprovals

    approvals = GatekeeperApprovals(gk, workflow="hr-onboarding", tool_names=names)
    agent = Agent(name="hr", tools=approvals.gate_tools([hr_lookup, iam_grant]))
    context = {"thread_id": "onboard-81"}
    result = await Runner.run(agent, "onboard jdoe", context=context)
    while result.interruptions:
        state = result.to_state()
        await approvals.resolve(state, wait_timeout=None)
        result = await Runner.run(agent, state)

A gated tool's `needs_approval` asks the gate: a call that needs reviewers interrupts the run
(the SDK's own `result.interruptions`); `resolve` answers them from Gatekeeper's decisions
(`state.approve`, or `state.reject` with the reviewer's comment as the message). A run can stop
while it waits: keep `state.to_string()` and resume it in any process with
`RunState.from_string(agent, text)`, then `resolve` it again. The approved call runs with the
reviewers' args, edits included, and its outcome is recorded. The run's context must be a dict
with the execution's `thread_id`; the adapter keeps the run's gated call ids in it
(`gatekeeper_calls`), so step indexes survive the round trip through `to_string()`.

An MCP server's tools are gated the same way, per call and with the call's args: connect the
server, then give the agent `tools=await approvals.mcp_tools(server)` instead of
`mcp_servers=[server]` (the SDK's own MCP `require_approval` callable is asked per tool, never
with a call's args, so it cannot ask the gate). An error the server answers is recorded as
failed; a broken connection during a call (the server may or may not have acted) is an
`OutcomeUnknown`: a human reconciles it.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

try:
    from agents import FunctionTool, RunContextWrapper, RunState
    from agents.mcp import MCPServer, MCPUtil
    from agents.tool import (
        maybe_invoke_function_tool_failure_error_function,
        set_function_tool_failure_error_function,
    )
except ImportError as error:  # pragma: no cover - exercised without the extra installed
    raise ImportError(
        "gatekeeper_client.openai_agents needs the OpenAI Agents SDK: "
        "pip install 'gatekeeper-client[openai-agents]'"
    ) from error

from .adapters import Step, ToolGate, verdict_on
from .errors import OutcomeUnknown, StillWaiting
from .models import Approval

__all__ = ["GatekeeperApprovals"]

CALLS_KEY = "gatekeeper_calls"  # the run context's list of gated call ids, in order


class GatekeeperApprovals(ToolGate):
    """Gate function tools of an agent with Gatekeeper, through the SDK's approvals.

    `client` is an `AsyncGatekeeperClient`. `tool_names` maps a tool's name to the gate's
    `tool`. `context(tool_name, args)` returns the context reviewers see (give each item its
    `observed_at`: the check is sent again when the approved call runs, and must be the same
    request). `wait_timeout` bounds a wait inside a tool call: for a reconcile, when the tool
    raised `OutcomeUnknown` (the run cannot pause there). A block reaches the model as the
    tool's output with the reason. Other keyword
    `options` go to `run_step` (`refresh_context`, `risk`, `owner`, `outcome_detail`, ...).
    """

    def gate_tools(self, tools: list) -> list:
        """The tools, each `FunctionTool` gated (others unchanged)."""
        return [self.gate(tool) if isinstance(tool, FunctionTool) else tool for tool in tools]

    async def mcp_tools(
        self, server: MCPServer, *, convert_schemas_to_strict: bool = False
    ) -> list[FunctionTool]:
        """The tools of a connected MCP `server`, as the SDK makes them, each gated per call.

        Listed now: list them again for a server whose tools change (a callable `tool_filter`
        needs the run, and the SDK refuses it here). The server's own `require_approval` is
        replaced by the gate. A call whose connection breaks before the server answers is
        `OutcomeUnknown`.
        """
        listed = await MCPUtil.get_function_tools(
            _Answering(server), convert_schemas_to_strict, RunContextWrapper(context=None), None
        )
        return [self.gate(tool, outcome_unknown=_connection_broke) for tool in listed]

    def gate(
        self,
        tool: FunctionTool,
        *,
        outcome_unknown: Callable[[BaseException], bool] | None = None,
    ) -> FunctionTool:
        """A copy of `tool` that asks Gatekeeper first and runs with the approved args.

        `outcome_unknown(error)` says which of the tool's errors leave unknown whether its
        write happened: they are raised as `OutcomeUnknown`, so a human reconciles the step.
        """
        # The tool's own invoker, raising: the gate must see a failure to record it (and an
        # OutcomeUnknown to reconcile it); the tool's failure policy is applied after that.
        raising = dataclasses.replace(tool)
        set_function_tool_failure_error_function(raising, None)
        invoke = raising.on_invoke_tool

        async def needs_approval(run_context: Any, args: dict, call_id: str) -> bool:
            step = self._step(run_context, tool.name, call_id)
            decision = await self.drive(self.check(step, args))
            return decision.needs_approval

        async def on_invoke_tool(tool_context: Any, input_json: str) -> Any:
            step = self._step(tool_context, tool.name, tool_context.tool_call_id)
            args = json.loads(input_json or "{}")

            async def run(**approved: Any) -> Any:
                answers: list = []  # an MCP server's answer to the call (see _Answering)
                token = _ANSWERS.set(answers)
                try:
                    output = await invoke(tool_context, json.dumps(approved))
                except Exception as error:
                    if outcome_unknown is not None and outcome_unknown(error):
                        raise OutcomeUnknown(f"{step.tool}: {error}") from error
                    raise
                finally:
                    _ANSWERS.reset(token)
                if any(getattr(answer, "is_error", None) for answer in answers):
                    raise _AnsweredError(output)
                return output

            flow = self.call(
                run,
                args,
                step,
                wait_timeout=self.wait_timeout,
                context=self.context_of(step, args),
            )
            try:
                verdict = await self.drive(flow)
            except _AnsweredError as answered:  # recorded as failed; the model hears the answer
                return answered.output
            except Exception as error:  # noqa: BLE001 - recorded as failed; the SDK's policy now
                message = await maybe_invoke_function_tool_failure_error_function(
                    function_tool=tool, context=tool_context, error=error
                )
                if message is None:
                    raise
                return message
            if isinstance(verdict, Approval):
                raise StillWaiting(
                    f"approval {verdict.id} is not decided: resolve the run's interruptions",
                    approval=verdict,
                )
            if verdict.run:
                return verdict.result
            return verdict.reason if verdict.skip else self.refused(step, verdict.reason)

        return dataclasses.replace(
            tool, needs_approval=needs_approval, on_invoke_tool=on_invoke_tool
        )

    async def resolve(self, state: RunState, *, wait_timeout: float | None = 0) -> list:
        """Answer the state's interruptions from Gatekeeper's decisions; those still open.

        Approved calls are approved (they run with the reviewers' args when the run resumes);
        rejected, expired or terminated ones are rejected with the reason as the message the
        model sees; a reconciled one (its write had happened) is rejected saying so. Calls
        still open are left as they are: `wait_timeout` is how long to wait for them (0: not
        at all; None: as long as it takes). When none is left open, run the state again;
        otherwise keep `state.to_string()` and resolve it again later.
        """
        still_open = []
        for item in state.get_interruptions():
            name = item.tool_name or item.raw_item.name
            step = self._step(state._context, name, item.raw_item.call_id)  # noqa: SLF001
            args = json.loads(item.raw_item.arguments or "{}")
            decision = await self.drive(self.check(step, args))
            if decision.approval is None:  # not gated for approval: nothing to answer
                continue
            approval = await self.drive(self.decided(decision.approval, wait_timeout=wait_timeout))
            if approval is None:
                still_open.append(item)
                continue
            verdict = verdict_on(approval)
            if verdict.run:
                state.approve(item)
            elif verdict.skip:
                state.reject(item, rejection_message=verdict.reason)
            else:
                state.reject(item, rejection_message=self.refused(step, verdict.reason))
        return still_open

    def _step(self, run_context: Any, name: str, call_id: str) -> Step:
        context = run_context.context
        if not isinstance(context, dict) or not context.get("thread_id"):
            raise TypeError(
                'the run context must be a dict with the execution\'s "thread_id": '
                'Runner.run(agent, input, context={"thread_id": ...})'
            )
        seen = context.setdefault(CALLS_KEY, [])
        if call_id not in seen:
            seen.append(call_id)
        return self.gated_step(context["thread_id"], call_id, seen, name)


# The answers an MCP server gave to the gated call running in this context.
_ANSWERS: ContextVar[list | None] = ContextVar("gatekeeper_mcp_answers", default=None)


class _AnsweredError(Exception):
    """The MCP server answered the call with an error (`isError`): the SDK hands the model
    that answer as the tool's output; the gate records the call as failed."""

    def __init__(self, output: Any):
        super().__init__("the MCP server answered with an error")
        self.output = output


class _Answering:
    """An MCP server as the SDK's MCP tools see it: the server itself, except that each
    call's answer is also noted for the gated call that made it (the SDK turns an error
    answer into plain output, so the gate would not know the call failed)."""

    def __init__(self, server: MCPServer):
        self._server = server

    def __getattr__(self, name: str) -> Any:
        return getattr(self._server, name)

    async def call_tool(self, *args: Any, **kwargs: Any) -> Any:
        answer = await self._server.call_tool(*args, **kwargs)
        answers = _ANSWERS.get()
        if answers is not None:  # the SDK calls in a task of its own: the list is shared
            answers.append(answer)
        return answer


def _connection_broke(error: BaseException | None) -> bool:
    """Whether an MCP call failed because its connection broke before the server answered
    (the call may have run), rather than with an error the server answered."""
    # Imported here: mcp 2's names (the `mcp` extra's), needed only once an MCP call failed.
    import anyio
    import mcp_types
    from mcp.shared.exceptions import MCPError

    broken = (anyio.BrokenResourceError, anyio.ClosedResourceError, anyio.EndOfStream)
    unanswered = (mcp_types.CONNECTION_CLOSED, mcp_types.REQUEST_TIMEOUT)
    while error is not None:  # the SDK wraps what the transport raised
        if isinstance(error, broken) or (isinstance(error, MCPError) and error.code in unanswered):
            return True
        error = error.__cause__
    return False
