"""AWS Step Functions (boto3): gate a state with the callback pattern (extra `stepfunctions`).

A gate is a Task state `sqs:sendMessage.waitForTaskToken` (`gate_state`): the execution sends
its task token and the gate request to an SQS queue and sleeps inside Step Functions, holding
no thread anywhere. A `GateWorker` reads the queue and asks Gatekeeper: an allowed step gets
`send_task_success` at once, a blocked one `send_task_failure` with error `Gatekeeper.Blocked`
and the reason; a step that needs approval is recorded in the relay's store and the worker
moves on. When reviewers decide, `gatekeeper-relay --engine stepfunctions` calls
`send_task_success` (output `{"decision", "args", "approval_id", ...}`: the approved args,
edits included) or `send_task_failure`. The state after the gate runs the tool with
`$.gate.args`; `Catch` `Gatekeeper.Blocked` to go on after a refusal.

Re-review (a reviewer approved, but the step's facts had changed or grown old): the relay fails
the task with error `Gatekeeper.ReReview`. `Catch` it into a state that reads the facts again,
then a `gate_state(..., refresh=True, context_path=...)`: the worker hands them to the stale
approval (`refresh`) and the execution sleeps again until the new one is decided. Without that
`Catch` the execution fails with that error and the reason.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from .base import ClientBase
from .errors import Expired
from .relay import RelayStore
from .verdicts import (
    BLOCKED_ERROR,
    RE_REVIEW_ERROR,
    STALE,
    Verdict,
    allowed_verdict,
    blocked_verdict,
    verdict_of,
)

ENGINE = "stepfunctions"
GATE_RESOURCE = "arn:aws:states:::sqs:sendMessage.waitForTaskToken"
_TOKEN_GONE = ("TaskTimedOut", "TaskDoesNotExist", "InvalidToken")


def gate_state(
    queue_url: str,
    *,
    workflow: str,
    step_index: int,
    tool: str,
    args_path: str = "$.args",
    step_name: str | None = None,
    next_state: str | None = None,
    result_path: str = "$.gate",
    context_path: str | None = None,
    refresh: bool = False,
) -> dict:
    """A Task state that pauses the execution until Gatekeeper decides `tool` (ASL, as a dict).

    The execution's name is the gate's `thread_id`; `step_index` counts this workflow's gated
    states from 0. Its result, at `result_path`, is the verdict (`decision`, `args`, ...).
    `context_path` points at what the execution knew (the gate's `context`). `refresh=True`
    makes the state that follows a `Gatekeeper.ReReview`: the same step, whose stale approval
    gets the facts read again at `context_path`.
    """
    state: dict[str, Any] = {
        "Type": "Task",
        "Resource": GATE_RESOURCE,
        "Parameters": {
            "QueueUrl": queue_url,
            "MessageBody": {
                "TaskToken.$": "$$.Task.Token",
                "ThreadId.$": "$$.Execution.Name",
                "Gate": {
                    "workflow": workflow,
                    "step_index": step_index,
                    "step_name": step_name or tool,
                    "tool": tool,
                },
                "Args.$": args_path,
            },
        },
        "ResultPath": result_path,
    }
    body = state["Parameters"]["MessageBody"]
    if context_path is not None:
        body["Context.$"] = context_path
    if refresh:
        body["Refresh"] = True
    if next_state is None:
        state["End"] = True
    else:
        state["Next"] = next_state
    return state


def tool_state(
    queue_url: str,
    *,
    tool: str,
    args_path: str = "$.gate.args",
    result_path: str = "$.result",
    next_state: str | None = None,
) -> dict:
    """A Task state that runs `tool` through a `ToolWorker` on `queue_url`, with the args the
    gate before it approved (`$.gate.args`). A Lambda or an activity works as well."""
    state = gate_state(
        queue_url,
        workflow="",
        step_index=0,
        tool=tool,
        args_path=args_path,
        next_state=next_state,
        result_path=result_path,
    )
    body = state["Parameters"]["MessageBody"]
    body["Tool"] = body.pop("Gate")["tool"]
    return state


def signal(sfn: Any, task_token: str, verdict: Verdict) -> None:
    """Wake the paused state with the verdict; a token already completed counts as done."""
    try:
        if verdict.run or verdict.skip:
            sfn.send_task_success(taskToken=task_token, output=json.dumps(verdict.as_json()))
        else:
            error = RE_REVIEW_ERROR if verdict.stale else BLOCKED_ERROR
            sfn.send_task_failure(taskToken=task_token, error=error, cause=verdict.reason[:32768])
    except sfn.exceptions.ClientError as error:
        # Completed before (the relay stopped between signalling and recording it): done.
        if error.response.get("Error", {}).get("Code") not in _TOKEN_GONE:
            raise


class StepFunctionsHandler:
    """The relay's handler: the decision to the task token recorded with the approval."""

    def __init__(self, sfn: Any):
        self.sfn = sfn

    def signal(self, target: Mapping[str, Any], approval: Mapping[str, Any]) -> None:
        signal(self.sfn, target["task_token"], verdict_of(approval))


def relay_handler() -> StepFunctionsHandler:
    """For `gatekeeper-relay --engine stepfunctions`: boto3's configuration from the environment
    (AWS_REGION, credentials, AWS_ENDPOINT_URL_SFN...)."""
    import boto3

    return StepFunctionsHandler(boto3.client("stepfunctions"))


class ToolWorker:
    """Runs the tools of `tool_state`s: `tools` maps a tool's name to a function of its args;
    what it returns (JSON) is the state's result."""

    def __init__(self, sfn: Any, sqs: Any, queue_url: str, tools: Mapping[str, Any]):
        self.sfn, self.sqs, self.queue_url, self.tools = sfn, sqs, queue_url, dict(tools)

    def poll(self, *, wait: int = 1) -> int:
        def run(request: Mapping[str, Any]) -> None:
            result = self.tools[request["Tool"]](**(request.get("Args") or {}))
            self.sfn.send_task_success(taskToken=request["TaskToken"], output=json.dumps(result))

        return _drain(self.sqs, self.queue_url, run, wait)


def _drain(sqs: Any, queue_url: str, handle: Any, wait: int) -> int:
    """Handle the messages waiting now, each deleted only once handled."""
    answer = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=wait)
    messages = answer.get("Messages", [])
    for message in messages:
        handle(json.loads(message["Body"]))
        sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    return len(messages)


class GateWorker:
    """Reads gate requests off the queue and answers them through Gatekeeper.

    Holds nothing while reviewers think: a step that needs approval is handed to the relay's
    store and its message deleted. Safe to kill at any point: an undeleted message comes back
    after the queue's visibility timeout and replays the same gate check (its idempotency key
    is the execution and step), never asking twice.
    """

    def __init__(
        self, gk: ClientBase, sfn: Any, sqs: Any, queue_url: str, store: RelayStore, **gate: Any
    ):
        self.gk, self.sfn, self.sqs = gk, sfn, sqs
        self.queue_url = queue_url
        self.store = store
        self.gate_options = gate  # more check() keywords: context, risk, owner...

    def poll(self, *, wait: int = 1) -> int:
        """Answer the requests waiting now (long-polling up to `wait` s); how many it handled."""
        return _drain(self.sqs, self.queue_url, self.handle, wait)

    def handle(self, request: Mapping[str, Any]) -> None:
        gate, token, thread_id = request["Gate"], request["TaskToken"], request["ThreadId"]
        args = request.get("Args") or {}
        if request.get("Refresh"):
            return self._refresh(gate, token, thread_id, args, request.get("Context") or {})
        options = dict(self.gate_options)
        if "Context" in request:
            options["context"] = request["Context"]
        decision = self.gk.check(
            thread_id,
            gate["workflow"],
            gate["step_index"],
            gate.get("step_name"),
            gate["tool"],
            args,
            idempotency_key=f"sfn:{thread_id}:{gate['step_index']}",
            callback=_callback(token),
            **options,
        )
        if decision.allowed:
            return signal(self.sfn, token, allowed_verdict(args, decision.reason))
        if decision.blocked:
            return signal(self.sfn, token, blocked_verdict(decision.reason, args))
        self._wait(token, decision.approval)

    def _refresh(self, gate, token: str, thread_id: str, args, context) -> None:
        """The step's stale approval gets the facts the execution read again."""
        steps = self.gk.execution(thread_id)["steps"]
        latest = next((s["approval"] for s in steps if s["index"] == gate["step_index"]), None)
        if latest is None:
            raise ValueError(f"step {gate['step_index']} of {thread_id} has no approval")
        approval = self.gk.approval(latest)
        # Stale and still naming this token: the relay fails it into another read of the facts.
        if (
            approval.status == STALE
            and (approval.raw.get("callback") or {}).get("task_token") != token
        ):
            try:
                approval = self.gk.refresh(approval.id, context, callback=_callback(token))
            except Expired:
                reason = "expired before its facts were read again"
                return signal(self.sfn, token, blocked_verdict(reason, args))
        self._wait(token, approval)

    def _wait(self, token: str, approval: Any) -> None:
        """Hand the wait to the relay's store; signal at once what is already decided."""
        self.store.expect(approval.id, ENGINE, {"task_token": token})
        if not approval.is_open or approval.status == STALE:
            # Replayed after the decision (this message came back): its webhook may be gone.
            signal(self.sfn, token, verdict_of(approval.raw))


def _callback(token: str) -> dict:
    return {"engine": ENGINE, "task_token": token}
