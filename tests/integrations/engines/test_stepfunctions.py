"""Step Functions (moto, states executed for real) paused on a task token, woken by the relay;
each tool's outcome recorded by the states after it, once."""

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
import requests
from django.utils import timezone
from gatekeeper_client import OutcomeUnknown
from gatekeeper_client.stepfunctions import (
    GateWorker,
    StepFunctionsHandler,
    ToolWorker,
    gate_state,
    tool_states,
)

from approvals.models import OutboxMessage, PausePacket, StepOutcome
from approvals.serializers import approval_json
from approvals.services import outbox
from approvals.services.review import packet_approve, packet_reject
from tests.integrations.engines.conftest import (
    deliver_webhooks,
    gk_for,
    pending_packet,
    recorded_outcomes,
)

ROOT = Path(__file__).resolve().parents[3]
_spec = importlib.util.spec_from_file_location(
    "stepfunctions_agent", ROOT / "examples" / "stepfunctions_agent.py"
)
agent = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(agent)


class Tools:
    """Records each tool run: a tool must run once, with the approved args."""

    def __init__(self):
        self.calls = []

    def mapping(self):
        tools = {"hr.lookup": lambda **args: {"ok": True}, "iam.grant": lambda **args: {"ok": True}}
        tools["hr.facts"] = agent.hr_facts
        return {
            name: (
                lambda name=name, run=run, **args: self.calls.append((name, args)) or run(**args)
            )
            for name, run in tools.items()
        }


@pytest.fixture
def moto():
    running = agent.Moto()
    yield running
    # moto keeps its queues and executions in the process: none may reach the next test.
    requests.post(f"{running.url}/moto-api/reset", timeout=10)
    running.stop()


@pytest.fixture
def setup(moto, engine_setup, live_server):
    alice, start_relay = engine_setup
    relay = start_relay({"stepfunctions": StepFunctionsHandler(moto.sfn)})
    gk = gk_for(live_server, relay.token)
    tools = Tools()
    gates = GateWorker(gk, moto.sfn, moto.sqs, moto.gates, relay.store)
    tool_worker = ToolWorker(moto.sfn, moto.sqs, moto.tools, tools.mapping())
    return alice, relay, gates, tool_worker, tools


def run_until(moto, execution, workers, done, timeout=30):
    """Poll the workers (as their processes would) until `done()` or the execution ended."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for worker in workers:
            worker.poll(wait=0)
        if done() or moto.status(execution)["status"] != "RUNNING":
            return moto.status(execution)
        time.sleep(0.1)
    raise AssertionError(f"{execution} still {moto.status(execution)['status']}")


def test_an_edited_approval_wakes_the_paused_execution_through_the_relay_and_the_tool_runs_once(
    moto, setup
):
    alice, relay, gates, tool_worker, tools = setup
    execution = moto.start("sfn-approve")
    state = run_until(moto, execution, [gates, tool_worker], lambda: pending_packet("sfn-approve"))
    assert state["status"] == "RUNNING"  # paused inside Step Functions: no worker holds it
    assert tools.calls == [("hr.lookup", {"employee_id": 7})]
    packet = pending_packet("sfn-approve")
    assert (packet.tool, packet.step_index) == ("iam.grant", 1)
    assert packet.callback["engine"] == "stepfunctions"  # the relay routes by its echo

    packet_approve(packet_id=packet.id, user=alice, edited_args={"user": "jdoe", "role": "viewer"})
    assert deliver_webhooks() == ["sent"]
    state = run_until(moto, execution, [gates, tool_worker], lambda: False)

    assert state["status"] == "SUCCEEDED"
    assert tools.calls[1:] == [("iam.grant", {"user": "jdoe", "role": "viewer"})]
    gate = json.loads(state["output"])["gate"]
    assert (gate["decision"], gate["approval_id"]) == ("allow", str(packet.id))
    assert recorded_outcomes("sfn-approve") == [(0, "landed"), (1, "landed")]

    # Re-delivered (a new delivery id) and replayed (the same one): nothing changes.
    webhook = OutboxMessage.objects.get(topic="approval.decided")
    assert outbox.redeliver([webhook.id]) == 1
    assert deliver_webhooks() == ["sent"]
    run_until(moto, execution, [gates, tool_worker], lambda: True)
    assert len(tools.calls) == 2

    # Signalled, then the relay stopped before recording it: signalling again is harmless.
    decided = approval_json(PausePacket.objects.get(id=packet.id))
    StepFunctionsHandler(moto.sfn).signal(decided["callback"], decided)
    assert moto.status(execution)["status"] == "SUCCEEDED" and len(tools.calls) == 2
    assert recorded_outcomes("sfn-approve") == [(0, "landed"), (1, "landed")]


def test_a_rejection_ends_the_step_with_the_reason_and_the_tool_never_runs(moto, setup):
    alice, relay, gates, tool_worker, tools = setup
    sent = []  # moto 5.2 drops a failure's cause (its responses.send_task_failure): read the call
    moto.sfn.meta.events.register(
        "provide-client-params.sfn.SendTaskFailure", lambda params, **_: sent.append(params)
    )
    execution = moto.start("sfn-reject")
    run_until(moto, execution, [gates, tool_worker], lambda: pending_packet("sfn-reject"))
    packet_reject(
        packet_id=pending_packet("sfn-reject").id, user=alice, comment="admin is too much"
    )
    assert deliver_webhooks() == ["sent"]
    state = run_until(moto, execution, [gates, tool_worker], lambda: False)

    assert state["status"] == "SUCCEEDED"
    denied = json.loads(state["output"])["denied"]
    assert denied["Error"] == "Gatekeeper.Blocked"
    assert [call["cause"] for call in sent] == ["rejected by alice: admin is too much"]
    assert [name for name, _ in tools.calls] == ["hr.lookup"]
    assert recorded_outcomes("sfn-reject") == [(0, "landed")]


def test_a_re_review_reads_the_facts_again_and_the_refreshed_approval_wakes_the_execution(
    moto, setup
):
    alice, relay, gates, tool_worker, tools = setup
    execution = moto.start("sfn-stale")
    run_until(moto, execution, [gates, tool_worker], lambda: pending_packet("sfn-stale"))
    stale = pending_packet("sfn-stale")
    PausePacket.objects.filter(id=stale.id).update(
        fresh_until=timezone.now() - timedelta(seconds=1)
    )
    packet_approve(packet_id=stale.id, user=alice)  # branch re_review: no decision yet
    assert deliver_webhooks() == ["sent"]  # approval.updated: the task fails Gatekeeper.ReReview

    fresh_pending = lambda: (p := pending_packet("sfn-stale")) is not None and p.id != stale.id  # noqa: E731
    state = run_until(moto, execution, [gates, tool_worker], fresh_pending)
    assert state["status"] == "RUNNING"  # asleep again, on the refresh state's token
    fresh = pending_packet("sfn-stale")
    stale.refresh_from_db()
    assert (stale.status, stale.superseded_by_id) == ("superseded", fresh.id)
    assert [item["name"] for item in fresh.context] == ["employee_record"]
    assert fresh.callback["task_token"] != stale.callback["task_token"]

    packet_approve(packet_id=fresh.id, user=alice)
    assert set(deliver_webhooks()) == {"sent"}
    state = run_until(moto, execution, [gates, tool_worker], lambda: False)
    assert state["status"] == "SUCCEEDED"
    assert json.loads(state["output"])["gate"]["approval_id"] == str(fresh.id)
    assert tools.calls == [
        ("hr.lookup", {"employee_id": 7}),
        ("hr.facts", {"employee_id": 7}),
        ("iam.grant", {"user": "jdoe", "role": "admin"}),
    ]
    assert recorded_outcomes("sfn-stale") == [(0, "landed"), (1, "landed")]


WORKER = """
import sys
from gatekeeper_client import GatekeeperClient
from gatekeeper_client.relay import RelayStore
from gatekeeper_client.stepfunctions import GateWorker
import boto3
url, gk_url, token, queue, store = sys.argv[1:]
sfn = boto3.client("stepfunctions", endpoint_url=url)
sqs = boto3.client("sqs", endpoint_url=url)
worker = GateWorker(GatekeeperClient(gk_url, token), sfn, sqs, queue, RelayStore(store))
while True:
    worker.poll(wait=1)
"""


def test_killing_the_gate_worker_while_the_step_waits_loses_nothing(moto, setup, live_server):
    alice, relay, gates, tool_worker, tools = setup
    execution = moto.start("sfn-kill")
    tool_worker_runs = lambda: tool_worker.poll(wait=0)  # noqa: E731
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            WORKER,
            moto.url,
            live_server.url,
            relay.token,
            moto.gates,
            relay.store.path,
        ],
        env={**os.environ},
    )
    try:
        deadline = time.monotonic() + 30
        while (packet := pending_packet("sfn-kill")) is None and time.monotonic() < deadline:
            tool_worker_runs()
            time.sleep(0.1)
        assert packet is not None and packet.tool == "iam.grant"
        while not relay.store.open_waits("stepfunctions") and time.monotonic() < deadline:
            time.sleep(0.05)  # the worker records the wait as the gate answers: then it dies
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(10)
    time.sleep(1.5)  # moto ends the killed worker's last long-poll (1 s) before anything is queued

    packet_approve(packet_id=packet.id, user=alice)
    assert deliver_webhooks() == ["sent"]  # the relay wakes the step: no gate worker needed
    state = run_until(moto, execution, [tool_worker], lambda: len(tools.calls) == 2)
    assert tools.calls == [
        ("hr.lookup", {"employee_id": 7}),
        ("iam.grant", {"user": "jdoe", "role": "admin"}),
    ]
    # A new gate worker records the grant's outcome.
    state = run_until(moto, execution, [gates, tool_worker], lambda: False)
    assert state["status"] == "SUCCEEDED"  # records the grant's outcome
    assert recorded_outcomes("sfn-kill") == [(0, "landed"), (1, "landed")]


def faulty_machine(moto, tool: str, heartbeat_seconds: int = 60) -> str:
    """hr.lookup's gate (allowed by policy), then `tool` as its step, and its outcome states."""
    states = {
        "Gate": gate_state(
            moto.gates,
            workflow="hr-onboarding",
            step_index=0,
            tool="hr.lookup",
            args_path="$.lookup",
            next_state="Run",
        ),
        **tool_states(
            "Run",
            moto.tools,
            moto.gates,
            tool=tool,
            step_index=0,
            heartbeat_seconds=heartbeat_seconds,
        ),
    }
    definition = json.dumps({"StartAt": "Gate", "States": states})
    return moto.sfn.create_state_machine(
        name=f"faulty-{tool.replace('.', '-')}", definition=definition, roleArn=agent.ROLE
    )["stateMachineArn"]


def start_faulty(moto, machine: str, thread_id: str) -> str:
    return moto.sfn.start_execution(
        stateMachineArn=machine, name=thread_id, input=json.dumps(agent.INPUT)
    )["executionArn"]


def refusing(**args):
    raise RuntimeError("the directory refused the grant")


def unknowing(**args):
    raise OutcomeUnknown("the directory timed out after the request was sent")


@pytest.mark.parametrize(
    ("tool", "error", "side_effect"),
    [
        (refusing, "Gatekeeper.ToolFailed", "failed"),
        (unknowing, "Gatekeeper.OutcomeUnknown", "indeterminate"),
    ],
)
def test_a_tool_that_raises_is_recorded_once_and_the_execution_fails(
    moto, setup, tool, error, side_effect
):
    alice, relay, gates, _tool_worker, _tools = setup
    calls = []
    tool_worker = ToolWorker(
        moto.sfn, moto.sqs, moto.tools, {"tool.x": lambda **args: calls.append(args) or tool()}
    )
    execution = start_faulty(moto, faulty_machine(moto, "tool.x"), f"sfn-{side_effect}")
    state = run_until(moto, execution, [gates, tool_worker], lambda: False)

    assert (state["status"], state.get("error")) == ("FAILED", error)
    assert calls == [{"employee_id": 7}]
    assert recorded_outcomes(f"sfn-{side_effect}") == [(0, side_effect)]
    detail = StepOutcome.objects.get(execution__thread_id=f"sfn-{side_effect}").detail
    assert detail["Error"] == ("RuntimeError" if side_effect == "failed" else error)


HANGING_TOOL_WORKER = """
import sys, time
import boto3
from gatekeeper_client.stepfunctions import ToolWorker
url, queue = sys.argv[1:]
def hang(**args):
    print("STARTED", flush=True)
    time.sleep(600)
sfn = boto3.client("stepfunctions", endpoint_url=url)
sqs = boto3.client("sqs", endpoint_url=url)
worker = ToolWorker(sfn, sqs, queue, {"tool.hang": hang})
while True:
    worker.poll(wait=1)
"""


def test_a_tool_whose_worker_dies_mid_call_times_out_as_indeterminate_and_never_runs_again(
    moto, setup, tmp_path
):
    alice, relay, gates, _tool_worker, _tools = setup
    execution = start_faulty(moto, faulty_machine(moto, "tool.hang", 2), "sfn-hang")
    output = tmp_path / "tool-worker.out"
    with output.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-c", HANGING_TOOL_WORKER, moto.url, moto.tools],
            env={**os.environ},
            stdout=out,
        )
    try:
        run_until(moto, execution, [gates], lambda: "STARTED" in output.read_text())
    finally:
        process.send_signal(signal.SIGKILL)  # mid-call: whether the write happened is unknown
        process.wait(10)

    again = []
    tool_worker = ToolWorker(
        moto.sfn, moto.sqs, moto.tools, {"tool.hang": lambda **args: again.append(args)}
    )
    state = run_until(moto, execution, [gates, tool_worker], lambda: False)
    assert (state["status"], state.get("error")) == ("FAILED", "Gatekeeper.OutcomeUnknown")
    assert again == [] and output.read_text().split() == ["STARTED"]
    assert recorded_outcomes("sfn-hang") == [(0, "indeterminate")]
    # AWS's docs name both for a missed heartbeat; moto 5.2.6 raises States.Timeout.
    timeouts = {"States.Timeout", "States.HeartbeatTimeout"}
    assert StepOutcome.objects.get(execution__thread_id="sfn-hang").detail["Error"] in timeouts


def test_a_tool_message_taken_after_its_state_timed_out_is_not_run(moto, setup):
    alice, relay, gates, _tool_worker, _tools = setup
    execution = start_faulty(moto, faulty_machine(moto, "tool.late", 1), "sfn-late")
    state = run_until(moto, execution, [gates], lambda: False)  # no tool worker in time
    assert (state["status"], state.get("error")) == ("FAILED", "Gatekeeper.OutcomeUnknown")
    assert recorded_outcomes("sfn-late") == [(0, "indeterminate")]

    late = []
    assert (
        ToolWorker(
            moto.sfn, moto.sqs, moto.tools, {"tool.late": lambda **args: late.append(args)}
        ).poll()
        == 1
    )
    assert late == []  # its state is gone: the heartbeat says so before it runs
