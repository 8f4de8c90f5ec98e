"""Prefect 3: gate a step of a flow; a step that needs approval suspends the flow run
(extra `prefect`).

`gate(gk, ...)`, called in a flow, asks Gatekeeper. When reviewers must decide, the flow run is
suspended with `suspend_flow_run(wait_for_input=Decision)`: its process exits, no thread
waits. `gatekeeper-relay --engine prefect` resumes it with `resume_flow_run(..., run_input=
{"approval": ...})`; Prefect runs the flow again from the top (tasks with persisted results
are not run again), and `gate` then returns the decision. The flow must run from a deployment
(`flow.serve()`, a worker) and persist its tasks' results, as Prefect requires to suspend.
The thread is the flow run's id; the idempotency key the run and the step index.
Re-review (approved, but the step's facts had changed or grown old) resumes the run too: `gate`
calls its `refresh_context()` to read the facts again, hands them to the stale approval and
suspends until the new one is decided; without `refresh_context` the step ends (`stale`).

`run(gk, step_index, tool_task, verdict.args)` runs the step's tool task with the approved
args, then records its outcome in the `gatekeeper.outcome` task: `landed`, `failed` when the
tool raised, `indeterminate` when it raised `OutcomeUnknown`, or when an earlier attempt of the
flow run started the tool's task and never finished it (its process died mid-call: the run is
retried, and the tool is not run again). Both persist their results, so the run's replay from
the top after a resume runs neither again; a retried outcome task finds the outcome recorded
and records nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from prefect import task
from prefect.flow_runs import resume_flow_run, suspend_flow_run
from prefect.input import RunInput
from prefect.runtime import flow_run

from .errors import OutcomeUnknown
from .models import Approval
from .step_outcomes import LANDED, outcome_of, record
from .verdicts import Verdict, allowed_verdict, blocked_verdict
from .waits import settle

ENGINE = "prefect"
OUTCOME_TASK = "gatekeeper.outcome"


class Decision(RunInput):
    """The run input a suspended gate waits for: the decided approval, as the API shows it."""

    approval: dict


def gate(
    gk: Any,
    workflow: str,
    step_index: int,
    tool: str,
    args: Mapping[str, Any],
    *,
    step_name: str | None = None,
    store: Any = None,
    timeout: int | None = 24 * 3600,
    refresh_context: Callable[[], Any] | None = None,
    **options: Any,
) -> Verdict:
    """Ask; suspend the flow run until reviewers decide. `run` says whether the tool runs.

    `store` (a relay's `RelayStore`) records the wait for long-polling; `refresh_context()`
    reads the step's facts again after a re-review (a mapping or list, as `context`);
    `options` are more `check()` keywords (context, risk, owner...).
    """
    run_id = str(flow_run.get_id())
    decision = gk.check(
        run_id,
        workflow,
        step_index,
        step_name,
        tool,
        dict(args),
        idempotency_key=f"prefect:{run_id}:{step_index}",
        callback={"engine": ENGINE, "flow_run_id": run_id},
        **options,
    )
    if decision.allowed:
        return allowed_verdict(args, decision.reason)
    if decision.blocked:
        return blocked_verdict(decision.reason, args)
    # A re-run replays the check's first answer: the approval as it was then. Read it now.
    approval = gk.approval(decision.approval.id)
    while not isinstance(settled := settle(gk, approval, args, refresh_context), Verdict):
        approval = _suspended(settled, run_id, store, timeout)
    return settled


def _suspended(approval: Approval, run_id: str, store: Any, timeout: int | None) -> Approval:
    """Suspend the run until the relay resumes it with the approval's next state."""
    if store is not None:
        store.expect(approval.id, ENGINE, {"flow_run_id": run_id})
    answer = suspend_flow_run(
        wait_for_input=Decision, key=f"gatekeeper-{approval.id}", timeout=timeout
    )
    if answer.approval.get("id") != approval.id:  # only the approval this step asked for
        raise ValueError(f"resumed with approval {answer.approval.get('id')!r}, not {approval.id}")
    return Approval.from_json(answer.approval)


def run(gk: Any, step_index: int, tool: Callable[[dict], Any], args: Mapping[str, Any]) -> Any:
    """Run the step's `tool` (a task persisting its result) with the approved `args`, then
    record its outcome; the tool's result, or its error raised once the outcome is recorded."""
    thread_id = str(flow_run.get_id())
    try:
        if _interrupted(tool, thread_id):
            raise OutcomeUnknown(f"{tool.name} was still running when its flow run stopped")
        result = tool(dict(args))
    except Exception as error:
        record_outcome(gk, thread_id, step_index, *outcome_of(error))
        raise
    record_outcome(gk, thread_id, step_index, LANDED, None)
    return result


def _interrupted(tool: Any, flow_run_id: str) -> bool:
    """Whether an earlier attempt of this flow run started `tool`'s task and never finished it."""
    from uuid import UUID

    from prefect import get_client
    from prefect.client.schemas.filters import TaskRunFilter, TaskRunFilterFlowRunId
    from prefect.client.schemas.objects import StateType

    runs = TaskRunFilter(flow_run_id=TaskRunFilterFlowRunId(any_=[UUID(flow_run_id)]))
    with get_client(sync_client=True) as client:
        states = {
            run.state_type
            for run in client.read_task_runs(task_run_filter=runs)
            if run.task_key == tool.task_key
        }
    return StateType.COMPLETED not in states and bool(
        states & {StateType.RUNNING, StateType.CRASHED}
    )


def _outcome_key(context: Any, parameters: dict) -> str:
    """One outcome task run per step and outcome: a replayed flow finds its result persisted."""
    return "gatekeeper-outcome-{thread_id}-{step_index}-{side_effect}".format(**parameters)


@task(
    name=OUTCOME_TASK,
    persist_result=True,
    cache_key_fn=_outcome_key,
    retries=5,
    retry_delay_seconds=2,
)
def record_outcome(
    gk: Any, thread_id: str, step_index: int, side_effect: str, detail: dict | None
) -> bool:
    """Record the step's outcome unless already recorded; whether it recorded it."""
    return record(gk, thread_id, step_index, side_effect, detail)


class PrefectHandler:
    """The relay's handler: resume the suspended flow run with the decided approval.

    `api_url` is the Prefect API's (default: Prefect's settings, PREFECT_API_URL).
    """

    def __init__(self, api_url: str | None = None):
        self.api_url = api_url

    def signal(self, target: Mapping[str, Any], approval: Mapping[str, Any]) -> None:
        from contextlib import nullcontext
        from uuid import UUID

        from prefect.settings import PREFECT_API_URL, temporary_settings

        # Settings live in context variables, which a relay's request thread does not inherit.
        scope = temporary_settings({PREFECT_API_URL: self.api_url}) if self.api_url else None
        with scope or nullcontext():
            resume_flow_run(UUID(target["flow_run_id"]), run_input={"approval": dict(approval)})


def relay_handler() -> PrefectHandler:
    """For `gatekeeper-relay --engine prefect`: PREFECT_API_URL from the environment."""
    return PrefectHandler()
