"""GatekeeperFeedback as a CrewAI Flow's @human_feedback provider, in .venv-crewai."""

from pathlib import Path

from approvals.services.review import packet_approve, packet_reject
from tests.client.conftest import next_packet
from tests.integrations.conftest import STARTUP
from tests.integrations.crewai.conftest import run_in_crewai

DRIVER = Path(__file__).with_name("flow_driver.py")


def run_flow(live_server, token, python, *arguments) -> list[str]:
    stdout = run_in_crewai(python, [str(DRIVER), *arguments], live_server, token)
    return [line for line in stdout.splitlines() if line.startswith(("FEEDBACK", "PAUSED"))]


def test_a_flow_waits_for_the_reviewer_and_hears_the_approval(
    live_server, gk_account, onboarding_policies, alice, in_background, crewai_python, offline
):
    def review():
        packet = next_packet("cr-flow-wait", timeout=STARTUP)
        proposed = {"output": {"user": "jdoe", "role": "admin"}}
        assert (packet.step_name, packet.tool, packet.args) == ("propose", "iam.grant", proposed)
        packet_approve(packet_id=packet.id, user=alice)

    in_background(review)
    lines = run_flow(live_server, gk_account[1], crewai_python, "wait", "cr-flow-wait")
    assert lines == ["FEEDBACK approved"]


def test_a_paused_flow_resumes_in_a_new_process_from_the_decision(
    live_server, gk_account, onboarding_policies, bob, crewai_python, offline, tmp_path
):
    db = str(tmp_path / "flows.db")
    token = gk_account[1]
    flow = "cr-flow-pause"
    (paused,) = run_flow(live_server, token, crewai_python, "pause", flow, db)
    packet = next_packet(flow)
    assert paused == f"PAUSED {flow} {packet.id}"
    packet_reject(packet_id=packet.id, user=bob, comment="not admin")
    lines = run_flow(live_server, token, crewai_python, "resume", flow, db, str(packet.id))
    assert lines == ["FEEDBACK rejected: rejected by bob: not admin"]
