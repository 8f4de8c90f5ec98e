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

Offline (tests, examples), set CREWAI_DISABLE_TELEMETRY=true and OTEL_SDK_DISABLED=true.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

try:
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

from .adapters import (
    AlreadyApplied,
    Ran,
    Refused,
    Step,
    ToolNames,
    decide,
    gate_call,
    gate_tool_name,
    step_for,
)

__all__ = ["GatekeeperToolHook"]


class GatekeeperToolHook:
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
        workflow: str,
        thread_id: str,
        tool_names: ToolNames = None,
        gated: Callable[[str], bool] | None = None,
        context: Callable[[str, dict], Any] | None = None,
        wait_timeout: float | None = None,
        **options: Any,
    ):
        self.client = client
        self.workflow = workflow
        self.thread_id = thread_id
        self.tool_names = tool_names
        self.gated = gated or (lambda name: True)
        self.context = context
        self.wait_timeout = wait_timeout
        self.options = options
        self.calls: list[str] = []  # the gated calls made so far, in order
        # (gate tool, reason) of each call this object refused, in order: for logs and prints.
        self.refusals: list[tuple[str, str]] = []
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

        flow = gate_call(
            self.client,
            run,
            args,
            step,
            workflow=self.workflow,
            wait_timeout=self.wait_timeout,
            rerun=True,  # a re-run of the thread never runs a landed step again
            context=self.context(step.tool, args) if self.context else None,
            **self.options,
        )
        verdict = decide(self.client, flow)
        if isinstance(verdict, Ran):
            return str(verdict.result)
        if isinstance(verdict, Refused):
            self.refusals.append((step.tool, verdict.reason))
            return verdict.reason
        if isinstance(verdict, AlreadyApplied):
            return verdict.message
        return (
            f"not run: approval {verdict.approval.id} is still {verdict.approval.status} "
            f"({verdict.approval.url}); run thread {step.thread_id} again once it is decided"
        )

    def _step(self, name: str, args: dict) -> Step:
        # No call id from CrewAI: the call's place in the run, its tool and its args name it.
        index = len(self.calls)
        called = json.dumps([name, args], sort_keys=True, default=str)
        digest = hashlib.sha256(called.encode()).hexdigest()
        call_id = f"{index}-{name}-{digest[:16]}"
        self.calls.append(call_id)
        tool = gate_tool_name(self.tool_names, name)
        return step_for(self.thread_id, call_id, self.calls, name, tool)
