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

The tool runs in the state after the gate; `tool_states` builds it with the states that record
its outcome after it, as Task states on the gate queue that the `GateWorker` answers: `landed`
when the tool succeeded, `failed` when it failed, `indeterminate` when it raised
`OutcomeUnknown` or timed out (its worker died mid-call: the `ToolWorker` deletes a tool's
message before running it, so nothing runs it twice, and the state's `HeartbeatSeconds` runs
out). Each is a state of the execution: a worker that dies before answering one gets its
message again and finds the outcome recorded.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from .base import ClientBase
from .errors import Expired, OutcomeUnknown
from .relay import RelayStore
from .step_outcomes import FAILED, INDETERMINATE, LANDED, record
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
# The error a tool state fails with when the tool raised OutcomeUnknown (its write may or may
# not have happened); the tool's other errors are named by their exception's class.
OUTCOME_UNKNOWN_ERROR = "Gatekeeper.OutcomeUnknown"
TOOL_FAILED_ERROR = "Gatekeeper.ToolFailed"
_UNKNOWN = [OUTCOME_UNKNOWN_ERROR, "States.Timeout", "States.HeartbeatTimeout"]


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
    body: dict[str, Any] = {
        "Gate": {
            "workflow": workflow,
            "step_index": step_index,
            "step_name": step_name or tool,
            "tool": tool,
        },
        "Args.$": args_path,
    }
    if context_path is not None:
        body["Context.$"] = context_path
    if refresh:
        body["Refresh"] = True
    return _token_state(queue_url, body, result_path, next_state)


def _token_state(
    queue_url: str, body: dict, result_path: str | None, next_state: str | None
) -> dict:
    """A Task state that sends `body`, its task token and the execution's name to the queue
    at `queue_url` and sleeps until a worker or the relay completes the token."""
    message = {"TaskToken.$": "$$.Task.Token", "ThreadId.$": "$$.Execution.Name", **body}
    state: dict[str, Any] = {
        "Type": "Task",
        "Resource": GATE_RESOURCE,
        "Parameters": {"QueueUrl": queue_url, "MessageBody": message},
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
    return _token_state(queue_url, {"Tool": tool, "Args.$": args_path}, result_path, next_state)


def outcome_state(
    queue_url: str,
    *,
    step_index: int,
    side_effect: str,
    detail_path: str | None = None,
    next_state: str | None = None,
) -> dict:
    """A Task state that records what step `step_index`'s tool did (`side_effect`, and the
    object at `detail_path` as its detail) through the `GateWorker` on `queue_url`; the
    execution's data passes through unchanged."""
    body: dict[str, Any] = {"Outcome": {"step_index": step_index, "side_effect": side_effect}}
    if detail_path is not None:
        body["Detail.$"] = detail_path
    return _token_state(queue_url, body, None, next_state)


def tool_states(
    name: str,
    tools_queue: str,
    gates_queue: str,
    *,
    tool: str,
    step_index: int,
    args_path: str = "$.gate.args",
    result_path: str = "$.result",
    error_path: str = "$.error",
    next_state: str | None = None,
    heartbeat_seconds: int = 300,
) -> dict:
    """The states that run step `step_index`'s `tool` (state `name`, a `tool_state` on
    `tools_queue`) and then record its outcome (on `gates_queue`), as a dict to merge into
    the machine's `States`. Landed, it goes on to `next_state`; failed, or unknown (it raised
    `OutcomeUnknown`, or no worker answered within `heartbeat_seconds`: of waiting for one, or
    of the tool's run), the execution fails with `Gatekeeper.ToolFailed` or
    `Gatekeeper.OutcomeUnknown` once the outcome is recorded; the error is at `error_path`."""
    run = tool_state(
        tools_queue,
        tool=tool,
        args_path=args_path,
        result_path=result_path,
        next_state=f"{name}Landed",
    )
    run["HeartbeatSeconds"] = heartbeat_seconds
    run["Parameters"]["MessageBody"]["HeartbeatSeconds"] = heartbeat_seconds
    run["Catch"] = [
        {"ErrorEquals": _UNKNOWN, "ResultPath": error_path, "Next": f"{name}Unknown"},
        {"ErrorEquals": ["States.ALL"], "ResultPath": error_path, "Next": f"{name}Failed"},
    ]

    def outcome(side_effect: str, next_state: str | None, detail_path: str | None = None):
        return outcome_state(
            gates_queue,
            step_index=step_index,
            side_effect=side_effect,
            detail_path=detail_path,
            next_state=next_state,
        )

    def fail(error: str, what: str) -> dict:
        cause = f"{tool} (step {step_index}) {what}; its outcome is recorded"
        return {"Type": "Fail", "Error": error, "Cause": cause}

    return {
        name: run,
        f"{name}Landed": outcome(LANDED, next_state),
        f"{name}Failed": outcome(FAILED, f"{name}FailedEnd", error_path),
        f"{name}Unknown": outcome(INDETERMINATE, f"{name}UnknownEnd", error_path),
        f"{name}FailedEnd": fail(TOOL_FAILED_ERROR, "failed"),
        f"{name}UnknownEnd": fail(OUTCOME_UNKNOWN_ERROR, "may or may not have written"),
    }


def signal(sfn: Any, task_token: str, verdict: Verdict) -> None:
    """Wake the paused state with the verdict; a token already completed counts as done."""
    if verdict.run or verdict.skip:
        _succeed(sfn, task_token, verdict.as_json())
    else:
        error = RE_REVIEW_ERROR if verdict.stale else BLOCKED_ERROR
        _fail(sfn, task_token, error, verdict.reason)


def _succeed(sfn: Any, task_token: str, output: Any) -> None:
    with _once(sfn):
        sfn.send_task_success(taskToken=task_token, output=json.dumps(output))


def _fail(sfn: Any, task_token: str, error: str, cause: str) -> None:
    with _once(sfn):
        sfn.send_task_failure(taskToken=task_token, error=error[:256], cause=cause[:32768])


def _alive(sfn: Any, task_token: str) -> bool:
    """Whether the state still waits on the token (a heartbeat also restarts its clock)."""
    with _once(sfn):
        sfn.send_task_heartbeat(taskToken=task_token)
        return True
    return False


@contextmanager
def _once(sfn: Any) -> Iterator[None]:
    """A token already completed counts as done: the worker or relay stopped between
    completing it and recording so, and was given the same work again."""
    try:
        yield
    except sfn.exceptions.ClientError as error:
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
    what it returns (JSON) is the state's result, what it raises the state's error.

    At most once: a tool's message is deleted before the tool runs, so a worker that dies
    mid-call leaves the state to time out (its outcome unknown) and nothing runs it again. A
    state with `HeartbeatSeconds` (`tool_states`) is sent a heartbeat first: one that timed out
    before a worker took its message is not run at all.
    """

    def __init__(self, sfn: Any, sqs: Any, queue_url: str, tools: Mapping[str, Any]):
        self.sfn, self.sqs, self.queue_url, self.tools = sfn, sqs, queue_url, dict(tools)

    def poll(self, *, wait: int = 1) -> int:
        return _drain(self.sqs, self.queue_url, self.run, wait, at_most_once=True)

    def run(self, request: Mapping[str, Any]) -> None:
        token = request["TaskToken"]
        if request.get("HeartbeatSeconds") and not _alive(self.sfn, token):
            return
        try:
            result = self.tools[request["Tool"]](**(request.get("Args") or {}))
        except Exception as error:
            name = OUTCOME_UNKNOWN_ERROR if isinstance(error, OutcomeUnknown) else None
            _fail(self.sfn, token, name or type(error).__name__, str(error))
        else:
            _succeed(self.sfn, token, result)


def _drain(sqs: Any, queue_url: str, handle: Any, wait: int, *, at_most_once=False) -> int:
    """Handle the messages waiting now, each deleted once handled (before, `at_most_once`)."""
    answer = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=wait)
    messages = answer.get("Messages", [])
    for message in messages:
        if at_most_once:
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
        handle(json.loads(message["Body"]))
        if not at_most_once:
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
        if "Outcome" in request:
            return self._record(request)
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

    def _record(self, request: Mapping[str, Any]) -> None:
        """An `outcome_state`: record what the step's tool did, then let the execution go on."""
        outcome, detail = request["Outcome"], request.get("Detail")
        record(
            self.gk,
            request["ThreadId"],
            outcome["step_index"],
            outcome["side_effect"],
            detail if isinstance(detail, Mapping) else None,
        )
        _succeed(self.sfn, request["TaskToken"], {})

    def _wait(self, token: str, approval: Any) -> None:
        """Hand the wait to the relay's store; signal at once what is already decided."""
        self.store.expect(approval.id, ENGINE, {"task_token": token})
        if not approval.is_open or approval.status == STALE:
            # Replayed after the decision (this message came back): its webhook may be gone.
            signal(self.sfn, token, verdict_of(approval.raw))


def _callback(token: str) -> dict:
    return {"engine": ENGINE, "task_token": token}
