"""Prefect 3 (its local test server): a flow run suspended at its gate, resumed by the relay;
its runner process can die meanwhile; each tool's outcome is recorded by a task after it, once
however often the resumed run replays its flow."""

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone
from gatekeeper_client import GatekeeperClient, OutcomeUnknown
from gatekeeper_client.prefect import PrefectHandler, gate, run
from prefect import flow, get_client, task
from prefect.client.schemas.filters import TaskRunFilter, TaskRunFilterFlowRunId
from prefect.settings import PREFECT_API_URL
from prefect.states import Scheduled
from prefect.testing.utilities import prefect_test_harness

from approvals.models import OutboxMessage, PausePacket, StepOutcome
from approvals.services import outbox
from approvals.services.review import packet_approve, packet_reject
from tests.integrations.engines import prefect_hanging_flow
from tests.integrations.engines.conftest import deliver_webhooks, recorded_outcomes

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
LOOKUP = 'RAN hr.lookup {"employee_id": 7}'


@pytest.fixture(scope="module")
def prefect_api():
    with prefect_test_harness(server_startup_timeout=180):
        yield PREFECT_API_URL.value()


class Runners:
    """Runner processes of the example (`--serve`), each one's output in a file."""

    def __init__(self, api_url, live_server, token, tmp_path):
        self.env = {
            **os.environ,
            "PREFECT_API_URL": api_url,
            "PREFECT_RUNNER_POLL_FREQUENCY": "1",
            "GATEKEEPER_URL": live_server.url,
            "GATEKEEPER_TOKEN": token,
        }
        self.tmp_path, self.processes, self.outputs = tmp_path, [], []

    def start(self, argv=(str(EXAMPLES / "prefect_agent.py"), "--serve")):
        output = self.tmp_path / f"runner-{len(self.outputs)}.out"
        self.outputs.append(output)
        process = subprocess.Popen(
            [sys.executable, *argv],
            env=self.env,
            stdout=output.open("w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its flow runs' processes with it, killed together
        )
        self.processes.append(process)
        return process

    def kill(self, process):
        """The runner and the flow run it runs now, as a machine's crash would."""
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)

    def ran(self, prefix="RAN ") -> list[str]:
        lines = (line for out in self.outputs for line in out.read_text().splitlines())
        return [line for line in lines if line.startswith(prefix)]

    def close(self):
        for process in self.processes:
            if process.poll() is None:
                self.kill(process)


@pytest.fixture
def setup(prefect_api, engine_setup, live_server, tmp_path):
    alice, start_relay = engine_setup
    relay = start_relay({"prefect": PrefectHandler(prefect_api)})
    runners = Runners(prefect_api, live_server, relay.token, tmp_path)
    yield alice, relay, runners
    runners.close()


def wait_until(condition, timeout=120):
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)
    return value


def start_flow_run(deployment="onboarding/onboarding"):
    from prefect.deployments import run_deployment

    def started():
        try:
            return run_deployment(deployment, timeout=0)
        except Exception:  # the runner registers the deployment as it starts
            return None

    return wait_until(started).id


def state_of(flow_run_id):
    with get_client(sync_client=True) as client:
        return client.read_flow_run(flow_run_id).state


def suspended_packet(flow_run_id, *, not_id=None) -> PausePacket:
    """The run's pending packet (not `not_id`), once the run is suspended on it."""
    from django.db import close_old_connections

    def pending():
        close_old_connections()
        packet = PausePacket.objects.filter(
            execution__thread_id=str(flow_run_id), status="pending"
        ).first()
        return packet if packet is not None and packet.id != not_id else None

    packet = wait_until(pending)
    wait_until(lambda: state_of(flow_run_id).name == "Suspended")
    return packet


def test_an_edited_approval_resumes_the_suspended_run_through_the_relay_and_the_tool_runs_once(
    setup,
):
    alice, relay, runners = setup
    runners.start()
    flow_run_id = start_flow_run()
    packet = suspended_packet(flow_run_id)  # suspended: no process runs the flow now
    assert (packet.tool, packet.callback) == (
        "iam.grant",
        {"engine": "prefect", "flow_run_id": str(flow_run_id)},
    )
    packet_approve(packet_id=packet.id, user=alice, edited_args={"user": "jdoe", "role": "viewer"})
    assert deliver_webhooks() == ["sent"]
    assert (
        wait_until(lambda: state_of(flow_run_id).is_final())
        and state_of(flow_run_id).is_completed()
    )
    assert runners.ran() == [LOOKUP, 'RAN iam.grant {"role": "viewer", "user": "jdoe"}']
    assert recorded_outcomes(str(flow_run_id)) == [(0, "landed"), (1, "landed")]

    assert outbox.redeliver([OutboxMessage.objects.get(topic="approval.decided").id]) == 1
    assert deliver_webhooks() == ["sent"]
    assert len(runners.ran()) == 2
    assert recorded_outcomes(str(flow_run_id)) == [(0, "landed"), (1, "landed")]


def test_a_rejection_ends_the_step_with_the_reason(setup):
    alice, relay, runners = setup
    runners.start()
    flow_run_id = start_flow_run()
    packet = suspended_packet(flow_run_id)
    packet_reject(packet_id=packet.id, user=alice, comment="too much")
    assert deliver_webhooks() == ["sent"]
    wait_until(lambda: state_of(flow_run_id).is_final())
    output = "\n".join(out.read_text() for out in runners.outputs)
    assert "DENIED iam.grant rejected by alice: too much" in output
    assert runners.ran() == [LOOKUP]
    assert recorded_outcomes(str(flow_run_id)) == [(0, "landed")]


def test_killing_the_runner_while_the_run_is_suspended_loses_nothing(setup):
    alice, relay, runners = setup
    first = runners.start()
    flow_run_id = start_flow_run()
    packet = suspended_packet(flow_run_id)
    first.kill()  # the runner; the run's own process has exited as it suspended
    first.wait(10)

    packet_approve(packet_id=packet.id, user=alice)
    assert deliver_webhooks() == ["sent"]  # Prefect takes the input with no runner up
    runners.start()
    wait_until(lambda: state_of(flow_run_id).is_final())
    assert state_of(flow_run_id).is_completed()
    assert runners.ran() == [LOOKUP, 'RAN iam.grant {"role": "admin", "user": "jdoe"}']
    assert recorded_outcomes(str(flow_run_id)) == [(0, "landed"), (1, "landed")]


def test_a_re_review_resumes_the_run_which_reads_the_facts_again_and_suspends_on_the_new_one(
    setup,
):
    alice, relay, runners = setup
    runners.start()
    flow_run_id = start_flow_run()
    stale = suspended_packet(flow_run_id)
    PausePacket.objects.filter(id=stale.id).update(
        fresh_until=timezone.now() - timedelta(seconds=1)
    )
    packet_approve(packet_id=stale.id, user=alice)  # branch re_review: no decision yet
    assert deliver_webhooks() == ["sent"]

    fresh = suspended_packet(flow_run_id, not_id=stale.id)
    stale.refresh_from_db()
    assert (stale.status, stale.superseded_by_id) == ("superseded", fresh.id)
    assert [item["name"] for item in fresh.context] == ["employee_record"]
    packet_approve(packet_id=fresh.id, user=alice)
    assert set(deliver_webhooks()) == {"sent"}
    wait_until(lambda: state_of(flow_run_id).is_final())
    assert state_of(flow_run_id).is_completed()
    assert runners.ran() == [LOOKUP, 'RAN iam.grant {"role": "admin", "user": "jdoe"}']
    assert recorded_outcomes(str(flow_run_id)) == [(0, "landed"), (1, "landed")]


@task(name="tool.raise", persist_result=True)
def refusing_tool(args: dict) -> None:
    raise RuntimeError("the directory refused the grant")


@task(name="tool.unknown", persist_result=True)
def unknowing_tool(args: dict) -> None:
    raise OutcomeUnknown("the directory timed out after the request was sent")


@flow(name="faulty", persist_result=True)
def faulty(url: str, token: str, mode: str) -> None:
    """Gates hr.lookup (allowed by policy) and runs a tool task that raises."""
    gk = GatekeeperClient(url, token)
    verdict = gate(gk, "hr-onboarding", 0, "hr.lookup", {"employee_id": 7})
    run(gk, 0, {"raise": refusing_tool, "unknown": unknowing_tool}[mode], verdict.args)


@pytest.mark.parametrize(
    ("mode", "side_effect", "error"),
    [
        ("raise", "failed", "RuntimeError: the directory refused the grant"),
        ("unknown", "indeterminate", "the directory timed out after the request was sent"),
    ],
)
def test_a_tool_task_that_raises_is_recorded_as_failed_or_unknown_and_the_run_fails(
    prefect_api, engine_setup, live_server, mode, side_effect, error
):
    alice, start_relay = engine_setup
    relay = start_relay({})
    state = faulty(live_server.url, relay.token, mode, return_state=True)
    assert state.is_failed()
    thread_id = str(state.state_details.flow_run_id)
    assert recorded_outcomes(thread_id) == [(0, side_effect)]
    assert StepOutcome.objects.get(execution__thread_id=thread_id).detail == {"error": error}


def task_run_states(flow_run_id) -> set[str]:
    runs = TaskRunFilter(flow_run_id=TaskRunFilterFlowRunId(any_=[flow_run_id]))
    with get_client(sync_client=True) as client:
        return {run.state_type.value for run in client.read_task_runs(task_run_filter=runs)}


def test_a_tool_task_whose_runner_dies_mid_call_is_recorded_as_indeterminate_and_not_run_again(
    setup,
):
    alice, relay, runners = setup
    first = runners.start([prefect_hanging_flow.__file__])
    flow_run_id = start_flow_run(prefect_hanging_flow.DEPLOYMENT)
    wait_until(lambda: runners.ran("STARTED ") and "RUNNING" in task_run_states(flow_run_id))
    runners.kill(first)  # mid-call: whether the write happened is unknown

    with get_client(sync_client=True) as client:  # the operator retries the run
        client.set_flow_run_state(flow_run_id, Scheduled(), force=True)
    runners.start([prefect_hanging_flow.__file__])
    wait_until(lambda: state_of(flow_run_id).is_final())
    assert state_of(flow_run_id).is_failed()
    assert runners.ran("STARTED ") == ["STARTED tool.hang"]
    assert recorded_outcomes(str(flow_run_id)) == [(0, "indeterminate")]
    detail = StepOutcome.objects.get(execution__thread_id=str(flow_run_id)).detail
    assert detail == {"error": "tool.hang was still running when its flow run stopped"}
