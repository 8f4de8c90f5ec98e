"""Dagster (extra `dagster`): gate a step inside an op or an asset.

Dagster has no human approval of its own and no durable pause: `gate`, called in the op, asks
Gatekeeper and, when reviewers must decide, waits for them by long-polling (the op's process
waits; no thread of its own is held in between polls). A step sent back to review calls
`refresh_context()` for the facts read again and waits on the new approval. The op runs its
tool only when `verdict.run`, with `verdict.args` (a reviewer's edits included), through
`run(context, gk, step_index, tool, verdict.args)`, which records what it did in the same op:
`landed`, `failed` when it raised, `indeterminate` when it raised `OutcomeUnknown`. A step
already recorded as landed (a re-execution of a run that stopped after it) is not run again.

The thread is the run's `gatekeeper/thread_id` tag, else the root run's id, so a re-execution
of a failed run replays the same gate checks (key: thread and step index) instead of asking
again.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from .errors import GatekeeperError
from .step_outcomes import LANDED, outcome_of, record
from .verdicts import Verdict, allowed_verdict, blocked_verdict
from .waits import settle

THREAD_TAG = "gatekeeper/thread_id"
_WAITS_IN = ("pending", "reconciling")  # a human is still at it: keep waiting


def thread_of(context: Any) -> str:
    """The gate's thread for an op's `context`: the run's tag, else its root run's id."""
    run = context.run
    return run.tags.get(THREAD_TAG) or run.root_run_id or run.run_id


def gate(
    context: Any,
    gk: Any,
    workflow: str,
    step_index: int,
    tool: str,
    args: Mapping[str, Any],
    *,
    step_name: str | None = None,
    refresh_context: Callable[[], Any] | None = None,
    poll: int = 55,
    **options: Any,
) -> Verdict:
    """Ask; wait for the reviewers when the gate says so. `run` says whether the tool runs.

    `options` are more `check()` keywords (context, risk, owner...).
    """
    thread_id = thread_of(context)
    decision = gk.check(
        thread_id,
        workflow,
        step_index,
        step_name or context.op.name,
        tool,
        dict(args),
        idempotency_key=f"dagster:{thread_id}:{step_index}",
        **options,
    )
    if decision.allowed:
        return allowed_verdict(args, decision.reason)
    if decision.blocked:
        return blocked_verdict(decision.reason, args)
    approval = gk.approval(decision.approval.id)  # a replayed answer shows it as it was made
    while not isinstance(settled := settle(gk, approval, args, refresh_context), Verdict):
        context.log.info(f"waiting for approval {settled.id} ({settled.url})")
        approval = gk.wait(settled.id, poll=poll, while_in=_WAITS_IN)
    return settled


def run(
    context: Any, gk: Any, step_index: int, tool: Callable[[dict], Any], args: Mapping[str, Any]
) -> Any:
    """Run the step's `tool` with the approved `args` in the op, then record its outcome; the
    tool's result (None when it had landed before), or its error once the outcome is recorded.
    """
    thread_id = thread_of(context)
    recorded = gk.execution(thread_id)["steps"]
    if any(step["index"] == step_index and step["outcome"] == LANDED for step in recorded):
        context.log.info(f"step {step_index} of {thread_id} already ran: not run again")
        return None
    try:
        result = tool(dict(args))
    except Exception as error:
        _record(context, gk, thread_id, step_index, *outcome_of(error))
        raise
    _record(context, gk, thread_id, step_index, LANDED, None)
    return result


def _record(context: Any, gk: Any, thread_id: str, step_index: int, side_effect, detail) -> None:
    try:
        record(gk, thread_id, step_index, side_effect, detail)
    except GatekeeperError as error:
        # The tool has run: failing the op now would invite a re-execution that writes twice.
        context.log.warning(f"could not record outcome {side_effect} of step {step_index}: {error}")
