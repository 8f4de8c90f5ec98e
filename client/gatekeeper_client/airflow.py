"""Airflow 3.1+ (extra `airflow`): a gate as a human-in-the-loop task whose human is Gatekeeper.

`GateOperator` is a `HITLOperator`. When it runs it asks Gatekeeper: an answer known at once
(allowed, blocked, or decided before a retry) is its result; otherwise it writes its HITL
request, its notifier (`OpenPacket`) records which approval the task waits on (for the relay's
store and the task's log), and the task parks in `awaiting_input` (no worker slot, no
triggerer) until `gatekeeper-relay --engine airflow` writes the response from the decision's
webhook into Airflow's metadata database, as Airflow's Required Actions page does.
Only Gatekeeper's pseudo-user may respond (`assigned_users`), and the task reads its verdict
from Gatekeeper, never from the response. Its XCom is the verdict (`decision`, `args`,
`reason`, ...): the task after it runs the tool when `decision` is `allow`, with `args` (a
reviewer's edits included). A re-review calls `refresh_context()` and parks on the new approval.

`OutcomeOperator`, a task after the tool's (trigger rule `all_done`), records what the tool
did: `landed` when its task succeeded, `failed` when it failed (Airflow marks a task whose
worker died failed too: it cannot tell that from an error), and then fails itself so the DAG
run still fails; nothing when the gate refused the step. A retried outcome task finds the
outcome recorded and records nothing.

The thread is `thread_id` (templated), else the DAG and run ids; the key the thread and step.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from typing import Any

from airflow.providers.standard.operators.hitl import HITLOperator
from airflow.sdk import BaseOperator
from airflow.sdk.bases.notifier import BaseNotifier
from airflow.sdk.exceptions import AirflowFailException

from .models import Approval
from .step_outcomes import FAILED, LANDED, record
from .verdicts import Verdict, allowed_verdict, blocked_verdict, verdict_of
from .waits import settle

ENGINE = "airflow"
GATEKEEPER_USER = {"id": "gatekeeper", "name": "Gatekeeper"}
# The HITL options Gatekeeper answers with: what the decision was, as Airflow's UI shows it.
APPROVED, REFUSED, APPLIED, BACK_TO_REVIEW = "Approved", "Refused", "Already applied", "Re-review"
OPTIONS = [APPROVED, REFUSED, APPLIED, BACK_TO_REVIEW]
_NOT_IN_THREAD_ID = re.compile(r"[^A-Za-z0-9._:-]")


def option_for(verdict: Verdict) -> str:
    if verdict.stale:
        return BACK_TO_REVIEW
    return APPROVED if verdict.run else APPLIED if verdict.skip else REFUSED


def _client() -> Any:
    from . import GatekeeperClient

    return GatekeeperClient(os.environ["GATEKEEPER_URL"], os.environ["GATEKEEPER_TOKEN"])


class OpenPacket(BaseNotifier):
    """`GateOperator`'s notifier, as the task starts to wait: which approval it waits on."""

    def notify(self, context: Any) -> None:
        task, ti = context["task"], context["task_instance"]
        approval = task.waits_on
        task.log.info("waiting for Gatekeeper's approval %s: %s", approval.id, approval.url)
        if task.relay_store:
            from .relay import RelayStore

            RelayStore(task.relay_store).expect(approval.id, ENGINE, target_of(ti))


def thread_of(thread_id: str | None, ti: Any) -> str:
    """The gate's thread: `thread_id` (rendered), else the DAG and run ids, made valid."""
    thread = thread_id or f"{ti.dag_id}.{ti.run_id}"
    return _NOT_IN_THREAD_ID.sub("-", thread)[:200]


def target_of(ti: Any) -> dict:
    """The task instance a decision answers: the gate check's callback."""
    return {
        "engine": ENGINE,
        "dag_id": ti.dag_id,
        "run_id": ti.run_id,
        "task_id": ti.task_id,
        "map_index": ti.map_index,
    }


class GateOperator(HITLOperator):
    """Gates `tool` with `args`: waits (parked) until Gatekeeper decides; returns the verdict.

    `gatekeeper` makes the client (default: GATEKEEPER_URL and GATEKEEPER_TOKEN);
    `refresh_context()` reads the step's facts again after a re-review; `relay_store` is the
    path of the relay's RelayStore, for long-polling; `gate_options` are more `check()`
    keywords (context, risk, owner...).
    """

    template_fields = (*HITLOperator.template_fields, "thread_id", "args")

    def __init__(
        self,
        *,
        workflow: str,
        step_index: int,
        tool: str,
        args: Mapping[str, Any],
        thread_id: str | None = None,
        gatekeeper: Callable[[], Any] | None = None,
        refresh_context: Callable[[], Any] | None = None,
        relay_store: str | None = None,
        gate_options: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ):
        kwargs.setdefault("subject", f"Gatekeeper decides {tool}")
        super().__init__(
            options=OPTIONS,
            assigned_users=[GATEKEEPER_USER],
            notifiers=[OpenPacket(), *kwargs.pop("notifiers", [])],
            **kwargs,
        )
        self.workflow, self.step_index, self.tool = workflow, step_index, tool
        self.args, self.thread_id = dict(args), thread_id
        self.gatekeeper = gatekeeper or _client
        self.refresh_context, self.relay_store = refresh_context, relay_store
        self.gate_options = dict(gate_options or {})
        self.waits_on: Approval | None = None  # set as it parks, for its notifier

    def standing(self, context: Any) -> Approval | Verdict:
        """Ask (a retry replays the first check): the verdict, or the approval to wait on."""
        ti = context["task_instance"]
        thread = thread_of(self.thread_id, ti)
        gk = self.gatekeeper()
        decision = gk.check(
            thread,
            self.workflow,
            self.step_index,
            self.task_id,
            self.tool,
            self.args,
            idempotency_key=f"airflow:{thread}:{self.step_index}",
            callback=target_of(ti),
            **self.gate_options,
        )
        if decision.allowed:
            return allowed_verdict(self.args, decision.reason)
        if decision.blocked:
            return blocked_verdict(decision.reason, self.args)
        approval = gk.approval(decision.approval.id)  # a replayed answer shows it as it was made
        return settle(gk, approval, self.args, self.refresh_context)

    def execute(self, context: Any) -> Any:
        standing = self.standing(context)
        if isinstance(standing, Verdict):
            return standing.as_json()
        self.waits_on = standing
        return super().execute(context)  # the HITL request, the notifier, then parked

    def execute_complete(self, context: Any, event: dict[str, Any]) -> Any:
        super().execute_complete(context, event)  # a timeout or a foreign option raises here
        return self.execute(context)  # the verdict, or (refreshed) parked on the new approval


class OutcomeOperator(BaseOperator):
    """Records what step `step_index`'s tool task (`tool_task_id`, gated by `gate_task_id`)
    did; put it after the tool's task. Returns whether it recorded an outcome; fails, without
    retrying, once it recorded a failed tool (the run's last task: the run fails as it would
    without it).

    `thread_id` and `gatekeeper` are the gate's (`GateOperator`'s).
    """

    template_fields = ("thread_id",)

    def __init__(
        self,
        *,
        step_index: int,
        gate_task_id: str,
        tool_task_id: str,
        thread_id: str | None = None,
        gatekeeper: Callable[[], Any] | None = None,
        **kwargs: Any,
    ):
        kwargs.setdefault("trigger_rule", "all_done")  # after the tool, succeeded or failed
        kwargs.setdefault("retries", 3)
        super().__init__(**kwargs)
        self.step_index, self.thread_id = step_index, thread_id
        self.gate_task_id, self.tool_task_id = gate_task_id, tool_task_id
        self.gatekeeper = gatekeeper or _client

    def execute(self, context: Any) -> bool:
        ti = context["task_instance"]
        verdict = ti.xcom_pull(task_ids=self.gate_task_id) or {}
        if verdict.get("decision") != "allow":
            return False  # refused or reconciled: the tool did not run
        states = ti.get_task_states(
            dag_id=ti.dag_id, task_ids=[self.tool_task_id], run_ids=[ti.run_id]
        )
        state = states.get(ti.run_id, {}).get(self.tool_task_id)
        side_effect = {"success": LANDED, "failed": FAILED}.get(str(state))
        if side_effect is None:
            raise ValueError(f"task {self.tool_task_id} is {state}: no outcome to record yet")
        thread = thread_of(self.thread_id, ti)
        detail = {"task_id": self.tool_task_id, "state": str(state)}
        recorded = record(self.gatekeeper(), thread, self.step_index, side_effect, detail)
        if side_effect == FAILED:
            raise AirflowFailException(f"task {self.tool_task_id} failed; its outcome is recorded")
        return recorded


class AirflowHandler:
    """The relay's handler: the decision as the gate task's HITL response, written in Airflow's
    metadata database (run the relay with Airflow's configuration) as Airflow's own response
    endpoint writes it, and the parked task scheduled to go on."""

    def signal(self, target: Mapping[str, Any], approval: Mapping[str, Any]) -> None:
        from airflow.models.hitl import HITLDetail
        from airflow.models.taskinstance import TaskInstance
        from airflow.models.trigger import handle_event_submit
        from airflow.triggers.base import TriggerEvent
        from airflow.utils.session import create_session
        from airflow.utils.state import TaskInstanceState
        from sqlalchemy import select

        with create_session() as session:
            # TaskInstance, then its HITL row: the lock order of Airflow's own response path.
            ti = session.scalar(
                select(TaskInstance)
                .where(
                    TaskInstance.dag_id == target["dag_id"],
                    TaskInstance.run_id == target["run_id"],
                    TaskInstance.task_id == target["task_id"],
                    TaskInstance.map_index == target.get("map_index", -1),
                )
                .with_for_update(of=TaskInstance)
            )
            detail = session.scalar(
                select(HITLDetail)
                .where(HITLDetail.ti_id == (ti.id if ti else None))
                .with_for_update(of=HITLDetail)
            )
            if ti is None or detail is None:
                raise LookupError(f"no gate task waits at {target}: retried later")
            if detail.response_received:
                return  # answered before: the task reads its verdict from Gatekeeper anyway
            detail.responded_by = GATEKEEPER_USER
            detail.responded_at = _now()
            detail.chosen_options = [option_for(verdict_of(approval))]
            detail.params_input = {}
            session.add(detail)
            if ti.state in (TaskInstanceState.AWAITING_INPUT, TaskInstanceState.DEFERRED):
                event = TriggerEvent(detail.as_resume_event_payload())
                handle_event_submit(event, task_instance=ti, session=session)


def _now():
    from datetime import datetime, timezone

    return datetime.now(timezone.utc)


def relay_handler() -> AirflowHandler:
    """For `gatekeeper-relay --engine airflow`: Airflow's configuration from the environment."""
    return AirflowHandler()
