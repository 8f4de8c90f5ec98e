"""examples/mcp_agent.py to the DESIGN section 11 contract, against a live Gatekeeper."""

import os
import subprocess
import sys
from pathlib import Path

from approvals.services.review import packet_approve, packet_reject
from tests.client.conftest import next_packet

AGENT = Path(__file__).resolve().parents[3] / "examples" / "mcp_agent.py"


def run_agent(live_server, token: str, thread_id: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "GATEKEEPER_URL": live_server.url, "GATEKEEPER_TOKEN": token}
    return subprocess.run(
        [sys.executable, str(AGENT), "--thread-id", thread_id],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_mcp_agent_runs_the_lookup_and_the_approved_grant_with_its_edit(
    live_server, account, make_user, in_background
):
    alice = make_user("alice", "it-approvers")
    in_background(
        lambda: packet_approve(
            packet_id=(packet := next_packet("mcp-example", timeout=90)).id,
            user=alice,
            edited_args={**packet.args, "scope": "lab"},
        )
    )
    run = run_agent(live_server, account[1], "mcp-example")
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.splitlines() == [
        'RAN hr.lookup {"employee_id": 7}',
        'RAN iam.grant {"role": "admin", "scope": "lab", "user": "jdoe"}',
        "DONE",
    ], run.stdout + run.stderr
    assert "waiting for a human's approval" in run.stderr


def test_a_rejected_grant_is_denied_with_the_reason_and_the_run_goes_on(
    live_server, account, make_user, in_background
):
    bob = make_user("bob", "it-approvers")
    in_background(
        lambda: packet_reject(
            packet_id=next_packet("mcp-example-2", timeout=90).id,
            user=bob,
            comment="use a narrower role",
        )
    )
    run = run_agent(live_server, account[1], "mcp-example-2")
    assert run.returncode == 0, run.stdout + run.stderr
    lines = run.stdout.splitlines()
    assert lines[0] == 'RAN hr.lookup {"employee_id": 7}'
    assert lines[1].startswith("DENIED iam.grant iam.grant was not called: Gatekeeper refused it")
    assert "rejected by bob: use a narrower role" in lines[1]
    assert lines[2:] == ["DONE"]


def test_the_agent_refuses_to_start_without_url_and_token():
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEKEEPER_")}
    run = subprocess.run(
        [sys.executable, str(AGENT)], env=env, capture_output=True, text=True, check=False
    )
    assert run.returncode == 2 and "GATEKEEPER_URL and GATEKEEPER_TOKEN" in run.stderr
