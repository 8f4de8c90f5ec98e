"""GatekeeperApprovals with the Agents SDK's own Runner and ScriptedModel, in one process."""

import asyncio

from agents import Agent, function_tool
from gatekeeper_client import AsyncGatekeeperClient, OutcomeUnknown

from approvals.services.review import packet_approve, packet_reconcile
from tests.client.conftest import next_packet, stale_then_approve
from tests.integrations.conftest import RecordingTools, expire, load_example, packets_of
from tests.integrations.openai_agents.runs import outputs, run_to_end

example = load_example("openai_agents")


class Tools(RecordingTools):
    """hr_lookup and iam_grant as function tools that record the args they ran with."""

    def __init__(self, grant_error=None):
        super().__init__(function_tool, lookup_answer="Jane Doe", grant_error=grant_error)


def run_agent(live_server, token, thread_id, tools, *, review=None, **options):
    """Run the scripted agent to its end; `review()` runs while it is interrupted."""

    async def run():
        async with AsyncGatekeeperClient(live_server.url, token, backoff=0.01) as gk:
            approvals = example.GatekeeperApprovals(
                gk, workflow="hr-onboarding", tool_names=example.TOOLS, wait_timeout=90, **options
            )
            agent = Agent(
                name="hr", model=example.scripted_model(), tools=approvals.gate_tools(tools.tools)
            )
            return await run_to_end(agent, approvals, thread_id, review), approvals

    return asyncio.run(run())


def test_a_blocked_call_is_refused_with_the_reason_and_the_run_goes_on(
    live_server, gk_account, policy
):
    policy("hr-lookup", "allow", priority=1, match={"tool": "hr.lookup"})
    policy("no-grants", "block", priority=2, match={"tool": "iam.*"})
    tools = Tools()
    result, approvals = run_agent(live_server, gk_account[1], "oa-block", tools)
    assert tools.calls == [("hr.lookup", {"employee_id": 7})]
    ((tool, reason),) = approvals.refusals
    assert tool == "iam.grant" and "no-grants" in reason
    assert outputs(result)[1] == reason and result.final_output == "onboarding done"


def test_an_expired_approval_is_rejected_with_the_reason(
    live_server, gk_account, onboarding_policies
):
    tools = Tools()
    result, approvals = run_agent(
        live_server,
        gk_account[1],
        "oa-expire",
        tools,
        review=lambda: expire(next_packet("oa-expire")),
    )
    assert [call[0] for call in tools.calls] == ["hr.lookup"]
    assert approvals.refusals[0][1].startswith("expired: ")
    assert result.final_output == "onboarding done"


def test_a_stale_approval_is_refreshed_through_the_hook_then_approved(
    live_server, gk_account, onboarding_policies, alice
):
    reads = []

    def read_again():
        reads.append(1)
        return {"employee_record": {"id": 7, "title": "Engineer"}}

    def review():
        stale = stale_then_approve("oa-stale", alice)
        # The refresh happens in resolve(): approve the new approval once it exists.
        import threading

        def approve_fresh():
            fresh = next_packet("oa-stale", exclude=[stale.id], timeout=80)
            packet_approve(packet_id=fresh.id, user=alice)

        threading.Thread(target=approve_fresh, daemon=True).start()

    tools = Tools()
    run_agent(
        live_server, gk_account[1], "oa-stale", tools, review=review, refresh_context=read_again
    )
    assert reads == [1]
    assert tools.calls[1] == ("iam.grant", {"user": "jdoe", "role": "admin"})
    assert [p.status for p in packets_of("oa-stale")] == ["superseded", "approved"]


def test_a_write_of_unknown_outcome_is_reconciled_and_never_run_again(
    live_server, gk_account, onboarding_policies, alice, in_background
):
    def review():
        grant = next_packet("oa-unknown")
        packet_approve(packet_id=grant.id, user=alice)

    def reconcile():
        grant = next_packet("oa-unknown", "approved", timeout=80)
        check = next_packet("oa-unknown", exclude=[grant.id], timeout=80)
        packet_approve(packet_id=check.id, user=alice)
        next_packet("oa-unknown", "reconciling", timeout=80)
        packet_reconcile(packet_id=check.id, user=alice, happened=True)

    in_background(reconcile)
    tools = Tools(grant_error=OutcomeUnknown("IAM timed out"))
    result, _ = run_agent(live_server, gk_account[1], "oa-unknown", tools, review=review)
    assert [call[0] for call in tools.calls] == ["hr.lookup", "iam.grant"]
    assert "already applied" in outputs(result)[1]
