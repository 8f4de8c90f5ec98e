"""examples/langgraph_agent.py end to end: a live server, a reviewer deciding, a new process."""

import pytest
from django.conf import settings
from django.db import connection

from approvals.models import GateCheck
from approvals.services.review import packet_approve, packet_reject
from tests.client.conftest import next_packet
from tests.integrations.conftest import CONTRACT_LINES, STARTUP, packets_of, ran, run_example


@pytest.fixture
def checkpoint_db(live_server) -> str:
    """The test database's URL: LangGraph's PostgresSaver keeps its checkpoints beside ours."""
    db = connection.settings_dict
    return f"postgresql://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


def packet_url(packet) -> str:
    return f"{settings.GATEKEEPER_BASE_URL}/approvals/{packet.id}/"


def test_the_agent_runs_the_reviewers_edited_grant_once(
    live_server, gk_account, onboarding_policies, alice, in_background
):
    def review():
        packet = next_packet("lg-approve", timeout=STARTUP)
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
        lambda: packet_reject(
            packet_id=next_packet("lg-reject", timeout=STARTUP).id, user=bob, comment="not admin"
        )
    )
    lines = run_example("langgraph", live_server, gk_account[1], "--thread-id", "lg-reject")
    assert lines == [CONTRACT_LINES[0], "DENIED iam.grant rejected by bob: not admin", "DONE"]


def test_a_durable_run_pauses_exits_and_resumes_in_a_new_process_running_the_grant_once(
    live_server, gk_account, onboarding_policies, alice, checkpoint_db
):
    token = gk_account[1]
    durable = ("--thread-id", "lg-durable-run", "--checkpoint-db", checkpoint_db)
    first = run_example("langgraph", live_server, token, *durable)
    packet = next_packet("lg-durable-run")
    assert first == [CONTRACT_LINES[0], f"PAUSED iam.grant {packet_url(packet)}"]

    packet_approve(packet_id=packet.id, user=alice, edited_args={"user": "jdoe", "role": "dev"})
    second = run_example("langgraph", live_server, token, *durable)
    assert second == [ran("iam.grant", {"user": "jdoe", "role": "dev"}), "DONE"]

    # Started again after the end: nothing runs twice, nothing is asked twice.
    assert run_example("langgraph", live_server, token, *durable) == ["DONE"]
    assert len(packets_of("lg-durable-run")) == 1
    steps = GateCheck.objects.filter(execution__thread_id="lg-durable-run")
    assert sorted(steps.values_list("step_index", flat=True)) == [0, 1]
