"""examples/crewai_agent.py end to end: a live server, a reviewer deciding, new processes."""

from approvals.models import GateCheck
from approvals.services.review import packet_approve, packet_reject
from tests.client.conftest import next_packet
from tests.integrations.conftest import CONTRACT_LINES, STARTUP, packets_of, ran, run_example


def test_the_crew_runs_the_reviewers_edited_grant_once_and_a_rerun_runs_nothing(
    live_server, gk_account, onboarding_policies, alice, in_background, crewai_python, offline
):
    def review():
        packet = next_packet("cr-approve", timeout=STARTUP)
        assert (packet.step_index, packet.step_name, packet.tool) == (1, "iam_grant", "iam.grant")
        packet_approve(packet_id=packet.id, user=alice, edited_args={"user": "jdoe", "role": "dev"})

    in_background(review)
    token, thread = gk_account[1], ("--thread-id", "cr-approve")
    lines = run_example("crewai", live_server, token, *thread, python=crewai_python)
    assert lines == [CONTRACT_LINES[0], ran("iam.grant", {"user": "jdoe", "role": "dev"}), "DONE"]

    # The same run started again (after a crash, say): it replays the gate, runs nothing.
    assert run_example("crewai", live_server, token, *thread, python=crewai_python) == ["DONE"]
    assert len(packets_of("cr-approve")) == 1
    steps = GateCheck.objects.filter(execution__thread_id="cr-approve")
    assert sorted(steps.values_list("step_index", flat=True)) == [0, 1]


def test_a_rejected_grant_reaches_the_agent_as_a_refused_call_and_the_crew_finishes(
    live_server, gk_account, onboarding_policies, bob, in_background, crewai_python, offline
):
    in_background(
        lambda: packet_reject(
            packet_id=next_packet("cr-reject", timeout=STARTUP).id, user=bob, comment="not admin"
        )
    )
    thread = ("--thread-id", "cr-reject")
    lines = run_example("crewai", live_server, gk_account[1], *thread, python=crewai_python)
    assert lines == [CONTRACT_LINES[0], "DENIED iam.grant rejected by bob: not admin", "DONE"]
