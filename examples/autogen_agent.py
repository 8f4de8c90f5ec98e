#!/usr/bin/env python3
"""An AutoGen agent (autogen-agentchat) whose tool calls ask Gatekeeper first, offline.

    export GATEKEEPER_URL=http://127.0.0.1:8000 GATEKEEPER_TOKEN=gk_...
    python3 examples/autogen_agent.py --thread-id onboard-ag-1

The model is AutoGen's own `ReplayChatCompletionClient` (no API key, no network): it calls
`hr_lookup` with {"employee_id": 7}, then `iam_grant` with {"user": "jdoe", "role": "admin"},
then answers. The gate sees them as `hr.lookup` and `iam.grant` of workflow `hr-onboarding`.
A tool that runs prints `RAN <tool> <args>`, a refused call `DENIED <tool> <reason>`, the end
`DONE`. The agent waits for reviewers inside the tool call (AutoGen cannot pause there); run
the same command again after a crash and it replays the gate: nothing runs twice.

Needs `pip install "./client[autogen]"`.
"""

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path

try:
    from gatekeeper_client import AsyncGatekeeperClient
except ImportError:  # run from a checkout without installing: the client is beside us
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "client"))
    from gatekeeper_client import AsyncGatekeeperClient

from autogen_agentchat.agents import AssistantAgent
from autogen_core import FunctionCall
from autogen_core.models import CreateResult, ModelFamily, ModelInfo, RequestUsage
from autogen_ext.models.replay import ReplayChatCompletionClient
from gatekeeper_client.autogen import GatekeeperTools

TOOLS = {"hr_lookup": "hr.lookup", "iam_grant": "iam.grant"}
SCRIPT = [("hr_lookup", {"employee_id": 7}), ("iam_grant", {"user": "jdoe", "role": "admin"})]
MODEL_INFO = ModelInfo(
    vision=False,
    function_calling=True,
    json_output=False,
    family=ModelFamily.UNKNOWN,
    structured_output=False,
)


def scripted_model(script=SCRIPT) -> ReplayChatCompletionClient:
    """Replays the script's tool calls, one per turn, then the answer."""
    calls = [
        CreateResult(
            content=[FunctionCall(id=f"call_{turn}", name=name, arguments=json.dumps(args))],
            finish_reason="function_calls",
            usage=RequestUsage(prompt_tokens=0, completion_tokens=0),
            cached=False,
        )
        for turn, (name, args) in enumerate(script)
    ]
    return ReplayChatCompletionClient([*calls, "onboarding done"], model_info=MODEL_INFO)


def ran(tool_name: str, args: dict) -> str:
    print(f"RAN {tool_name} {json.dumps(args, sort_keys=True)}", flush=True)
    return "ok"


def hr_lookup(employee_id: int) -> str:
    """Look an employee up in the HR system."""
    return ran("hr.lookup", {"employee_id": employee_id})


def iam_grant(user: str, role: str) -> str:
    """Grant a user a role."""
    return ran("iam.grant", {"user": user, "role": role})


def build_agent(gate: GatekeeperTools, model=None) -> AssistantAgent:
    return AssistantAgent(
        "hr_onboarding",
        model_client=model or scripted_model(),
        tools=gate.gate_tools([hr_lookup, iam_grant]),
        max_tool_iterations=len(SCRIPT) + 1,
    )


async def run(thread_id: str, url: str, token: str) -> int:
    async with AsyncGatekeeperClient(url, token) as gk:
        gate = GatekeeperTools(gk, workflow="hr-onboarding", thread_id=thread_id, tool_names=TOOLS)
        await build_agent(gate).run(task="onboard jdoe")
        for tool_name, reason in gate.refusals:
            print(f"DENIED {tool_name} {reason}", flush=True)
        print("DONE", flush=True)
        return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--thread-id", required=True)
    options = parser.parse_args()
    url, token = os.environ.get("GATEKEEPER_URL"), os.environ.get("GATEKEEPER_TOKEN")
    if not url or not token:
        print("set GATEKEEPER_URL and GATEKEEPER_TOKEN", file=sys.stderr)
        return 2
    return asyncio.run(run(options.thread_id, url, token))


if __name__ == "__main__":
    sys.exit(main())
