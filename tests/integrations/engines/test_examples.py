"""The engine examples (Step Functions, Temporal, Prefect, Dagster) keep DESIGN section 11's
contract: RAN lines for the tools that run (approved args), DENIED for a refusal, then DONE."""

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from django.db import connection

from approvals.models import PausePacket
from approvals.services.review import packet_approve, packet_reject

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
EXAMPLE_FILES = [
    "stepfunctions_agent.py",
    "temporal_agent.py",
    "prefect_agent.py",
    "dagster_agent.py",
]
CONTRACT = ("RAN ", "DENIED ", "DONE")
LOOKUP = 'RAN hr.lookup {"employee_id": 7}'


def any_pending():
    connection.close()
    return PausePacket.objects.filter(status="pending").first()


def review(thread_id, decide, timeout=90):
    """A reviewer in another thread: decides the step's packet once it is pending."""
    errors = []

    def run():
        try:
            deadline = time.monotonic() + timeout
            # Each test's database is its own: the one pending packet is this run's (Prefect's
            # thread is the flow run's id, not known here).
            while (packet := any_pending()) is None:
                assert time.monotonic() < deadline, f"no packet of {thread_id}"
                time.sleep(0.1)
            decide(packet)
        except BaseException as error:
            errors.append(error)
        finally:
            connection.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, errors


@pytest.fixture
def run_example(engine_setup, live_server):
    alice, start_relay = engine_setup
    relay = start_relay({})  # an account whose webhooks nobody needs: the example long-polls

    def run(name, thread_id, decide):
        reviewer, errors = review(thread_id, lambda packet: decide(packet, alice))
        env = {
            k: v for k, v in os.environ.items() if not k.startswith(("TEMPORAL_", "GATEKEEPER_"))
        }
        env.update(GATEKEEPER_URL=live_server.url, GATEKEEPER_TOKEN=relay.token)
        done = subprocess.run(
            [sys.executable, str(EXAMPLES / name), "--thread-id", thread_id],
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        reviewer.join(10)
        assert not errors, errors
        assert done.returncode == 0, done.stdout + done.stderr
        # The contract's lines; Temporal's dev server prints its banner to the same stdout.
        return [line for line in done.stdout.splitlines() if line.startswith(CONTRACT)]

    return run


@pytest.mark.parametrize("example", EXAMPLE_FILES)
def test_an_edited_approval_runs_the_grant_with_the_edited_args(run_example, example):
    def approve(packet, alice):
        packet_approve(
            packet_id=packet.id, user=alice, edited_args={"user": "jdoe", "role": "viewer"}
        )

    lines = run_example(example, f"ex-ok-{example[:4]}", approve)
    assert lines == [LOOKUP, 'RAN iam.grant {"role": "viewer", "user": "jdoe"}', "DONE"]


@pytest.mark.parametrize("example", EXAMPLE_FILES)
def test_a_rejection_prints_denied_with_the_reason(run_example, example):
    def reject(packet, alice):
        packet_reject(packet_id=packet.id, user=alice, comment="too much")

    lines = run_example(example, f"ex-no-{example[:4]}", reject)
    assert lines == [LOOKUP, "DENIED iam.grant rejected by alice: too much", "DONE"]
