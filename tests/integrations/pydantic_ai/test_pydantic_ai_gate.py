"""GatekeeperApprovals with Pydantic AI's own Agent and FunctionModel, in one process."""

import asyncio

import pytest
from gatekeeper_client import AsyncGatekeeperClient, GatekeeperClient, OutcomeUnknown
from gatekeeper_client.pydantic_ai import GatekeeperApprovals
from pydantic_ai import Agent, DeferredToolRequests, Tool
from pydantic_ai.messages import ToolReturnPart
from pydantic_ai.tools import ToolApproved

from approvals.models import GateCheck
from approvals.services.review import packet_approve
from tests.client.conftest import next_packet
from tests.integrations.conftest import (
    RecordingTools,
    approve_after_refresh,
    expire,
    load_example,
    packets_of,
    reconcile_as_applied,
)

example = load_example("pydantic_ai")


class Tools(RecordingTools):
    """hr_lookup and iam_grant as Pydantic AI tools that record the args they ran with."""

    def __init__(self, grant_error=None):
        super().__init__(Tool, lookup_answer="Jane Doe", grant_error=grant_error)


def agent_for(approvals, tools: Tools) -> Agent:
    return Agent(
        example.scripted_model(),
        tools=tools.tools,
        capabilities=[approvals],
        output_type=[str, DeferredToolRequests],
    )


def run_agent(live_server, token, thread_id, tools, **options):
    """Run the scripted agent to its end, its deferred calls answered inline (waiting)."""

    async def run():
        async with AsyncGatekeeperClient(live_server.url, token, backoff=0.01) as gk:
            approvals = GatekeeperApprovals(
                gk, workflow="hr-onboarding", tool_names=example.TOOLS, wait_timeout=90, **options
            )
            return await agent_for(approvals, tools).run("onboard jdoe", conversation_id=thread_id)

    return asyncio.run(run())


def returns(result) -> list[tuple[str, str, str]]:
    return [
        (part.tool_name, part.outcome, part.content)
        for message in result.all_messages()
        for part in message.parts
        if isinstance(part, ToolReturnPart)
    ]


def test_allowed_calls_run_and_a_blocked_one_is_denied_while_the_run_goes_on(
    live_server, gk_account, gk, policy
):
    policy("hr-lookup", "allow", priority=1, match={"tool": "hr.lookup"})
    policy("no-grants", "block", priority=2, match={"tool": "iam.*"})
    tools = Tools()
    result = run_agent(live_server, gk_account[1], "pa-block", tools)
    assert tools.calls == [("hr.lookup", {"employee_id": 7})]
    lookup, grant = returns(result)
    assert lookup == ("hr_lookup", "success", "Jane Doe")
    assert grant[:2] == ("iam_grant", "denied") and "no-grants" in grant[2]
    assert result.output == "onboarding done"
    steps = gk.execution("pa-block")["steps"]
    assert [(s["index"], s["name"], s["decision"], s["outcome"]) for s in steps] == [
        (0, "hr_lookup", "allow", "landed"),
        (1, "iam_grant", "block", None),
    ]


def test_an_expired_approval_is_a_denied_call(
    live_server, gk_account, onboarding_policies, in_background
):
    in_background(lambda: expire(next_packet("pa-expire")))
    tools = Tools()
    result = run_agent(live_server, gk_account[1], "pa-expire", tools)
    assert [call[0] for call in tools.calls] == ["hr.lookup"]
    name, outcome, reason = returns(result)[1]
    assert (name, outcome) == ("iam_grant", "denied") and reason.startswith("expired: ")
    assert result.output == "onboarding done"


def test_a_stale_approval_is_refreshed_through_the_hook_then_approved(
    live_server, gk_account, onboarding_policies, alice, in_background
):
    reads = []

    def read_again():
        reads.append(1)
        return {"employee_record": {"id": 7, "title": "Engineer"}}

    in_background(lambda: approve_after_refresh("pa-stale", alice))
    tools = Tools()
    run_agent(live_server, gk_account[1], "pa-stale", tools, refresh_context=read_again)
    assert reads == [1]
    assert tools.calls[1] == ("iam.grant", {"user": "jdoe", "role": "admin"})
    assert [p.status for p in packets_of("pa-stale")] == ["superseded", "approved"]


def test_a_write_of_unknown_outcome_is_reconciled_and_never_run_again(
    live_server, gk_account, gk, onboarding_policies, alice, in_background
):
    in_background(lambda: reconcile_as_applied("pa-unknown", alice))
    tools = Tools(grant_error=OutcomeUnknown("IAM timed out"))
    result = run_agent(live_server, gk_account[1], "pa-unknown", tools)
    assert [call[0] for call in tools.calls] == ["hr.lookup", "iam.grant"]
    name, outcome, content = returns(result)[1]
    assert (name, outcome) == ("iam_grant", "success") and "already applied" in content
    assert gk.execution("pa-unknown")["steps"][1]["outcome"] == "landed"


def durable(live_server, token, tools, thread_id):
    """An agent that does not wait: a call still open ends the run with DeferredToolRequests."""

    async def run(action):
        async with AsyncGatekeeperClient(live_server.url, token, backoff=0.01) as gk:
            approvals = GatekeeperApprovals(
                gk, workflow="hr-onboarding", tool_names=example.TOOLS, wait_timeout=0
            )
            return await action(approvals, agent_for(approvals, tools))

    return lambda action: asyncio.run(run(action))


def test_a_deferred_run_resumed_from_its_results_runs_the_approved_args_once(
    live_server, gk_account, onboarding_policies, alice
):
    tools = Tools()
    run = durable(live_server, gk_account[1], tools, "pa-deferred")
    first = run(lambda _, agent: agent.run("onboard jdoe", conversation_id="pa-deferred"))
    requests = first.output
    (call,) = requests.approvals
    packet = next_packet("pa-deferred")
    assert requests.metadata[call.tool_call_id]["gatekeeper"]["approval_id"] == str(packet.id)

    # Resumed before anyone decided: nothing to answer, and the same approval on a re-run.
    assert requests.remaining(run(lambda approvals, _: approvals.results(requests))) is not None
    again = run(lambda _, agent: agent.run(message_history=first.all_messages()))
    assert again.output.metadata[call.tool_call_id]["gatekeeper"]["approval_id"] == str(packet.id)

    packet_approve(packet_id=packet.id, user=alice, edited_args={"user": "jdoe", "role": "dev"})

    async def resume(approvals, agent):
        results = await approvals.results(requests)
        assert results.approvals[call.tool_call_id].override_args == {"user": "jdoe", "role": "dev"}
        return await agent.run(message_history=first.all_messages(), deferred_tool_results=results)

    done = run(resume)
    assert done.output == "onboarding done"
    assert tools.calls[1:] == [("iam.grant", {"user": "jdoe", "role": "dev"})]
    assert len(packets_of("pa-deferred")) == 1
    # Every run replayed the first check of step 1: one check on record.
    assert GateCheck.objects.filter(execution__thread_id="pa-deferred", step_index=1).count() == 1


def test_an_approval_binds_to_the_reviewers_exact_args(
    live_server, gk_account, gk, onboarding_policies, alice
):
    tools = Tools()
    run = durable(live_server, gk_account[1], tools, "pa-bound")
    first = run(lambda _, agent: agent.run("onboard jdoe", conversation_id="pa-bound"))
    packet_approve(packet_id=next_packet("pa-bound").id, user=alice)

    async def resume_with_other_args(approvals, agent):
        results = await approvals.results(first.output)
        (call_id,) = results.approvals
        other = {"user": "mallory", "role": "admin"}
        results.approvals[call_id] = ToolApproved(override_args=other)
        return await agent.run(message_history=first.all_messages(), deferred_tool_results=results)

    done = run(resume_with_other_args)
    assert [call[0] for call in tools.calls] == ["hr.lookup"]
    name, outcome, reason = returns(done)[1]
    assert (name, outcome) == ("iam_grant", "denied") and "mallory" in reason
    assert gk.execution("pa-bound")["steps"][1]["outcome"] == "failed"


def test_the_tools_run_in_asyncio_so_the_client_must_be_async(live_server, gk):
    with pytest.raises(TypeError, match="AsyncGatekeeperClient"):
        GatekeeperApprovals(gk, workflow="hr-onboarding")
    assert isinstance(gk, GatekeeperClient)
