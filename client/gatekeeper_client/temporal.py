"""Temporal (temporalio): a gate activity and a workflow that sleeps until reviewers decide
(extra `temporal`).

In the workflow, `Gates` asks through the `gatekeeper.gate` activity; when the answer is
`require_approval` the workflow waits (durably, in Temporal's history: no worker thread holds
it) for the `gatekeeper.decision` update, which `gatekeeper-relay --engine temporal` sends
with the decided approval. Its validator accepts only an approval this workflow asked for.
Re-review (approved, but the step's facts had changed or grown old) comes the same way: the
workflow runs the gate's `refresh_context` activity to read the facts again, hands them to
the stale approval (the `gatekeeper.refresh` activity) and waits for the new one; a gate
without `refresh_context` ends its step with a stale verdict and the reason.
The step's thread is the workflow id; its idempotency key the workflow id and step index, so a
replayed or retried activity never asks twice.

`Gates.run` runs the step's tool activity (once: no retries unless the caller gives some) and
then the `gatekeeper.outcome` activity, which records what it did: `landed`, `failed` when it
raised, `indeterminate` when it raised `OutcomeUnknown` or timed out (its worker died mid-call,
or it hung: whether it wrote is unknown). Both are in the workflow's history, so a worker
restart neither loses the outcome nor runs the tool again; a retried outcome activity finds
the outcome recorded and records nothing.

    @workflow.defn
    class Onboarding:
        def __init__(self):
            self.gates = Gates()  # registers the update handler

        @workflow.run
        async def run(self) -> None:
            verdict = await self.gates.gate("hr-onboarding", 1, "iam.grant", {"user": "jdoe"})
            if verdict.run:
                await self.gates.run(1, grant, verdict.args)  # the approved args, then the outcome

    Worker(client, task_queue=..., workflows=[Onboarding],
           activities=[*GateActivity(gk, RelayStore(path)).activities, grant])
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from temporalio import activity, workflow
from temporalio import exceptions as temporal_errors
from temporalio.common import RetryPolicy

from .errors import Expired
from .step_outcomes import FAILED, INDETERMINATE, LANDED, NOT_LANDED, record
from .verdicts import STALE, Verdict, allowed_verdict, blocked_verdict, verdict_of

ENGINE = "temporal"
GATE_ACTIVITY = "gatekeeper.gate"
REFRESH_ACTIVITY = "gatekeeper.refresh"
OUTCOME_ACTIVITY = "gatekeeper.outcome"
DECISION_UPDATE = "gatekeeper.decision"
# A tool is a write: run once unless the caller asks for retries (a retry may write twice).
ONCE = RetryPolicy(maximum_attempts=1)


class GateActivity:
    """The gate check, as an activity: give its `gate` to the worker (the client is async)."""

    def __init__(self, gk: Any, store: Any, **gate: Any):
        self.gk = gk  # an AsyncGatekeeperClient
        self.store = store  # the relay's RelayStore: which workflow waits on which approval
        self.gate_options = gate  # more check() keywords: context, risk, owner...

    @activity.defn(name=GATE_ACTIVITY)
    async def gate(self, request: dict) -> dict:
        """`{"verdict": ...}` when decided now; `{"approval_id": ...}` when reviewers decide."""
        info = activity.info()
        decision = await self.gk.check(
            info.workflow_id,
            request["workflow"],
            request["step_index"],
            request.get("step_name"),
            request["tool"],
            request["args"],
            idempotency_key=f"temporal:{info.workflow_id}:{request['step_index']}",
            callback={"engine": ENGINE, "workflow_id": info.workflow_id},
            **self.gate_options,
        )
        if decision.allowed:
            return {"verdict": allowed_verdict(request["args"], decision.reason).as_json()}
        if decision.blocked:
            return {"verdict": blocked_verdict(decision.reason, request["args"]).as_json()}
        return self._waiting(decision.approval, info.workflow_id)

    @activity.defn(name=REFRESH_ACTIVITY)
    async def refresh(self, request: dict) -> dict:
        """The stale approval `request["approval_id"]` gets the facts read again (`context`)."""
        info = activity.info()
        try:
            approval = await self.gk.refresh(request["approval_id"], request["context"])
        except Expired:
            reason = "expired before its facts were read again"
            return {"verdict": blocked_verdict(reason, request["args"]).as_json()}
        return self._waiting(approval, info.workflow_id)

    @activity.defn(name=OUTCOME_ACTIVITY)
    async def outcome(self, request: dict) -> bool:
        """Record what the step's tool did (`side_effect`, `detail`), unless already recorded."""
        workflow_id = activity.info().workflow_id
        return await record(
            self.gk, workflow_id, request["step_index"], request["side_effect"], request["detail"]
        )

    @property
    def activities(self) -> list:
        """The activities a worker registers: the gate, the refresh after a re-review, and the
        outcome after the tool."""
        return [self.gate, self.refresh, self.outcome]

    def _waiting(self, approval: Any, workflow_id: str) -> dict:
        self.store.expect(approval.id, ENGINE, {"workflow_id": workflow_id})
        if not approval.is_open:  # asked again after the decision: it is the answer
            return {"verdict": verdict_of(approval.raw).as_json(), "approval_id": approval.id}
        return {"approval_id": approval.id}


def _verdict(data: Mapping[str, Any]) -> Verdict:
    decision = data["decision"]
    return Verdict(
        approval_id=data["approval_id"],
        status=data["status"],
        run=decision == "allow",
        skip=decision == "skip",
        args=dict(data["args"]),
        reason=data["reason"],
    )


class Gates:
    """Gatekeeper's gates inside one workflow: create it in the workflow's `__init__`."""

    def __init__(self, *, timeout: timedelta = timedelta(minutes=2)):
        self.timeout = timeout
        self._asked: set[str] = set()
        self._decided: dict[str, dict] = {}
        workflow.set_update_handler(DECISION_UPDATE, self._decide, validator=self._validate)

    def _validate(self, approval: dict) -> None:
        if approval.get("id") not in self._asked:
            raise ValueError(f"this workflow waits on no approval {approval.get('id')!r}")
        if approval.get("status") in ("pending", "reconciling", "superseded"):
            raise ValueError("the approval is neither decided nor back in review")

    def _decide(self, approval: dict) -> str:
        self._decided.setdefault(approval["id"], approval)  # a decision never changes
        return self._decided[approval["id"]]["status"]

    async def gate(
        self,
        workflow_name: str,
        step_index: int,
        tool: str,
        args: Mapping[str, Any],
        *,
        step_name: str | None = None,
        refresh_context: Any = None,
    ) -> Verdict:
        """Ask; wait for the reviewers when the gate says so. `run` says whether the tool runs.

        `refresh_context` is an activity (or its name) that reads the step's facts again after
        a re-review; it gets the gate's request (workflow, step_index, tool, args, approval_id)
        and returns the new context. Without it a re-review ends the step (`stale`).
        """
        request = {
            "workflow": workflow_name,
            "step_index": step_index,
            "step_name": step_name or tool,
            "tool": tool,
            "args": dict(args),
        }
        answer = await workflow.execute_activity(
            GATE_ACTIVITY, request, start_to_close_timeout=self.timeout
        )
        while "verdict" not in answer:
            approval_id = answer["approval_id"]
            self._asked.add(approval_id)
            await workflow.wait_condition(lambda asked=approval_id: asked in self._decided)
            approval = self._decided[approval_id]
            if approval["status"] != STALE or refresh_context is None:
                return verdict_of(approval)
            asked = {**request, "approval_id": approval_id}
            context = await workflow.execute_activity(
                refresh_context, asked, start_to_close_timeout=self.timeout
            )
            answer = await workflow.execute_activity(
                REFRESH_ACTIVITY,
                {**asked, "context": context},
                start_to_close_timeout=self.timeout,
            )
        return _verdict(answer["verdict"])

    async def run(self, step_index: int, tool: Any, args: Mapping[str, Any], **options: Any) -> Any:
        """Run the step's tool activity `tool` (or its name) with the approved `args`, then
        record its outcome; its result, or its `ActivityError` raised once recorded.

        `options` are `execute_activity`'s (default: the gate's timeout, no retry).
        """
        options.setdefault("start_to_close_timeout", self.timeout)
        options.setdefault("retry_policy", ONCE)
        try:
            result = await workflow.execute_activity(tool, dict(args), **options)
        except temporal_errors.ActivityError as error:
            await self._outcome(step_index, *_outcome_of(error))
            raise
        await self._outcome(step_index, LANDED, None)
        return result

    async def _outcome(self, step_index: int, side_effect: str, detail: dict | None) -> None:
        request = {"step_index": step_index, "side_effect": side_effect, "detail": detail}
        await workflow.execute_activity(
            OUTCOME_ACTIVITY, request, start_to_close_timeout=self.timeout
        )


def _outcome_of(error: temporal_errors.ActivityError) -> tuple[str, dict]:
    """What a failed tool activity did: unknown when it timed out after it may have started,
    or raised `OutcomeUnknown`; not landed when it never started; else failed."""
    cause = error.cause
    detail = {"error": f"{type(cause).__name__}: {cause}" if cause else str(error)}
    if isinstance(cause, temporal_errors.TimeoutError):
        if cause.type == temporal_errors.TimeoutType.SCHEDULE_TO_START:
            return NOT_LANDED, detail
        return INDETERMINATE, detail
    if isinstance(cause, temporal_errors.ApplicationError):
        detail = {"error": f"{cause.type}: {cause.message}"}
        if cause.type == "OutcomeUnknown":
            return INDETERMINATE, detail
    return FAILED, detail


class TemporalHandler:
    """The relay's handler: the decision as the waiting workflow's `gatekeeper.decision` update.

    The update's id is the approval's, so Temporal itself refuses to apply one decision twice.
    """

    # Under Gatekeeper's 10 s delivery timeout: the relay answers 503 itself when no worker
    # applies the update in time, and the outbox retries.
    def __init__(self, address: str, namespace: str = "default", *, timeout: float = 6):
        self.address, self.namespace, self.timeout = address, namespace, timeout

    def signal(self, target: Mapping[str, Any], approval: Mapping[str, Any]) -> None:
        import asyncio

        update = self._update(target["workflow_id"], dict(approval))
        try:
            asyncio.run(asyncio.wait_for(update, self.timeout))
        except TimeoutError:
            raise TimeoutError(f"no worker applied the update within {self.timeout:g} s") from None

    async def _update(self, workflow_id: str, approval: dict) -> None:
        from temporalio.client import Client

        client = await Client.connect(self.address, namespace=self.namespace)
        handle = client.get_workflow_handle(workflow_id)
        await handle.execute_update(
            DECISION_UPDATE,
            approval,
            id=f"gatekeeper-{approval['id']}",
            rpc_timeout=timedelta(seconds=self.timeout),
        )


def relay_handler() -> TemporalHandler:
    """For `gatekeeper-relay --engine temporal`: TEMPORAL_ADDRESS (default 127.0.0.1:7233) and
    TEMPORAL_NAMESPACE from the environment."""
    import os

    return TemporalHandler(
        os.environ.get("TEMPORAL_ADDRESS", "127.0.0.1:7233"),
        os.environ.get("TEMPORAL_NAMESPACE", "default"),
    )
