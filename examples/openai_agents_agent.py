#!/usr/bin/env python3
"""An OpenAI Agents SDK agent whose tool calls are approved in Gatekeeper, offline.

    export GATEKEEPER_URL=http://127.0.0.1:8000 GATEKEEPER_TOKEN=gk_...
    python3 examples/openai_agents_agent.py --thread-id onboard-oa-1
    python3 examples/openai_agents_agent.py --thread-id onboard-oa-2 --state-file run.json

The model is the SDK's own `agents.testing.ScriptedModel` (no API key, no network): it calls
`hr_lookup` with {"employee_id": 7}, then `iam_grant` with {"user": "jdoe", "role": "admin"},
then answers. The gate sees them as `hr.lookup` and `iam.grant` of workflow `hr-onboarding`.
A tool that runs prints `RAN <tool> <args>`, a refused call `DENIED <tool> <reason>`, the end
`DONE`.

Without `--state-file` the agent waits for reviewers. With it, a run that needs approval
saves its `RunState` there, prints `PAUSED <tool> <approval url>` and exits; run the same
command again once reviewers decided, from any process, and it resumes where it stopped.

Needs `pip install "./client[openai-agents]"`.
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

from agents import Agent, Runner, RunState, function_tool, set_tracing_disabled
from agents.testing import ModelStep, ScriptedModel, assistant_message, function_call
from gatekeeper_client.openai_agents import GatekeeperApprovals

set_tracing_disabled(True)  # offline: no trace export
TOOLS = {"hr_lookup": "hr.lookup", "iam_grant": "iam.grant"}
SCRIPT = [("hr_lookup", {"employee_id": 7}), ("iam_grant", {"user": "jdoe", "role": "admin"})]


def next_move(call):
    """The model's next move, read from the conversation: a resumed run picks up from it."""
    items = call.input if isinstance(call.input, list) else []
    turn = sum(1 for item in items if _kind(item) == "function_call_output")
    if turn < len(SCRIPT):
        name, args = SCRIPT[turn]
        return [function_call(name, args, call_id=f"call_{turn}_{name}")]
    return [assistant_message("onboarding done")]


def _kind(item) -> str | None:
    return item.get("type") if isinstance(item, dict) else getattr(item, "type", None)


def scripted_model() -> ScriptedModel:
    return ScriptedModel([ModelStep.respond(next_move) for _ in range(len(SCRIPT) + 1)])


def ran(tool_name: str, args: dict) -> str:
    print(f"RAN {tool_name} {json.dumps(args, sort_keys=True)}", flush=True)
    return "ok"


@function_tool
def hr_lookup(employee_id: int) -> str:
    """Look an employee up in the HR system."""
    return ran("hr.lookup", {"employee_id": employee_id})


@function_tool
def iam_grant(user: str, role: str) -> str:
    """Grant a user a role."""
    return ran("iam.grant", {"user": user, "role": role})


def build_agent(approvals: GatekeeperApprovals) -> Agent:
    return Agent(
        name="hr-onboarding",
        model=scripted_model(),
        tools=approvals.gate_tools([hr_lookup, iam_grant]),
    )


async def run(options, url: str, token: str) -> int:
    async with AsyncGatekeeperClient(url, token) as gk:
        approvals = GatekeeperApprovals(gk, workflow="hr-onboarding", tool_names=TOOLS)
        agent = build_agent(approvals)
        saved = Path(options.state_file) if options.state_file else None
        if saved and saved.exists():
            state = await RunState.from_string(agent, saved.read_text())
        else:
            context = {"thread_id": options.thread_id}
            result = await Runner.run(agent, "onboard jdoe", context=context)
            state = result.to_state() if result.interruptions else None
        while state is not None:
            still_open = await approvals.resolve(state, wait_timeout=None if saved is None else 0)
            if still_open:
                saved.write_text(state.to_string())
                print(f"PAUSED {TOOLS.get(still_open[0].tool_name)}", flush=True)
                return 0
            result = await Runner.run(agent, state)
            state = result.to_state() if result.interruptions else None
        for tool_name, reason in approvals.refusals:
            print(f"DENIED {tool_name} {reason}", flush=True)
        if saved and saved.exists():
            saved.unlink()
        print("DONE", flush=True)
        return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--thread-id", required=True)
    parser.add_argument("--state-file", help="pause here while reviewers decide; resume later")
    options = parser.parse_args()
    url, token = os.environ.get("GATEKEEPER_URL"), os.environ.get("GATEKEEPER_TOKEN")
    if not url or not token:
        print("set GATEKEEPER_URL and GATEKEEPER_TOKEN", file=sys.stderr)
        return 2
    return asyncio.run(run(options, url, token))


if __name__ == "__main__":
    sys.exit(main())
