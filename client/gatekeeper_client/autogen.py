"""Gatekeeper for AutoGen (autogen-agentchat): tools that ask the gate before they run.

    from gatekeeper_client import AsyncGatekeeperClient
    from gatekeeper_client.autogen import GatekeeperTools

    gate = GatekeeperTools(gk, workflow="hr-onboarding", thread_id="onboard-82", tool_names=names)
    agent = AssistantAgent("hr", model_client, tools=gate.gate_tools([hr_lookup, iam_grant]))
    await agent.run(task="onboard jdoe")

Each gated tool (`FunctionTool`, any `BaseTool`, or a plain function) asks the gate when the
agent calls it and waits for reviewers (long-poll) when they must decide; it runs with the args
they approved, edits included, and its outcome is recorded. A refusal (block, rejection,
expiry, termination) is the tool call's error result carrying the reason, so the model hears it
and the run goes on. AutoGen cannot pause inside a tool call: a run that must stop while it
waits ends its wait after `wait_timeout` (the call's error says the approval is still open);
running the same thread again replays the gate checks, and a call already run is not run again.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

try:
    from autogen_core import CancellationToken
    from autogen_core.tools import BaseTool, FunctionTool
except ImportError as error:  # pragma: no cover - exercised without the extra installed
    raise ImportError(
        "gatekeeper_client.autogen needs AutoGen: pip install 'gatekeeper-client[autogen]'"
    ) from error

from .adapters import Step, ToolGate
from .errors import StillWaiting
from .models import Approval

__all__ = ["GatedTool", "GatekeeperTools"]


class GatekeeperTools(ToolGate):
    """Gate the tools of one AutoGen run (execution `thread_id`) with Gatekeeper.

    `client` is an `AsyncGatekeeperClient`. `tool_names` maps a tool's name to the gate's
    `tool`. `context(tool_name, args)` returns the context reviewers see (give each item its
    `observed_at`, so a re-run sends the same request). `wait_timeout` bounds a wait for
    reviewers (None: as long as it takes). Other keyword `options` go to `run_step`
    (`refresh_context`, `risk`, `owner`, `outcome_detail`, `on_update`, ...). Step indexes
    count the gated calls in the order the agent makes them: one object per run.
    """

    def __init__(self, client: Any, *, thread_id: str, **settings: Any):
        if not inspect.iscoroutinefunction(client.run_step):
            raise TypeError("AutoGen runs tools in asyncio: use an AsyncGatekeeperClient")
        super().__init__(client, **settings)
        self.thread_id = thread_id
        self.calls: list[str] = []  # the ids of the gated calls made so far, in order

    def gate_tools(self, tools: list) -> list:
        """The tools, each gated; a plain function becomes a `FunctionTool` first."""
        return [self.gate(tool) for tool in tools]

    def gate(self, tool: BaseTool | Callable[..., Any]) -> GatedTool:
        if not isinstance(tool, BaseTool):
            tool = FunctionTool(tool, description=inspect.getdoc(tool) or tool.__name__)
        return GatedTool(self, tool)

    def step(self, name: str, call_id: str | None) -> Step:
        if call_id and call_id not in self.calls:
            self.calls.append(call_id)
        return self.gated_step(self.thread_id, call_id or "", self.calls, name)

    async def decide(self, tool: BaseTool, args: Mapping[str, Any], call_id: str | None, token):
        step = self.step(tool.name, call_id)

        async def run(**approved: Any) -> Any:
            return await tool.run_json(approved, token, call_id=call_id)

        flow = self.call(
            run,
            args,
            step,
            wait_timeout=self.wait_timeout,
            rerun=True,  # a re-run of the thread never runs a landed step again
            context=self.context_of(step, args),
        )
        verdict = await self.drive(flow)
        if isinstance(verdict, Approval):
            raise StillWaiting(
                f"approval {verdict.id} is still {verdict.status}: run thread "
                f"{step.thread_id} again once reviewers decided ({verdict.url})",
                approval=verdict,
            )
        if verdict.run:
            return verdict.result
        if verdict.skip:
            return verdict.reason
        self.refused(step, verdict.reason)
        raise verdict.error  # the call's error result: its text is the reason


class GatedTool(BaseTool):
    """`tool` as the model sees it (name, description, schema), asking Gatekeeper first."""

    def __init__(self, gate: GatekeeperTools, tool: BaseTool):
        super().__init__(tool.args_type(), tool.return_type(), tool.name, tool.description)
        self.gate = gate
        self.tool = tool

    @property
    def schema(self):
        return self.tool.schema

    def return_value_as_string(self, value: Any) -> str:
        return self.tool.return_value_as_string(value)

    async def run(self, args: Any, cancellation_token: CancellationToken) -> Any:
        return await self.run_json(args.model_dump(), cancellation_token)

    async def run_json(
        self,
        args: Mapping[str, Any],
        cancellation_token: CancellationToken,
        call_id: str | None = None,
    ) -> Any:
        return await self.gate.decide(self.tool, args, call_id, cancellation_token)
