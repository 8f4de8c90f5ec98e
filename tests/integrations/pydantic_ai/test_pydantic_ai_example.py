"""examples/pydantic_ai_agent.py end to end: a live server, a reviewer deciding, new processes."""

from django.conf import settings

from approvals.models import GateCheck
from approvals.services.review import packet_approve, packet_reject
from tests.client.conftest import next_packet
from tests.integrations.conftest import CONTRACT_LINES, STARTUP, packets_of, ran, run_example


def test_the_agent_runs_the_reviewers_edited_grant_once(
    live_server, gk_account, onboarding_policies, alice, in_background
):
    def review():
        packet = next_packet("pa-approve", timeout=STARTUP)
        assert (packet.step_index, packet.step_name, packet.tool) == (1, "iam_grant", "iam.grant")
        packet_approve(packet_id=packet.id, user=alice, edited_args={"user": "jdoe", "role": "dev"})

    in_background(review)
    lines = run_example("pydantic_ai", live_server, gk_account[1], "--thread-id", "pa-approve")
    assert lines == [CONTRACT_LINES[0], ran("iam.grant", {"user": "jdoe", "role": "dev"}), "DONE"]
    steps = GateCheck.objects.filter(execution__thread_id="pa-approve")
    assert sorted(set(steps.values_list("step_index", flat=True))) == [0, 1]


def test_a_rejected_grant_reaches_the_model_as_a_denied_call_and_the_run_finishes(
    live_server, gk_account, onboarding_policies, bob, in_background
):
    in_background(
        lambda: packet_reject(
            packet_id=next_packet("pa-reject", timeout=STARTUP).id, user=bob, comment="not admin"
        )
    )
    lines = run_example("pydantic_ai", live_server, gk_account[1], "--thread-id", "pa-reject")
    assert lines == [CONTRACT_LINES[0], "DENIED iam.grant rejected by bob: not admin", "DONE"]


def test_deferred_requests_saved_while_waiting_resume_in_a_new_process_and_run_once(
    live_server, gk_account, onboarding_policies, alice, tmp_path
):
    token = gk_account[1]
    durable = ("--thread-id", "pa-durable", "--state-file", str(tmp_path / "run.json"))
    first = run_example("pydantic_ai", live_server, token, *durable)
    packet = next_packet("pa-durable")
    url = f"{settings.GATEKEEPER_BASE_URL}/approvals/{packet.id}/"
    assert first == [CONTRACT_LINES[0], f"PAUSED iam.grant {url}"]

    # Started again before anyone decided: still paused, not asked twice.
    assert run_example("pydantic_ai", live_server, token, *durable) == [f"PAUSED iam.grant {url}"]
    packet_approve(packet_id=packet.id, user=alice, edited_args={"user": "jdoe", "role": "dev"})
    second = run_example("pydantic_ai", live_server, token, *durable)
    assert second == [ran("iam.grant", {"user": "jdoe", "role": "dev"}), "DONE"]
    assert not (tmp_path / "run.json").exists()
    assert len(packets_of("pa-durable")) == 1
