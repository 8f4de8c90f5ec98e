"""examples/openai_agents_agent.py end to end: a live server, a reviewer deciding, new processes."""

from approvals.services.review import packet_approve, packet_reject
from tests.client.conftest import next_packet
from tests.integrations.conftest import CONTRACT_LINES, STARTUP, packets_of, ran, run_example


def test_the_agent_runs_the_reviewers_edited_grant_once(
    live_server, gk_account, onboarding_policies, alice, in_background
):
    def review():
        packet = next_packet("oa-approve", timeout=STARTUP)
        assert (packet.step_index, packet.step_name, packet.tool) == (1, "iam_grant", "iam.grant")
        packet_approve(packet_id=packet.id, user=alice, edited_args={"user": "jdoe", "role": "dev"})

    in_background(review)
    lines = run_example("openai_agents", live_server, gk_account[1], "--thread-id", "oa-approve")
    assert lines == [CONTRACT_LINES[0], ran("iam.grant", {"user": "jdoe", "role": "dev"}), "DONE"]


def test_a_rejected_grant_reaches_the_model_as_a_refused_call_and_the_run_finishes(
    live_server, gk_account, onboarding_policies, bob, in_background
):
    in_background(
        lambda: packet_reject(
            packet_id=next_packet("oa-reject", timeout=STARTUP).id, user=bob, comment="not admin"
        )
    )
    lines = run_example("openai_agents", live_server, gk_account[1], "--thread-id", "oa-reject")
    assert lines == [CONTRACT_LINES[0], "DENIED iam.grant rejected by bob: not admin", "DONE"]


def test_a_run_state_saved_while_waiting_resumes_in_a_new_process_and_runs_once(
    live_server, gk_account, onboarding_policies, alice, tmp_path
):
    token = gk_account[1]
    durable = ("--thread-id", "oa-durable", "--state-file", str(tmp_path / "run.json"))
    first = run_example("openai_agents", live_server, token, *durable)
    assert first == [CONTRACT_LINES[0], "PAUSED iam.grant"]
    assert (tmp_path / "run.json").exists()

    # Started again before anyone decided: still paused, not asked twice.
    assert run_example("openai_agents", live_server, token, *durable) == ["PAUSED iam.grant"]
    packet = next_packet("oa-durable")
    packet_approve(packet_id=packet.id, user=alice, edited_args={"user": "jdoe", "role": "dev"})
    second = run_example("openai_agents", live_server, token, *durable)
    assert second == [ran("iam.grant", {"user": "jdoe", "role": "dev"}), "DONE"]
    assert len(packets_of("oa-durable")) == 1
