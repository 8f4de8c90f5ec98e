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
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from .base import ClientBase
from .relay import RelayStore
from .verdicts import BLOCKED_ERROR, Verdict, allowed_verdict, blocked_verdict, verdict_of

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
) -> dict:
    """A Task state that pauses the execution until Gatekeeper decides `tool` (ASL, as a dict).

    The execution's name is the gate's `thread_id`; `step_index` counts this workflow's gated
    states from 0. Its result, at `result_path`, is the verdict (`decision`, `args`, ...).
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
            sfn.send_task_failure(
                taskToken=task_token, error=BLOCKED_ERROR, cause=verdict.reason[:32768]
            )
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
        decision = self.gk.check(
            thread_id,
            gate["workflow"],
            gate["step_index"],
            gate.get("step_name"),
            gate["tool"],
            args,
            idempotency_key=f"sfn:{thread_id}:{gate['step_index']}",
            callback={"engine": ENGINE, "task_token": token},
            **self.gate_options,
        )
        if decision.allowed:
            return signal(self.sfn, token, allowed_verdict(args, decision.reason))
        if decision.blocked:
            return signal(self.sfn, token, blocked_verdict(decision.reason, args))
        approval = decision.approval
        self.store.expect(approval.id, ENGINE, {"task_token": token})
        if not approval.is_open:
            # Replayed after the decision (this message came back): its webhook may be gone.
            signal(self.sfn, token, verdict_of(approval.raw))
