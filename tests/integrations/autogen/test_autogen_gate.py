"""GatekeeperTools with AutoGen's own AssistantAgent and replay client, in one process."""

import asyncio

import pytest
from autogen_agentchat.agents import AssistantAgent
from autogen_agentchat.messages import ToolCallExecutionEvent
from autogen_core.tools import FunctionTool
from gatekeeper_client import AsyncGatekeeperClient, OutcomeUnknown
from gatekeeper_client.autogen import GatekeeperTools

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

example = load_example("autogen")


class Tools(RecordingTools):
    """hr_lookup and iam_grant as AutoGen FunctionTools that record the args they ran with."""

    def __init__(self, grant_error=None):
        super().__init__(
            lambda fn: FunctionTool(fn, description=fn.__doc__),
            lookup_answer="Jane Doe",
            grant_error=grant_error,
        )


def run_agent(live_server, token, thread_id, tools, **options):
    """Run the scripted agent to its end; the gate and the run's tool results."""

    async def run():
        async with AsyncGatekeeperClient(live_server.url, token, backoff=0.01) as gk:
            options.setdefault("wait_timeout", 90)  # a test that would hang fails instead
            gate = GatekeeperTools(
                gk,
                workflow="hr-onboarding",
                thread_id=thread_id,
                tool_names=example.TOOLS,
                **options,
            )
            agent = AssistantAgent(
                "hr",
                model_client=example.scripted_model(),
                tools=gate.gate_tools(tools.tools),
                max_tool_iterations=3,
            )
            result = await agent.run(task="onboard jdoe")
            return gate, result

    return asyncio.run(run())


def results(task_result) -> list[tuple[str, bool, str]]:
    return [
        (item.name, item.is_error, item.content)
        for message in task_result.messages
        if isinstance(message, ToolCallExecutionEvent)
        for item in message.content
    ]


def test_allowed_calls_run_and_a_blocked_one_is_refused_while_the_run_goes_on(
    live_server, gk_account, gk, policy
):
    policy("hr-lookup", "allow", priority=1, match={"tool": "hr.lookup"})
    policy("no-grants", "block", priority=2, match={"tool": "iam.*"})
    tools = Tools()
    gate, result = run_agent(live_server, gk_account[1], "ag-block", tools)
    assert tools.calls == [("hr.lookup", {"employee_id": 7})]
    lookup, grant = results(result)
    assert lookup == ("hr_lookup", False, "Jane Doe")
    ((tool, reason),) = gate.refusals
    assert grant == ("iam_grant", True, reason) and tool == "iam.grant" and "no-grants" in reason
    assert result.messages[-1].content == "onboarding done"
    steps = gk.execution("ag-block")["steps"]
    assert [(s["index"], s["name"], s["decision"], s["outcome"]) for s in steps] == [
        (0, "hr_lookup", "allow", "landed"),
        (1, "iam_grant", "block", None),
    ]


def test_an_expired_approval_is_a_refused_call(
    live_server, gk_account, onboarding_policies, in_background
):
    in_background(lambda: expire(next_packet("ag-expire")))
    tools = Tools()
    gate, result = run_agent(live_server, gk_account[1], "ag-expire", tools)
    assert [call[0] for call in tools.calls] == ["hr.lookup"]
    name, is_error, reason = results(result)[1]
    assert (name, is_error) == ("iam_grant", True) and reason.startswith("expired: ")
    assert result.messages[-1].content == "onboarding done"


def test_a_stale_approval_is_refreshed_through_the_hook_then_approved(
    live_server, gk_account, onboarding_policies, alice, in_background
):
    reads = []

    def read_again():
        reads.append(1)
        return {"employee_record": {"id": 7, "title": "Engineer"}}

    in_background(lambda: approve_after_refresh("ag-stale", alice))
    tools = Tools()
    run_agent(live_server, gk_account[1], "ag-stale", tools, refresh_context=read_again)
    assert reads == [1]
    assert tools.calls[1] == ("iam.grant", {"user": "jdoe", "role": "admin"})
    assert [p.status for p in packets_of("ag-stale")] == ["superseded", "approved"]


def test_a_write_of_unknown_outcome_is_reconciled_and_never_run_again(
    live_server, gk_account, gk, onboarding_policies, alice, in_background
):
    in_background(lambda: reconcile_as_applied("ag-unknown", alice))
    tools = Tools(grant_error=OutcomeUnknown("IAM timed out"))
    _, result = run_agent(live_server, gk_account[1], "ag-unknown", tools)
    assert [call[0] for call in tools.calls] == ["hr.lookup", "iam.grant"]
    name, is_error, content = results(result)[1]
    assert (name, is_error) == ("iam_grant", False) and "already applied" in content
    assert gk.execution("ag-unknown")["steps"][1]["outcome"] == "landed"


def test_a_run_that_stopped_waiting_is_run_again_and_asks_once(
    live_server, gk_account, onboarding_policies, alice
):
    tools = Tools()
    token = gk_account[1]
    gate, first = run_agent(live_server, token, "ag-again", tools, wait_timeout=0)
    packet = next_packet("ag-again")
    name, is_error, content = results(first)[1]
    assert (name, is_error) == ("iam_grant", True) and f"approval {packet.id}" in content
    assert gate.refusals == []

    packet_approve(packet_id=packet.id, user=alice, edited_args={"user": "jdoe", "role": "dev"})
    run_agent(live_server, token, "ag-again", tools, wait_timeout=0)
    assert tools.calls == [
        ("hr.lookup", {"employee_id": 7}),
        ("iam.grant", {"user": "jdoe", "role": "dev"}),
    ]
    assert len(packets_of("ag-again")) == 1


def test_a_call_without_an_id_or_a_sync_client_is_refused(live_server, gk_account, gk):
    with pytest.raises(TypeError, match="AsyncGatekeeperClient"):
        GatekeeperTools(gk, workflow="hr-onboarding", thread_id="ag-x")

    async def run_without_call_id():
        async with AsyncGatekeeperClient(live_server.url, gk_account[1]) as agk:
            gate = GatekeeperTools(agk, workflow="hr-onboarding", thread_id="ag-x")
            (grant,) = gate.gate_tools([example.iam_grant])
            await grant.run_json({"user": "jdoe", "role": "admin"}, None)

    with pytest.raises(ValueError, match="no id"):
        asyncio.run(run_without_call_id())
