"""docs/integrations.md's CrewAI snippet runs as printed, in .venv-crewai, against a live server."""

from approvals.services.review import packet_approve
from tests.client.conftest import next_packet
from tests.integrations.conftest import EXAMPLES, STARTUP
from tests.integrations.crewai.conftest import run_in_crewai
from tests.integrations.test_integrations_doc import snippet

RUN_SNIPPET = """
import json, runpy, sys
example = runpy.run_path(sys.argv[1], run_name="crewai_agent")  # telemetry off first
script = [("iam_grant", {"user": "jdoe", "role": "admin"})]
scope = {"llm": example["ScriptedLLM"](model="scripted", script=script)}
exec(sys.stdin.read(), scope)
print(json.dumps({"refusals": scope["gate"].refusals, "output": scope["result"].raw}))
"""


def test_the_crewai_snippet_waits_for_the_reviewer_and_grants(
    live_server, gk_account, gk, onboarding_policies, alice, in_background, crewai_python, offline
):
    in_background(
        lambda: packet_approve(packet_id=next_packet("onboard-83", timeout=STARTUP).id, user=alice)
    )
    arguments = ["-c", RUN_SNIPPET, str(EXAMPLES / "crewai_agent.py")]
    stdout = run_in_crewai(crewai_python, arguments, live_server, gk_account[1], snippet("CrewAI"))
    assert stdout.splitlines()[-1] == '{"refusals": [], "output": "onboarding done"}'
    (grant,) = gk.execution("onboard-83")["steps"]
    assert (grant["name"], grant["outcome"]) == ("iam_grant", "landed")
