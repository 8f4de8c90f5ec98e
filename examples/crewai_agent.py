#!/usr/bin/env python3
"""A CrewAI crew whose tool calls ask Gatekeeper first (a before-tool-call hook), offline.

    export GATEKEEPER_URL=http://127.0.0.1:8000 GATEKEEPER_TOKEN=gk_...
    python3 examples/crewai_agent.py --thread-id onboard-cr-1

The model is a scripted `BaseLLM` (CrewAI's own extension point for models; no API key, no
network): its agent calls `hr_lookup` with {"employee_id": 7}, then `iam_grant` with
{"user": "jdoe", "role": "admin"}, then answers. The gate sees them as `hr.lookup` and
`iam.grant` of workflow `hr-onboarding`. A tool that runs prints `RAN <tool> <args>`, a refused
call `DENIED <tool> <reason>`, the end `DONE`. The crew waits for reviewers inside the hook;
run the same command again after a crash and it replays the gate: nothing runs twice.

Needs `pip install "./client[crewai]"` (an environment of its own: crewai pins versions the
other extras exceed). CrewAI's telemetry is switched off here, so it runs offline.
"""

import argparse
import json
import os
import sys
from pathlib import Path

# Before crewai is imported: no telemetry, no trace export (offline).
os.environ.setdefault("CREWAI_DISABLE_TELEMETRY", "true")
os.environ.setdefault("CREWAI_TRACING_ENABLED", "false")
os.environ.setdefault("OTEL_SDK_DISABLED", "true")

try:
    from gatekeeper_client import GatekeeperClient
except ImportError:  # run from a checkout without installing: the client is beside us
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "client"))
    from gatekeeper_client import GatekeeperClient

from crewai import Agent, Crew, Task
from crewai.llms.base_llm import BaseLLM
from crewai.tools import tool
from gatekeeper_client.crewai import GatekeeperToolHook

TOOLS = {"hr_lookup": "hr.lookup", "iam_grant": "iam.grant"}
SCRIPT = [("hr_lookup", {"employee_id": 7}), ("iam_grant", {"user": "jdoe", "role": "admin"})]


class ScriptedLLM(BaseLLM):
    """Calls the script's tools one per turn (CrewAI's ReAct text), then answers: its next
    move is read from the conversation."""

    script: list = SCRIPT

    def call(self, messages, tools=None, callbacks=None, available_functions=None, **kwargs):
        said = [m for m in messages if m["role"] != "system"] if isinstance(messages, list) else []
        turn = sum(str(m["content"]).count("\nObservation:") for m in said)
        if turn < len(self.script):
            name, args = self.script[turn]
            return f"Thought: next step\nAction: {name}\nAction Input: {json.dumps(args)}"
        return "Thought: all done\nFinal Answer: onboarding done"

    def supports_function_calling(self) -> bool:
        return False  # the ReAct text above


def ran(tool_name: str, args: dict) -> str:
    print(f"RAN {tool_name} {json.dumps(args, sort_keys=True)}", flush=True)
    return "ok"


@tool("hr_lookup")
def hr_lookup(employee_id: int) -> str:
    """Look an employee up in the HR system."""
    return ran("hr.lookup", {"employee_id": employee_id})


@tool("iam_grant")
def iam_grant(user: str, role: str) -> str:
    """Grant a user a role."""
    return ran("iam.grant", {"user": user, "role": role})


def build_crew(tools=(hr_lookup, iam_grant), llm=None) -> Crew:
    agent = Agent(
        role="HR onboarding agent",
        goal="Onboard new employees",
        backstory="Looks employees up and grants their access.",
        llm=llm or ScriptedLLM(model="scripted"),
        tools=list(tools),
        max_iter=len(SCRIPT) + 2,
    )
    task = Task(description="Onboard jdoe.", expected_output="A short report.", agent=agent)
    return Crew(agents=[agent], tasks=[task])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--thread-id", required=True)
    options = parser.parse_args()
    url, token = os.environ.get("GATEKEEPER_URL"), os.environ.get("GATEKEEPER_TOKEN")
    if not url or not token:
        print("set GATEKEEPER_URL and GATEKEEPER_TOKEN", file=sys.stderr)
        return 2
    gk = GatekeeperClient(url, token)
    gate = GatekeeperToolHook(
        gk, workflow="hr-onboarding", thread_id=options.thread_id, tool_names=TOOLS
    )
    with gate.installed():
        build_crew().kickoff()
    for tool_name, reason in gate.refusals:
        print(f"DENIED {tool_name} {reason}", flush=True)
    print("DONE", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
