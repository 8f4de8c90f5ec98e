"""Gatekeeper for LangGraph and LangChain agents: every tool call asks the gate first.

    from langchain.agents import create_agent
    from gatekeeper_client.langgraph import GatekeeperMiddleware

    agent = create_agent(model, tools, middleware=[
        GatekeeperMiddleware(gk, workflow="hr-onboarding", tool_names={"iam_grant": "iam.grant"}),
    ])

A plain `StateGraph` gates its `ToolNode` with the same object:
`ToolNode(tools, wrap_tool_call=gate.tool_gate, awrap_tool_call=gate.atool_gate)`.

Wait mode (the default) long-polls inside the tool call. Durable mode (`durable=True`, with a
checkpointer) pauses the graph with `interrupt()` while reviewers decide; resume the thread with
`Command(resume=...)` (any value: the decision is read from Gatekeeper, never from the resume
value) from whatever hears the decision, in this process or another. The step is keyed on the
thread id and the tool call id, so the node's re-run after a resume replays the gate check and
runs the tool once, with the approved args.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from typing import Any

try:
    from langchain.agents.middleware import AgentMiddleware
    from langchain_core.messages import AIMessage, ToolMessage
    from langgraph.types import interrupt
except ImportError as error:  # pragma: no cover - exercised without the extra installed
    raise ImportError(
        "gatekeeper_client.langgraph needs LangGraph and LangChain: "
        "pip install 'gatekeeper-client[langgraph]'"
    ) from error

from .adapters import Step, ToolGate, pause_payload
from .errors import StillWaiting
from .models import Approval
from .verdicts import Verdict

__all__ = ["GatekeeperMiddleware"]


class _ToolFailed(Exception):
    """The tool answered with an error message: recorded as failed, the message returned."""

    def __init__(self, message: ToolMessage):
        super().__init__(message.content)
        self.message = message


class GatekeeperMiddleware(ToolGate, AgentMiddleware):
    """Gate each tool call of an agent (or a `ToolNode`) with Gatekeeper.

    `client` is a `GatekeeperClient` (for `invoke`/`stream`) or an `AsyncGatekeeperClient`
    (for `ainvoke`/`astream`). `workflow` names the execution's workflow; the thread id is the
    run's `configurable.thread_id`. `tool_names` maps a tool's name to the gate's `tool`;
    `gated(name)` says which tools to gate (all by default). `context(tool_call, state)`
    returns the context reviewers see (give each item its `observed_at`, so a re-run sends the
    same request). `durable=True` pauses with `interrupt()` instead of waiting, which needs a
    checkpointer; `wait_timeout` bounds a wait-mode wait (then `StillWaiting` is raised).
    A refused call reaches the model as an error `ToolMessage` with the reason, or raises
    `Blocked` with `raise_on_refusal=True`. Other keyword `options` go to `run_step`
    (`refresh_context`, `risk`, `owner`, `outcome_detail`, `on_update`, ...).
    """

    def __init__(
        self,
        client: Any,
        *,
        gated: Callable[[str], bool] | None = None,
        durable: bool = False,
        wait_timeout: float | None = None,
        raise_on_refusal: bool = False,
        **settings: Any,
    ):
        super().__init__(client, wait_timeout=0 if durable else wait_timeout, **settings)
        self.gated = gated or (lambda name: True)
        self.durable = durable
        self.raise_on_refusal = raise_on_refusal
        self._asynchronous = inspect.iscoroutinefunction(client.run_step)

    def wrap_tool_call(self, request: Any, handler: Callable[[Any], Any]) -> Any:
        return self.tool_gate(request, handler)

    async def awrap_tool_call(self, request: Any, handler: Callable[[Any], Any]) -> Any:
        return await self.atool_gate(request, handler)

    def tool_gate(self, request: Any, handler: Callable[[Any], Any]) -> Any:
        """`ToolNode(wrap_tool_call=...)`: gate the call, run it through `handler` if it may."""
        if self._asynchronous:
            raise TypeError("an AsyncGatekeeperClient gates ainvoke/astream runs only")
        if not self.gated(request.tool_call["name"]):
            return handler(request)
        step = self._step(request)

        def run(**args: Any) -> Any:
            return _succeeded(handler(_with_args(request, args)))

        while True:
            try:
                verdict = self.drive(self._gate(request, run, step))
            except _ToolFailed as failed:
                return failed.message
            if not (self.durable and isinstance(verdict, Approval)):
                return self._answer(request, verdict)
            interrupt(pause_payload(step, verdict))  # returns once resumed

    async def atool_gate(self, request: Any, handler: Callable[[Any], Any]) -> Any:
        """`ToolNode(awrap_tool_call=...)`: `tool_gate` for async runs."""
        if not self._asynchronous:
            raise TypeError("async runs (ainvoke/astream) are gated with an AsyncGatekeeperClient")
        if not self.gated(request.tool_call["name"]):
            return await handler(request)
        step = self._step(request)

        async def run(**args: Any) -> Any:
            return _succeeded(await handler(_with_args(request, args)))

        while True:
            try:
                verdict = await self.drive(self._gate(request, run, step))
            except _ToolFailed as failed:
                return failed.message
            if not (self.durable and isinstance(verdict, Approval)):
                return self._answer(request, verdict)
            interrupt(pause_payload(step, verdict))

    def _step(self, request: Any) -> Step:
        call = request.tool_call
        configurable = (request.runtime.config or {}).get("configurable", {})
        thread_id = str(configurable.get("thread_id") or "")
        gated_ids = _gated_call_ids(request.state, self.gated)
        return self.gated_step(thread_id, call["id"], gated_ids, call["name"])

    def _gate(self, request: Any, run: Callable[..., Any], step: Step):
        call = request.tool_call
        return self.call(
            run,
            call["args"],
            step,
            wait_timeout=self.wait_timeout,
            rerun=self.durable,
            context=self.context(call, request.state) if self.context else None,
        )

    def _answer(self, request: Any, verdict: Verdict | Approval) -> Any:
        call = request.tool_call
        if isinstance(verdict, Approval):
            raise StillWaiting(f"approval {verdict.id} is still {verdict.status}", approval=verdict)
        if verdict.run:
            return verdict.result
        if verdict.skip:
            return ToolMessage(content=verdict.reason, name=call["name"], tool_call_id=call["id"])
        if self.raise_on_refusal:
            raise verdict.error
        return ToolMessage(
            content=verdict.reason, name=call["name"], tool_call_id=call["id"], status="error"
        )


def _with_args(request: Any, args: dict) -> Any:
    return request.override(tool_call={**request.tool_call, "args": args})


def _succeeded(result: Any) -> Any:
    if isinstance(result, ToolMessage) and result.status == "error":
        raise _ToolFailed(result)
    return result


def _gated_call_ids(state: Any, gated: Callable[[str], bool]) -> Iterator[str]:
    """The ids of the gated tool calls the model made so far in this thread, in order."""
    messages = state.get("messages", []) if isinstance(state, dict) else state
    messages = getattr(messages, "messages", messages)
    for message in messages or ():
        if isinstance(message, AIMessage):
            for call in message.tool_calls:
                if gated(call["name"]):
                    yield call["id"]
