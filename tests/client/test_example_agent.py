"""examples/hr_onboarding_agent.py runs end to end under the demo's policies."""

import os
import subprocess
import sys
from pathlib import Path

from approvals.demo import POLICIES
from approvals.models import PausePacket
from approvals.services.policies import policies_import
from approvals.services.review import packet_approve
from tests.client.conftest import next_packet
from tests.conftest import groups_named_by

AGENT = Path(__file__).resolve().parents[2] / "examples" / "hr_onboarding_agent.py"


def test_the_onboarding_agent_runs_every_step_once_reviewers_approve(
    live_server, gk_account, make_user, in_background
):
    groups_named_by(*POLICIES)
    policies_import(documents=POLICIES, actor="test")
    alice = make_user("alice", "it-approvers", "reviewers")
    bob = make_user("bob", "it-approvers", "reviewers")
    thread = "onboard-test"

    def review():
        create = next_packet(thread)
        assert (create.step_name, create.policy_name) == ("create_account", "")
        packet_approve(packet_id=create.id, user=alice)
        grant = next_packet(thread, exclude=[create.id])
        assert (grant.policy_name, grant.required_approvals) == ("privileged-iam", 2)
        packet_approve(packet_id=grant.id, user=alice, edited_args={**grant.args, "scope": "lab"})
        packet_approve(packet_id=grant.id, user=bob)
        email = next_packet(thread, exclude=[create.id, grant.id])
        assert email.policy_name == "outbound-email"
        packet_approve(packet_id=email.id, user=bob)

    in_background(review)
    env = {**os.environ, "GATEKEEPER_URL": live_server.url, "GATEKEEPER_TOKEN": gk_account[1]}
    run = subprocess.run(
        [sys.executable, str(AGENT), "--thread-id", thread],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    out = run.stdout
    assert "step 0 lookup_employee: allowed by policy read-only-tools" in out
    assert "step 2 set_privileges: approved by alice, bob with edited args" in out
    assert " on lab to " in out
    assert out.rstrip().endswith("onboarding complete")
    assert not PausePacket.objects.filter(status="pending").exists()


def test_the_agent_refuses_to_start_without_url_and_token():
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEKEEPER_")}
    run = subprocess.run(
        [sys.executable, str(AGENT)], env=env, capture_output=True, text=True, check=False
    )
    assert run.returncode == 2 and "GATEKEEPER_URL and GATEKEEPER_TOKEN" in run.stderr
