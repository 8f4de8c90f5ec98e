"""GatekeeperMiddleware in create_agent and around a StateGraph's ToolNode, in one process."""

import asyncio

import pytest
from gatekeeper_client import AsyncGatekeeperClient, Blocked, OutcomeUnknown
from gatekeeper_client.langgraph import GatekeeperMiddleware
from langchain.agents import create_agent
from langchain_core.messages import ToolMessage
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode, tools_condition
from langgraph.types import Command

from approvals.models import GateCheck
from approvals.services.review import packet_approve, packet_reconcile
from tests.client.conftest import next_packet, stale_then_approve
from tests.integrations.conftest import RecordingTools, expire, load_example, packets_of

example = load_example("langgraph")
START_MESSAGE = {"messages": [("user", "onboard jdoe")]}


class Tools(RecordingTools):
    """hr_lookup and iam_grant as LangChain tools that record the args they ran with."""

    def __init__(self, grant_error=None):
        super().__init__(tool, lookup_answer="Jane Doe, engineer", grant_error=grant_error)


def agent_for(gk, tools: Tools, checkpointer=None, **options):
    options.setdefault("wait_timeout", 90)  # a test that would hang fails instead
    gate = GatekeeperMiddleware(gk, workflow="hr-onboarding", tool_names=example.TOOLS, **options)
    return create_agent(
        example.ScriptedModel(), tools.tools, middleware=[gate], checkpointer=checkpointer
    )


def config(thread_id: str) -> dict:
    return {"configurable": {"thread_id": thread_id}}


def tool_messages(result) -> list[tuple[str, str, str]]:
    return [(m.name, m.status, m.content) for m in result["messages"] if isinstance(m, ToolMessage)]


def test_allowed_calls_run_and_a_blocked_one_is_refused_while_the_run_goes_on(gk, policy):
    policy("hr-lookup", "allow", priority=1, match={"tool": "hr.lookup"})
    policy("no-grants", "block", priority=2, match={"tool": "iam.*"})
    tools = Tools()
    result = agent_for(gk, tools).invoke(START_MESSAGE, config("lg-block"))
    assert tools.calls == [("hr.lookup", {"employee_id": 7})]
    lookup, grant = tool_messages(result)
    assert lookup[:2] == ("hr_lookup", "success")
    assert grant[:2] == ("iam_grant", "error")
    reason = grant[2]
    assert "no-grants" in reason or "block" in reason
    assert result["messages"][-1].content == "onboarding done"
    steps = gk.execution("lg-block")["steps"]
    assert [(s["index"], s["name"], s["decision"], s["outcome"]) for s in steps] == [
        (0, "hr_lookup", "allow", "landed"),
        (1, "iam_grant", "block", None),
    ]


def test_a_refusal_raises_when_the_caller_asks_for_it(gk, policy):
    policy("no-grants", "block", match={"tool": "iam.*"})
    policy("hr-lookup", "allow", priority=1, match={"tool": "hr.lookup"})
    with pytest.raises(Blocked):
        agent_for(gk, Tools(), raise_on_refusal=True).invoke(START_MESSAGE, config("lg-raise"))


def test_an_expired_approval_is_a_refused_call(gk, onboarding_policies, in_background):
    in_background(lambda: expire(next_packet("lg-expire")))
    tools = Tools()
    result = agent_for(gk, tools).invoke(START_MESSAGE, config("lg-expire"))
    assert tools.calls == [("hr.lookup", {"employee_id": 7})]
    name, status, reason = tool_messages(result)[1]
    assert (name, status) == ("iam_grant", "error") and reason.startswith("expired: ")
    assert result["messages"][-1].content == "onboarding done"


def test_a_write_of_unknown_outcome_is_reconciled_and_never_run_again(
    gk, onboarding_policies, alice, in_background
):
    def review():
        grant = next_packet("lg-unknown")
        packet_approve(packet_id=grant.id, user=alice)
        check = next_packet(
            "lg-unknown", exclude=[grant.id], timeout=80
        )  # the tool timed out: was it done?
        packet_approve(packet_id=check.id, user=alice)
        next_packet("lg-unknown", "reconciling", timeout=80)
        packet_reconcile(packet_id=check.id, user=alice, happened=True, comment="role is there")

    in_background(review)
    tools = Tools(grant_error=OutcomeUnknown("IAM timed out"))
    result = agent_for(gk, tools).invoke(START_MESSAGE, config("lg-unknown"))
    assert [call[0] for call in tools.calls] == ["hr.lookup", "iam.grant"]
    name, status, content = tool_messages(result)[1]
    assert (name, status) == ("iam_grant", "success") and "already applied" in content
    assert gk.execution("lg-unknown")["steps"][1]["outcome"] == "landed"


def graph_with_tool_node(gk, tools: Tools, checkpointer, **options):
    """A plain StateGraph: the scripted model, then a ToolNode gated by the middleware."""
    gate = GatekeeperMiddleware(gk, workflow="hr-onboarding", tool_names=example.TOOLS, **options)
    model = example.ScriptedModel()
    graph = StateGraph(MessagesState)
    graph.add_node("model", lambda state: {"messages": [model.invoke(state["messages"])]})
    graph.add_node(
        "tools",
        ToolNode(tools.tools, wrap_tool_call=gate.tool_gate, awrap_tool_call=gate.atool_gate),
    )
    graph.add_edge(START, "model")
    graph.add_conditional_edges("model", tools_condition, {"tools": "tools", END: END})
    graph.add_edge("tools", "model")
    return graph.compile(checkpointer=checkpointer)


def test_a_durable_tool_node_pauses_and_its_resume_does_not_ask_twice(
    gk, onboarding_policies, alice
):
    tools = Tools()
    graph = graph_with_tool_node(gk, tools, InMemorySaver(), durable=True)
    paused = graph.invoke(START_MESSAGE, config("lg-durable"))
    (interrupt,) = paused["__interrupt__"]
    step = interrupt.value["gatekeeper"]
    packet = next_packet("lg-durable")
    assert (step["approval_id"], step["tool"], step["step"]) == (str(packet.id), "iam.grant", 1)
    assert tools.calls == [("hr.lookup", {"employee_id": 7})]

    # Resumed before anyone decided: it pauses again on the same approval.
    again = graph.invoke(Command(resume="early"), config("lg-durable"))
    assert again["__interrupt__"][0].value["gatekeeper"]["approval_id"] == str(packet.id)

    packet_approve(packet_id=packet.id, user=alice, edited_args={"user": "jdoe", "role": "dev"})
    done = graph.invoke(Command(resume="approved"), config("lg-durable"))
    assert tools.calls[1:] == [("iam.grant", {"user": "jdoe", "role": "dev"})]
    assert done["messages"][-1].content == "onboarding done"
    assert len(packets_of("lg-durable")) == 1
    # Each re-run of the node replayed the first check of step 1: one check on record.
    assert GateCheck.objects.filter(execution__thread_id="lg-durable", step_index=1).count() == 1


def test_an_async_agent_is_gated_with_the_async_client(
    live_server, gk_account, onboarding_policies, alice, in_background
):
    def review():
        packet = next_packet("lg-async")
        packet_approve(packet_id=packet.id, user=alice, edited_args={"user": "jdoe", "role": "dev"})

    in_background(review)
    tools = Tools()

    async def run():
        async with AsyncGatekeeperClient(live_server.url, gk_account[1], backoff=0.01) as agk:
            agent = agent_for(agk, tools)
            return await agent.ainvoke(START_MESSAGE, config("lg-async"))

    result = asyncio.run(run())
    assert tools.calls == [
        ("hr.lookup", {"employee_id": 7}),
        ("iam.grant", {"user": "jdoe", "role": "dev"}),
    ]
    assert result["messages"][-1].content == "onboarding done"


def test_the_client_must_match_the_run(gk):
    gate = GatekeeperMiddleware(gk, workflow="hr-onboarding")
    with pytest.raises(TypeError, match="AsyncGatekeeperClient"):
        asyncio.run(gate.atool_gate(None, None))


def test_a_stale_approval_calls_the_refresh_hook_then_waits_for_the_new_one(
    gk, onboarding_policies, alice
):
    reads = []

    def read_again():
        reads.append(1)
        return {"employee_record": {"id": 7, "title": "Engineer"}}

    tools = Tools()
    graph = graph_with_tool_node(
        gk, tools, InMemorySaver(), durable=True, refresh_context=read_again
    )
    graph.invoke(START_MESSAGE, config("lg-stale"))
    stale = stale_then_approve("lg-stale", alice)  # approved too late: back to re-review

    again = graph.invoke(Command(resume="decided"), config("lg-stale"))
    fresh = next_packet("lg-stale", exclude=[stale.id])
    assert again["__interrupt__"][0].value["gatekeeper"]["approval_id"] == str(fresh.id)
    assert reads == [1] and tools.calls == [("hr.lookup", {"employee_id": 7})]

    packet_approve(packet_id=fresh.id, user=alice)
    graph.invoke(Command(resume="decided"), config("lg-stale"))
    assert reads == [1]
    assert tools.calls[1:] == [("iam.grant", {"user": "jdoe", "role": "admin"})]
    assert [p.status for p in packets_of("lg-stale")] == ["superseded", "approved"]
