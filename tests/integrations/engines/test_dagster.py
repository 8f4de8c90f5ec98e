"""Dagster (its own in-process executor): an op waits at its gate by long-polling; a re-review
reads the facts again and waits on the refreshed approval; the tool runs once and its outcome
is recorded in the op."""

import importlib.util
import os
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
from dagster import OpExecutionContext, job, op
from django.db import close_old_connections
from django.utils import timezone
from gatekeeper_client import GatekeeperClient
from gatekeeper_client.dagster import THREAD_TAG, gate, run

from approvals.models import PausePacket
from approvals.services.review import packet_approve
from tests.integrations.engines.conftest import pending_packet, recorded_outcomes

ROOT = Path(__file__).resolve().parents[3]
_spec = importlib.util.spec_from_file_location(
    "dagster_agent", ROOT / "examples" / "dagster_agent.py"
)
agent = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(agent)


@pytest.fixture
def run_job(engine_setup, live_server, monkeypatch):
    """Runs the example's job in a thread as the account `engine-0`; `join()` gives success."""
    alice, start_relay = engine_setup
    relay = start_relay({})  # no relay needed: the op long-polls
    monkeypatch.setenv("GATEKEEPER_URL", live_server.url)
    monkeypatch.setenv("GATEKEEPER_TOKEN", relay.token)
    outcome = {}

    def start(thread_id):
        def run():
            result = agent.onboarding.execute_in_process(tags={THREAD_TAG: thread_id})
            outcome["success"] = result.success

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        return thread

    return alice, start, outcome


def wait_for(condition, timeout=60):
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)
    return value


def test_a_re_review_reads_the_facts_again_and_the_refreshed_approval_runs_the_tool_once(
    run_job, capsys
):
    alice, start, outcome = run_job
    job = start("dg-stale")
    stale = wait_for(lambda: pending_packet("dg-stale"))
    PausePacket.objects.filter(id=stale.id).update(
        fresh_until=timezone.now() - timedelta(seconds=1)
    )
    packet_approve(packet_id=stale.id, user=alice)  # branch re_review: no decision yet

    fresh = wait_for(
        lambda: (p := pending_packet("dg-stale")) is not None and p.id != stale.id and p
    )
    stale.refresh_from_db()
    assert (stale.status, stale.superseded_by_id) == ("superseded", fresh.id)
    assert [item["name"] for item in fresh.context] == ["employee_record"]
    packet_approve(packet_id=fresh.id, user=alice, edited_args={"user": "jdoe", "role": "viewer"})
    job.join(60)
    close_old_connections()

    assert outcome == {"success": True}
    ran = [line for line in capsys.readouterr().out.splitlines() if line.startswith("RAN ")]
    assert ran == [
        'RAN hr.lookup {"employee_id": 7}',
        'RAN iam.grant {"role": "viewer", "user": "jdoe"}',
    ]
    assert recorded_outcomes("dg-stale") == [(0, "landed"), (1, "landed")]


LOOKUPS = []  # what lookup_job's tool was called with


@op(config_schema={"fail": bool})
def lookup_op(context: OpExecutionContext) -> None:
    def lookup(args: dict) -> None:
        LOOKUPS.append(args)
        if context.op_config["fail"]:
            raise RuntimeError("the directory is down")

    gk = GatekeeperClient(os.environ["GATEKEEPER_URL"], os.environ["GATEKEEPER_TOKEN"])
    verdict = gate(context, gk, "hr-onboarding", 0, "hr.lookup", {"employee_id": 7})
    run(context, gk, 0, lookup, verdict.args)


@job
def lookup_job():
    lookup_op()


def run_lookup(thread_id: str, *, fail: bool):
    config = {"ops": {"lookup_op": {"config": {"fail": fail}}}}
    return lookup_job.execute_in_process(
        run_config=config, tags={THREAD_TAG: thread_id}, raise_on_error=False
    )


def test_a_tool_that_raises_is_recorded_as_failed_and_its_op_fails(run_job):
    LOOKUPS.clear()
    assert not run_lookup("dg-fail", fail=True).success
    assert LOOKUPS == [{"employee_id": 7}]
    assert recorded_outcomes("dg-fail") == [(0, "failed")]


def test_a_re_execution_of_a_step_recorded_as_landed_does_not_run_its_tool_again(run_job):
    LOOKUPS.clear()
    assert run_lookup("dg-again", fail=False).success
    assert run_lookup("dg-again", fail=False).success  # the same thread: a re-execution
    assert LOOKUPS == [{"employee_id": 7}]
    assert recorded_outcomes("dg-again") == [(0, "landed")]
