#!/usr/bin/env python3
"""A Pydantic AI agent whose tool calls are approved in Gatekeeper (deferred tools), offline.

    export GATEKEEPER_URL=http://127.0.0.1:8000 GATEKEEPER_TOKEN=gk_...
    python3 examples/pydantic_ai_agent.py --thread-id onboard-pa-1
    python3 examples/pydantic_ai_agent.py --thread-id onboard-pa-2 --state-file run.json

The model is Pydantic AI's own `FunctionModel` running a script (no API key, no network): it
calls `hr_lookup` with {"employee_id": 7}, then `iam_grant` with {"user": "jdoe", "role":
"admin"}, then answers. The gate sees them as `hr.lookup` and `iam.grant` of workflow
`hr-onboarding`. A tool that runs prints `RAN <tool> <args>`, a refused call `DENIED <tool>
<reason>`, the end `DONE`.

Without `--state-file` the agent waits for reviewers (its deferred calls are answered inline).
With it, a run that needs approval ends with `DeferredToolRequests`: the messages and the
requests are saved there, it prints `PAUSED <tool> <approval url>` and exits; run the same
command again once reviewers decided, from any process, and it resumes from the deferred
results.

Needs `pip install "./client[pydantic-ai]"`.
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

from gatekeeper_client.pydantic_ai import GatekeeperApprovals
from pydantic import TypeAdapter
from pydantic_ai import Agent, DeferredToolRequests
from pydantic_ai.messages import (
    ModelMessagesTypeAdapter,
    ModelRequest,
    ModelResponse,
    TextPart,
    ToolCallPart,
    ToolReturnPart,
)
from pydantic_ai.models.function import FunctionModel

TOOLS = {"hr_lookup": "hr.lookup", "iam_grant": "iam.grant"}
SCRIPT = [("hr_lookup", {"employee_id": 7}), ("iam_grant", {"user": "jdoe", "role": "admin"})]
REQUESTS = TypeAdapter(DeferredToolRequests)


def scripted_model(script=SCRIPT) -> FunctionModel:
    """Calls the script's tools one per turn, then answers: its next move is read from the
    conversation, so a run resumed in another process picks up where it stopped."""

    def next_move(messages, info) -> ModelResponse:
        turn = sum(
            isinstance(part, ToolReturnPart)
            for message in messages
            if isinstance(message, ModelRequest)
            for part in message.parts
        )
        if turn < len(script):
            name, args = script[turn]
            return ModelResponse(parts=[ToolCallPart(name, args, tool_call_id=f"call_{turn}")])
        return ModelResponse(parts=[TextPart("onboarding done")])

    return FunctionModel(next_move)


def ran(tool_name: str, args: dict) -> str:
    print(f"RAN {tool_name} {json.dumps(args, sort_keys=True)}", flush=True)
    return "ok"


def hr_lookup(employee_id: int) -> str:
    """Look an employee up in the HR system."""
    return ran("hr.lookup", {"employee_id": employee_id})


def iam_grant(user: str, role: str) -> str:
    """Grant a user a role."""
    return ran("iam.grant", {"user": user, "role": role})


def build_agent(approvals: GatekeeperApprovals) -> Agent:
    return Agent(
        scripted_model(),
        tools=[hr_lookup, iam_grant],
        capabilities=[approvals],
        output_type=[str, DeferredToolRequests],
    )


def report(result) -> None:
    for message in result.new_messages():
        for part in message.parts:
            if isinstance(part, ToolReturnPart) and part.outcome == "denied":
                tool_name = TOOLS.get(part.tool_name, part.tool_name)
                print(f"DENIED {tool_name} {part.content}", flush=True)


def paused(requests: DeferredToolRequests) -> None:
    step = requests.metadata[requests.approvals[0].tool_call_id]["gatekeeper"]
    print(f"PAUSED {step['tool']} {step['url']}", flush=True)


async def run(options, url: str, token: str) -> int:
    saved = Path(options.state_file) if options.state_file else None
    async with AsyncGatekeeperClient(url, token) as gk:
        wait_timeout = None if saved is None else 0
        approvals = GatekeeperApprovals(
            gk, workflow="hr-onboarding", tool_names=TOOLS, wait_timeout=wait_timeout
        )
        agent = build_agent(approvals)
        if saved and saved.exists():
            state = json.loads(saved.read_text())
            messages = ModelMessagesTypeAdapter.validate_python(state["messages"])
            requests = REQUESTS.validate_python(state["requests"])
            results = await approvals.results(requests)
            if requests.remaining(results) is not None:
                paused(requests)
                return 0
            result = await agent.run(message_history=messages, deferred_tool_results=results)
        else:
            result = await agent.run("onboard jdoe", conversation_id=options.thread_id)
        report(result)
        if isinstance(result.output, DeferredToolRequests):
            messages = result.all_messages()
            state = {
                "messages": ModelMessagesTypeAdapter.dump_python(messages, mode="json"),
                "requests": REQUESTS.dump_python(result.output, mode="json"),
            }
            saved.write_text(json.dumps(state))
            paused(result.output)
            return 0
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
