"""An MCP server's tools gated per call (`GatekeeperApprovals.mcp_tools`): the official SDK's
server over stdio (mcp_server.py, its own process), the Agents SDK's Runner and ScriptedModel."""

import asyncio
import json
import sys
from pathlib import Path

from agents import Agent, Runner, RunState
from agents.mcp import MCPServerStdio
from gatekeeper_client import AsyncGatekeeperClient, GatekeeperClient

from approvals.services.review import packet_approve, packet_reconcile, packet_reject
from tests.client.conftest import next_packet
from tests.integrations.conftest import approve_after_refresh, expire, load_example, packets_of
from tests.integrations.openai_agents.runs import outputs, run_to_end

example = load_example("openai_agents")
SERVER = Path(__file__).resolve().parent / "mcp_server.py"
EDITED = {"user": "jdoe", "role": "dev"}


def mcp_server(calls: Path, *more: str) -> MCPServerStdio:
    params = {"command": sys.executable, "args": [str(SERVER), str(calls), *more]}
    return MCPServerStdio(params, name="hr-tools", client_session_timeout_seconds=30)


def calls_of(calls: Path) -> list:
    text = calls.read_text() if calls.exists() else ""
    return [tuple(json.loads(line)) for line in text.splitlines()]


async def gated_agent(gk, server, **options):
    approvals = example.GatekeeperApprovals(
        gk, workflow="hr-onboarding", tool_names=example.TOOLS, wait_timeout=90, **options
    )
    tools = await approvals.mcp_tools(server)
    return approvals, Agent(name="hr", model=example.scripted_model(), tools=tools)


def run_agent(live_server, token, thread_id, calls, *, review=None, server_args=(), **options):
    """Run the scripted agent on the MCP server's tools to its end; `review()` runs while the
    run is interrupted."""

    async def run():
        async with (
            AsyncGatekeeperClient(live_server.url, token, backoff=0.01) as gk,
            mcp_server(calls, *server_args) as server,
        ):
            approvals, agent = await gated_agent(gk, server, **options)
            return await run_to_end(agent, approvals, thread_id, review), approvals

    return asyncio.run(run())


def outcomes(live_server, token, thread_id) -> dict:
    execution = GatekeeperClient(live_server.url, token, timeout=10).execution(thread_id)
    return {step["index"]: step["outcome"] for step in execution["steps"]}


def test_the_grant_waits_for_reviewers_and_runs_once_with_their_edited_args(
    live_server, gk_account, onboarding_policies, alice, tmp_path
):
    def review():
        packet = next_packet("oam-approve")
        assert (packet.step_index, packet.step_name, packet.tool) == (1, "iam_grant", "iam.grant")
        assert packet.args == {"user": "jdoe", "role": "admin"}
        packet_approve(packet_id=packet.id, user=alice, edited_args=EDITED)

    calls = tmp_path / "calls"
    result, _ = run_agent(live_server, gk_account[1], "oam-approve", calls, review=review)
    assert calls_of(calls) == [("hr.lookup", {"employee_id": 7}), ("iam.grant", EDITED)]
    assert result.final_output == "onboarding done"
    assert outcomes(live_server, gk_account[1], "oam-approve") == {0: "landed", 1: "landed"}


def test_a_blocked_call_never_reaches_the_server_and_the_model_hears_why(
    live_server, gk_account, policy, tmp_path
):
    policy("hr-lookup", "allow", priority=1, match={"tool": "hr.lookup"})
    policy("no-grants", "block", priority=2, match={"tool": "iam.*"})
    calls = tmp_path / "calls"
    result, approvals = run_agent(live_server, gk_account[1], "oam-block", calls)
    assert calls_of(calls) == [("hr.lookup", {"employee_id": 7})]
    ((tool, reason),) = approvals.refusals
    assert tool == "iam.grant" and "no-grants" in reason
    assert outputs(result)[1] == reason and result.final_output == "onboarding done"


def test_a_rejection_reaches_the_model_with_the_reviewers_comment(
    live_server, gk_account, onboarding_policies, bob, tmp_path
):
    def review():
        packet_reject(packet_id=next_packet("oam-reject").id, user=bob, comment="not admin")

    calls = tmp_path / "calls"
    result, approvals = run_agent(live_server, gk_account[1], "oam-reject", calls, review=review)
    assert calls_of(calls) == [("hr.lookup", {"employee_id": 7})]
    assert approvals.refusals == [("iam.grant", "rejected by bob: not admin")]
    assert result.final_output == "onboarding done"
    assert outcomes(live_server, gk_account[1], "oam-reject") == {0: "landed", 1: None}


def test_an_expired_approval_is_refused_with_the_reason(
    live_server, gk_account, onboarding_policies, tmp_path
):
    calls = tmp_path / "calls"
    review = lambda: expire(next_packet("oam-expire"))  # noqa: E731
    _, approvals = run_agent(live_server, gk_account[1], "oam-expire", calls, review=review)
    assert [tool for tool, _ in calls_of(calls)] == ["hr.lookup"]
    assert approvals.refusals[0][1].startswith("expired: ")


def test_a_stale_approval_is_refreshed_through_the_hook_then_approved(
    live_server, gk_account, onboarding_policies, alice, in_background, tmp_path
):
    reads = []

    def read_again():
        reads.append(1)
        return {"employee_record": {"id": 7, "title": "Engineer"}}

    in_background(lambda: approve_after_refresh("oam-stale", alice))
    calls = tmp_path / "calls"
    run_agent(live_server, gk_account[1], "oam-stale", calls, refresh_context=read_again)
    assert reads == [1]
    assert calls_of(calls)[1] == ("iam.grant", {"user": "jdoe", "role": "admin"})
    assert [p.status for p in packets_of("oam-stale")] == ["superseded", "approved"]


def test_a_grant_whose_server_died_mid_call_is_reconciled_and_never_sent_again(
    live_server, gk_account, onboarding_policies, alice, in_background, tmp_path
):
    def review():
        packet_approve(packet_id=next_packet("oam-unknown").id, user=alice)

    def reconcile():
        grant = next_packet("oam-unknown", "approved", timeout=80)
        check = next_packet("oam-unknown", exclude=[grant.id], timeout=80)  # did it happen?
        assert check.side_effect == "indeterminate"
        packet_approve(packet_id=check.id, user=alice)
        next_packet("oam-unknown", "reconciling", timeout=80)
        packet_reconcile(packet_id=check.id, user=alice, happened=True)

    in_background(reconcile)
    calls = tmp_path / "calls"
    result, _ = run_agent(
        live_server,
        gk_account[1],
        "oam-unknown",
        calls,
        review=review,
        server_args=("--die-on-grant",),
    )
    assert [tool for tool, _ in calls_of(calls)] == ["hr.lookup", "iam.grant"]
    assert "already applied" in outputs(result)[1]
    assert result.final_output == "onboarding done"


def test_an_error_the_server_answers_is_recorded_as_failed_and_the_model_hears_it(
    live_server, gk_account, policy, tmp_path
):
    policy("everything", "allow", priority=1, match={"tool": "*"})
    calls = tmp_path / "calls"
    result, _ = run_agent(
        live_server, gk_account[1], "oam-fail", calls, server_args=("--refuse-grant",)
    )
    assert [tool for tool, _ in calls_of(calls)] == ["hr.lookup", "iam.grant"]
    assert "IAM refused: admin is not a role" in str(outputs(result)[1])
    assert result.final_output == "onboarding done"
    assert outcomes(live_server, gk_account[1], "oam-fail") == {0: "landed", 1: "failed"}


def test_a_run_saved_while_waiting_resumes_on_a_new_connection_and_asks_once(
    live_server, gk_account, onboarding_policies, alice, tmp_path
):
    token, calls, thread_id = gk_account[1], tmp_path / "calls", "oam-durable"

    async def until_paused() -> str:
        async with (
            AsyncGatekeeperClient(live_server.url, token, backoff=0.01) as gk,
            mcp_server(calls) as server,
        ):
            approvals, agent = await gated_agent(gk, server)
            result = await Runner.run(agent, "onboard jdoe", context={"thread_id": thread_id})
            state = result.to_state()
            assert len(await approvals.resolve(state, wait_timeout=0)) == 1
            return state.to_string()

    async def resumed(saved: str):
        async with (
            AsyncGatekeeperClient(live_server.url, token, backoff=0.01) as gk,
            mcp_server(calls) as server,
        ):
            approvals, agent = await gated_agent(gk, server)
            state = await RunState.from_string(agent, saved)
            assert await approvals.resolve(state, wait_timeout=0) == []
            return await Runner.run(agent, state)

    saved = asyncio.run(until_paused())
    assert calls_of(calls) == [("hr.lookup", {"employee_id": 7})]
    packet_approve(packet_id=next_packet(thread_id).id, user=alice, edited_args=EDITED)
    result = asyncio.run(resumed(saved))
    assert result.final_output == "onboarding done"
    assert calls_of(calls) == [("hr.lookup", {"employee_id": 7}), ("iam.grant", EDITED)]
    assert len(packets_of(thread_id)) == 1
    assert outcomes(live_server, token, thread_id) == {0: "landed", 1: "landed"}
