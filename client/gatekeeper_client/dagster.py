"""Dagster (extra `dagster`): gate a step inside an op or an asset.

Dagster has no human approval of its own and no durable pause: `gate`, called in the op, asks
Gatekeeper and, when reviewers must decide, waits for them by long-polling (the op's process
waits; no thread of its own is held in between polls). A step sent back to review calls
`refresh_context()` for the facts read again and waits on the new approval. The op runs its
tool only when `verdict.run`, with `verdict.args` (a reviewer's edits included).

The thread is the run's `gatekeeper/thread_id` tag, else the root run's id, so a re-execution
of a failed run replays the same gate checks (key: thread and step index) instead of asking
again.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

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
