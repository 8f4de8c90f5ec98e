"""examples/langgraph_agent.py end to end: a live server, a reviewer deciding, a new process."""

import pytest

from approvals.services.review import packet_approve, packet_reject
from tests.client.conftest import next_packet
from tests.integrations.conftest import CONTRACT_LINES, ran, run_example




def test_the_agent_runs_the_reviewers_edited_grant_once(
    live_server, gk_account, onboarding_policies, alice, in_background
):
    def review():
        packet = next_packet("lg-approve")
        assert (packet.step_index, packet.step_name, packet.tool) == (1, "iam_grant", "iam.grant")
        packet_approve(packet_id=packet.id, user=alice, edited_args={"user": "jdoe", "role": "dev"})

    in_background(review)
    lines = run_example("langgraph", live_server, gk_account[1], "--thread-id", "lg-approve")
    assert lines == [
        CONTRACT_LINES[0],
        ran("iam.grant", {"user": "jdoe", "role": "dev"}),
        "DONE",
    ]


def test_a_rejected_grant_reaches_the_model_as_a_refused_call_and_the_run_finishes(
    live_server, gk_account, onboarding_policies, bob, in_background
):
    in_background(
        lambda: packet_reject(packet_id=next_packet("lg-reject").id, user=bob, comment="not admin")
    )
    lines = run_example("langgraph", live_server, gk_account[1], "--thread-id", "lg-reject")
    assert lines == [CONTRACT_LINES[0], "DENIED iam.grant rejected by bob: not admin", "DONE"]
