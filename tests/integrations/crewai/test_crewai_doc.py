"""docs/integrations.md's CrewAI snippet runs as printed, in .venv-crewai, against a live server."""

import os
import subprocess

from approvals.services.review import packet_approve
from tests.client.conftest import next_packet
from tests.integrations.conftest import EXAMPLES
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
        lambda: packet_approve(packet_id=next_packet("onboard-83", timeout=120).id, user=alice)
    )
    env = {**os.environ, "GATEKEEPER_URL": live_server.url, "GATEKEEPER_TOKEN": gk_account[1]}
    run = subprocess.run(
        [crewai_python, "-c", RUN_SNIPPET, str(EXAMPLES / "crewai_agent.py")],
        input=snippet("CrewAI"),
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.splitlines()[-1] == '{"refusals": [], "output": "onboarding done"}'
    (grant,) = gk.execution("onboard-83")["steps"]
    assert (grant["name"], grant["outcome"]) == ("iam_grant", "landed")
