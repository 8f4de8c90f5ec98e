"""docs/integrations.md: each framework's snippet runs as printed, against a live server."""

import re
import sys

from approvals.services.review import packet_approve
from tests.client.conftest import next_packet
from tests.integrations.conftest import ROOT, load_example

DOC = ROOT / "docs" / "integrations.md"
MCP_SERVER = ROOT / "tests" / "integrations" / "openai_agents" / "mcp_server.py"


def snippet(section: str) -> str:
    text = DOC.read_text()
    body = text[text.index(f"## {section}") :]
    return re.search(r"```python\n(.*?)```", body, re.DOTALL).group(1)


def test_the_langgraph_snippet_waits_for_the_reviewer_and_grants(
    live_server, gk_account, onboarding_policies, alice, in_background, monkeypatch
):
    monkeypatch.setenv("GATEKEEPER_URL", live_server.url)
    monkeypatch.setenv("GATEKEEPER_TOKEN", gk_account[1])
    in_background(lambda: packet_approve(packet_id=next_packet("onboard-78").id, user=alice))
    model = load_example("langgraph").ScriptedModel(
        script=[("iam_grant", {"user": "jdoe", "role": "admin"})]
    )
    scope = {"model": model}
    exec(snippet("LangGraph and LangChain"), scope)  # noqa: S102 - the doc's own code
    grant = scope["result"]["messages"][-2]
    assert (grant.name, grant.content) == ("iam_grant", "granted admin to jdoe")


def agents_sdk_grant_model():
    """The Agents SDK's scripted model: it calls iam_grant, then says it is done."""
    from agents.testing import ModelStep, ScriptedModel, assistant_message, function_call

    grant = function_call("iam_grant", {"user": "jdoe", "role": "admin"}, call_id="c1")
    return ScriptedModel(
        [ModelStep(output=[grant]), ModelStep(output=[assistant_message("jdoe is an admin")])]
    )


def test_the_openai_agents_snippet_waits_for_the_reviewer_and_grants(
    live_server, gk_account, onboarding_policies, alice, in_background, monkeypatch
):
    monkeypatch.setenv("GATEKEEPER_URL", live_server.url)
    monkeypatch.setenv("GATEKEEPER_TOKEN", gk_account[1])
    in_background(lambda: packet_approve(packet_id=next_packet("onboard-79").id, user=alice))
    model = agents_sdk_grant_model()
    scope = {"model": model}
    exec(snippet("OpenAI Agents SDK"), scope)  # noqa: S102 - the doc's own code
    assert scope["final_output"] == "jdoe is an admin"
    assert "granted admin to jdoe" in str(model.last_call.input)


def test_the_agents_sdk_mcp_snippet_sends_the_approved_grant_to_the_server(
    live_server, gk_account, gk, onboarding_policies, alice, in_background, monkeypatch, tmp_path
):
    from agents.mcp import MCPServerStdio

    monkeypatch.setenv("GATEKEEPER_URL", live_server.url)
    monkeypatch.setenv("GATEKEEPER_TOKEN", gk_account[1])
    in_background(lambda: packet_approve(packet_id=next_packet("onboard-84").id, user=alice))
    model = agents_sdk_grant_model()
    calls = tmp_path / "calls"
    params = {"command": sys.executable, "args": [str(MCP_SERVER), str(calls)]}
    scope = {"model": model, "hr_tools": MCPServerStdio(params, name="hr-tools")}
    exec(snippet("MCP servers in the Agents SDK"), scope)  # noqa: S102 - the doc's own code
    assert scope["final_output"] == "jdoe is an admin"
    assert calls.read_text().splitlines() == ['["iam.grant", {"user": "jdoe", "role": "admin"}]']
    (grant,) = gk.execution("onboard-84")["steps"]
    assert (grant["name"], grant["outcome"]) == ("iam_grant", "landed")


def test_the_pydantic_ai_snippet_waits_for_the_reviewer_and_grants(
    live_server, gk_account, gk, onboarding_policies, alice, in_background, monkeypatch
):
    monkeypatch.setenv("GATEKEEPER_URL", live_server.url)
    monkeypatch.setenv("GATEKEEPER_TOKEN", gk_account[1])
    in_background(lambda: packet_approve(packet_id=next_packet("onboard-80").id, user=alice))
    model = load_example("pydantic_ai").scripted_model(
        [("iam_grant", {"user": "jdoe", "role": "admin"})]
    )
    scope = {"model": model}
    exec(snippet("Pydantic AI"), scope)  # noqa: S102 - the doc's own code
    assert scope["output"] == "onboarding done"
    (grant,) = gk.execution("onboard-80")["steps"]
    assert (grant["name"], grant["outcome"]) == ("iam_grant", "landed")


def test_the_autogen_snippet_waits_for_the_reviewer_and_grants(
    live_server, gk_account, gk, onboarding_policies, alice, in_background, monkeypatch
):
    monkeypatch.setenv("GATEKEEPER_URL", live_server.url)
    monkeypatch.setenv("GATEKEEPER_TOKEN", gk_account[1])
    in_background(lambda: packet_approve(packet_id=next_packet("onboard-82").id, user=alice))
    model_client = load_example("autogen").scripted_model(
        [("iam_grant", {"user": "jdoe", "role": "admin"})]
    )
    scope = {"model_client": model_client}
    exec(snippet("AutoGen"), scope)  # noqa: S102 - the doc's own code
    assert scope["result"].messages[-1].content == "granted admin to jdoe"
    (grant,) = gk.execution("onboard-82")["steps"]
    assert (grant["name"], grant["outcome"]) == ("iam_grant", "landed")
