"""Airflow 3 (human-in-the-loop tasks, `dag.test()` in its own environment): the gate task parks
in awaiting_input until Gatekeeper's decision is written as its response; examples/airflow_agent.py
keeps DESIGN section 11's contract; an `OutcomeOperator` after each tool records its outcome."""

import contextlib
import os
import signal
import subprocess
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import connection
from django.utils import timezone
from gatekeeper_client.relay import RelayStore

from approvals.models import PausePacket, StepOutcome
from approvals.services.review import packet_approve, packet_reject
from tests.integrations.engines import airflow_env
from tests.integrations.engines.conftest import recorded_outcomes
from tests.integrations.engines.test_examples import CONTRACT, EXAMPLES, LOOKUP, review

FAILING_DAG = Path(__file__).with_name("airflow_failing_dag.py")  # Airflow's: run in its python


@pytest.fixture(scope="module")
def airflow_python():
    return airflow_env.ensure()


@pytest.fixture
def run_airflow(engine_setup, live_server, airflow_python, tmp_path):
    alice, start_relay = engine_setup
    relay = start_relay({})  # no webhooks needed: the example's second process long-polls

    def run(thread_id, decide):
        # Airflow takes a while to start (its database, its in-process API): wait longer.
        reviewer, errors = review(thread_id, lambda packet: decide(packet, alice), timeout=300)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "GATEKEEPER_"))}
        env.update(
            GATEKEEPER_URL=live_server.url,
            GATEKEEPER_TOKEN=relay.token,
            GATEKEEPER_RELAY_STORE=str(tmp_path / "airflow-waits.sqlite"),
        )
        output = tmp_path / f"{thread_id}.out"
        with output.open("w") as out:
            example = subprocess.Popen(
                [str(airflow_python), EXAMPLES / "airflow_agent.py", "--thread-id", thread_id],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            try:
                returncode = example.wait(400)
            except subprocess.TimeoutExpired:
                returncode = "still running after 400 s"
            finally:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(example.pid, signal.SIGKILL)  # its decisions process too
                example.wait(10)
        reviewer.join(10)
        text = output.read_text()
        assert not errors, (errors, text[-4000:])
        assert returncode == 0, text[-4000:]
        return [line for line in text.splitlines() if line.startswith(CONTRACT)]

    return run


def parked_on(store_path, approval_id):
    """Wait until the gate task parked again, on `approval_id` (its notifier recorded it)."""
    deadline = time.monotonic() + 120
    while approval_id not in [
        waiting for waiting, _ in RelayStore(store_path).open_waits("airflow")
    ]:
        assert time.monotonic() < deadline, f"the task did not park on {approval_id}"
        time.sleep(0.2)


def fresh_pending(stale_id):
    deadline = time.monotonic() + 120
    while True:
        connection.close()
        packet = PausePacket.objects.filter(status="pending").exclude(id=stale_id).first()
        if packet is not None:
            return packet
        assert time.monotonic() < deadline, "no refreshed packet"
        time.sleep(0.2)


def test_a_re_review_reads_the_facts_again_and_the_edited_approval_of_the_new_one_runs_once(
    run_airflow, tmp_path
):
    seen = {}

    def stale_then_approve(packet, alice):
        PausePacket.objects.filter(id=packet.id).update(
            fresh_until=timezone.now() - timedelta(seconds=1)
        )
        packet_approve(packet_id=packet.id, user=alice)  # branch re_review: no decision yet
        fresh = fresh_pending(packet.id)
        parked_on(tmp_path / "airflow-waits.sqlite", str(fresh.id))  # woken, refreshed, parked
        seen.update(stale=PausePacket.objects.get(id=packet.id), fresh=fresh)
        packet_approve(
            packet_id=fresh.id, user=alice, edited_args={"user": "jdoe", "role": "viewer"}
        )

    lines = run_airflow("af-stale", stale_then_approve)

    assert lines == [LOOKUP, 'RAN iam.grant {"role": "viewer", "user": "jdoe"}', "DONE"]
    assert (seen["stale"].status, seen["stale"].superseded_by_id) == (
        "superseded",
        seen["fresh"].id,
    )
    assert [item["name"] for item in seen["fresh"].context] == ["employee_record"]
    assert seen["fresh"].callback["task_id"] == "gate_iam_grant"
    assert recorded_outcomes("af-stale") == [(0, "landed"), (1, "landed")]


def test_a_rejection_prints_denied_with_the_reason_and_the_grant_never_runs(run_airflow):
    def reject(packet, alice):
        packet_reject(packet_id=packet.id, user=alice, comment="too much")

    lines = run_airflow("af-no", reject)
    assert lines == [LOOKUP, "DENIED iam.grant rejected by alice: too much", "DONE"]
    assert recorded_outcomes("af-no") == [(0, "landed")]


def test_a_tool_task_that_fails_is_recorded_as_failed_by_the_outcome_task(
    engine_setup, live_server, airflow_python
):
    alice, start_relay = engine_setup
    relay = start_relay({})
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "GATEKEEPER_"))}
    env.update(GATEKEEPER_URL=live_server.url, GATEKEEPER_TOKEN=relay.token)
    done = subprocess.run(
        [str(airflow_python), str(FAILING_DAG), "af-fail"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    assert done.stdout.splitlines()[-1] == "failed"  # the DAG run: its tool failed
    assert recorded_outcomes("af-fail") == [(0, "failed")]
    detail = StepOutcome.objects.get(execution__thread_id="af-fail").detail
    assert detail == {"task_id": "lookup", "state": "failed"}
