#!/usr/bin/env python3
"""A LangChain agent (`create_agent`) whose tool calls ask Gatekeeper first, offline.

    export GATEKEEPER_URL=http://127.0.0.1:8000 GATEKEEPER_TOKEN=gk_...
    python3 examples/langgraph_agent.py --thread-id onboard-lg-1
    python3 examples/langgraph_agent.py --thread-id onboard-lg-2 --checkpoint-db postgres://...

The model is scripted (no API key, no network): it calls `hr_lookup` with {"employee_id": 7},
then `iam_grant` with {"user": "jdoe", "role": "admin"}, then answers. The gate sees them as
`hr.lookup` and `iam.grant` of workflow `hr-onboarding`. A tool that runs prints
`RAN <tool> <args>`, a refused call `DENIED <tool> <reason>`, the end `DONE`.

Without `--checkpoint-db` the agent waits for reviewers inside the tool call. With it (needs
`langgraph-checkpoint-postgres`), the run is durable: it pauses at a call that needs approval,
prints `PAUSED <tool> <approval url>` and exits; run the same command again once reviewers
decided, from any process, and it resumes where it stopped.

Needs `pip install "./client[langgraph]"`.
"""

import argparse
import json
import os
import sys
from pathlib import Path

try:
    from gatekeeper_client import GatekeeperClient
except ImportError:  # run from a checkout without installing: the client is beside us
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "client"))
    from gatekeeper_client import GatekeeperClient

from gatekeeper_client.langgraph import GatekeeperMiddleware
from langchain.agents import create_agent
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.tools import tool
from langgraph.types import Command

TOOLS = {"hr_lookup": "hr.lookup", "iam_grant": "iam.grant"}
SCRIPT = [("hr_lookup", {"employee_id": 7}), ("iam_grant", {"user": "jdoe", "role": "admin"})]


class ScriptedModel(BaseChatModel):
    """Calls the script's tools one per turn, then answers: its next move is read from the
    conversation, so a run resumed in another process picks up where it stopped."""

    script: list = SCRIPT

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def bind_tools(self, tools, **kwargs):
        return self

    def _generate(self, messages, stop=None, run_manager=None, **kwargs) -> ChatResult:
        turn = sum(isinstance(message, ToolMessage) for message in messages)
        if turn < len(self.script):
            name, args = self.script[turn]
            call = {"name": name, "args": args, "id": f"call_{turn}_{name}", "type": "tool_call"}
            reply = AIMessage(content="", tool_calls=[call])
        else:
            reply = AIMessage(content="onboarding done")
        return ChatResult(generations=[ChatGeneration(message=reply)])


def ran(tool_name: str, args: dict) -> str:
    print(f"RAN {tool_name} {json.dumps(args, sort_keys=True)}", flush=True)
    return "ok"


@tool
def hr_lookup(employee_id: int) -> str:
    """Look an employee up in the HR system."""
    return ran("hr.lookup", {"employee_id": employee_id})


@tool
def iam_grant(user: str, role: str) -> str:
    """Grant a user a role."""
    return ran("iam.grant", {"user": user, "role": role})


def build_agent(gk: GatekeeperClient, checkpointer=None):
    gate = GatekeeperMiddleware(
        gk, workflow="hr-onboarding", tool_names=TOOLS, durable=checkpointer is not None
    )
    return create_agent(
        ScriptedModel(), [hr_lookup, iam_grant], middleware=[gate], checkpointer=checkpointer
    )


def run(agent, thread_id: str, resume: bool) -> dict:
    config = {"configurable": {"thread_id": thread_id}}
    start = Command(resume="decided") if resume else {"messages": [("user", "onboard jdoe")]}
    return agent.invoke(start, config)


def report(result: dict) -> None:
    for message in result["messages"]:
        if isinstance(message, ToolMessage) and message.status == "error":
            print(f"DENIED {TOOLS.get(message.name, message.name)} {message.content}", flush=True)
    paused = result.get("__interrupt__")
    if paused:
        step = paused[0].value["gatekeeper"]
        print(f"PAUSED {step['tool']} {step['url']}", flush=True)
    else:
        print("DONE", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--thread-id", required=True)
    parser.add_argument("--checkpoint-db", help="PostgreSQL URL: pause durably, resume later")
    options = parser.parse_args()
    url, token = os.environ.get("GATEKEEPER_URL"), os.environ.get("GATEKEEPER_TOKEN")
    if not url or not token:
        print("set GATEKEEPER_URL and GATEKEEPER_TOKEN", file=sys.stderr)
        return 2
    gk = GatekeeperClient(url, token)
    if not options.checkpoint_db:
        report(run(build_agent(gk), options.thread_id, resume=False))
        return 0
    from langgraph.checkpoint.postgres import PostgresSaver

    with PostgresSaver.from_conn_string(options.checkpoint_db) as checkpointer:
        checkpointer.setup()
        agent = build_agent(gk, checkpointer)
        config = {"configurable": {"thread_id": options.thread_id}}
        started = agent.get_state(config).values.get("messages")
        report(run(agent, options.thread_id, resume=bool(started)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
