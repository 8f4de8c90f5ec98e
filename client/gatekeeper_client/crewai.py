"""Gatekeeper for CrewAI: a before-tool-call hook that gates each tool call and waits.

    from gatekeeper_client import GatekeeperClient
    from gatekeeper_client.crewai import GatekeeperToolHook

    gate = GatekeeperToolHook(gk, workflow="hr-onboarding", thread_id="onboard-83", tool_names=map)
    with gate.installed():
        crew.kickoff()

CrewAI's tool hooks may edit a call's input and block it; its hooks are synchronous and swallow
their own errors (fail-open). This hook asks the gate before every call and waits for reviewers
(long-poll) when they must decide, then runs the tool itself, once, with the args they approved
(edits included, written back into the call's input), records its outcome, and blocks CrewAI's
own execution of it; the after-tool-call hook hands the agent the result. A refusal (block,
rejection, expiry, termination) reaches the agent as the call's result carrying the reason, and
the run goes on. Anything failing inside the hook blocks the call (fail closed): it never runs
ungated.

CrewAI gives hooks no tool call id: a step is the run's `thread_id` and the call's position
among the gated calls of the run, with its tool and args, so running the same crew again on the
same thread (after a crash) replays each gate check, and a call recorded as landed is not run
again.

For Flows, `GatekeeperFeedback` is a `@human_feedback` provider: reviewers approve or reject
a method's output in Gatekeeper instead of at the console, and a flow that must not wait is
paused (`HumanFeedbackPending`) and resumed from the decision in any process.

Offline (tests, examples), set CREWAI_DISABLE_TELEMETRY=true and OTEL_SDK_DISABLED=true.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

try:
    from crewai.flow.async_feedback import HumanFeedbackPending
    from crewai.hooks import register_after_tool_call_hook, register_before_tool_call_hook
    from crewai.hooks.dispatch import HookAborted
    from crewai.hooks.tool_hooks import (
        unregister_after_tool_call_hook,
        unregister_before_tool_call_hook,
    )
except ImportError as error:  # pragma: no cover - exercised without the extra installed
    raise ImportError(
        "gatekeeper_client.crewai needs CrewAI: pip install 'gatekeeper-client[crewai]'"
    ) from error

from .adapters import Step, ToolGate, decided, gate_call, pause_payload, step_for, verdict_on
from .models import Approval

__all__ = ["GatekeeperFeedback", "GatekeeperToolHook"]


class GatekeeperToolHook(ToolGate):
    """Gate the tool calls of one CrewAI run (execution `thread_id`) with Gatekeeper.

    `client` is a `GatekeeperClient` (CrewAI's hooks are synchronous). `tool_names` maps a
    tool's name to the gate's `tool`; `gated(name)` says which tools to gate (all by default).
    `context(tool_name, args)` returns the context reviewers see (give each item its
    `observed_at`, so a re-run sends the same request). `wait_timeout` bounds a wait for
    reviewers (None: as long as it takes; then the call is refused saying it is still open).
    Other keyword `options` go to `run_step` (`refresh_context`, `risk`, `owner`,
    `outcome_detail`, `on_update`, ...).
    """

    def __init__(
        self,
        client: Any,
        *,
        thread_id: str,
        gated: Callable[[str], bool] | None = None,
        **settings: Any,
    ):
        super().__init__(client, **settings)
        self.thread_id = thread_id
        self.gated = gated or (lambda name: True)
        self.calls: list[str] = []  # the gated calls made so far, in order
        self._answers: dict[int, str] = {}  # a gated call's input (by id) -> what the agent sees

    @contextmanager
    def installed(self) -> Iterator[GatekeeperToolHook]:
        """Register the hooks for the duration of the block (CrewAI's hooks are global)."""
        register_before_tool_call_hook(self.before_tool_call)
        register_after_tool_call_hook(self.after_tool_call)
        try:
            yield self
        finally:
            unregister_before_tool_call_hook(self.before_tool_call)
            unregister_after_tool_call_hook(self.after_tool_call)

    def before_tool_call(self, context: Any) -> None:
        """CrewAI's before-tool-call hook: gate, run the tool once if it may, then block."""
        if not self.gated(context.tool_name):
            return
        try:
            answer = self._answer(context)
        except Exception as error:  # noqa: BLE001 - a hook that raises would let the tool run
            answer = f"Error executing tool: {error}"
        self._answers[id(context.tool_input)] = answer
        raise HookAborted(answer, source="gatekeeper")

    def after_tool_call(self, context: Any) -> str | None:
        """CrewAI's after-tool-call hook: the agent sees what the gated call answered."""
        return self._answers.pop(id(context.tool_input), None)

    def _answer(self, context: Any) -> str:
        args = dict(context.tool_input)
        step = self._step(context.tool_name, args)

        def run(**approved: Any) -> Any:
            context.tool_input.clear()  # in place: CrewAI's events show the args that ran
            context.tool_input.update(approved)
            return context.tool.invoke(approved)

        flow = self.call(
            run,
            args,
            step,
            wait_timeout=self.wait_timeout,
            rerun=True,  # a re-run of the thread never runs a landed step again
            context=self.context_of(step, args),
        )
        verdict = self.drive(flow)
        if isinstance(verdict, Approval):
            return (
                f"not run: approval {verdict.id} is still {verdict.status} ({verdict.url}); "
                f"run thread {step.thread_id} again once it is decided"
            )
        if verdict.run:
            return str(verdict.result)
        return verdict.reason if verdict.skip else self.refused(step, verdict.reason)

    def _step(self, name: str, args: dict) -> Step:
        # No call id from CrewAI: the call's place in the run, its tool and its args name it.
        index = len(self.calls)
        called = json.dumps([name, args], sort_keys=True, default=str)
        digest = hashlib.sha256(called.encode()).hexdigest()
        call_id = f"{index}-{name}-{digest[:16]}"
        self.calls.append(call_id)
        return self.gated_step(self.thread_id, call_id, self.calls, name)


class GatekeeperFeedback:
    """A CrewAI Flow `@human_feedback(provider=...)` whose reviewers decide in Gatekeeper.

    Each request is a gate check of the flow (thread: the flow's state id) for `tool`
    (default `flow.<method>`) with the method's output as `{"output": ...}`. Allowed or
    approved, the feedback is `approved`; refused, `rejected: <reason>`, or just `rejected`
    when the method has `emit` (crewai 1.15 still has its `llm` classify that exact outcome).
    `client` is a `GatekeeperClient`. `wait_timeout`: how long to wait (None: as long as it
    takes); past it the flow pauses with `HumanFeedbackPending` (its
    `callback_info` names the approval) and is resumed, once decided, with
    `Flow.from_pending(flow_id).resume(provider.feedback_for(approval_id, emit))`.
    """

    def __init__(
        self,
        client: Any,
        *,
        workflow: str,
        tool: Callable[[str], str] | None = None,
        wait_timeout: float | None = None,
        approved: str = "approved",
        rejected: str = "rejected",
        **options: Any,
    ):
        self.client = client
        self.workflow = workflow
        self.tool = tool or (lambda method: f"flow.{method}")
        self.wait_timeout = wait_timeout
        self.approved = approved
        self.rejected = rejected
        self.options = options
        self.requests: dict[str, list[str]] = {}  # flow id -> its feedback requests, in order

    def request_feedback(self, context: Any, flow: Any) -> str:
        seen = self.requests.setdefault(context.flow_id, [])
        call_id = f"{len(seen)}-{context.method_name}"
        seen.append(call_id)
        tool = self.tool(context.method_name)
        step = step_for(context.flow_id, call_id, seen, context.method_name, tool)
        output = {"output": context._make_json_safe(context.method_output)}  # noqa: SLF001
        flow_ = gate_call(
            self.client,
            lambda **args: None,  # the method already ran: approving it runs nothing
            output,
            step,
            workflow=self.workflow,
            wait_timeout=self.wait_timeout,
            **self.options,
        )
        verdict = self.client._drive(flow_)  # noqa: SLF001 - the clients' way to run a flow
        if isinstance(verdict, Approval):
            raise HumanFeedbackPending(
                context=context,
                callback_info=pause_payload(step, verdict),
                message=f"waiting for reviewers in Gatekeeper: {verdict.url}",
            )
        if verdict.run or verdict.skip:
            return self.approved
        return self._rejected(verdict.reason, context.emit)

    def feedback_for(self, approval_id: str, emit: list[str] | None = None) -> str | None:
        """The feedback to resume a paused flow with, once reviewers decided; None before."""
        follow = decided(
            self.client, self.client.approval(approval_id), wait_timeout=0, **self.options
        )
        approval = self.client._drive(follow)  # noqa: SLF001 - the clients' way to run a flow
        if approval is None:
            return None
        verdict = verdict_on(approval)
        if verdict.run or verdict.skip:
            return self.approved
        return self._rejected(verdict.reason, emit)

    def _rejected(self, reason: str, emit: list[str] | None) -> str:
        return self.rejected if emit else f"{self.rejected}: {reason}"
